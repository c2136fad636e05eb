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

/// The share of requests that get a fault.
const RATE: f64 = 0.3;
/// The seed of every test's faults.
const SEED: u64 = 11;
/// Deliveries of one event before the test gives up (Lambda's asynchronous
/// invocations are tried 3 times; SQS redelivers until the queue's
/// maxReceiveCount, 5 in the templates; a few more absorb unlucky streaks).
const DELIVERIES: usize = 8;

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
        let proxy = FaultProxy::start(&stack.moto.endpoint, FaultPlan::new(SEED, RATE))
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
        for _ in 0..DELIVERIES {
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
                Ok(Outcome::Error(e)) => errors.push(e.to_string()),
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

    /// Faults were really injected (the test proves nothing otherwise).
    fn assert_faults_injected(&self) {
        let counts = self.proxy.counts();
        println!("faults: {counts}");
        assert!(
            counts.injected() >= 3,
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
    // Nothing stopped twice: prod never named, each dev instance in stops
    // that succeeded at most once per run.
    let stops = t.ec2_calls("StopInstances").await;
    assert!(
        stops
            .iter()
            .all(|c| !c["params"].to_string().contains(&prod)),
        "prod never stopped: {stops:#?}"
    );
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
    use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpc = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
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
    let subjects = t.subjects().await;
    assert_eq!(subjects.len(), 1, "one notification: {subjects:?}");
    t.assert_faults_injected();
}
