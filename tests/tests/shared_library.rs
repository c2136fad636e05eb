//! The shared library's AWS adapters against the local AWS: the idempotency
//! store's claim / complete / release cycle (with lazy expiry), the SNS
//! publisher with a summarized huge notification, and policy loading from SSM.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use steward_shared::idempotency::{
    create_table, seed_abandoned_claim, Claim, DynamoStore, IdempotencyStore, Lease,
};
use steward_shared::notify::{
    render, Category, Notification, Publish, RenderContext, Severity, SnsPublisher,
};
use steward_shared::policy_store::PolicyStore;
use steward_shared::settings::PolicySource;
use steward_shared::RunMode;
use steward_tests::inbox::Inbox;
use steward_tests::moto::Moto;
use steward_tests::unique;

#[tokio::test]
async fn idempotency_claims_complete_release_and_expire() {
    let moto = Moto::start().await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&moto.config());
    let table = unique("idem");
    create_table(&ddb, &table).await.unwrap();
    create_table(&ddb, &table)
        .await
        .expect("creating an existing table is fine");
    let store = DynamoStore::new(ddb.clone(), table.clone());

    let lease = match store.claim("k1", Duration::from_secs(60)).await.unwrap() {
        Claim::Acquired(lease) => lease,
        other => panic!("first claim: {other:?}"),
    };
    // A live claim held by another attempt is "retry later", never "done".
    assert!(matches!(
        store.claim("k1", Duration::from_secs(60)).await.unwrap(),
        Claim::HeldByOther { .. }
    ));
    store.renew(&lease, Duration::from_secs(60)).await.unwrap();
    // Only the owner completes: a stranger's token is refused and changes nothing.
    let stranger = Lease::new_owner("k1");
    assert!(store
        .complete(&stranger, Duration::from_secs(3600), Some("forged"))
        .await
        .is_err());
    store
        .complete(&lease, Duration::from_secs(3600), Some("msg-1"))
        .await
        .unwrap();
    assert_eq!(
        store.claim("k1", Duration::from_secs(60)).await.unwrap(),
        Claim::Done(Some("msg-1".into()))
    );
    // Release never drops a completed record.
    store.release(&lease).await.unwrap();
    assert_eq!(
        store.claim("k1", Duration::from_secs(60)).await.unwrap(),
        Claim::Done(Some("msg-1".into()))
    );
    assert!(store.renew(&lease, Duration::from_secs(60)).await.is_err());

    // A failed attempt releases its claim, so the retry acquires it; a
    // stranger's release does not drop another attempt's claim.
    let Claim::Acquired(failed) = store.claim("k2", Duration::from_secs(60)).await.unwrap() else {
        panic!("k2 should be free");
    };
    store.release(&failed).await.unwrap();
    let Claim::Acquired(retry) = store.claim("k2", Duration::from_secs(60)).await.unwrap() else {
        panic!("the retry should acquire a released claim");
    };
    store.release(&Lease::new_owner("k2")).await.unwrap();
    assert!(matches!(
        store.claim("k2", Duration::from_secs(60)).await.unwrap(),
        Claim::HeldByOther { .. }
    ));
    store.release(&retry).await.unwrap();

    // An expired record (DynamoDB deletes lazily) does not block a new claim.
    ddb.put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("k3".into()))
        .item("status", AttributeValue::S("DONE".into()))
        .item(
            "expires_at",
            AttributeValue::N((chrono::Utc::now().timestamp() - 10).to_string()),
        )
        .send()
        .await
        .unwrap();
    assert!(matches!(
        store.claim("k3", Duration::from_secs(60)).await.unwrap(),
        Claim::Acquired(_)
    ));

    // The claim a killed attempt leaves: held while its lease is live, taken
    // over once it lapses, and the late owner can then no longer complete.
    let now = chrono::Utc::now().timestamp();
    seed_abandoned_claim(&ddb, &table, "k4", now + 30)
        .await
        .unwrap();
    assert_eq!(
        store.claim("k4", Duration::from_secs(60)).await.unwrap(),
        Claim::HeldByOther { until: now + 30 }
    );
    seed_abandoned_claim(&ddb, &table, "k4", now - 1)
        .await
        .unwrap();
    let Claim::Acquired(takeover) = store.claim("k4", Duration::from_secs(60)).await.unwrap()
    else {
        panic!("a lapsed claim is taken over");
    };
    let killed = Lease {
        key: "k4".into(),
        owner: "killed-attempt".into(),
    };
    assert!(store
        .complete(&killed, Duration::from_secs(60), None)
        .await
        .is_err());
    store
        .complete(&takeover, Duration::from_secs(60), Some("done-once"))
        .await
        .unwrap();
    assert_eq!(
        store.get("k4").await.unwrap().and_then(|r| r.result),
        Some("done-once".into())
    );

    // A missing table is an error that says what to check.
    let missing = DynamoStore::new(ddb, "no-such-table".into());
    let err = missing
        .claim("k", Duration::from_secs(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-such-table") && err.contains("partition key"),
        "{err}"
    );
}

#[tokio::test]
async fn huge_notification_is_summarized_and_accepted_by_sns() {
    let moto = Moto::start().await.unwrap();
    let config = moto.config();
    let inbox = Inbox::create(&config, &unique("topic")).await.unwrap();
    let mut n = Notification::new(
        Severity::Info,
        Category::Offhours,
        "digest",
        "stopped 20000 resources",
    );
    n.account = "multiple".into();
    n.region = "multiple".into();
    n.dedupe_key = "run-1".into();
    n.thread_id = "run-1".into();
    n.items = (0..20_000)
        .map(|i| format!("arn:aws:ec2:us-east-1:123456789012:instance/i-{i:017x} stopped"))
        .collect();
    n.related_resources = n.items.clone();
    let ctx = RenderContext {
        mode: RunMode::Live,
        policy_version: "v".into(),
        function_name: "f".into(),
        max_items: 20_000,
    };
    let rendered = render(&n, &ctx);
    assert!(rendered.message.len() < 256 * 1024);
    let publisher = SnsPublisher::new(aws_sdk_sns::Client::new(&config), inbox.topic_arn.clone());
    publisher.publish(&rendered).await.unwrap();
    let received = inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1, "one digest, never a flood");
    assert_eq!(received[0].attributes["account"], "multiple");
    assert_eq!(
        received[0].chat["metadata"]["additionalContext"]["resourceCount"],
        "20000"
    );
}

#[tokio::test]
async fn policy_is_read_from_ssm_and_bad_policies_name_the_problem() {
    let moto = Moto::start().await.unwrap();
    let ssm = aws_sdk_ssm::Client::new(&moto.config());
    ssm.put_parameter()
        .name("/steward/policy")
        .value("[limits]\nmax_changes_per_run = 7\n")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let store = PolicyStore::load(
        PolicySource::Ssm("/steward/policy".into()),
        Some(ssm.clone()),
    )
    .await
    .unwrap();
    assert_eq!(store.current().await.limits.max_changes_per_run, 7);

    ssm.put_parameter()
        .name("/steward/bad")
        .value("[limits]\nmax_changes_per_run = \"many\"\n")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let err = PolicyStore::load(PolicySource::Ssm("/steward/bad".into()), Some(ssm.clone()))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("/steward/bad") && err.to_string().contains("line 2"),
        "{err}"
    );
    let err = PolicyStore::load(PolicySource::Ssm("/steward/missing".into()), Some(ssm))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("/steward/missing"), "{err}");
}

#[test]
fn steward_validate_accepts_the_example_and_names_key_and_line_of_errors() {
    let cli = steward_tests::function_binary("steward");
    let example = steward_tests::workspace_root().join("infra/policy.example.toml");
    let ok = std::process::Command::new(&cli)
        .arg("validate")
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid (policy version"));

    let bad = std::env::temp_dir().join(format!("{}.toml", unique("bad-policy")));
    std::fs::write(
        &bad,
        "[offhours]\nholidays = [\"2026-12-25\"]\nmax_stops = 3\n",
    )
    .unwrap();
    let out = std::process::Command::new(&cli)
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("max_stops"),
        "{stderr}"
    );
    std::fs::remove_file(&bad).ok();
}

/// The idempotency store's run-level state against DynamoDB: a budget
/// given back conditionally (never below zero), and atomic sets whose
/// addition returns the set before it (an expired set starts afresh).
#[tokio::test]
async fn idempotency_budgets_give_back_and_sets_add_atomically() {
    let moto = Moto::start().await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&moto.config());
    let table = unique("idem-sets");
    create_table(&ddb, &table).await.unwrap();
    let store = DynamoStore::new(ddb.clone(), table.clone());
    let keep = Duration::from_secs(600);

    assert!(store.reserve("budget", 2, 3, keep).await.unwrap());
    assert!(!store.reserve("budget", 2, 3, keep).await.unwrap());
    assert!(store.give_back("budget", 1).await.unwrap());
    assert!(
        store.reserve("budget", 2, 3, keep).await.unwrap(),
        "1 + 2 fits in 3"
    );
    assert!(
        !store.give_back("budget", 4).await.unwrap(),
        "never below zero"
    );
    assert!(!store.give_back("no-budget", 1).await.unwrap());

    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(store.members("set").await.unwrap().is_empty());
    let before = store
        .add_members("set", &names(&["a", "b"]), keep)
        .await
        .unwrap();
    assert!(before.is_empty());
    let before = store
        .add_members("set", &names(&["b", "c"]), keep)
        .await
        .unwrap();
    assert_eq!(before.into_iter().collect::<Vec<_>>(), names(&["a", "b"]));
    store.remove_members("set", &names(&["a"])).await.unwrap();
    assert_eq!(
        store
            .members("set")
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        names(&["b", "c"])
    );
    store
        .remove_members("absent", &names(&["a"]))
        .await
        .unwrap();

    // A set whose record expired (DynamoDB's TTL is lazy) counts as empty.
    let now = chrono::Utc::now().timestamp();
    ddb.put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("old".into()))
        .item("members", AttributeValue::Ss(names(&["stale"])))
        .item("expires_at", AttributeValue::N((now - 10).to_string()))
        .send()
        .await
        .unwrap();
    assert!(store.members("old").await.unwrap().is_empty());
    let before = store
        .add_members("old", &names(&["fresh"]), keep)
        .await
        .unwrap();
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(
        store
            .members("old")
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        names(&["fresh"])
    );
}

/// Batched reads against DynamoDB: records come back in the order asked,
/// `None` for a missing key, a repeated key answered twice, and more keys
/// than one `BatchGetItem` takes (100) read in several calls.
#[tokio::test]
async fn idempotency_reads_many_records_in_batches() {
    let moto = Moto::start().await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&moto.config());
    let table = unique("idem-batch");
    create_table(&ddb, &table).await.unwrap();
    let store = DynamoStore::new(ddb.clone(), table.clone());
    let keep = Duration::from_secs(600);
    for i in 0..150 {
        store
            .put_state(&format!("state#k{i}"), &format!("v{i}"), keep)
            .await
            .unwrap();
    }
    let mut keys: Vec<String> = (0..150).rev().map(|i| format!("state#k{i}")).collect();
    keys.insert(3, "state#missing".into());
    keys.push("state#k7".into());
    let records = store.get_many(&keys).await.unwrap();
    assert_eq!(records.len(), keys.len());
    let values: Vec<Option<String>> = records
        .into_iter()
        .map(|r| r.and_then(|r| r.result))
        .collect();
    assert_eq!(values[0].as_deref(), Some("v149"));
    assert_eq!(values[3], None, "a missing key reads as None");
    assert_eq!(values[4].as_deref(), Some("v146"));
    assert_eq!(values[150].as_deref(), Some("v0"));
    assert_eq!(
        values[151].as_deref(),
        Some("v7"),
        "a repeated key is answered again"
    );
    assert!(store.get_many(&[]).await.unwrap().is_empty());

    let missing = DynamoStore::new(ddb, "no-such-table".into());
    let err = missing
        .get_many(&["state#k1".to_string()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("BatchGetItem"), "{err}");
}
