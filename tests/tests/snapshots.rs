//! The snapshot copier end to end: the built binary under the Lambda
//! Runtime API emulator, against moto (extended by
//! `tools/moto_ext_rds_snapshots.py`: source fields on copies, the refusal of
//! an unencrypted cluster copy with a key, backdated snapshots, copy states),
//! with the security team's inbox subscribed; `steward dr status` through
//! the built CLI.

use aws_config::SdkConfig;
use aws_sdk_rds::types::Tag;
use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use steward_tests::fixtures::in_region;
use steward_tests::inbox::Received;
use steward_tests::moto::{Moto, HUB_ACCOUNT, REGION};
use steward_tests::stack::{Stack, MEMBER_ACCOUNT};
use steward_tests::{event, function_binary, unique};

const DR: &str = "us-west-2";
const KEY_ALIAS: &str = "alias/steward-dr";
const FUNCTION: &str = "snapshot-copier";

fn policy(extra: &str) -> String {
    format!("[snapshots]\ndr_region = \"{DR}\"\ndr_kms_key = \"{KEY_ALIAS}\"\n{extra}")
}

async fn kms_key(moto: &Moto, account: &str, region: &str, alias: &str) -> String {
    let out = moto
        .post(
            "/_steward/kms/key",
            &json!({"account": account, "region": region, "alias": alias}),
        )
        .await
        .unwrap();
    arn_in(&out)
}

/// Keys in the source region (for encrypted databases) and the DR region.
async fn keys(moto: &Moto, account: &str) -> String {
    kms_key(moto, account, DR, KEY_ALIAS).await;
    kms_key(moto, account, REGION, "alias/source").await
}

/// An encrypted postgres instance; returns the ARN of the automated snapshot moto makes with it.
async fn instance(config: &SdkConfig, id: &str, tags: &[(&str, &str)], key: &str) -> String {
    let rds = aws_sdk_rds::Client::new(config);
    let mut create = rds
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .master_username("steward")
        .master_user_password("not-a-real-password-1")
        .allocated_storage(20)
        .storage_encrypted(true)
        .kms_key_id(key);
    for (k, v) in tags {
        create = create.tags(Tag::builder().key(*k).value(*v).build());
    }
    create.send().await.unwrap();
    let snapshots = rds
        .describe_db_snapshots()
        .db_instance_identifier(id)
        .snapshot_type("automated")
        .send()
        .await
        .unwrap();
    snapshots.db_snapshots()[0]
        .db_snapshot_arn()
        .unwrap()
        .to_string()
}

async fn automated_snapshot(
    moto: &Moto,
    db: &str,
    id: &str,
    created: chrono::DateTime<Utc>,
) -> String {
    let out = moto
        .post(
            "/_steward/rds/automated-snapshot",
            &json!({"account": HUB_ACCOUNT, "region": REGION, "db": db, "id": id,
                    "created": created.to_rfc3339_opts(SecondsFormat::Secs, true)}),
        )
        .await
        .unwrap();
    arn_in(&out)
}

/// The `arn` of a JSON answer of the emulator's extension.
fn arn_in(answer: &str) -> String {
    serde_json::from_str::<Value>(answer).unwrap()["arn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A database of another team in the DR region (owns nothing steward made);
/// returns the client of the DR region.
async fn dr_standby(config: &SdkConfig) -> aws_sdk_rds::Client {
    let west = aws_sdk_rds::Client::new(&in_region(config, DR));
    west.create_db_instance()
        .db_instance_identifier("dr-standby")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .master_username("steward")
        .master_user_password("not-a-real-password-1")
        .allocated_storage(20)
        .send()
        .await
        .unwrap();
    west
}

/// Sets the status of the other team's copy in the DR region (made by
/// [`dr_standby`]'s owner, counted against the in-flight cap).
async fn other_team_copy_is(moto: &Moto, status: &str) {
    set_snapshot(
        moto,
        HUB_ACCOUNT,
        DR,
        "instance",
        "other-team-copy",
        json!({ "status": status }),
    )
    .await;
}

async fn set_snapshot(
    moto: &Moto,
    account: &str,
    region: &str,
    kind: &str,
    id: &str,
    fields: Value,
) {
    let mut body = json!({"account": account, "region": region, "kind": kind, "id": id});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    moto.post("/_steward/rds/snapshot", &body).await.unwrap();
}

/// The event of an automated snapshot of `arn` in `account`.
fn automated_snapshot_event(account: &str, arn: &str) -> Value {
    snapshot_event("rds-snapshot-event-0091-automated.json", account, arn)
}

fn snapshot_event(fixture: &str, account: &str, arn: &str) -> Value {
    let mut e = event(fixture);
    let id = arn.splitn(7, ':').nth(6).unwrap();
    e["id"] = json!(unique("event"));
    e["account"] = json!(account);
    e["resources"] = json!([arn]);
    e["detail"]["SourceArn"] = json!(arn);
    e["detail"]["SourceIdentifier"] = json!(id);
    e
}

async fn dr_copies(config: &SdkConfig) -> Vec<aws_sdk_rds::types::DbSnapshot> {
    aws_sdk_rds::Client::new(&in_region(config, DR))
        .describe_db_snapshots()
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .to_vec()
}

async fn dr_cluster_copies(config: &SdkConfig) -> Vec<aws_sdk_rds::types::DbClusterSnapshot> {
    aws_sdk_rds::Client::new(&in_region(config, DR))
        .describe_db_cluster_snapshots()
        .send()
        .await
        .unwrap()
        .db_cluster_snapshots()
        .to_vec()
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn event_type(m: &Received) -> String {
    m.event_type()
}

#[tokio::test]
async fn an_automated_snapshot_event_copies_once_with_the_dr_key_and_tags() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let key = keys(&stack.moto, HUB_ACCOUNT).await;
    let source = instance(
        &config,
        "prod-orders",
        &[
            ("env", "prod"),
            ("team", "data"),
            ("steward:exempt", "true"),
        ],
        &key,
    )
    .await;
    let mut f = stack.function(FUNCTION, &policy(""), &[]).await;
    let e = automated_snapshot_event(HUB_ACCOUNT, &source);

    let response = f.response_to(&e).await;
    assert_eq!(
        response["results"]["started"].as_array().unwrap().len(),
        1,
        "{response}"
    );
    let copies = dr_copies(&config).await;
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    assert!(copy
        .db_snapshot_identifier()
        .unwrap()
        .starts_with("dr-prod-orders-"));
    assert_eq!(copy.snapshot_type(), Some("manual"));
    assert!(copy.encrypted().unwrap_or(false));
    assert!(
        copy.kms_key_id()
            .unwrap_or_default()
            .contains(":us-west-2:"),
        "the DR key: {:?}",
        copy.kms_key_id()
    );
    let tags = copy.tag_list();
    assert_eq!(tag(tags, "steward:copied-from"), Some(source.as_str()));
    assert_eq!(tag(tags, "steward:retention"), Some("daily"));
    assert_eq!(tag(tags, "steward:managed"), Some("true"));
    assert!(tag(tags, "steward:source-created").is_some());
    assert_eq!(
        tag(tags, "steward:exempt"),
        None,
        "steward:exempt is never carried to a copy"
    );

    // The same event again (at-least-once delivery), and a new event id for the same snapshot.
    let again = f.response_to(&e).await;
    assert!(again["present"].is_string(), "{again}");
    let other = automated_snapshot_event(HUB_ACCOUNT, &source);
    f.response_to(&other).await;
    assert_eq!(dr_copies(&config).await.len(), 1, "no second copy");
    assert!(f.logs_are_json());
}

#[tokio::test]
async fn a_dev_database_snapshot_is_not_copied_and_other_event_ids_are_ignored() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let key = keys(&stack.moto, HUB_ACCOUNT).await;
    let source = instance(&config, "dev-orders", &[("env", "dev")], &key).await;
    let mut f = stack.function(FUNCTION, &policy(""), &[]).await;
    let response = f
        .response_to(&automated_snapshot_event(HUB_ACCOUNT, &source))
        .await;
    assert!(
        response["ignored"].as_str().unwrap().contains("env=dev"),
        "{response}"
    );
    let mut other = automated_snapshot_event(HUB_ACCOUNT, &source);
    other["detail"]["EventID"] = json!("RDS-EVENT-0040");
    let response = f.response_to(&other).await;
    assert!(response["ignored"].is_string());
    assert!(dr_copies(&config).await.is_empty());
    assert!(stack.inbox.drain().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_aurora_cluster_snapshot_copies_and_an_unencrypted_one_is_refused_high() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let key = keys(&stack.moto, HUB_ACCOUNT).await;
    let rds = aws_sdk_rds::Client::new(&config);
    for (id, encrypted) in [("prod-shop", true), ("prod-legacy", false)] {
        let mut create = rds
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("steward")
            .master_user_password("not-a-real-password-1")
            .tags(Tag::builder().key("env").value("prod").build());
        if encrypted {
            create = create.storage_encrypted(true).kms_key_id(&key);
        }
        create.send().await.unwrap();
        rds.create_db_cluster_snapshot()
            .db_cluster_identifier(id)
            .db_cluster_snapshot_identifier(format!("{id}-before-release"))
            .send()
            .await
            .unwrap();
    }
    let arn = |id: &str| format!("arn:aws:rds:{REGION}:{HUB_ACCOUNT}:cluster-snapshot:{id}");
    let mut f = stack.function(FUNCTION, &policy(""), &[]).await;
    let response = f
        .response_to(&snapshot_event(
            "rds-cluster-snapshot-event-0075-manual.json",
            HUB_ACCOUNT,
            &arn("prod-shop-before-release"),
        ))
        .await;
    assert_eq!(
        response["results"]["started"].as_array().unwrap().len(),
        1,
        "{response}"
    );
    let copies = dr_cluster_copies(&config).await;
    assert_eq!(copies.len(), 1);
    assert_eq!(
        tag(copies[0].tag_list(), "steward:retention"),
        Some("manual")
    );
    assert!(copies[0].storage_encrypted().unwrap_or(false));

    let response = f
        .response_to(&snapshot_event(
            "rds-cluster-snapshot-event-0075-manual.json",
            HUB_ACCOUNT,
            &arn("prod-legacy-before-release"),
        ))
        .await;
    assert!(
        response["refused"]
            .as_str()
            .unwrap()
            .contains("unencrypted"),
        "{response}"
    );
    assert_eq!(
        dr_cluster_copies(&config).await.len(),
        1,
        "the unencrypted cluster snapshot is not copied"
    );
    let received = stack.inbox.drain().await.unwrap();
    let high: Vec<&Received> = received
        .iter()
        .filter(|m| event_type(m) == "steward.snapshot.unencrypted")
        .collect();
    assert_eq!(high.len(), 1);
    assert_eq!(high[0].attributes["severity"], "HIGH");
}

#[tokio::test]
async fn the_sweep_copies_a_lost_event_and_the_digest_is_high_for_a_database_without_a_recent_copy()
{
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let key = keys(&stack.moto, HUB_ACCOUNT).await;
    instance(&config, "prod-orders", &[("env", "prod")], &key).await;
    // prod-stale's only snapshot is 30 hours old: its copy is made, but the recovery point is past the 24 h RPO.
    let stale = instance(&config, "prod-stale", &[("env", "prod")], &key).await;
    let stale_id = stale.splitn(7, ':').nth(6).unwrap().to_string();
    let thirty_hours_ago =
        (Utc::now() - Duration::hours(30)).to_rfc3339_opts(SecondsFormat::Secs, true);
    set_snapshot(
        &stack.moto,
        HUB_ACCOUNT,
        REGION,
        "instance",
        &stale_id,
        json!({"created": thirty_hours_ago, "original_created": thirty_hours_ago}),
    )
    .await;
    instance(&config, "dev-api", &[("env", "dev")], &key).await;
    let policy_text = policy("");
    let mut f = stack.function(FUNCTION, &policy_text, &[]).await;

    let response = f.response_to(&json!({"job": "sweep"})).await;
    assert_eq!(
        response["results"]["started"].as_array().unwrap().len(),
        2,
        "{response}"
    );
    let copies = dr_copies(&config).await;
    assert_eq!(copies.len(), 2, "both prod databases, not the dev one");
    let received = stack.inbox.drain().await.unwrap();
    let digests: Vec<&Received> = received
        .iter()
        .filter(|m| event_type(m) == "steward.snapshot.digest")
        .collect();
    assert_eq!(digests.len(), 1, "one run, one digest");
    let digest = digests[0];
    assert_eq!(digest.attributes["severity"], "HIGH");
    let table = digest.chat["metadata"]["additionalContext"]["recoveryPoints"]
        .as_str()
        .unwrap();
    assert!(
        table.contains("prod-stale") && table.contains("PAST RPO"),
        "{table}"
    );
    assert!(
        table.contains("prod-orders") && !table.contains("dev-api"),
        "{table}"
    );
    assert_eq!(
        digest.chat["metadata"]["additionalContext"]["databasesPastRpo"],
        "1"
    );

    // A second sweep finds the copies and makes none.
    let again = f.response_to(&json!({"job": "sweep"})).await;
    assert!(
        again["results"]["started"].as_array().unwrap().is_empty(),
        "{again}"
    );
    assert_eq!(dr_copies(&config).await.len(), 2);

    // The CLI prints the same table and exits 2.
    let dir = std::env::temp_dir().join(unique("dr-status"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, &policy_text).unwrap();
    let mut command = std::process::Command::new(function_binary("steward"));
    command
        .args(["dr", "status", "--json", "--policy"])
        .arg(&policy_path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in stack.moto.env() {
        command.env(k, v);
    }
    let output = command.output().expect("the steward CLI is built");
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["databases_past_rpo"], 1);
    assert_eq!(doc["databases"].as_array().unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn retention_prunes_an_expired_daily_copy_and_keeps_the_monthly_the_newest_and_foreign_ones()
{
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let key = keys(&stack.moto, HUB_ACCOUNT).await;
    let newest = instance(&config, "prod-ledger", &[("env", "prod")], &key).await;
    let now = Utc::now();
    let monthly = automated_snapshot(
        &stack.moto,
        "prod-ledger",
        "rds:prod-ledger-old-1",
        now - Duration::hours(2),
    )
    .await;
    let daily = automated_snapshot(
        &stack.moto,
        "prod-ledger",
        "rds:prod-ledger-old-2",
        now - Duration::hours(1),
    )
    .await;
    let mut f = stack.function(FUNCTION, &policy(""), &[]).await;
    f.response_to(&json!({"job": "sweep"})).await;
    assert_eq!(dr_copies(&config).await.len(), 3);

    // Forty days pass for the two older snapshots and their copies (the first of them is its month's first copy).
    let forty_days_ago = now - Duration::days(40);
    let id_of = |arn: &str| arn.splitn(7, ':').nth(6).unwrap().to_string();
    let copy_of = |source: &str, copies: &[aws_sdk_rds::types::DbSnapshot]| {
        copies
            .iter()
            .find(|c| tag(c.tag_list(), "steward:copied-from") == Some(source))
            .unwrap()
            .db_snapshot_identifier()
            .unwrap()
            .to_string()
    };
    let copies = dr_copies(&config).await;
    let (monthly_copy, daily_copy, newest_copy) = (
        copy_of(&monthly, &copies),
        copy_of(&daily, &copies),
        copy_of(&newest, &copies),
    );
    for (source, copy, t) in [
        (&monthly, &monthly_copy, forty_days_ago),
        (&daily, &daily_copy, forty_days_ago + Duration::minutes(1)),
    ] {
        let t = t.to_rfc3339_opts(SecondsFormat::Secs, true);
        set_snapshot(
            &stack.moto,
            HUB_ACCOUNT,
            REGION,
            "instance",
            &id_of(source),
            json!({"created": t, "original_created": t}),
        )
        .await;
        set_snapshot(
            &stack.moto,
            HUB_ACCOUNT,
            DR,
            "instance",
            copy,
            json!({"original_created": t}),
        )
        .await;
    }
    // Someone else's old snapshot in the DR region, and one that only claims to be steward's.
    let west = dr_standby(&config).await;
    for (id, tags) in [
        ("someone-elses-backup", vec![]),
        (
            "looks-like-ours",
            vec![Tag::builder()
                .key("steward:copied-from")
                .value(daily.clone())
                .build()],
        ),
    ] {
        west.create_db_snapshot()
            .db_instance_identifier("dr-standby")
            .db_snapshot_identifier(id)
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
        let t = forty_days_ago.to_rfc3339_opts(SecondsFormat::Secs, true);
        set_snapshot(
            &stack.moto,
            HUB_ACCOUNT,
            DR,
            "instance",
            id,
            json!({"created": t, "original_created": t}),
        )
        .await;
    }
    stack.inbox.drain().await.unwrap();

    let response = f.response_to(&json!({"job": "sweep"})).await;
    assert_eq!(response["pruned"], json!([daily_copy]), "{response}");
    let left: Vec<String> = dr_copies(&config)
        .await
        .iter()
        .map(|c| c.db_snapshot_identifier().unwrap().to_string())
        .collect();
    for kept in [
        &monthly_copy,
        &newest_copy,
        &"someone-elses-backup".to_string(),
        &"looks-like-ours".to_string(),
    ] {
        assert!(left.contains(kept), "{kept} kept: {left:?}");
    }
    assert!(!left.contains(&daily_copy));
    let review = response["kept_for_review"].to_string();
    assert!(review.contains("looks-like-ours"), "{review}");
    let digest = stack
        .inbox
        .drain()
        .await
        .unwrap()
        .into_iter()
        .find(|m| event_type(m) == "steward.snapshot.digest")
        .unwrap();
    assert_eq!(
        digest.chat["metadata"]["additionalContext"]["copiesPruned"],
        "1"
    );
}

#[tokio::test]
async fn at_the_in_flight_cap_the_next_copy_waits_in_the_copy_queue_and_is_made_later() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let key = keys(&stack.moto, HUB_ACCOUNT).await;
    let source = instance(&config, "prod-orders", &[("env", "prod")], &key).await;
    // A copy someone else started is in progress in the DR region.
    let west = dr_standby(&config).await;
    west.create_db_snapshot()
        .db_instance_identifier("dr-standby")
        .db_snapshot_identifier("other-team-copy")
        .send()
        .await
        .unwrap();
    other_team_copy_is(&stack.moto, "copying").await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .create_queue()
        .queue_name(unique("steward-copies"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let mut f = stack
        .function(
            FUNCTION,
            &policy("max_copies_in_flight = 1\n"),
            &[("STEWARD_COPY_QUEUE", queue.as_str())],
        )
        .await;

    let response = f
        .response_to(&automated_snapshot_event(HUB_ACCOUNT, &source))
        .await;
    assert_eq!(
        response["results"]["waiting"].as_array().unwrap().len(),
        1,
        "{response}"
    );
    assert_eq!(response["results"]["parked"], 1);
    let ours = |copies: &[aws_sdk_rds::types::DbSnapshot]| {
        copies
            .iter()
            .filter(|c| tag(c.tag_list(), "steward:copied-from") == Some(source.as_str()))
            .count()
    };
    assert_eq!(ours(&dr_copies(&config).await), 0, "no copy yet");

    // The other copy finishes; the parked message comes back (delivered here by hand, without the delay).
    other_team_copy_is(&stack.moto, "available").await;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let delayed = attributes
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        })
        .cloned();
    assert_eq!(
        delayed.as_deref(),
        Some("1"),
        "one delayed message per waiting copy"
    );
    let body = json!({"account": HUB_ACCOUNT, "region": REGION, "kind": "instance",
                      "snapshot_id": source.splitn(7, ':').nth(6).unwrap()});
    let records = vec![
        json!({"messageId": unique("m"), "receiptHandle": "r", "body": body.to_string(),
                              "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs",
                              "eventSourceARN": format!("arn:aws:sqs:{REGION}:{HUB_ACCOUNT}:copies"), "awsRegion": REGION}),
    ];
    let response = f.response_to(&json!({"Records": records})).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert_eq!(
        ours(&dr_copies(&config).await),
        1,
        "the waiting copy is made"
    );
}

#[tokio::test]
async fn a_missing_dr_key_is_one_high_message_no_copy_and_the_invocation_succeeds() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let key = kms_key(&stack.moto, HUB_ACCOUNT, REGION, "alias/source").await;
    let source = instance(&config, "prod-orders", &[("env", "prod")], &key).await;
    let mut f = stack.function(FUNCTION, &policy(""), &[]).await;
    let response = f
        .response_to(&automated_snapshot_event(HUB_ACCOUNT, &source))
        .await;
    assert!(response["results"]["key_missing"].is_string(), "{response}");
    assert!(dr_copies(&config).await.is_empty());
    let received = stack.inbox.drain().await.unwrap();
    let alerts: Vec<&Received> = received
        .iter()
        .filter(|m| event_type(m) == "steward.snapshot.key-missing")
        .collect();
    assert_eq!(
        alerts.len(),
        1,
        "{:?}",
        received.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert_eq!(alerts[0].attributes["severity"], "HIGH");
}

#[tokio::test]
async fn a_member_account_event_copies_in_the_member_account_through_the_member_role() {
    let stack = Stack::new().await;
    let member = stack.member_config().await;
    let key = keys(&stack.moto, MEMBER_ACCOUNT).await;
    let source = instance(&member, "prod-payments", &[("env", "prod")], &key).await;
    assert!(source.contains(MEMBER_ACCOUNT));
    let mut f = stack.function(FUNCTION, &policy(""), &[]).await;
    let response = f
        .response_to(&automated_snapshot_event(MEMBER_ACCOUNT, &source))
        .await;
    assert_eq!(
        response["results"]["started"].as_array().unwrap().len(),
        1,
        "{response}"
    );
    let copies = dr_copies(&member).await;
    assert_eq!(copies.len(), 1);
    assert!(copies[0]
        .db_snapshot_arn()
        .unwrap()
        .contains(&format!(":{DR}:{MEMBER_ACCOUNT}:")));
    assert!(
        dr_copies(&stack.moto.config()).await.is_empty(),
        "nothing in the hub account"
    );
}

#[tokio::test]
async fn malformed_events_fail_clearly_and_change_nothing() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let key = keys(&stack.moto, HUB_ACCOUNT).await;
    let source = instance(&config, "prod-orders", &[("env", "prod")], &key).await;
    let mut f = stack.function(FUNCTION, &policy(""), &[]).await;
    let good = automated_snapshot_event(HUB_ACCOUNT, &source);
    let mut wrong_account = good.clone();
    wrong_account["account"] = json!(MEMBER_ACCOUNT);
    let mut no_arn = good.clone();
    no_arn["detail"]
        .as_object_mut()
        .unwrap()
        .remove("SourceArn");
    let mut not_rds = good.clone();
    not_rds["source"] = json!("my.app");
    for (payload, needle) in [
        (wrong_account, "does not name"),
        (no_arn, "SourceArn"),
        (not_rds, "aws.rds"),
        (json!({"job": "restore-everything"}), "unknown job"),
        (
            json!({"Records": [{"messageId": "m1", "body": "{}", "eventSource": "aws:sqs"}]}),
            "batchItemFailures",
        ),
    ] {
        let outcome = f.invoke(&payload).await.unwrap();
        if needle == "batchItemFailures" {
            let response = outcome.response();
            assert_eq!(
                response["batchItemFailures"],
                json!([{"itemIdentifier": "m1"}]),
                "{response}"
            );
            continue;
        }
        let error = outcome.error();
        assert_eq!(error["errorType"], "BadEvent", "{error}");
        assert!(
            error["errorMessage"].as_str().unwrap().contains(needle),
            "{error}"
        );
    }
    let raw = f.invoke_raw("not json").await.unwrap();
    assert!(matches!(raw, steward_tests::runtime_api::Outcome::Error(_)));
    assert!(dr_copies(&config).await.is_empty());
    assert_eq!(stack.idempotency_records().await, 0);
}
