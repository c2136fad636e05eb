//! The DR restore drill end to end: the built snapshot copier under the
//! Lambda Runtime API emulator and the built `steward` CLI, against moto
//! extended by `tools/moto_ext_rds_drill.py` (a restored instance reports
//! `creating` for its first describes, or a failed status), with the
//! security team's inbox subscribed.

use aws_config::SdkConfig;
use aws_sdk_rds::types::Tag;
use serde_json::{json, Value};
use steward_tests::fixtures::in_region;
use steward_tests::inbox::Received;
use steward_tests::moto::{Moto, HUB_ACCOUNT, REGION};
use steward_tests::runtime_api::Function;
use steward_tests::stack::{Stack, MEMBER_ACCOUNT};
use steward_tests::{function_binary, unique};

const DR: &str = "us-west-2";
const KEY_ALIAS: &str = "alias/steward-dr";
const FUNCTION: &str = "snapshot-copier";

fn policy() -> String {
    format!(
        "[snapshots]\ndr_region = \"{DR}\"\ndr_kms_key = \"{KEY_ALIAS}\"\ndrill_rto_minutes = 45\n"
    )
}

/// A prod postgres instance in the source region and the DR key.
async fn prod_database(moto: &Moto, id: &str) {
    prod_database_in(moto, &moto.config(), HUB_ACCOUNT, id).await
}

/// A prod database `prod-orders` with its DR copy made by a sweep of the
/// copier, which is returned.
async fn copier_after_a_sweep_of_prod_orders(stack: &Stack) -> Function {
    prod_database(&stack.moto, "prod-orders").await;
    let mut f = stack.function(FUNCTION, &policy(), &[]).await;
    f.response_to(&json!({"job": "sweep"})).await;
    f
}

/// The same in `account`, through `config`.
async fn prod_database_in(moto: &Moto, config: &SdkConfig, account: &str, id: &str) {
    for (region, alias) in [(DR, KEY_ALIAS), (REGION, "alias/source")] {
        moto.post(
            "/_steward/kms/key",
            &json!({"account": account, "region": region, "alias": alias}),
        )
        .await
        .unwrap();
    }
    aws_sdk_rds::Client::new(config)
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.m5.large")
        .master_username("steward")
        .master_user_password("not-a-real-password-1")
        .allocated_storage(50)
        .storage_encrypted(true)
        .kms_key_id("alias/source")
        .tags(Tag::builder().key("env").value("prod").build())
        .send()
        .await
        .unwrap();
}

async fn restore_behaviour(moto: &Moto, body: Value) {
    moto.post("/_steward/rds/restore-behaviour", &body)
        .await
        .unwrap();
}

/// The instances in the DR region with their `steward:drill` tag.
async fn dr_instances(config: &SdkConfig) -> Vec<(String, Option<String>)> {
    aws_sdk_rds::Client::new(&in_region(config, DR))
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
        .iter()
        .map(|d| {
            let tag = d
                .tag_list()
                .iter()
                .find(|t| t.key() == Some("steward:drill"))
                .and_then(|t| t.value())
                .map(str::to_string);
            (
                d.db_instance_identifier().unwrap_or_default().to_string(),
                tag,
            )
        })
        .collect()
}

fn drills(received: &[Received]) -> Vec<&Received> {
    received
        .iter()
        .filter(|m| m.event_type() == "steward.snapshot.drill")
        .collect()
}

/// Runs the next scheduled drill check, which must report `drill_id` and
/// leave no drill database (`deleted` says what was deleted); returns the
/// one drill report the inbox then holds.
async fn check_reports_and_deletes(
    stack: &Stack,
    f: &mut Function,
    drill_id: &str,
    deleted: &str,
) -> Received {
    let checked = f.response_to(&json!({"job": "dr-drill"})).await;
    assert_eq!(checked["reported"], json!([drill_id]), "{checked}");
    assert!(
        dr_instances(&stack.moto.config()).await.is_empty(),
        "{deleted}"
    );
    let received = stack.inbox.drain().await.unwrap();
    let reports = drills(&received);
    assert_eq!(reports.len(), 1);
    reports[0].clone()
}

#[tokio::test]
async fn a_drill_restores_waits_verifies_deletes_and_reports_time_to_restore_against_the_rto() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let mut f = copier_after_a_sweep_of_prod_orders(&stack).await;
    stack.inbox.drain().await.unwrap();
    // `creating` for three describes: the two reads of this test below and
    // the first scheduled check.
    restore_behaviour(&stack.moto, json!({"pending_describes": 3})).await;

    let started = f
        .response_to(&json!({"job": "dr-drill", "database": "prod-orders"}))
        .await;
    let drill_id = started["started"][0].as_str().unwrap().to_string();
    let restored = dr_instances(&config).await;
    assert_eq!(
        restored,
        vec![(format!("steward-drill-{drill_id}"), Some(drill_id.clone()))],
        "{started}"
    );
    let rds = aws_sdk_rds::Client::new(&in_region(&config, DR));
    let db = rds
        .describe_db_instances()
        .db_instance_identifier(format!("steward-drill-{drill_id}"))
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .clone();
    assert_eq!(db.db_instance_class(), Some("db.t4g.micro"));
    assert!(!db.publicly_accessible().unwrap_or(false));
    assert!(db
        .tag_list()
        .iter()
        .any(|t| t.key() == Some("steward:managed") && t.value() == Some("true")));

    // The first scheduled check sees the restore pending: nothing else happens.
    let first = f.response_to(&json!({"job": "dr-drill"})).await;
    assert_eq!(first["checked"], json!([drill_id]), "{first}");
    assert_eq!(first["reported"], json!([]), "{first}");
    assert_eq!(dr_instances(&config).await.len(), 1);
    assert!(drills(&stack.inbox.drain().await.unwrap()).is_empty());

    // The next sees it available: verified, deleted, reported once.
    let report =
        check_reports_and_deletes(&stack, &mut f, &drill_id, "the drill database is deleted").await;
    assert_eq!(report.attributes["severity"], "INFO");
    assert!(report.subject.contains("RTO 45 min"), "{}", report.subject);
    let text = report.full_text();
    assert!(text.contains("Time to restore"), "{text}");
    assert!(text.contains("accurate to that interval"), "{text}");
    let facts = &report.chat["metadata"]["additionalContext"];
    assert_eq!(facts["drillId"], json!(drill_id));
    assert_eq!(facts["rtoMinutes"], "45");
    assert!(facts["timeToRestoreMinutes"].is_string(), "{facts}");

    // A later run finds the database drilled this quarter: no new drill, no message.
    let third = f.response_to(&json!({"job": "dr-drill"})).await;
    assert_eq!(third["started"], json!([]), "{third}");
    assert!(dr_instances(&config).await.is_empty());
    assert!(drills(&stack.inbox.drain().await.unwrap()).is_empty());
    assert!(f.logs_are_json());
}

#[tokio::test]
async fn a_drill_left_open_by_a_crash_is_finished_by_the_sweep_and_an_unrecorded_lookalike_is_only_reported(
) {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let mut f = copier_after_a_sweep_of_prod_orders(&stack).await;
    // The drill starts, then its checks never come (the restore is done).
    let started = f
        .response_to(&json!({"job": "dr-drill", "database": "prod-orders"}))
        .await;
    let drill_id = started["started"][0].as_str().unwrap().to_string();
    // Someone else's database carrying the drill tags and prefix, never recorded.
    let lookalike = "steward-drill-202601010000-ffffffffff";
    aws_sdk_rds::Client::new(&in_region(&config, DR))
        .create_db_instance()
        .db_instance_identifier(lookalike)
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .master_username("steward")
        .master_user_password("not-a-real-password-1")
        .allocated_storage(20)
        .tags(Tag::builder().key("steward:managed").value("true").build())
        .tags(
            Tag::builder()
                .key("steward:drill")
                .value("202601010000-ffffffffff")
                .build(),
        )
        .send()
        .await
        .unwrap();
    stack.inbox.drain().await.unwrap();

    let sweep = f.response_to(&json!({"job": "sweep"})).await;
    assert_eq!(sweep["drills_closed"], json!([drill_id]), "{sweep}");
    let left: Vec<String> = dr_instances(&config)
        .await
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(
        left,
        vec![lookalike.to_string()],
        "only the recorded drill is deleted"
    );
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(
        drills(&received).len(),
        1,
        "the crashed drill is reported once"
    );
    let digest = received
        .iter()
        .find(|m| m.event_type() == "steward.snapshot.digest")
        .expect("the sweep's digest");
    let text = digest.full_text();
    assert!(
        text.contains(lookalike) && text.contains("not deleted"),
        "{text}"
    );

    // The next sweep keeps reporting the lookalike and still never deletes it.
    f.response_to(&json!({"job": "sweep"})).await;
    assert_eq!(dr_instances(&config).await.len(), 1);
}

fn cli(stack: &Stack, policy_path: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(function_binary("steward"));
    command
        .args([
            "dr",
            "drill",
            "prod-orders",
            "--json",
            "--poll-seconds",
            "1",
        ])
        .args([
            "--timeout-minutes",
            "2",
            "--table",
            &stack.table,
            "--policy",
        ])
        .arg(policy_path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in stack.moto.env() {
        command.env(k, v);
    }
    command
}

#[tokio::test]
async fn the_cli_drill_exits_0_when_verified_and_deleted_and_non_zero_on_a_failed_restore() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let _copier = copier_after_a_sweep_of_prod_orders(&stack).await;
    let dir = std::env::temp_dir().join(unique("dr-drill"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, policy()).unwrap();
    restore_behaviour(&stack.moto, json!({"pending_describes": 2})).await;

    let output = cli(&stack, &policy_path)
        .output()
        .expect("the steward CLI is built");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["passed"], true, "{doc}");
    assert_eq!(doc["rto_minutes"], 45);
    assert!(doc["time_to_restore_minutes"].is_number(), "{doc}");
    assert!(dr_instances(&config).await.is_empty());

    restore_behaviour(
        &stack.moto,
        json!({"pending_describes": 0, "fail_status": "incompatible-restore"}),
    )
    .await;
    let output = cli(&stack, &policy_path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("FAILED"), "{stderr}");
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["passed"], false);
    assert!(
        doc["problems"][0]
            .as_str()
            .unwrap()
            .contains("incompatible-restore"),
        "{doc}"
    );
    assert!(
        dr_instances(&config).await.is_empty(),
        "the failed restore is deleted too"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_failed_restore_is_deleted_and_reported_high_by_the_job() {
    let stack = Stack::new().await;
    let mut f = copier_after_a_sweep_of_prod_orders(&stack).await;
    stack.inbox.drain().await.unwrap();
    restore_behaviour(&stack.moto, json!({"fail_status": "incompatible-restore"})).await;

    let started = f
        .response_to(&json!({"job": "dr-drill", "database": "prod-orders"}))
        .await;
    let drill_id = started["started"][0].as_str().unwrap().to_string();
    let report =
        check_reports_and_deletes(&stack, &mut f, &drill_id, "the failed restore is deleted").await;
    assert_eq!(report.attributes["severity"], "HIGH");
    let text = report.full_text();
    assert!(
        text.contains("FAILED") && text.contains("incompatible-restore"),
        "{text}"
    );
    assert_eq!(
        report.chat["metadata"]["additionalContext"]["passed"],
        "false"
    );
}

#[tokio::test]
async fn an_aurora_drill_restores_a_cluster_and_one_instance_and_deletes_both() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    prod_database(&stack.moto, "prod-orders").await;
    let rds = aws_sdk_rds::Client::new(&config);
    rds.create_db_cluster()
        .db_cluster_identifier("prod-shop")
        .engine("aurora-postgresql")
        .master_username("steward")
        .master_user_password("not-a-real-password-1")
        .storage_encrypted(true)
        .kms_key_id("alias/source")
        .tags(Tag::builder().key("env").value("prod").build())
        .send()
        .await
        .unwrap();
    rds.create_db_cluster_snapshot()
        .db_cluster_identifier("prod-shop")
        .db_cluster_snapshot_identifier("prod-shop-nightly")
        .send()
        .await
        .unwrap();
    let mut f = stack.function(FUNCTION, &policy(), &[]).await;
    f.response_to(&json!({"job": "sweep"})).await;
    stack.inbox.drain().await.unwrap();

    let started = f
        .response_to(&json!({"job": "dr-drill", "database": "prod-shop"}))
        .await;
    let drill_id = started["started"][0].as_str().unwrap().to_string();
    let dr = aws_sdk_rds::Client::new(&in_region(&config, DR));
    let clusters = dr.describe_db_clusters().send().await.unwrap();
    assert_eq!(
        clusters.db_clusters()[0].db_cluster_identifier(),
        Some(format!("steward-drill-{drill_id}").as_str())
    );
    let instances = dr_instances(&config).await;
    assert_eq!(
        instances,
        vec![(
            format!("steward-drill-{drill_id}-1"),
            Some(drill_id.clone())
        )]
    );

    let checked = f
        .response_to(&json!({"job": "dr-drill", "database": "prod-shop"}))
        .await;
    assert_eq!(checked["reported"], json!([drill_id]), "{checked}");
    assert!(dr_instances(&config).await.is_empty());
    assert!(dr
        .describe_db_clusters()
        .send()
        .await
        .unwrap()
        .db_clusters()
        .is_empty());
    let received = stack.inbox.drain().await.unwrap();
    let reports = drills(&received);
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].attributes["severity"],
        "INFO",
        "{}",
        reports[0].full_text()
    );
}

#[tokio::test]
async fn a_member_account_database_is_drilled_in_that_account_through_the_member_role() {
    let stack = Stack::new().await;
    let member = stack.member_config().await;
    prod_database_in(&stack.moto, &member, MEMBER_ACCOUNT, "prod-payments").await;
    let policy = format!(
        "[targets]\naccounts = [\"{HUB_ACCOUNT}\", \"{MEMBER_ACCOUNT}\"]\n{}",
        policy()
    );
    let mut f = stack.function(FUNCTION, &policy, &[]).await;
    f.response_to(&json!({"job": "sweep"})).await;
    stack.inbox.drain().await.unwrap();

    let name = format!("{MEMBER_ACCOUNT}/{REGION}/prod-payments");
    let started = f
        .response_to(&json!({"job": "dr-drill", "database": name}))
        .await;
    let drill_id = started["started"][0].as_str().unwrap().to_string();
    assert_eq!(dr_instances(&member).await.len(), 1, "{started}");
    assert!(
        dr_instances(&stack.moto.config()).await.is_empty(),
        "nothing in the hub account"
    );
    let checked = f.response_to(&json!({"job": "dr-drill"})).await;
    assert_eq!(checked["reported"], json!([drill_id]), "{checked}");
    assert!(dr_instances(&member).await.is_empty());
    let received = stack.inbox.drain().await.unwrap();
    let reports = drills(&received);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].attributes["account"], MEMBER_ACCOUNT);
}
