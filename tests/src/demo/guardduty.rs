//! Demo section: a HIGH GuardDuty finding on a dev instance is contained in
//! seconds (quarantine group, forensic snapshots, termination protection),
//! the security team receives one message, and the operator releases the
//! quarantine with the `steward` CLI.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use serde_json::json;

use super::{heading, show_chat, show_email, step, DemoStack};
use crate::{event, workspace_root};

async fn tags_of(
    ec2: &aws_sdk_ec2::Client,
    instance: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let out = ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await?;
    let i = out
        .reservations()
        .first()
        .and_then(|r| r.instances().first())
        .ok_or_else(|| anyhow::anyhow!("{instance} not found"))?;
    Ok(i.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

async fn interface_record(ec2: &aws_sdk_ec2::Client, eni: &str) -> anyhow::Result<String> {
    let out = ec2
        .describe_network_interfaces()
        .network_interface_ids(eni)
        .send()
        .await?;
    Ok(out
        .network_interfaces()
        .first()
        .and_then(|n| {
            n.tag_set()
                .iter()
                .find(|t| t.key() == Some("steward:previous-groups"))
        })
        .and_then(|t| t.value())
        .unwrap_or("(none)")
        .to_string())
}

/// The built `steward` CLI.
fn steward_cli() -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    target.join("debug").join("steward")
}

pub async fn run(stack: &DemoStack) -> anyhow::Result<()> {
    heading("guardduty-responder: a HIGH finding on a dev instance is contained, the team is told, the operator releases it");
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let vpc = crate::fixtures::default_vpc(&config).await?;
    let web = ec2
        .create_security_group()
        .group_name("orders-api-dev")
        .description("orders API (dev)")
        .vpc_id(&vpc)
        .send()
        .await?;
    let web = web.group_id().unwrap_or_default().to_string();
    let launched = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .security_group_ids(&web)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("project").value("orders").build())
                .tags(Tag::builder().key("env").value("dev").build())
                .tags(Tag::builder().key("cost_center").value("cc-1042").build())
                .build(),
        )
        .send()
        .await?;
    let instance = launched
        .instances()
        .first()
        .ok_or_else(|| anyhow::anyhow!("RunInstances returned nothing"))?;
    let id = instance.instance_id().unwrap_or_default().to_string();
    let eni = instance
        .network_interfaces()
        .first()
        .and_then(|n| n.network_interface_id())
        .unwrap_or_default()
        .to_string();
    step(&format!(
        "the dev account runs {id} (project=orders, env=dev) behind security group {web}"
    ));

    let mut f = stack.function("guardduty-responder", &[]).await?;
    let mut finding = event("guardduty-ec2-backdoor.json");
    finding["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(id);
    for field in ["title", "description"] {
        let text = finding["detail"][field]
            .as_str()
            .unwrap_or_default()
            .replace("i-0a1b2c3d4e5f67890", &id);
        finding["detail"][field] = json!(text);
    }
    // GuardDuty itself must know the finding: the responder verifies every
    // finding with GetFindings and acts on GuardDuty's copy, not the payload.
    let guardduty = aws_sdk_guardduty::Client::new(&config);
    if guardduty
        .list_detectors()
        .send()
        .await?
        .detector_ids()
        .is_empty()
    {
        guardduty.create_detector().enable(true).send().await?;
    }
    stack
        .moto
        .post(
            "/_steward/guardduty/findings",
            &json!({"account": crate::moto::HUB_ACCOUNT, "region": crate::moto::REGION, "finding": finding["detail"]}),
        )
        .await?;
    step("GuardDuty reports Backdoor:EC2/C&CActivity.B!DNS (severity 8.0, HIGH) for it; EventBridge invokes the responder, which fetches the finding from GuardDuty before acting");
    let started = std::time::Instant::now();
    let out = f.invoke(&finding).await?.response();
    step(&format!(
        "containment: {} in {} ms",
        out["containment"].as_str().unwrap_or("?"),
        started.elapsed().as_millis()
    ));
    for action in out["actions"].as_array().into_iter().flatten() {
        step(&format!("  {}", action.as_str().unwrap_or_default()));
    }
    let tags = tags_of(&ec2, &id).await?;
    step(&format!(
        "{id} now carries steward:quarantined={}",
        tags.get("steward:quarantined")
            .map(String::as_str)
            .unwrap_or("(missing)")
    ));
    step(&format!(
        "{eni} records steward:previous-groups={}",
        interface_record(&ec2, &eni).await?
    ));

    let notes = stack.new_notifications().await?;
    if let Some((subject, text, chat)) = notes.first() {
        show_email(subject, text);
        show_chat(chat);
    }
    f.invoke(&finding).await?.response();
    step(&format!(
        "the same finding delivered again (at-least-once): {} new message(s), no second snapshot",
        stack.new_notifications().await?.len()
    ));

    step(&format!(
        "the team investigates, then runs: steward quarantine release {id}"
    ));
    let cli = steward_cli();
    let output = tokio::process::Command::new(&cli)
        .args(["quarantine", "release", &id])
        .envs(stack.moto.env())
        .env("STEWARD_IDEMPOTENCY_TABLE", &stack.table)
        .output()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "running {}: {e}; build it with `cargo build -p steward-cli`",
                cli.display()
            )
        })?;
    if !output.status.success() {
        anyhow::bail!(
            "steward quarantine release failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("    {line}");
    }
    let tags = tags_of(&ec2, &id).await?;
    step(&format!(
        "afterwards: steward:quarantined {}, {eni} record {}",
        if tags.contains_key("steward:quarantined") {
            "still present"
        } else {
            "removed"
        },
        interface_record(&ec2, &eni).await?
    ));
    Ok(())
}
