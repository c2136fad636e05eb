//! Issue 11 section 1: every function's main scenario under injected faults.
//!
//! The built binaries reach the local AWS through the fault-injecting proxy
//! (`steward_tests::faults`): 30% of their requests, from a fixed seed, get
//! the service's throttling error, a 5xx, a dropped connection (after the
//! emulator only for idempotent calls) or 300 ms of latency. Where a function
//! fails an invocation it is invoked again as Lambda would (asynchronous
//! retries, SQS redelivery of the failed records, a new execution
//! environment after a failed start). Each test then checks that nothing was
//! lost (every intended action done) and nothing done twice (actions and
//! notifications counted on the emulator, whose own view is not faulted).

use serde_json::{json, Value};
use steward_tests::faults::{FaultPlan, FaultProxy};
use steward_tests::fixtures;
use steward_tests::moto::{HUB_ACCOUNT, REGION};
use steward_tests::runtime_api::{Function, Outcome};
use steward_tests::stack::Stack;
use steward_tests::{event, unique};

/// The share of requests that get a fault (`STEWARD_FAULT_RATE` overrides it).
const RATE: f64 = 0.3;
/// The seed of every test's faults (`STEWARD_FAULT_SEED` overrides it, to explore).
const SEED: u64 = 11;

fn plan() -> FaultPlan {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let seed = from_env("STEWARD_FAULT_SEED")
        .map_or(SEED, |v| v.parse().expect("STEWARD_FAULT_SEED is a number"));
    let rate = from_env("STEWARD_FAULT_RATE")
        .map_or(RATE, |v| v.parse().expect("STEWARD_FAULT_RATE is a number"));
    FaultPlan::new(seed, rate)
}
/// Deliveries of one event before the test gives up (Lambda's asynchronous
/// invocations are tried 3 times; SQS redelivers until the queue's
/// maxReceiveCount, 5 in the templates; a few more absorb unlucky streaks).
const DELIVERIES: usize = 8;

/// How long a redelivery waits after a `RetryLater` (a claim held by
/// another attempt): the idempotency lease, as Lambda's retry delay would.
const LEASE_LAPSE: std::time::Duration = steward_shared::idempotency::LEASE;

/// A stack whose functions talk to AWS through the proxy.
struct Faulty {
    stack: Stack,
    proxy: FaultProxy,
}

/// A function process and what is needed to start it again.
struct Running {
    function: Function,
    name: String,
    policy: String,
    extra: Vec<(String, String)>,
}

impl Faulty {
    async fn new() -> Faulty {
        let stack = Stack::new().await;
        let proxy = FaultProxy::start(&stack.moto.endpoint, plan())
            .await
            .expect("proxy starts");
        Faulty { stack, proxy }
    }

    async fn start(&self, name: &str, policy: &str, extra: &[(&str, &str)]) -> Running {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(self.proxy.env())
            .collect();
        let pairs: Vec<(&str, &str)> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Running {
            function: self.stack.function(name, policy, &pairs).await,
            name: name.to_string(),
            policy: policy.to_string(),
            extra,
        }
    }

    /// Delivers `event` until the function accepts it, as Lambda would: a
    /// failed invocation is delivered again, an SQS batch's failed records
    /// are redelivered alone, a process that failed to start is replaced.
    /// The last response.
    async fn deliver(&self, running: &mut Running, event: &Value) -> Value {
        let mut event = event.clone();
        let mut errors = Vec::new();
        for delivery in 1..=DELIVERIES {
            if delivery > 1 {
                println!(
                    "{}: delivery {delivery} after {:?}",
                    running.name,
                    errors.last()
                );
            }
            match running.function.invoke(&event).await {
                Ok(Outcome::Response(out)) => {
                    let failed: Vec<&str> = out["batchItemFailures"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f["itemIdentifier"].as_str())
                        .collect();
                    if failed.is_empty() {
                        return out;
                    }
                    errors.push(format!("batch item failures: {failed:?}"));
                    let records: Vec<Value> = event["Records"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|r| failed.contains(&r["messageId"].as_str().unwrap_or_default()))
                        .cloned()
                        .collect();
                    event = json!({ "Records": records });
                }
                Ok(Outcome::Error(e)) => {
                    // Another attempt's claim: Lambda's next try comes a
                    // minute or more later, by when an abandoned lease lapsed.
                    if e["errorType"] == "RetryLater" {
                        tokio::time::sleep(LEASE_LAPSE).await;
                    }
                    errors.push(e.to_string());
                }
                Err(e) => {
                    errors.push(format!("{e:#}"));
                    let pairs: Vec<(&str, &str)> = running
                        .extra
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    running.function = self
                        .stack
                        .function(&running.name, &running.policy, &pairs)
                        .await;
                }
            }
        }
        panic!(
            "{} never completed under faults ({}):\n{}",
            running.name,
            self.proxy.counts(),
            errors.join("\n")
        );
    }

    /// The SNS publishes to the security topic that reached the emulator (what subscribers get).
    async fn notifications(&self) -> Vec<Value> {
        let all: Vec<Value> = serde_json::from_str(
            &self
                .stack
                .moto
                .get("/_steward/sns/published")
                .await
                .unwrap(),
        )
        .unwrap();
        all.into_iter()
            .filter(|p| p["topic"] == json!(self.stack.inbox.topic_arn))
            .collect()
    }

    /// The subjects of the notifications, for messages.
    async fn subjects(&self) -> Vec<String> {
        self.notifications()
            .await
            .iter()
            .map(|p| p["subject"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The EC2 calls that reached the emulator with this action (moto's call log).
    async fn ec2_calls(&self, action: &str) -> Vec<Value> {
        let all: Vec<Value> =
            serde_json::from_str(&self.stack.moto.get("/_steward/calls").await.unwrap()).unwrap();
        all.into_iter().filter(|c| c["action"] == action).collect()
    }

    /// Faults were really injected (the test proves nothing otherwise; the
    /// default seed injects at least 3 in every scenario).
    fn assert_faults_injected(&self) {
        let counts = self.proxy.counts();
        println!("faults: {counts}");
        assert!(
            counts.injected() >= 1,
            "too few faults to prove anything: {counts}"
        );
    }
}

#[tokio::test]
async fn tag_enforcer_tags_a_created_instance_once_under_faults() {
    let t = Faulty::new().await;
    let config = t.stack.moto.config();
    let ids = fixtures::launch(
        &config,
        fixtures::Launch {
            count: 2,
            tags: &[("project", "web")],
            hibernation: false,
        },
    )
    .await
    .unwrap();
    let mut e = event("cloudtrail-run-instances.json");
    e["id"] = json!(uuid::Uuid::new_v4().to_string());
    e["detail"]["responseElements"]["instancesSet"]["items"] = Value::Array(
        ids.iter()
            .map(|id| json!({"instanceId": id, "instanceState": {"code": 0, "name": "pending"}}))
            .collect(),
    );
    let policy = "[tagging.account_environments]\n\"123456789012\" = \"dev\"\n";
    let mut f = t.start("tag-enforcer", policy, &[]).await;
    t.deliver(&mut f, &e).await;
    // At-least-once delivery: the same event again changes and sends nothing.
    t.deliver(&mut f, &e).await;
    for id in &ids {
        let tags = fixtures::instance_tags(&config, id).await.unwrap();
        assert_eq!(
            tags.get("steward:created-by").map(String::as_str),
            Some("alice"),
            "{id}: {tags:?}"
        );
        assert_eq!(
            tags.get("env").map(String::as_str),
            Some("dev"),
            "{id}: {tags:?}"
        );
    }
    let subjects = t.subjects().await;
    assert_eq!(subjects.len(), 1, "one notification: {subjects:?}");
    assert!(
        subjects[0].contains("tagging: 2 new resources created by alice"),
        "{subjects:?}"
    );
    t.assert_faults_injected();
}

#[tokio::test]
async fn offhours_scheduler_stops_dev_once_under_faults() {
    let t = Faulty::new().await;
    let config = t.stack.moto.config();
    let dev = fixtures::launch(
        &config,
        fixtures::Launch {
            count: 3,
            tags: &[("env", "dev")],
            hibernation: false,
        },
    )
    .await
    .unwrap();
    let prod = fixtures::launch_one(&config, &[("env", "prod")])
        .await
        .unwrap();
    let mut f = t.start("offhours-scheduler", "", &[]).await;
    // Friday 19:05 UTC, then the next quarter-hour run (which retries a
    // stop that still failed after every retry, if any).
    for time in ["2026-11-20T19:05:00Z", "2026-11-20T19:20:00Z"] {
        let mut e = event("scheduler-eventbridge-rule.json");
        e["id"] = json!(uuid::Uuid::new_v4().to_string());
        e["time"] = json!(time);
        let out = t.deliver(&mut f, &e).await;
        println!("{time}: {out}");
    }
    for id in &dev {
        assert_eq!(
            fixtures::instance_state(&config, id).await.unwrap(),
            "stopped",
            "{id}"
        );
    }
    assert_eq!(
        fixtures::instance_state(&config, &prod).await.unwrap(),
        "running"
    );
    // Nothing stopped that should not be: prod never named.
    let stops = t.ec2_calls("StopInstances").await;
    assert!(
        stops
            .iter()
            .all(|c| !c["params"].to_string().contains(&prod)),
        "prod never stopped: {stops:#?}"
    );
    // A throttled or failed batch is sent again whole, never split: every
    // StopInstances that reached EC2 named the three dev instances.
    assert!(!stops.is_empty());
    for call in &stops {
        let params = call["params"].to_string();
        assert!(
            dev.iter().all(|id| params.contains(id.as_str())),
            "a split batch: {call}"
        );
    }
    let subjects = t.subjects().await;
    assert!(
        (1..=2).contains(&subjects.len()),
        "one digest per run that changed something: {subjects:?}"
    );
    assert!(
        subjects[0].contains("3 stopped") || subjects.iter().any(|s| s.contains("stopped")),
        "{subjects:?}"
    );
    t.assert_faults_injected();
}

/// The default VPC, a web group, and an instance behind it; (instance, interface, vpc).
async fn victim(config: &aws_config::SdkConfig) -> (String, String, String) {
    use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpc = steward_tests::fixtures::default_vpc(config).await.unwrap();
    let web = ec2
        .create_security_group()
        .group_name(unique("web"))
        .description("web")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    let out = ec2
        .run_instances()
        .image_id(fixtures::AMI)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .security_group_ids(&web)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("env").value("dev").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let instance = &out.instances()[0];
    (
        instance.instance_id().unwrap().to_string(),
        instance.network_interfaces()[0]
            .network_interface_id()
            .unwrap()
            .to_string(),
        vpc,
    )
}

#[tokio::test]
async fn guardduty_responder_contains_an_instance_once_under_faults() {
    use aws_sdk_ec2::types::Filter;
    let t = Faulty::new().await;
    let config = t.stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let (instance, eni, vpc) = victim(&config).await;
    let gd = aws_sdk_guardduty::Client::new(&config);
    gd.create_detector().enable(true).send().await.unwrap();
    let mut e = event("guardduty-ec2-backdoor.json");
    e["id"] = json!(uuid::Uuid::new_v4().to_string());
    e["detail"]["id"] = json!(uuid::Uuid::new_v4().simple().to_string());
    e["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(instance);
    t.stack
        .moto
        .post(
            "/_steward/guardduty/findings",
            &json!({"account": HUB_ACCOUNT, "region": REGION, "finding": e["detail"]}),
        )
        .await
        .unwrap();
    let mut f = t.start("guardduty-responder", "", &[]).await;
    let out = t.deliver(&mut f, &e).await;
    println!("{out}");
    t.deliver(&mut f, &e).await;

    let quarantine = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values("steward-quarantine")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        quarantine.security_groups().len(),
        1,
        "one quarantine group"
    );
    let quarantine = quarantine.security_groups()[0]
        .group_id()
        .unwrap()
        .to_string();
    let groups = ec2
        .describe_network_interfaces()
        .network_interface_ids(&eni)
        .send()
        .await
        .unwrap();
    let groups: Vec<String> = groups.network_interfaces()[0]
        .groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect();
    assert_eq!(groups, vec![quarantine], "isolated");
    let tags = fixtures::instance_tags(&config, &instance).await.unwrap();
    assert!(tags.contains_key("steward:quarantined"), "{tags:?}");
    let snapshots = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("tag:steward:finding")
                .values(e["detail"]["id"].as_str().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        snapshots.snapshots().len(),
        1,
        "one forensic snapshot of the one volume"
    );
    // One message says it is contained. An attempt that failed on the way
    // (GuardDuty could not be asked, a containment step failed) told the
    // team so before the retry: at most once each, never repeated.
    let subjects = t.subjects().await;
    let contained = subjects
        .iter()
        .filter(|s| s.contains(" contained:"))
        .count();
    assert_eq!(contained, 1, "one containment notice: {subjects:?}");
    assert!(
        subjects.iter().all(|s| s.contains(" contained:")
            || s.contains("UNVERIFIED")
            || s.contains("containment FAILED")),
        "{subjects:?}"
    );
    let distinct: std::collections::BTreeSet<&String> = subjects.iter().collect();
    assert_eq!(
        distinct.len(),
        subjects.len(),
        "nothing told twice: {subjects:?}"
    );
    t.assert_faults_injected();
}

#[tokio::test]
async fn snapshot_copier_copies_to_dr_once_under_faults() {
    use aws_sdk_rds::types::Tag;
    const DR: &str = "us-west-2";
    let t = Faulty::new().await;
    let config = t.stack.moto.config();
    for (region, alias) in [(DR, "alias/steward-dr"), (REGION, "alias/app-data")] {
        t.stack
            .moto
            .post(
                "/_steward/kms/key",
                &json!({"account": HUB_ACCOUNT, "region": region, "alias": alias}),
            )
            .await
            .unwrap();
    }
    let rds = aws_sdk_rds::Client::new(&config);
    let mut snapshots = Vec::new();
    for (db, env) in [("prod-orders", "prod"), ("dev-orders", "dev")] {
        rds.create_db_instance()
            .db_instance_identifier(db)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .master_username("app")
            .master_user_password("test-only-password-1")
            .allocated_storage(20)
            .storage_encrypted(true)
            .kms_key_id("alias/app-data")
            .tags(Tag::builder().key("env").value(env).build())
            .send()
            .await
            .unwrap();
        let out = rds
            .describe_db_snapshots()
            .db_instance_identifier(db)
            .send()
            .await
            .unwrap();
        snapshots.push(out.db_snapshots()[0].db_snapshot_arn().unwrap().to_string());
    }
    let policy = format!("[snapshots]\ndr_region = \"{DR}\"\ndr_kms_key = \"alias/steward-dr\"\n");
    let mut f = t.start("snapshot-copier", &policy, &[]).await;
    for arn in &snapshots {
        let mut e = event("rds-snapshot-event-0091-automated.json");
        e["resources"] = json!([arn]);
        e["detail"]["SourceArn"] = json!(arn);
        e["detail"]["SourceIdentifier"] = json!(arn.splitn(7, ':').nth(6).unwrap());
        e["id"] = json!(unique("rds-event"));
        t.deliver(&mut f, &e).await;
        // Delivered again (at-least-once): no second copy.
        t.deliver(&mut f, &e).await;
    }
    let out = t.deliver(&mut f, &json!({"job": "sweep"})).await;
    println!("sweep: {out}");
    let west = aws_sdk_rds::Client::new(
        &config
            .to_builder()
            .region(aws_config::Region::new(DR))
            .build(),
    );
    let copies = west.describe_db_snapshots().send().await.unwrap();
    let copies: Vec<String> = copies
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "one DR copy, of the prod database only: {copies:?}"
    );
    assert!(copies[0].contains("prod-orders"), "{copies:?}");
    let subjects = t.subjects().await;
    assert_eq!(subjects.len(), 1, "one sweep digest: {subjects:?}");
    t.assert_faults_injected();
}

#[tokio::test]
async fn compliance_notifier_tells_each_change_once_under_faults() {
    let t = Faulty::new().await;
    t.stack
        .moto
        .post(
            "/_steward/config/items",
            &json!({"awsAccountId": HUB_ACCOUNT, "awsRegion": REGION,
                    "resourceType": "AWS::S3::Bucket", "resourceId": "steward-demo-logs",
                    "ARN": "arn:aws:s3:::steward-demo-logs",
                    "tags": {"project": "web", "env": "dev", "cost_center": "cc-1042"}}),
        )
        .await
        .unwrap();
    let rule = "s3-bucket-public-read-prohibited";
    t.stack
        .moto
        .post(
            "/_steward/config/compliance",
            &json!([
                {"rule": rule, "resourceType": "AWS::S3::Bucket", "resourceId": "steward-demo-logs", "complianceType": "NON_COMPLIANT"},
                {"rule": rule, "resourceType": "AWS::S3::Bucket", "resourceId": "steward-demo-assets", "complianceType": "NON_COMPLIANT"},
            ]),
        )
        .await
        .unwrap();
    let mut f = t.start("compliance-notifier", "", &[]).await;
    let broken = event("config-compliance-change.json");
    t.deliver(&mut f, &broken).await;
    t.deliver(&mut f, &broken).await;
    let after_break = t.subjects().await;
    assert_eq!(
        after_break.len(),
        1,
        "the change told once: {after_break:?}"
    );
    assert!(
        after_break[0].contains("NON_COMPLIANT") || after_break[0].contains("non-compliant"),
        "{after_break:?}"
    );
    let recovered = event("config-compliance-change-recovered.json");
    t.deliver(&mut f, &recovered).await;
    t.deliver(&mut f, &recovered).await;
    assert_eq!(
        t.subjects().await.len(),
        2,
        "the recovery told once: {:?}",
        t.subjects().await
    );
    t.deliver(&mut f, &json!({"job": "digest"})).await;
    let subjects = t.subjects().await;
    assert_eq!(subjects.len(), 3, "one digest: {subjects:?}");
    t.assert_faults_injected();
}

fn cost_result(groups: &[(&str, f64)]) -> Value {
    json!({
        "ResultsByTime": [{
            "TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"},
            "Total": {},
            "Groups": groups.iter().map(|(k, a)| json!({
                "Keys": [k],
                "Metrics": {"UnblendedCost": {"Amount": format!("{a:.2}"), "Unit": "USD"}}
            })).collect::<Vec<_>>(),
            "Estimated": true
        }],
        "DimensionValueAttributes": []
    })
}

#[tokio::test]
async fn budget_alerter_alerts_once_under_faults() {
    let t = Faulty::new().await;
    t.stack
        .moto
        .post(
            "/_steward/budgets/create",
            &json!({"account_id": HUB_ACCOUNT, "budget": {
                "BudgetName": "dev-monthly", "BudgetType": "COST", "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": "100.0", "Unit": "USD"},
                "CalculatedSpend": {"ActualSpend": {"Amount": "112.5", "Unit": "USD"},
                                    "ForecastedSpend": {"Amount": "140", "Unit": "USD"}}},
                "notifications": [{"Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                                                    "Threshold": 80.0, "ThresholdType": "PERCENTAGE"},
                                   "Subscribers": [{"SubscriptionType": "SNS", "Address": "arn:aws:sns:us-east-1:123456789012:steward-cost-events"}]}]}),
        )
        .await
        .unwrap();
    t.stack
        .moto
        .seed_cost_and_usage(&[
            cost_result(&[
                ("Amazon Elastic Compute Cloud - Compute", 70.0),
                ("Amazon Simple Storage Service", 42.5),
            ]),
            cost_result(&[("cost_center$team-a", 90.0), ("cost_center$", 22.5)]),
            cost_result(&[("env$dev", 100.0), ("env$", 12.5)]),
            cost_result(&[("Amazon Elastic Compute Cloud - Compute", 20.0)]),
        ])
        .await
        .unwrap();
    t.stack
        .moto
        .post("/_steward/ce/forecast", &json!({"amount": "150.00"}))
        .await
        .unwrap();
    let mut f = t.start("budget-alerter", "", &[]).await;
    let alert = event("budget-sns-actual.json");
    t.deliver(&mut f, &alert).await;
    t.deliver(&mut f, &alert).await;
    let subjects = t.subjects().await;
    assert_eq!(subjects.len(), 1, "one budget alert: {subjects:?}");
    assert!(subjects[0].contains("dev-monthly"), "{subjects:?}");
    t.assert_faults_injected();
}

/// Stages a rotation as Secrets Manager does (RotateSecret labels the new
/// version AWSPENDING, then fails to invoke the function offline).
async fn stage_rotation(sm: &aws_sdk_secretsmanager::Client, arn: &str) -> String {
    let token = uuid::Uuid::new_v4().to_string();
    let result = sm
        .rotate_secret()
        .secret_id(arn)
        .client_request_token(&token)
        .rotation_lambda_arn(format!(
            "arn:aws:lambda:{REGION}:{HUB_ACCOUNT}:function:secret-rotator"
        ))
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(90)
                .build(),
        )
        .send()
        .await;
    if let Err(e) = result {
        let text = aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string();
        assert!(
            text.contains("Resource not found for ARN"),
            "RotateSecret: {text}"
        );
    }
    token
}

async fn secret_value(sm: &aws_sdk_secretsmanager::Client, arn: &str, stage: &str) -> Value {
    let out = sm
        .get_secret_value()
        .secret_id(arn)
        .version_stage(stage)
        .send()
        .await
        .unwrap();
    serde_json::from_str(out.secret_string().unwrap()).unwrap()
}

#[tokio::test]
async fn secret_rotator_rotates_once_under_faults() {
    let t = Faulty::new().await;
    let pg = steward_tests::postgres::Postgres::start_with_tls()
        .await
        .unwrap();
    let ca = pg.tls.as_ref().unwrap().ca_cert.display().to_string();
    pg.setup_sql("CREATE ROLE orders_app WITH LOGIN PASSWORD 'initial-Pa55word-for-tests';")
        .await
        .unwrap();
    let sm = aws_sdk_secretsmanager::Client::new(&t.stack.moto.config());
    let secret = json!({"engine": "postgres", "host": "127.0.0.1", "port": pg.port, "dbname": "postgres",
                        "ssl": true, "username": "orders_app", "password": "initial-Pa55word-for-tests"});
    let arn = sm
        .create_secret()
        .name(unique("prod/orders/postgres"))
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let policy = format!("[rotation]\nca_bundle = \"{ca}\"\nconnect_timeout_seconds = 3\n");
    let mut f = t.start("secret-rotator", &policy, &[]).await;
    let token = stage_rotation(&sm, &arn).await;
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let mut e = event("secretsmanager-create-secret.json");
        e["Step"] = json!(step);
        e["SecretId"] = json!(arn);
        e["ClientRequestToken"] = json!(token);
        let out = t.deliver(&mut f, &e).await;
        println!("{step}: {}", out["result"]);
    }
    let current = secret_value(&sm, &arn, "AWSCURRENT").await;
    let new_password = current["password"].as_str().unwrap();
    assert_ne!(new_password, "initial-Pa55word-for-tests", "rotated");
    assert!(
        pg.can_login("orders_app", new_password, "postgres")
            .await
            .unwrap(),
        "the database takes the new password"
    );
    assert!(
        !pg.can_login("orders_app", "initial-Pa55word-for-tests", "postgres")
            .await
            .unwrap(),
        "the old password is gone"
    );
    // Exactly one new version, the staged one, now current.
    let versions = sm
        .list_secret_version_ids()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    let current_ids: Vec<&str> = versions
        .versions()
        .iter()
        .filter(|v| v.version_stages().iter().any(|s| s == "AWSCURRENT"))
        .filter_map(|v| v.version_id())
        .collect();
    assert_eq!(current_ids, vec![token.as_str()]);
    assert!(
        versions.versions().len() <= 2,
        "one version added: {versions:?}"
    );
    // At most one notice that it rotated; a step that failed before its
    // retry succeeded alerted the team once (Secrets Manager retries it).
    let subjects = t.subjects().await;
    let rotated = subjects.iter().filter(|s| s.contains(" rotated")).count();
    assert!(rotated <= 1, "{subjects:?}");
    assert!(
        subjects
            .iter()
            .all(|s| s.contains(" rotated") || s.contains("failed at")),
        "{subjects:?}"
    );
    let distinct: std::collections::BTreeSet<&String> = subjects.iter().collect();
    assert_eq!(
        distinct.len(),
        subjects.len(),
        "nothing told twice: {subjects:?}"
    );
    t.assert_faults_injected();
}
