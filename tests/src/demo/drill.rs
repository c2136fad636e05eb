//! Demo section: the quarterly DR restore drill. A production database's
//! DR copy is restored into a throwaway database in the DR region (the
//! emulator reports the restore as `creating` for one check, as AWS would
//! for many minutes), checked by the `dr-drill` job, verified against the
//! copy, deleted, and reported with the time to restore against the RTO.
//! Self-contained: its own keys, database and policy.

use aws_config::Region;
use aws_sdk_rds::types::Tag;
use serde_json::json;

use super::{heading, show_email, step, DemoStack};
use crate::moto::{HUB_ACCOUNT, REGION};

const DR: &str = "us-west-2";

pub async fn run(stack: &DemoStack) -> anyhow::Result<()> {
    heading("snapshot-copier: the DR restore drill");
    let config = stack.moto.config();
    for (region, alias) in [
        (DR, "alias/steward-dr-drill"),
        (REGION, "alias/demo-payments"),
    ] {
        stack
            .moto
            .post(
                "/_steward/kms/key",
                &json!({"account": HUB_ACCOUNT, "region": region, "alias": alias}),
            )
            .await?;
    }
    aws_sdk_rds::Client::new(&config)
        .create_db_instance()
        .db_instance_identifier("prod-payments")
        .engine("postgres")
        .db_instance_class("db.m5.large")
        .master_username("app")
        .master_user_password("demo-only-password-1")
        .allocated_storage(100)
        .storage_encrypted(true)
        .kms_key_id("alias/demo-payments")
        .tags(Tag::builder().key("env").value("prod").build())
        .send()
        .await?;
    let dir = std::env::temp_dir().join(crate::unique("steward-demo-drill"));
    std::fs::create_dir_all(&dir)?;
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!("[snapshots]\ndr_region = \"{DR}\"\ndr_kms_key = \"alias/steward-dr-drill\"\ndrill_rto_minutes = 60\n"),
    )?;
    let policy = policy.display().to_string();
    let mut f = stack
        .function("snapshot-copier", &[("STEWARD_POLICY", policy.as_str())])
        .await?;
    f.invoke(&json!({"job": "sweep"})).await?.response();
    stack.new_notifications().await?;
    step("prod-payments (env=prod, 100 GiB, encrypted) has a DR copy in us-west-2 (the daily sweep made it)");
    stack
        .moto
        .post(
            "/_steward/rds/restore-behaviour",
            &json!({"pending_describes": 1}),
        )
        .await?;
    let drill = json!({"job": "dr-drill", "database": "prod-payments"});
    let started = f.invoke(&drill).await?.response();
    let id = started["started"][0].as_str().unwrap_or("?").to_string();
    step(&format!(
        "dr-drill: drill {id} recorded, then the newest DR copy restored into steward-drill-{id} (db.t4g.micro, not public, tagged steward:managed and steward:drill)"
    ));
    let first = f.invoke(&drill).await?.response();
    step(&format!(
        "15 minutes later, the next dr-drill run: still creating (reported {})",
        first["reported"]
    ));
    let second = f.invoke(&drill).await?.response();
    step(&format!(
        "the run after: available, engine, version and storage verified against the copy, deleted (reported {})",
        second["reported"]
    ));
    let west = aws_sdk_rds::Client::new(&config.to_builder().region(Region::new(DR)).build());
    let left = west
        .describe_db_instances()
        .send()
        .await?
        .db_instances()
        .iter()
        .filter(|d| {
            d.db_instance_identifier()
                .is_some_and(|i| i.starts_with("steward-drill-"))
        })
        .count();
    step(&format!("drill databases left in {DR}: {left}"));
    for (subject, text, _) in stack.new_notifications().await? {
        show_email(&subject, &text);
    }
    stack
        .moto
        .post(
            "/_steward/rds/restore-behaviour",
            &json!({"pending_describes": 0}),
        )
        .await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
