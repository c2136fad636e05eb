//! Demo section: a bucket turns NON_COMPLIANT with an AWS Config rule, the
//! security team hears it once (with the bucket's tags and what to do), hears
//! the recovery, and reads the daily digest of what is still non-compliant.

use serde_json::json;

use super::{heading, show_chat, show_email, step, DemoStack};
use crate::event;

pub async fn run(stack: &DemoStack) -> anyhow::Result<()> {
    heading("compliance-notifier: Config non-compliance reaches the security team once, recovery too, and a daily digest");
    // What AWS Config knows of the bucket (its tags) and of the account's rules.
    stack
        .moto
        .post(
            "/_steward/config/items",
            &json!({"awsAccountId": "123456789012", "awsRegion": "us-east-1",
                    "resourceType": "AWS::S3::Bucket", "resourceId": "steward-demo-logs",
                    "ARN": "arn:aws:s3:::steward-demo-logs",
                    "tags": {"project": "web", "env": "dev", "cost_center": "cc-1042"}}),
        )
        .await?;
    let rule = "s3-bucket-public-read-prohibited";
    stack
        .moto
        .post(
            "/_steward/config/compliance",
            &json!([
                {"rule": rule, "resourceType": "AWS::S3::Bucket", "resourceId": "steward-demo-logs", "complianceType": "NON_COMPLIANT"},
                {"rule": rule, "resourceType": "AWS::S3::Bucket", "resourceId": "steward-demo-assets", "complianceType": "NON_COMPLIANT"},
                {"rule": "s3-bucket-versioning-enabled", "resourceType": "AWS::S3::Bucket", "resourceId": "steward-demo-logs", "complianceType": "NON_COMPLIANT"},
            ]),
        )
        .await?;

    let mut f = stack.function("compliance-notifier", &[]).await?;
    let broken = event("config-compliance-change.json");
    f.invoke(&broken).await?.response();
    step(
        "AWS Config records steward-demo-logs NON_COMPLIANT with s3-bucket-public-read-prohibited",
    );
    let notes = stack.new_notifications().await?;
    if let Some((subject, text, chat)) = notes.first() {
        show_email(subject, text);
        show_chat(chat);
    }
    f.invoke(&broken).await?.response();
    step(&format!(
        "the same change delivered again: {} new message(s)",
        stack.new_notifications().await?.len()
    ));
    f.invoke(&event("config-compliance-change-insufficient-data.json"))
        .await?
        .response();
    step(&format!(
        "INSUFFICIENT_DATA is only logged: {} new message(s)",
        stack.new_notifications().await?.len()
    ));
    f.invoke(&event("config-compliance-change-recovered.json"))
        .await?
        .response();
    step("the bucket's ACL is fixed; Config records it COMPLIANT again");
    for (subject, _, _) in stack.new_notifications().await? {
        step(&format!("message: {subject}"));
    }

    f.invoke(&json!({"job": "digest"})).await?.response();
    step("the daily digest runs (EventBridge Scheduler, job `digest`)");
    if let Some((subject, text, _)) = stack.new_notifications().await?.first() {
        show_email(subject, text);
    }
    Ok(())
}
