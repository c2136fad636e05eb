//! The tag enforcer end to end: the built binary under the Lambda Runtime API
//! emulator, against moto, with the security team's inbox subscribed.

use std::collections::HashMap;

use serde_json::{json, Value};
use steward_tests::fixtures::{self, Launch};
use steward_tests::inbox::Envelope;
use steward_tests::moto::{HUB_ACCOUNT, REGION};
use steward_tests::stack::{Stack, MEMBER_ACCOUNT, MEMBER_ROLE};
use steward_tests::{event, unique};

const POLICY: &str = r#"
[tagging.account_environments]
"123456789012" = "dev"
"111111111111" = "staging"
"#;

async fn run_instances(
    config: &aws_config::SdkConfig,
    count: i32,
    tags: &[(&str, &str)],
) -> Vec<String> {
    let launch = Launch {
        count,
        tags,
        hibernation: false,
    };
    fixtures::launch(config, launch).await.unwrap()
}

async fn instance_tags(config: &aws_config::SdkConfig, id: &str) -> HashMap<String, String> {
    fixtures::instance_tags(config, id).await.unwrap()
}

/// The RunInstances fixture, pointed at real instance ids and a fresh event id.
fn run_instances_event(ids: &[String]) -> Value {
    let mut e = event("cloudtrail-run-instances.json");
    e["id"] = json!(uuid::Uuid::new_v4().to_string());
    e["detail"]["responseElements"]["instancesSet"]["items"] = Value::Array(
        ids.iter()
            .map(|id| json!({"instanceId": id, "instanceState": {"code": 0, "name": "pending"}}))
            .collect(),
    );
    e
}

#[tokio::test]
async fn new_instances_get_creator_and_env_and_one_notification() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ids = run_instances(&config, 2, &[("project", "web")]).await;
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    let e = run_instances_event(&ids);
    let out = f.response_to(&e).await;
    assert_eq!(out["tagged"].as_array().unwrap().len(), 2, "{out}");
    for id in &ids {
        let tags = instance_tags(&config, id).await;
        assert_eq!(
            tags.get("steward:created-by").map(String::as_str),
            Some("alice")
        );
        assert_eq!(tags.get("env").map(String::as_str), Some("dev"));
        assert_eq!(tags.get("project").map(String::as_str), Some("web"));
        assert!(
            !tags.contains_key("cost_center"),
            "never invents cost_center"
        );
    }
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert!(
        m.subject
            .starts_with("[steward] LOW tagging: 2 new resources created by alice"),
        "{}",
        m.subject
    );
    m.assert_envelope(Envelope {
        severity: "LOW",
        category: "tagging",
        event_type: "steward.tagging.noncompliant",
        account: HUB_ACCOUNT,
    });
    assert_eq!(m.attributes["region"], REGION);
    assert_eq!(m.attributes["environment"], "dev");
    assert_eq!(
        m.chat["metadata"]["relatedResources"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let description = m.chat["content"]["description"].as_str().unwrap();
    assert!(
        description.contains("missing required tags: cost_center"),
        "{description}"
    );
    assert!(m.chat["content"]["nextSteps"][0]
        .as_str()
        .unwrap()
        .contains("cost_center"));
    // The email body as published.
    let published: Vec<Value> =
        serde_json::from_str(&stack.moto.get("/_steward/sns/published").await.unwrap()).unwrap();
    let body: Value = serde_json::from_str(published[0]["message"].as_str().unwrap()).unwrap();
    assert!(body["email"]
        .as_str()
        .unwrap()
        .starts_with("2 new resources created by alice lack required tags"));
    assert_eq!(published[0]["structure"], "json");

    // The same event again (at-least-once delivery): no new tags, no second message.
    let again = f.response_to(&e).await;
    assert_eq!(again["tagged"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["notification"], "duplicate");
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    // Logs are JSON with the event id on every invocation line, and an EMF line.
    let logs = f.logs();
    let event_id = e["id"].as_str().unwrap();
    assert!(
        logs.iter()
            .any(|l| l.contains("\"tags added\"") && l.contains(event_id)),
        "{logs:#?}"
    );
    assert!(logs
        .iter()
        .any(|l| l.contains("\"Namespace\":\"Steward\"") && l.contains("\"ActionsTaken\":2")));
    assert!(f.logs_are_json(), "every line is JSON");
}

#[tokio::test]
async fn dry_run_and_kill_switch_change_nothing_and_say_so() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    for (var, marker) in [
        ("STEWARD_DRY_RUN", "(DRY RUN)"),
        ("STEWARD_DISABLED", "(DISABLED)"),
    ] {
        let ids = run_instances(&config, 1, &[]).await;
        let mut f = stack
            .function("tag-enforcer", POLICY, &[(var, "true")])
            .await;
        let out = f.response_to(&run_instances_event(&ids)).await;
        assert_eq!(out["tagged"].as_array().unwrap().len(), 0);
        let tags = instance_tags(&config, &ids[0]).await;
        assert!(tags.is_empty(), "{var}: nothing changed, got {tags:?}");
        let received = stack.inbox.drain().await.unwrap();
        assert_eq!(received.len(), 1, "{var}");
        assert!(
            received[0].subject.contains(marker),
            "{}",
            received[0].subject
        );
        assert!(received[0].chat["content"]["description"]
            .as_str()
            .unwrap()
            .contains("steward would add"));
        assert_eq!(
            stack.idempotency_records().await,
            0,
            "{var}: no idempotency record"
        );
    }
}

#[tokio::test]
async fn blast_radius_limit_changes_nothing_and_alerts_high() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ids = run_instances(&config, 3, &[]).await;
    let policy = format!("{POLICY}\n[limits]\nmax_changes_per_run = 2\n");
    let mut f = stack.function("tag-enforcer", &policy, &[]).await;
    let out = f.response_to(&run_instances_event(&ids)).await;
    assert!(out["blocked"]
        .as_str()
        .unwrap()
        .contains("max_changes_per_run = 2"));
    for id in &ids {
        assert!(instance_tags(&config, id).await.is_empty());
    }
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].attributes["severity"], "HIGH");
    assert_eq!(
        received[0].chat["metadata"]["eventType"],
        "steward.tagging.blast-radius"
    );
}

#[tokio::test]
async fn exempt_resource_is_reported_not_changed() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ids = run_instances(&config, 1, &[("steward:exempt", "true")]).await;
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    f.response_to(&run_instances_event(&ids)).await;
    let tags = instance_tags(&config, &ids[0]).await;
    assert_eq!(tags.len(), 1, "only the exempt tag: {tags:?}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert!(received[0].chat["content"]["description"]
        .as_str()
        .unwrap()
        .contains("steward:exempt, not changed"));
}

#[tokio::test]
async fn member_account_resource_is_tagged_through_the_member_role() {
    let stack = Stack::new().await;
    let member = stack.member_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&member);
    let volume = ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(20)
        .send()
        .await
        .unwrap();
    let volume_id = volume.volume_id().unwrap().to_string();
    let mut e = event("cloudtrail-create-volume.json");
    e["account"] = json!(MEMBER_ACCOUNT);
    e["detail"]["recipientAccountId"] = json!(MEMBER_ACCOUNT);
    e["detail"]["responseElements"]["volumeId"] = json!(volume_id);
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    let out = f.response_to(&e).await;
    assert_eq!(out["tagged"].as_array().unwrap().len(), 1, "{out}");
    let described = ec2
        .describe_volumes()
        .volume_ids(&volume_id)
        .send()
        .await
        .unwrap();
    let tags: HashMap<_, _> = described.volumes()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(
        tags.get("steward:created-by"),
        Some(&"AWSReservedSSO_PowerUser_0123456789abcdef/bob@example.com")
    );
    assert_eq!(tags.get("env"), Some(&"staging"));
    // The hub account has no such volume.
    let hub = aws_sdk_ec2::Client::new(&stack.moto.config());
    assert!(hub
        .describe_volumes()
        .volume_ids(&volume_id)
        .send()
        .await
        .is_err());
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received[0].attributes["account"], MEMBER_ACCOUNT);
    assert_eq!(received[0].attributes["environment"], "staging");
}

#[tokio::test]
async fn bad_and_failed_events_change_nothing() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ids = run_instances(&config, 1, &[]).await;
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    let err = f.invoke_raw("{\"detail-type\": ").await.unwrap().error();
    assert!(
        err.to_string().to_lowercase().contains("eof") || err.to_string().contains("JSON"),
        "{err}"
    );
    let err = f.error_for(&json!({"hello": "world"})).await;
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("unknown event shape"),
        "{err}"
    );
    assert_eq!(err["errorType"], "BadEvent");
    let mut missing = run_instances_event(&ids);
    missing["detail"]["responseElements"] = json!({"reservationId": "r-1"});
    let err = f.error_for(&missing).await;
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("responseElements.instancesSet.items"),
        "{err}"
    );
    let mut failed = event("cloudtrail-run-instances-failed.json");
    failed["detail"]["responseElements"] =
        json!({"instancesSet": {"items": [{"instanceId": ids[0]}]}});
    let out = f.response_to(&failed).await;
    assert!(out["skipped"]
        .as_str()
        .unwrap()
        .contains("Client.UnauthorizedOperation"));
    assert!(instance_tags(&config, &ids[0]).await.is_empty());
    // A resource that no longer exists is skipped.
    let out = f
        .response_to(&run_instances_event(&["i-00000000000000000".to_string()]))
        .await;
    assert_eq!(out["resources"].as_array().unwrap().len(), 0);
    assert!(stack.inbox.drain().await.unwrap().is_empty());
}

#[tokio::test]
async fn every_create_call_type_is_tagged() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    // RDS instance and Aurora cluster.
    let rds = aws_sdk_rds::Client::new(&config);
    let db = unique("orders");
    rds.create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username("app")
        .master_user_password("not-a-real-password-1")
        .send()
        .await
        .unwrap();
    let cluster = unique("orders-aurora");
    rds.create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .master_username("app")
        .master_user_password("not-a-real-password-1")
        .send()
        .await
        .unwrap();
    // Auto Scaling group.
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let group = unique("web-dev-asg");
    asg.create_launch_configuration()
        .launch_configuration_name(&group)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&group)
        .launch_configuration_name(&group)
        .min_size(0)
        .max_size(1)
        .desired_capacity(0)
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap();
    // Secret and bucket.
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let secret = sm
        .create_secret()
        .name(unique("orders/dev/db"))
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    let secret_arn = secret.arn().unwrap().to_string();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let bucket = unique("orders-dev-uploads");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_bucket_tagging()
        .bucket(&bucket)
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("project")
                        .value("orders")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let mut events = Vec::new();
    let mut e = event("cloudtrail-create-db-instance.json");
    e["detail"]["responseElements"]["dBInstanceIdentifier"] = json!(db);
    events.push(e);
    let mut e = event("cloudtrail-create-db-cluster.json");
    e["detail"]["responseElements"]["dBClusterIdentifier"] = json!(cluster);
    events.push(e);
    let mut e = event("cloudtrail-create-auto-scaling-group.json");
    e["detail"]["requestParameters"]["autoScalingGroupName"] = json!(group);
    events.push(e);
    let mut e = event("cloudtrail-create-secret.json");
    e["detail"]["responseElements"]["aRN"] = json!(secret_arn);
    events.push(e);
    let mut e = event("cloudtrail-create-bucket.json");
    e["detail"]["requestParameters"]["bucketName"] = json!(bucket);
    events.push(e);
    for e in &events {
        let out = f.response_to(e).await;
        assert_eq!(
            out["tagged"].as_array().unwrap().len(),
            1,
            "{}: {out}",
            e["detail"]["eventName"]
        );
    }
    let db_tags = rds
        .describe_db_instances()
        .db_instance_identifier(&db)
        .send()
        .await
        .unwrap();
    let t: HashMap<_, _> = db_tags.db_instances()[0]
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(t.get("steward:created-by"), Some(&"alice"));
    assert_eq!(t.get("env"), Some(&"dev"));
    let c = rds
        .describe_db_clusters()
        .db_cluster_identifier(&cluster)
        .send()
        .await
        .unwrap();
    assert!(c.db_clusters()[0]
        .tag_list()
        .iter()
        .any(|t| t.key() == Some("steward:created-by")));
    let g = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .unwrap();
    assert!(g.auto_scaling_groups()[0]
        .tags()
        .iter()
        .any(|t| t.key() == Some("steward:created-by")
            && t.value() == Some("deployer/deploy-pipeline")));
    let s = sm
        .describe_secret()
        .secret_id(&secret_arn)
        .send()
        .await
        .unwrap();
    assert!(s
        .tags()
        .iter()
        .any(|t| t.key() == Some("env") && t.value() == Some("dev")));
    let b = s3
        .get_bucket_tagging()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let bt: HashMap<_, _> = b.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(
        bt.get("project"),
        Some(&"orders"),
        "existing bucket tags are kept"
    );
    assert_eq!(bt.get("steward:created-by"), Some(&"alice"));
    assert_eq!(stack.inbox.drain().await.unwrap().len(), 5);
}

/// A Config change event for an item with these tags and status.
fn config_change(
    token: &str,
    resource_id: &str,
    tags: Value,
    status: &str,
    left_scope: bool,
) -> Value {
    let mut e = event("config-change-ec2-instance.json");
    let mut invoking: Value = serde_json::from_str(e["invokingEvent"].as_str().unwrap()).unwrap();
    invoking["configurationItem"]["tags"] = tags;
    invoking["configurationItem"]["resourceId"] = json!(resource_id);
    invoking["configurationItem"]["configurationItemStatus"] = json!(status);
    e["invokingEvent"] = json!(invoking.to_string());
    e["resultToken"] = json!(token);
    e["eventLeftScope"] = json!(left_scope);
    e
}

#[tokio::test]
async fn config_change_evaluations() {
    let stack = Stack::new().await;
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    let full = json!({"project": "web", "env": "dev", "cost_center": "cc-42"});
    let cases = [
        (
            "i-compliant",
            full.clone(),
            "OK",
            false,
            "COMPLIANT",
            "all required tags",
        ),
        (
            "i-missing",
            json!({"project": "web"}),
            "OK",
            false,
            "NON_COMPLIANT",
            "missing required tags: env, cost_center",
        ),
        (
            "i-invalid",
            json!({"project": "web", "env": "qa", "cost_center": "1"}),
            "OK",
            false,
            "NON_COMPLIANT",
            "env=\"qa\" is not one of dev|staging|prod",
        ),
        (
            "i-deleted",
            json!({}),
            "ResourceDeleted",
            false,
            "NOT_APPLICABLE",
            "deleted",
        ),
        (
            "i-outofscope",
            full.clone(),
            "OK",
            true,
            "NOT_APPLICABLE",
            "left the rule's scope",
        ),
    ];
    for (id, tags, status, left, expected, annotation) in cases {
        let token = unique("token");
        let out = f
            .response_to(&config_change(&token, id, tags, status, left))
            .await;
        let recorded = stack.moto.evaluations(&token).await.unwrap();
        assert_eq!(recorded.len(), 1, "{id}: {out}");
        assert_eq!(recorded[0]["ComplianceType"], expected, "{id}");
        assert_eq!(recorded[0]["ResourceId"], id);
        assert!(
            recorded[0]["Annotation"]
                .as_str()
                .unwrap()
                .contains(annotation),
            "{id}: {}",
            recorded[0]["Annotation"]
        );
        // Ordering timestamp is the item's capture time.
        assert_eq!(
            recorded[0]["OrderingTimestamp"].as_f64().unwrap() as i64,
            1_795_166_411
        );
    }
    // Rule parameters override the policy's required tags.
    let token = unique("token");
    let mut e = config_change(&token, "i-owner", json!({"owner": "alice"}), "OK", false);
    e["ruleParameters"] = json!("{\"tag1Key\": \"owner\"}");
    f.response_to(&e).await;
    assert_eq!(
        stack.moto.evaluations(&token).await.unwrap()[0]["ComplianceType"],
        "COMPLIANT"
    );
    // The Config path changes nothing and notifies nobody.
    assert!(stack.inbox.drain().await.unwrap().is_empty());
}

#[tokio::test]
async fn oversized_item_is_fetched_from_config_history() {
    let stack = Stack::new().await;
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    stack.moto.post("/_steward/config/items", &json!({
        "awsAccountId": HUB_ACCOUNT, "awsRegion": REGION, "resourceType": "AWS::EC2::Instance",
        "resourceId": "i-0123456789abcdef0", "configurationItemStatus": "OK",
        "configurationItemCaptureTime": "2026-11-20T09:20:11.142Z",
        "tags": {"project": "web", "env": "prod", "cost_center": "cc-1"}
    })).await.unwrap();
    let token = unique("token");
    let mut e = event("config-oversized.json");
    e["resultToken"] = json!(token);
    f.response_to(&e).await;
    let recorded = stack.moto.evaluations(&token).await.unwrap();
    assert_eq!(recorded[0]["ComplianceType"], "COMPLIANT", "{recorded:?}");
}

#[tokio::test]
async fn periodic_evaluation_lists_resources_and_retires_vanished_ones() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let good = run_instances(
        &config,
        1,
        &[("project", "web"), ("env", "dev"), ("cost_center", "cc-1")],
    )
    .await;
    let bad = run_instances(&config, 1, &[("project", "web")]).await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let secret = sm
        .create_secret()
        .name(unique("api/dev"))
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    let rule = "steward-required-tags";
    // An earlier periodic run reported an instance that is gone now.
    let earlier = unique("token");
    stack
        .moto
        .register_rule_token(rule, &earlier)
        .await
        .unwrap();
    let ct = aws_sdk_config::Client::new(&config);
    ct.put_evaluations()
        .result_token(&earlier)
        .evaluations(
            aws_sdk_config::types::Evaluation::builder()
                .compliance_resource_type("AWS::EC2::Instance")
                .compliance_resource_id("i-0gone00000000000")
                .compliance_type(aws_sdk_config::types::ComplianceType::NonCompliant)
                .ordering_timestamp(aws_smithy_types::DateTime::from_secs(1_795_600_000))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let token = unique("token");
    stack.moto.register_rule_token(rule, &token).await.unwrap();
    let mut e = event("config-scheduled.json");
    e["resultToken"] = json!(token);
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    f.response_to(&e).await;
    let recorded = stack.moto.evaluations(&token).await.unwrap();
    let verdict = |id: &str| {
        recorded
            .iter()
            .find(|r| r["ResourceId"] == id)
            .map(|r| r["ComplianceType"].as_str().unwrap().to_string())
    };
    assert_eq!(verdict(&good[0]).as_deref(), Some("COMPLIANT"));
    assert_eq!(verdict(&bad[0]).as_deref(), Some("NON_COMPLIANT"));
    assert_eq!(
        verdict(secret.arn().unwrap()).as_deref(),
        Some("NON_COMPLIANT")
    );
    assert_eq!(
        verdict("i-0gone00000000000").as_deref(),
        Some("NOT_APPLICABLE")
    );
}

#[tokio::test]
async fn a_bad_policy_stops_the_function_at_start_with_the_reason() {
    let stack = Stack::new().await;
    let mut f = stack
        .function("tag-enforcer", "[limits]\nmax_changes_per_runs = 3\n", &[])
        .await;
    let err = f
        .invoke(&run_instances_event(&["i-1".to_string()]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_changes_per_runs") && err.contains("line 2"),
        "{err}"
    );
}

/// The claim a killed attempt leaves on this event's notification.
async fn seed_notification_claim(stack: &Stack, event_id: &str, expires_at: i64) {
    let key = steward_shared::idempotency::keys::notification("tag-enforcer", event_id);
    steward_shared::idempotency::seed_abandoned_claim(
        &aws_sdk_dynamodb::Client::new(&stack.moto.config()),
        &stack.table,
        &key,
        expires_at,
    )
    .await
    .unwrap();
}

/// The status of a record in the idempotency table.
async fn record_status(stack: &Stack, key: &str) -> Option<String> {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.moto.config());
    let item = ddb
        .get_item()
        .table_name(&stack.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(key.to_string()),
        )
        .send()
        .await
        .unwrap();
    item.item()
        .and_then(|i| i.get("status"))
        .and_then(|s| s.as_s().ok())
        .cloned()
}

#[tokio::test]
async fn a_killed_attempts_claim_is_taken_over_once_lapsed_and_retried_later_while_live() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    let now = chrono::Utc::now().timestamp();

    // Lapsed: the attempt that claimed the notification was killed a while ago.
    let ids = run_instances(&config, 1, &[]).await;
    let e = run_instances_event(&ids);
    let event_id = e["id"].as_str().unwrap().to_string();
    seed_notification_claim(&stack, &event_id, now - 5).await;
    let out = f.response_to(&e).await;
    assert_eq!(out["notification"], "sent", "{out}");
    assert_eq!(stack.inbox.drain().await.unwrap().len(), 1, "exactly one");
    let key = steward_shared::idempotency::keys::notification("tag-enforcer", &event_id);
    assert_eq!(record_status(&stack, &key).await.as_deref(), Some("DONE"));
    let again = f.response_to(&e).await;
    assert_eq!(again["notification"], "duplicate");
    assert!(stack.inbox.drain().await.unwrap().is_empty());

    // Live: another attempt holds the claim now; the invocation fails so it is retried.
    let ids = run_instances(&config, 1, &[]).await;
    let e = run_instances_event(&ids);
    let event_id = e["id"].as_str().unwrap().to_string();
    seed_notification_claim(&stack, &event_id, now + 120).await;
    let err = f.error_for(&e).await;
    assert_eq!(err["errorType"], "RetryLater", "{err}");
    let message = err["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("another attempt is doing this work now")
            && message.contains("nothing was reported as done"),
        "{message}"
    );
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    let key = steward_shared::idempotency::keys::notification("tag-enforcer", &event_id);
    assert_eq!(
        record_status(&stack, &key).await.as_deref(),
        Some("IN_PROGRESS"),
        "the other attempt's claim is left alone, never marked done"
    );
}

#[tokio::test]
async fn every_identity_shape_is_tagged_with_its_creator() {
    let stack = Stack::new().await;
    let ec2 = aws_sdk_ec2::Client::new(&stack.moto.config());
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    for (file, creator, via) in [
        ("cloudtrail-identity-iam-user-console.json", "alice", None),
        ("cloudtrail-identity-root-mfa.json", "root", None),
        (
            "cloudtrail-identity-github-oidc.json",
            "github-deploy/GitHubActions",
            None,
        ),
        (
            "cloudtrail-identity-eks-irsa.json",
            "orders-irsa/botocore-session-1795165800",
            None,
        ),
        (
            "cloudtrail-identity-cognito.json",
            "Cognito_ordersAuth_Role/CognitoIdentityCredentials",
            None,
        ),
        (
            "cloudtrail-identity-cloudformation.json",
            "deployer/deploy-pipeline",
            Some("cloudformation"),
        ),
    ] {
        let volume = ec2
            .create_volume()
            .availability_zone("us-east-1a")
            .size(8)
            .send()
            .await
            .unwrap();
        let id = volume.volume_id().unwrap().to_string();
        let mut e = event(file);
        e["id"] = json!(uuid::Uuid::new_v4().to_string());
        e["detail"]["responseElements"]["volumeId"] = json!(id);
        let out = f.response_to(&e).await;
        assert_eq!(out["tagged"].as_array().unwrap().len(), 1, "{file}: {out}");
        let described = ec2.describe_volumes().volume_ids(&id).send().await.unwrap();
        let tags: HashMap<_, _> = described.volumes()[0]
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(tags.get("steward:created-by"), Some(&creator), "{file}");
        assert_eq!(tags.get("steward:created-via").copied(), via, "{file}");
    }
}

#[tokio::test]
async fn config_path_reports_nothing_in_dry_run_and_under_the_kill_switch() {
    let stack = Stack::new().await;
    for (var, marker) in [
        ("STEWARD_DRY_RUN", "(DRY RUN)"),
        ("STEWARD_DISABLED", "(DISABLED)"),
    ] {
        let mut f = stack
            .function("tag-enforcer", POLICY, &[(var, "true")])
            .await;
        let token = unique("token");
        let out = f
            .response_to(&config_change(
                &token,
                "i-missing",
                json!({"project": "web"}),
                "OK",
                false,
            ))
            .await;
        assert_eq!(out["reported"], false, "{var}: {out}");
        assert_eq!(out["evaluations"][0]["compliance"], "NON_COMPLIANT");
        assert!(
            stack.moto.evaluations(&token).await.unwrap().is_empty(),
            "{var}: no PutEvaluations"
        );
        let received = stack.inbox.drain().await.unwrap();
        assert_eq!(received.len(), 1, "{var}");
        assert!(
            received[0].subject.contains(marker),
            "{}",
            received[0].subject
        );
        assert!(
            received[0]
                .description()
                .contains("i-missing: NON_COMPLIANT"),
            "{}",
            received[0].description()
        );
        assert!(f
            .logs()
            .iter()
            .any(|l| l.contains("would report evaluations to AWS Config")));
        assert_eq!(stack.idempotency_records().await, 0, "{var}");
    }
}

/// The CreateTags fixture on `id`, setting `key=value`, made by `identity` (the fixture's when None).
fn create_tags_event(id: &str, key: &str, value: &str, identity: Option<Value>) -> Value {
    let mut e = event("cloudtrail-tag-ec2-create-tags.json");
    e["id"] = json!(uuid::Uuid::new_v4().to_string());
    e["detail"]["requestParameters"]["resourcesSet"]["items"] = json!([{ "resourceId": id }]);
    e["detail"]["requestParameters"]["tagSet"]["items"] = json!([{ "key": key, "value": value }]);
    if let Some(identity) = identity {
        e["detail"]["userIdentity"] = identity;
    }
    e
}

async fn set_instance_tag(config: &aws_config::SdkConfig, id: &str, key: &str, value: &str) {
    aws_sdk_ec2::Client::new(config)
        .create_tags()
        .resources(id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(key)
                .value(value)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn create_tags_prod_to_dev_gives_one_high_tagging_message_naming_the_caller() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ids = run_instances(&config, 1, &[("env", "prod"), ("project", "orders")]).await;
    let id = &ids[0];
    // AWS Config recorded the instance as prod before the call.
    stack
        .moto
        .post(
            "/_steward/config/items",
            &json!({
                "awsAccountId": HUB_ACCOUNT, "awsRegion": REGION, "resourceType": "AWS::EC2::Instance",
                "resourceId": id, "configurationItemStatus": "OK",
                "configurationItemCaptureTime": "2026-11-19T08:00:00.000Z",
                "tags": {"env": "prod", "project": "orders"}
            }),
        )
        .await
        .unwrap();
    set_instance_tag(&config, id, "env", "dev").await;
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    let e = create_tags_event(id, "env", "dev", None);
    let out = f.response_to(&e).await;
    assert_eq!(out["severity"], "HIGH", "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(m.attributes["severity"], "HIGH");
    assert_eq!(m.attributes["category"], "tagging");
    assert_eq!(m.attributes["environment"], "dev");
    assert_eq!(
        m.chat["metadata"]["eventType"],
        "steward.tagging.tag-changed"
    );
    assert!(
        m.subject.contains("alice")
            && m.subject.contains("env=dev")
            && m.subject.contains("was prod"),
        "{}",
        m.subject
    );
    let description = m.description();
    assert!(
        description.contains(&format!("{id} is now `env=dev`"))
            && description.contains("the scheduler would stop it at 19:00 UTC"),
        "{description}"
    );
    assert_eq!(
        m.chat["metadata"]["additionalContext"]["changedBy"],
        "alice"
    );
    // A repeat of the same event: nothing new.
    let again = f.response_to(&e).await;
    assert_eq!(again["notification"], "duplicate", "{again}");
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    // The tag enforcer changed no tag on the way.
    let tags = instance_tags(&config, id).await;
    assert_eq!(tags.get("env").map(String::as_str), Some("dev"));
    assert!(!tags.contains_key("steward:created-by"));
}

#[tokio::test]
async fn adding_exempt_gives_one_high_message_and_stewards_own_tagging_none() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ids = run_instances(&config, 1, &[("env", "dev")]).await;
    let id = &ids[0];
    set_instance_tag(&config, id, "steward:exempt", "true").await;
    let mut f = stack.function("tag-enforcer", POLICY, &[]).await;
    let out = f
        .response_to(&create_tags_event(id, "steward:exempt", "true", None))
        .await;
    assert_eq!(out["severity"], "HIGH", "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].attributes["severity"], "HIGH");
    let description = received[0].description();
    assert!(
        description.contains("out of governance") && description.contains("previous value unknown"),
        "{description}"
    );

    // steward's own writes, through the member role in a steward session: never reported.
    let steward_session = json!({
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEID:steward-tag-enforcer-6f5ea4d3",
        "arn": format!("arn:aws:sts::{HUB_ACCOUNT}:assumed-role/{MEMBER_ROLE}/steward-tag-enforcer-6f5ea4d3"),
        "accountId": HUB_ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": MEMBER_ROLE}, "attributes": {}}
    });
    let out = f
        .response_to(&create_tags_event(id, "env", "dev", Some(steward_session)))
        .await;
    assert_eq!(out["skipped"], "steward's own tag write", "{out}");
    // Someone else using the member role name with their own session is reported.
    let impostor = json!({
        "type": "AssumedRole",
        "arn": format!("arn:aws:sts::{HUB_ACCOUNT}:assumed-role/{MEMBER_ROLE}/mallory"),
    });
    let out = f
        .response_to(&create_tags_event(id, "env", "dev", Some(impostor)))
        .await;
    assert_eq!(out["notification"], "sent", "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1, "only the impostor's change");
    assert!(
        received[0].subject.contains("mallory"),
        "{}",
        received[0].subject
    );
}
