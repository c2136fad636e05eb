//! Demo section: the tag enforcer reacting to a new untagged EC2 instance, a
//! new RDS database and an AWS Config evaluation.

use std::collections::BTreeMap;

use serde_json::json;

use super::{heading, show_chat, show_email, step, DemoStack};
use crate::event;

fn format_tags(tags: &BTreeMap<String, String>) -> String {
    if tags.is_empty() {
        return "(none)".into();
    }
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn instance_tags(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let out = ec2.describe_instances().instance_ids(id).send().await?;
    let instance = out
        .reservations()
        .first()
        .and_then(|r| r.instances().first())
        .ok_or_else(|| anyhow::anyhow!("{id} not found"))?;
    Ok(instance
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

pub async fn run(stack: &DemoStack) -> anyhow::Result<()> {
    heading("tag-enforcer: new resources get their creator and env, the security team hears what is missing");
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let launched = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("project")
                        .value("orders")
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    let instance = launched.instances()[0]
        .instance_id()
        .unwrap_or_default()
        .to_string();
    step(&format!(
        "alice launches {instance} in the dev account with tags: {}",
        format_tags(&instance_tags(&ec2, &instance).await?)
    ));

    let mut f = stack.function("tag-enforcer", &[]).await?;
    let mut e = event("cloudtrail-run-instances.json");
    e["detail"]["responseElements"]["instancesSet"]["items"] = json!([{"instanceId": instance}]);
    f.invoke(&e).await?.response();
    step(&format!(
        "EventBridge delivers RunInstances; afterwards: {}",
        format_tags(&instance_tags(&ec2, &instance).await?)
    ));
    let notes = stack.new_notifications().await?;
    if let Some((subject, text, _)) = notes.first() {
        show_email(subject, text);
    }
    f.invoke(&e).await?.response();
    let again = stack.new_notifications().await?;
    step(&format!(
        "the same event delivered again (at-least-once): {} new message(s), tags unchanged",
        again.len()
    ));

    let rds = aws_sdk_rds::Client::new(&config);
    rds.create_db_instance()
        .db_instance_identifier("orders-dev")
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username("app")
        .master_user_password("demo-only-password-1")
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("cost_center")
                .value("cc-1042")
                .build(),
        )
        .send()
        .await?;
    let mut db_event = event("cloudtrail-create-db-instance.json");
    // bob signs in through IAM Identity Center: his session is ROLE/SESSION.
    db_event["detail"]["userIdentity"] =
        event("cloudtrail-create-volume.json")["detail"]["userIdentity"].clone();
    f.invoke(&db_event).await?.response();
    let db = rds
        .describe_db_instances()
        .db_instance_identifier("orders-dev")
        .send()
        .await?;
    let tags: BTreeMap<String, String> = db.db_instances()[0]
        .tag_list()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    step(&format!(
        "bob (single sign-on) creates RDS orders-dev; afterwards: {}",
        format_tags(&tags)
    ));
    if let Some((_, _, chat)) = stack.new_notifications().await?.first() {
        show_chat(chat);
    }

    let mut config_event = event("config-change-ec2-instance.json");
    let mut invoking: serde_json::Value =
        serde_json::from_str(config_event["invokingEvent"].as_str().unwrap_or("{}"))?;
    invoking["configurationItem"]["resourceId"] = json!(instance);
    invoking["configurationItem"]["tags"] = json!(instance_tags(&ec2, &instance).await?);
    config_event["invokingEvent"] = json!(invoking.to_string());
    config_event["resultToken"] = json!("demo-token");
    let out = f.invoke(&config_event).await?.response();
    let evaluation = &out["evaluations"][0];
    step(&format!(
        "AWS Config evaluates {instance}: {} ({})",
        evaluation["compliance"].as_str().unwrap_or_default(),
        evaluation["annotation"].as_str().unwrap_or_default()
    ));
    Ok(())
}
