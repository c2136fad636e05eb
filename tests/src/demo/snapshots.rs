//! Demo section: a production database's automated snapshot is copied to the
//! DR region with the DR key the moment RDS announces it, a dev database's
//! is not, and the daily sweep sends the recovery-point digest.

use aws_config::Region;
use aws_sdk_rds::types::Tag;
use serde_json::{json, Value};

use super::{heading, show_chat, show_email, step, DemoStack};
use crate::event;
use crate::moto::{HUB_ACCOUNT, REGION};

const DR: &str = "us-west-2";

pub async fn run(stack: &DemoStack) -> anyhow::Result<()> {
    heading("snapshot-copier: DR copies and the recovery point");
    let config = stack.moto.config();
    for (region, alias) in [(DR, "alias/steward-dr"), (REGION, "alias/demo-data")] {
        stack
            .moto
            .post(
                "/_steward/kms/key",
                &json!({"account": HUB_ACCOUNT, "region": region, "alias": alias}),
            )
            .await?;
    }
    let rds = aws_sdk_rds::Client::new(&config);
    let mut snapshots = Vec::new();
    for (db, env) in [("prod-orders", "prod"), ("dev-orders", "dev")] {
        rds.create_db_instance()
            .db_instance_identifier(db)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .master_username("app")
            .master_user_password("demo-only-password-1")
            .allocated_storage(20)
            .storage_encrypted(true)
            .kms_key_id("alias/demo-data")
            .tags(Tag::builder().key("env").value(env).build())
            .send()
            .await?;
        let out = rds
            .describe_db_snapshots()
            .db_instance_identifier(db)
            .send()
            .await?;
        let arn = out
            .db_snapshots()
            .first()
            .and_then(|s| s.db_snapshot_arn())
            .ok_or_else(|| anyhow::anyhow!("no automated snapshot of {db}"))?
            .to_string();
        snapshots.push((db, arn));
    }
    step("prod-orders (env=prod) and dev-orders (env=dev) each have an automated snapshot in us-east-1");
    let dir = std::env::temp_dir().join(crate::unique("steward-demo-dr"));
    std::fs::create_dir_all(&dir)?;
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!("[snapshots]\ndr_region = \"{DR}\"\ndr_kms_key = \"alias/steward-dr\"\n"),
    )?;
    let policy = policy.display().to_string();
    let mut f = stack
        .function("snapshot-copier", &[("STEWARD_POLICY", policy.as_str())])
        .await?;
    for (db, arn) in &snapshots {
        let mut e: Value = event("rds-snapshot-event-0091-automated.json");
        e["resources"] = json!([arn]);
        e["detail"]["SourceArn"] = json!(arn);
        e["detail"]["SourceIdentifier"] = json!(arn.splitn(7, ':').nth(6).unwrap_or_default());
        e["id"] = json!(crate::unique("rds-event"));
        let response = f.invoke(&e).await?.response();
        match response["results"]["started"].as_array() {
            Some(started) => step(&format!(
                "RDS-EVENT-0091 for {db}: DR copy started {}",
                started[0]
            )),
            None => step(&format!(
                "RDS-EVENT-0091 for {db}: not copied ({})",
                response["ignored"].as_str().unwrap_or("?")
            )),
        }
    }
    let west = aws_sdk_rds::Client::new(&config.to_builder().region(Region::new(DR)).build());
    for copy in west.describe_db_snapshots().send().await?.db_snapshots() {
        step(&format!(
            "in {DR}: {} encrypted={} tags: {}",
            copy.db_snapshot_identifier().unwrap_or_default(),
            copy.encrypted().unwrap_or(false),
            copy.tag_list()
                .iter()
                .map(|t| format!(
                    "{}={}",
                    t.key().unwrap_or_default(),
                    t.value().unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    stack.new_notifications().await?;
    step("the daily sweep: nothing left to copy, one digest with each database's recovery point");
    f.invoke(&json!({"job": "sweep"})).await?.response();
    for (subject, text, chat) in stack.new_notifications().await? {
        show_email(&subject, &text);
        show_chat(&chat);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
