//! The compliance notifier end to end: the built binary under the Lambda
//! Runtime API emulator, against moto (with the launcher's compliance store
//! answering Config's compliance queries), with the security team's inbox
//! subscribed.

use serde_json::{json, Value};
use steward_tests::event;
use steward_tests::inbox::{Envelope, Received};
use steward_tests::moto::{HUB_ACCOUNT, REGION};
use steward_tests::stack::{Stack, MEMBER_ACCOUNT};

const FUNCTION: &str = "compliance-notifier";
const BUCKET: &str = "steward-demo-logs";

/// A compliance change from the fixture: the rule, the states and the recorded time set.
fn change(rule: &str, old: Option<&str>, new: &str, recorded: &str) -> Value {
    let mut e = event("config-compliance-change.json");
    e["id"] = json!(uuid::Uuid::new_v4().to_string());
    let d = &mut e["detail"];
    d["configRuleName"] = json!(rule);
    d["newEvaluationResult"]["complianceType"] = json!(new);
    d["newEvaluationResult"]["resultRecordedTime"] = json!(recorded);
    match old {
        Some(old) => d["oldEvaluationResult"]["complianceType"] = json!(old),
        None => {
            d.as_object_mut().unwrap().remove("oldEvaluationResult");
        }
    }
    e
}

/// The bucket's configuration item, with its tags, as AWS Config records it.
async fn seed_bucket_item(stack: &Stack, tags: Value) {
    stack
        .moto
        .post(
            "/_steward/config/items",
            &json!({
                "awsAccountId": HUB_ACCOUNT,
                "awsRegion": REGION,
                "resourceType": "AWS::S3::Bucket",
                "resourceId": BUCKET,
                "ARN": format!("arn:aws:s3:::{BUCKET}"),
                "tags": tags,
            }),
        )
        .await
        .unwrap();
}

fn event_type(m: &Received) -> String {
    m.event_type()
}

#[tokio::test]
async fn a_change_and_its_recovery_give_two_messages_and_repeats_give_none() {
    let stack = Stack::new().await;
    seed_bucket_item(&stack, json!({"env": "prod", "project": "web"})).await;
    let mut f = stack.function(FUNCTION, "", &[]).await;

    let broken = event("config-compliance-change.json");
    let out = f.response_to(&broken).await;
    assert_eq!(out["transition"], "noncompliant", "{out}");
    assert_eq!(out["notification"], "sent", "{out}");
    assert_eq!(out["tags_known"], true, "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert!(
        m.subject.starts_with(
            "[steward] MEDIUM compliance: AWS::S3::Bucket steward-demo-logs is NON_COMPLIANT"
        ),
        "{}",
        m.subject
    );
    m.assert_envelope(Envelope {
        severity: "MEDIUM",
        category: "compliance",
        event_type: "steward.compliance.noncompliant",
        account: HUB_ACCOUNT,
    });
    assert_eq!(m.attributes["region"], REGION);
    assert_eq!(m.attributes["environment"], "prod");
    let description = m.description();
    for expected in [
        "Rule: s3-bucket-public-read-prohibited",
        "Tags: env=prod, project=web",
        "Annotation: The S3 bucket ACL allows public read access.",
        "Compliance: COMPLIANT -> NON_COMPLIANT",
        "https://us-east-1.console.aws.amazon.com/config/home?region=us-east-1#/rules/details?configRuleName=s3-bucket-public-read-prohibited",
    ] {
        assert!(description.contains(expected), "{expected}: {description}");
    }
    assert!(m.chat["content"]["nextSteps"][0]
        .as_str()
        .unwrap()
        .starts_with("Fix AWS::S3::Bucket steward-demo-logs"));

    // The same change delivered again: silent.
    let again = f.response_to(&broken).await;
    assert_eq!(again["notification"], "duplicate", "{again}");
    // The same change in a new envelope (another event id): still silent, the key is the change.
    let mut rewrapped = broken.clone();
    rewrapped["id"] = json!("another-delivery");
    let again = f.response_to(&rewrapped).await;
    assert_eq!(again["notification"], "duplicate", "{again}");
    assert!(stack.inbox.drain().await.unwrap().is_empty());

    let recovered = event("config-compliance-change-recovered.json");
    let out = f.response_to(&recovered).await;
    assert_eq!(out["transition"], "recovered", "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].attributes["severity"], "INFO");
    assert_eq!(event_type(&received[0]), "steward.compliance.recovered");
    assert!(
        received[0].subject.contains("is COMPLIANT again"),
        "{}",
        received[0].subject
    );
    let again = f.response_to(&recovered).await;
    assert_eq!(again["notification"], "duplicate");
    assert!(stack.inbox.drain().await.unwrap().is_empty());

    // Broken again later (a new recorded time): notified again.
    let later = change(
        "s3-bucket-public-read-prohibited",
        Some("COMPLIANT"),
        "NON_COMPLIANT",
        "2026-12-01T11:00:00.000Z",
    );
    let out = f.response_to(&later).await;
    assert_eq!(out["notification"], "sent", "{out}");
    assert_eq!(stack.inbox.drain().await.unwrap().len(), 1);

    // Logs are JSON with the event id, and an EMF line counts the messages.
    let logs = f.logs();
    assert!(f.logs_are_json(), "every line is JSON");
    let id = broken["id"].as_str().unwrap();
    assert!(logs.iter().any(|l| l.contains(id)));
    assert!(logs
        .iter()
        .any(|l| l.contains("\"Namespace\":\"Steward\"") && l.contains("\"NotificationsSent\":1")));
}

#[tokio::test]
async fn insufficient_data_is_only_logged() {
    let stack = Stack::new().await;
    let mut f = stack.function(FUNCTION, "", &[]).await;
    let out = f
        .response_to(&event("config-compliance-change-insufficient-data.json"))
        .await;
    assert_eq!(out["transition"], "logged", "{out}");
    assert_eq!(out["notification"], "none");
    // A change between two passing states is logged only, too.
    let out = f
        .response_to(&change("r", Some("NOT_APPLICABLE"), "COMPLIANT", "t1"))
        .await;
    assert_eq!(out["notification"], "none", "{out}");
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    assert_eq!(stack.idempotency_records().await, 0);
    assert!(f
        .logs()
        .iter()
        .any(|l| l.contains("compliance change logged only")));
}

#[tokio::test]
async fn a_flapping_resource_gives_one_flapping_message() {
    let stack = Stack::new().await;
    let policy = "[compliance]\nflap_changes = 2\nflap_window_hours = 6\n";
    let mut f = stack.function(FUNCTION, policy, &[]).await;
    let rule = "s3-bucket-versioning-enabled";
    let states = [
        ("COMPLIANT", "NON_COMPLIANT"),
        ("NON_COMPLIANT", "COMPLIANT"),
        ("COMPLIANT", "NON_COMPLIANT"),
        ("NON_COMPLIANT", "COMPLIANT"),
        ("COMPLIANT", "NON_COMPLIANT"),
        ("NON_COMPLIANT", "COMPLIANT"),
    ];
    let mut outcomes = Vec::new();
    for (i, (old, new)) in states.iter().enumerate() {
        let e = change(
            rule,
            Some(*old),
            new,
            &format!("2026-12-01T10:0{i}:00.000Z"),
        );
        let out = f.response_to(&e).await;
        outcomes.push(out["notification"].as_str().unwrap().to_string());
        // A redelivery in the middle of the flapping changes nothing.
        let again = f.response_to(&e).await;
        assert_ne!(again["notification"], "sent", "{again}");
    }
    assert_eq!(
        outcomes,
        [
            "sent",
            "sent",
            "sent",
            "suppressed-flapping",
            "suppressed-flapping",
            "suppressed-flapping"
        ]
    );
    let received = stack.inbox.drain().await.unwrap();
    let types: Vec<String> = received.iter().map(event_type).collect();
    assert_eq!(received.len(), 3, "{types:?}");
    let flapping: Vec<&Received> = received
        .iter()
        .filter(|m| event_type(m) == "steward.compliance.flapping")
        .collect();
    assert_eq!(flapping.len(), 1, "{types:?}");
    assert!(
        flapping[0]
            .subject
            .contains("is flapping on s3-bucket-versioni"),
        "{}",
        flapping[0].subject
    );
    assert_eq!(
        flapping[0].chat["metadata"]["additionalContext"]["changesInWindow"], "3",
        "{}",
        flapping[0].chat
    );
    assert_eq!(flapping[0].attributes["severity"], "MEDIUM");
    // A different resource of the same rule is not affected.
    let mut other = change(
        rule,
        Some("COMPLIANT"),
        "NON_COMPLIANT",
        "2026-12-01T10:09:00Z",
    );
    other["detail"]["resourceId"] = json!("another-bucket");
    let out = f.response_to(&other).await;
    assert_eq!(out["notification"], "sent", "{out}");
}

#[tokio::test]
async fn severity_follows_the_rule_patterns_and_unknown_tags_are_said() {
    let stack = Stack::new().await;
    let policy = r#"
[compliance]
default_severity = "LOW"
rule_severities = [
  { pattern = "s3-bucket-public-*", severity = "CRITICAL" },
  { pattern = "s3-*", severity = "HIGH" },
]
"#;
    let mut f = stack.function(FUNCTION, policy, &[]).await;
    for (rule, severity) in [
        ("s3-bucket-public-read-prohibited", "CRITICAL"),
        ("s3-bucket-versioning-enabled", "HIGH"),
        ("iam-password-policy", "LOW"),
    ] {
        let out = f
            .response_to(&change(rule, Some("COMPLIANT"), "NON_COMPLIANT", "t1"))
            .await;
        assert_eq!(out["severity"], severity, "{rule}: {out}");
        // No configuration item was seeded: the message goes out and says so.
        assert_eq!(out["tags_known"], false, "{out}");
        let received = stack.inbox.drain().await.unwrap();
        assert_eq!(received.len(), 1, "{rule}");
        assert_eq!(received[0].attributes["severity"], severity);
        assert!(
            received[0].description().contains("Tags: unknown ("),
            "{}",
            received[0].description()
        );
    }
}

/// Seeds results in the launcher's compliance store.
async fn seed_compliance(stack: &Stack, results: Value) {
    stack
        .moto
        .post("/_steward/config/compliance", &results)
        .await
        .unwrap();
}

fn result(account: &str, rule: &str, id: &str, compliance: &str) -> Value {
    json!({"account": account, "region": REGION, "rule": rule,
           "resourceType": "AWS::S3::Bucket", "resourceId": id, "complianceType": compliance})
}

#[tokio::test]
async fn the_digest_counts_what_is_still_non_compliant_and_the_change_since_yesterday() {
    let stack = Stack::new().await;
    seed_compliance(
        &stack,
        json!([
            result(
                HUB_ACCOUNT,
                "s3-bucket-public-read-prohibited",
                "a",
                "NON_COMPLIANT"
            ),
            result(
                HUB_ACCOUNT,
                "s3-bucket-public-read-prohibited",
                "b",
                "NON_COMPLIANT"
            ),
            result(
                HUB_ACCOUNT,
                "s3-bucket-versioning-enabled",
                "a",
                "NON_COMPLIANT"
            ),
            result(HUB_ACCOUNT, "s3-bucket-logging-enabled", "a", "COMPLIANT"),
            result(
                MEMBER_ACCOUNT,
                "s3-bucket-public-read-prohibited",
                "m",
                "NON_COMPLIANT"
            ),
        ]),
    )
    .await;
    let policy = format!("[targets]\naccounts = [\"{HUB_ACCOUNT}\", \"{MEMBER_ACCOUNT}\"]\n");
    let mut f = stack.function(FUNCTION, &policy, &[]).await;
    let schedule = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/compliance-digest";

    let out = f
        .response_to(&json!({"scheduledTime": "2026-11-30T08:00:00Z", "scheduleArn": schedule}))
        .await;
    assert_eq!(out["job"], "digest", "{out}");
    assert_eq!(out["resources"], 4, "{out}");
    assert_eq!(out["rules"], 3, "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(event_type(m), "steward.compliance.digest");
    assert_eq!(m.attributes["severity"], "INFO");
    assert_eq!(m.attributes["account"], "multiple");
    assert!(
        m.subject
            .contains("compliance digest 2026-11-30: 4 non-compliant resources in 3 rules"),
        "{}",
        m.subject
    );
    assert!(m.description().contains("Yesterday's counts are not known"));

    // Overnight: one more public bucket, versioning fixed.
    seed_compliance(
        &stack,
        json!([
            result(
                HUB_ACCOUNT,
                "s3-bucket-public-read-prohibited",
                "c",
                "NON_COMPLIANT"
            ),
            result(
                HUB_ACCOUNT,
                "s3-bucket-versioning-enabled",
                "a",
                "COMPLIANT"
            ),
        ]),
    )
    .await;
    let today = json!({"scheduledTime": "2026-12-01T08:00:00Z", "scheduleArn": schedule});
    let out = f.response_to(&today).await;
    assert_eq!(out["resources"], 4, "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    let d = received[0].description();
    for expected in [
        "123456789012 us-east-1 s3-bucket-public-read-prohibited: 3 non-compliant (+1 since yesterday): AWS::S3::Bucket a, AWS::S3::Bucket b, AWS::S3::Bucket c",
        "111111111111 us-east-1 s3-bucket-public-read-prohibited: 1 non-compliant (unchanged since yesterday)",
        "123456789012 us-east-1 s3-bucket-versioning-enabled: 0 non-compliant (-1 since yesterday)",
    ] {
        assert!(d.contains(expected), "{expected}\n{d}");
    }
    assert!(!d.contains("s3-bucket-logging-enabled"), "{d}");
    // One run, one digest: the same day again is silent.
    let again = f.response_to(&today).await;
    assert_eq!(again["notification"], "duplicate", "{again}");
    assert!(stack.inbox.drain().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_digest_says_which_target_failed() {
    let stack = Stack::new().await;
    // A member account whose role cannot be assumed: no STEWARD_MEMBER_ROLE.
    let policy = format!("[targets]\naccounts = [\"{HUB_ACCOUNT}\", \"{MEMBER_ACCOUNT}\"]\n");
    let mut f = stack
        .function(FUNCTION, &policy, &[("STEWARD_MEMBER_ROLE", "")])
        .await;
    let out = f.response_to(&json!({"job": "digest"})).await;
    assert_eq!(out["failed_targets"], 1, "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].attributes["severity"], "MEDIUM");
    assert!(
        received[0]
            .description()
            .contains("Could not read account 111111111111"),
        "{}",
        received[0].description()
    );
}

#[tokio::test]
async fn malformed_input_fails_with_a_clear_error_and_changes_nothing() {
    let stack = Stack::new().await;
    let mut f = stack.function(FUNCTION, "", &[]).await;
    let mut missing = event("config-compliance-change.json");
    missing["detail"]
        .as_object_mut()
        .unwrap()
        .remove("newEvaluationResult");
    let mut wrong_state = event("config-compliance-change.json");
    wrong_state["detail"]["newEvaluationResult"]["complianceType"] = json!("BROKEN");
    let mut forged = event("config-compliance-change.json");
    forged["source"] = json!("my.app");
    let mut no_rule = event("config-compliance-change.json");
    no_rule["detail"]
        .as_object_mut()
        .unwrap()
        .remove("configRuleName");
    no_rule["detail"]["newEvaluationResult"]
        .as_object_mut()
        .unwrap()
        .remove("evaluationResultIdentifier");
    for (payload, expected) in [
        (missing, "detail.newEvaluationResult` is missing"),
        (wrong_state, "\"BROKEN\", not one of COMPLIANT"),
        (forged, "not \"aws.config\""),
        (no_rule, "detail.configRuleName` is missing"),
        (json!({"job": "sweep"}), "unknown job \"sweep\""),
        (
            json!({"detail-type": "Something Else", "source": "aws.config"}),
            "unsupported detail-type",
        ),
    ] {
        let err = f.error_for(&payload).await;
        assert_eq!(err["errorType"], "BadEvent", "{err}");
        let message = err["errorMessage"].as_str().unwrap();
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let err = f.invoke_raw("{\"detail-type\": ").await.unwrap().error();
    assert!(!err.to_string().is_empty());
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    assert_eq!(stack.idempotency_records().await, 0);
}

#[tokio::test]
async fn dry_run_and_kill_switch_notify_marked_and_write_nothing() {
    let stack = Stack::new().await;
    seed_compliance(
        &stack,
        json!([result(
            HUB_ACCOUNT,
            "s3-bucket-public-read-prohibited",
            "a",
            "NON_COMPLIANT"
        )]),
    )
    .await;
    for (var, marker) in [
        ("STEWARD_DRY_RUN", "(DRY RUN)"),
        ("STEWARD_DISABLED", "(DISABLED)"),
    ] {
        let mut f = stack.function(FUNCTION, "", &[(var, "true")]).await;
        let out = f.response_to(&event("config-compliance-change.json")).await;
        assert_eq!(out["notification"], "sent", "{var}: {out}");
        let out = f.response_to(&json!({"job": "digest"})).await;
        assert_eq!(out["resources"], 1, "{var}: {out}");
        let received = stack.inbox.drain().await.unwrap();
        assert_eq!(received.len(), 2, "{var}");
        for m in &received {
            assert!(m.subject.contains(marker), "{var}: {}", m.subject);
        }
        assert_eq!(stack.idempotency_records().await, 0, "{var}: no record");
    }
}
