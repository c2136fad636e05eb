//! The off-hours scheduler end to end: the built binary under the Lambda
//! Runtime API emulator, against moto, with a fleet of every governed
//! resource type and the security team's inbox subscribed.

use std::collections::HashMap;

use aws_config::SdkConfig;
use serde_json::{json, Value};
use steward_tests::fixtures::{self, in_region, Launch};
use steward_tests::inbox::Received;
use steward_tests::moto::{HUB_ACCOUNT, REGION};
use steward_tests::organizations;
use steward_tests::runtime_api::Function;
use steward_tests::stack::{Stack, MEMBER_ACCOUNT, MEMBER_ROLE};
use steward_tests::{event, function_binary, unique};

/// Friday 2026-11-20, five minutes after the default 19:00 off transition.
const FRIDAY_EVENING: &str = "2026-11-20T19:05:00Z";
/// Saturday noon: no transition.
const SATURDAY_NOON: &str = "2026-11-21T12:00:00Z";
/// Monday 2026-11-23, five minutes after the 07:00 on transition.
const MONDAY_MORNING: &str = "2026-11-23T07:05:00Z";

/// The EventBridge scheduled-rule fixture at `time` with a fresh id.
fn scheduled(time: &str) -> Value {
    let mut e = event("scheduler-eventbridge-rule.json");
    e["id"] = json!(uuid::Uuid::new_v4().to_string());
    e["time"] = json!(time);
    e
}

async fn instance(config: &SdkConfig, tags: &[(&str, &str)], hibernation: bool) -> String {
    let launch = Launch {
        count: 1,
        tags,
        hibernation,
    };
    fixtures::launch(config, launch).await.unwrap().remove(0)
}

async fn instance_state(config: &SdkConfig, id: &str) -> String {
    fixtures::instance_state(config, id).await.unwrap()
}

async fn instance_tags(config: &SdkConfig, id: &str) -> HashMap<String, String> {
    fixtures::instance_tags(config, id).await.unwrap()
}

async fn asg(config: &SdkConfig, name: &str, tags: &[(&str, &str)], sizes: (i32, i32, i32)) {
    fixtures::auto_scaling_group(config, name, tags, sizes)
        .await
        .unwrap()
}

async fn asg_capacity(
    config: &SdkConfig,
    name: &str,
) -> ((i32, i32, i32), HashMap<String, String>) {
    let out = aws_sdk_autoscaling::Client::new(config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    let g = &out.auto_scaling_groups()[0];
    let tags = g
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (
        (
            g.min_size().unwrap(),
            g.max_size().unwrap(),
            g.desired_capacity().unwrap(),
        ),
        tags,
    )
}

fn rds_tags(tags: &[(&str, &str)]) -> Vec<aws_sdk_rds::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
        .collect()
}

async fn db_instance(config: &SdkConfig, id: &str, tags: &[(&str, &str)], cluster: Option<&str>) {
    let rds = aws_sdk_rds::Client::new(config);
    let mut request = rds
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .set_tags(Some(rds_tags(tags)));
    request = match cluster {
        Some(c) => request.engine("aurora-postgresql").db_cluster_identifier(c),
        None => request
            .engine("postgres")
            .allocated_storage(20)
            .master_username("app")
            .master_user_password("not-a-secret-1"),
    };
    request.send().await.unwrap();
}

async fn db_status(config: &SdkConfig, id: &str) -> String {
    let out = aws_sdk_rds::Client::new(config)
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap();
    out.db_instances()[0]
        .db_instance_status()
        .unwrap()
        .to_string()
}

async fn aurora(config: &SdkConfig, id: &str, tags: &[(&str, &str)]) {
    aws_sdk_rds::Client::new(config)
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("app")
        .master_user_password("not-a-secret-1")
        .set_tags(Some(rds_tags(tags)))
        .send()
        .await
        .unwrap();
}

async fn cluster_status(config: &SdkConfig, id: &str) -> String {
    let out = aws_sdk_rds::Client::new(config)
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .unwrap();
    out.db_clusters()[0].status().unwrap().to_string()
}

async fn ecs_service(
    config: &SdkConfig,
    cluster: &str,
    name: &str,
    desired: i32,
    tags: &[(&str, &str)],
) -> String {
    let ecs = aws_sdk_ecs::Client::new(config);
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family(name)
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("api")
                .image("flask-api:1")
                .memory(256)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut request = ecs
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(name)
        .desired_count(desired);
    for (k, v) in tags {
        request = request.tags(aws_sdk_ecs::types::Tag::builder().key(*k).value(*v).build());
    }
    request
        .send()
        .await
        .unwrap()
        .service()
        .unwrap()
        .service_arn()
        .unwrap()
        .to_string()
}

async fn ecs_desired(
    config: &SdkConfig,
    cluster: &str,
    name: &str,
) -> (i32, HashMap<String, String>) {
    let out = aws_sdk_ecs::Client::new(config)
        .describe_services()
        .cluster(cluster)
        .services(name)
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .unwrap();
    let s = &out.services()[0];
    (
        s.desired_count(),
        s.tags()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
            .collect(),
    )
}

/// The test fleet: what a Friday-evening run must stop, and what it must leave.
struct Fleet {
    dev: String,
    dev_hibernating: String,
    prod: String,
    untagged: String,
    opted_out: String,
    exempt: String,
    malformed: String,
}

async fn fleet(config: &SdkConfig) -> Fleet {
    let f = Fleet {
        dev: instance(config, &[("env", "dev"), ("project", "web")], false).await,
        dev_hibernating: instance(config, &[("env", "dev")], true).await,
        prod: instance(config, &[("env", "prod")], false).await,
        untagged: instance(config, &[], false).await,
        opted_out: instance(
            config,
            &[("env", "dev"), ("steward:offhours", "off")],
            false,
        )
        .await,
        exempt: instance(config, &[("env", "dev"), ("steward:exempt", "true")], false).await,
        malformed: instance(
            config,
            &[("env", "dev"), ("steward:offhours", "off=(M-F,19;on=")],
            false,
        )
        .await,
    };
    asg(config, "dev-workers", &[("env", "dev")], (1, 3, 2)).await;
    asg(
        config,
        "dev-eks-owned",
        &[("env", "dev"), ("eks:nodegroup-name", "ng")],
        (1, 2, 1),
    )
    .await;
    asg(config, "prod-workers", &[("env", "prod")], (1, 2, 1)).await;
    db_instance(config, "dev-postgres", &[("env", "dev")], None).await;
    db_instance(config, "prod-postgres", &[("env", "prod")], None).await;
    aurora(config, "dev-aurora", &[("env", "dev")]).await;
    db_instance(
        config,
        "dev-aurora-1",
        &[("env", "dev")],
        Some("dev-aurora"),
    )
    .await;
    ecs_service(config, "dev-cluster", "api", 2, &[("env", "dev")]).await;
    ecs_service(config, "prod-cluster", "api", 3, &[("env", "prod")]).await;
    f
}

fn digest(received: &[Received]) -> &Received {
    assert_eq!(
        received.len(),
        1,
        "one digest per run: {:#?}",
        received.iter().map(|r| &r.subject).collect::<Vec<_>>()
    );
    &received[0]
}

#[tokio::test]
async fn friday_stops_exactly_the_right_ones_weekend_does_nothing_monday_restores() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let f = fleet(&config).await;
    let mut scheduler = stack
        .function("offhours-scheduler", "[offhours]\nhibernate = true\n", &[])
        .await;

    // Friday evening.
    let out = scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert_eq!(out["notification"], "sent", "{out:#}");
    assert_eq!(instance_state(&config, &f.dev).await, "stopped");
    assert_eq!(instance_state(&config, &f.dev_hibernating).await, "stopped");
    for (name, id) in [
        ("prod", &f.prod),
        ("untagged", &f.untagged),
        ("opted out", &f.opted_out),
        ("exempt", &f.exempt),
        ("malformed", &f.malformed),
    ] {
        assert_eq!(
            instance_state(&config, id).await,
            "running",
            "{name} must keep running"
        );
    }
    let (capacity, tags) = asg_capacity(&config, "dev-workers").await;
    assert_eq!(capacity, (0, 0, 0));
    assert_eq!(tags["steward:saved-capacity"], "1:3:2");
    assert_eq!(
        asg_capacity(&config, "dev-eks-owned").await.0,
        (1, 2, 1),
        "left to its EKS node group"
    );
    assert_eq!(asg_capacity(&config, "prod-workers").await.0, (1, 2, 1));
    assert_eq!(db_status(&config, "dev-postgres").await, "stopped");
    assert_eq!(db_status(&config, "prod-postgres").await, "available");
    assert_eq!(cluster_status(&config, "dev-aurora").await, "stopped");
    let (desired, tags) = ecs_desired(&config, "dev-cluster", "api").await;
    assert_eq!((desired, tags["steward:saved-capacity"].as_str()), (0, "2"));
    assert_eq!(ecs_desired(&config, "prod-cluster", "api").await.0, 3);
    // The plan as the function reported it: hibernation decided from HibernationOptions.Configured.
    let done: Vec<&Value> = out["targets"][0]["done"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let outcome = |id: &str| {
        done.iter()
            .find(|d| d["id"] == id)
            .map(|d| d["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome(&f.dev_hibernating).as_deref(), Some("hibernated"));
    assert_eq!(outcome(&f.dev).as_deref(), Some("stopped"));
    assert_eq!(outcome(&f.exempt).as_deref(), Some("skipped"));
    assert_eq!(
        outcome("dev-aurora-1").as_deref(),
        Some("skipped"),
        "Aurora member left to its cluster"
    );
    assert_eq!(outcome(&f.prod), None, "prod is never in a plan");
    assert_eq!(outcome(&f.untagged), None);
    assert_eq!(outcome(&f.opted_out), None);

    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    assert!(
        m.subject
            .starts_with("[steward] INFO offhours: off-hours run: 6 stopped, 0 started, 6 skipped"),
        "{}",
        m.subject
    );
    assert_eq!(m.attributes["category"], "offhours");
    assert_eq!(m.attributes["severity"], "INFO");
    assert_eq!(m.attributes["account"], HUB_ACCOUNT);
    assert_eq!(m.attributes["environment"], "dev");
    assert_eq!(m.chat["metadata"]["eventType"], "steward.offhours.digest");
    let text = m.description();
    assert!(text.contains(&format!("malformed steward:offhours=\"off=(M-F,19;on=\" on arn:aws:ec2:{REGION}:{HUB_ACCOUNT}:instance/{}", f.malformed)), "{text}");
    assert!(text.contains("steward:exempt=true"), "{text}");
    assert!(
        text.contains("belongs to Auto Scaling group dev-workers"),
        "{text}"
    );
    assert!(
        text.contains("is a member of DB cluster dev-aurora"),
        "{text}"
    );

    // The same delivery again: harmless, and no second digest.
    let again = scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert_eq!(again["notification"], "duplicate", "{again:#}");
    assert!(stack.inbox.drain().await.unwrap().is_empty());

    // Saturday noon: a developer starts the dev instance by hand; no transition, nothing happens.
    start_by_hand(&config, &f.dev).await;
    let saturday = scheduler.response_to(&scheduled(SATURDAY_NOON)).await;
    assert_eq!(saturday["notification"], "none", "{saturday:#}");
    assert_eq!(
        instance_state(&config, &f.dev).await,
        "running",
        "started by hand: stays up"
    );
    assert_eq!(instance_state(&config, &f.dev_hibernating).await, "stopped");
    assert!(stack.inbox.drain().await.unwrap().is_empty());

    // Monday morning: everything comes back, capacities exactly.
    let monday = scheduler.response_to(&scheduled(MONDAY_MORNING)).await;
    assert_eq!(monday["notification"], "sent", "{monday:#}");
    assert_eq!(instance_state(&config, &f.dev_hibernating).await, "running");
    assert_eq!(asg_capacity(&config, "dev-workers").await.0, (1, 3, 2));
    assert_eq!(db_status(&config, "dev-postgres").await, "available");
    assert_eq!(cluster_status(&config, "dev-aurora").await, "available");
    assert_eq!(ecs_desired(&config, "dev-cluster", "api").await.0, 2);
    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    assert!(m.subject.contains("0 stopped, 5 started"), "{}", m.subject);

    let logs = scheduler.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("\"Namespace\":\"Steward\"") && l.contains("\"ActionsTaken\":6")),
        "{logs:#?}"
    );
    assert!(scheduler.logs_are_json(), "every line is JSON");
    assert!(!logs.iter().any(|l| l.contains("not-a-secret-1")));
}

#[tokio::test]
async fn late_run_acts_and_holiday_keeps_things_off() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let dev = instance(&config, &[("env", "dev")], false).await;
    let mut scheduler = stack
        .function(
            "offhours-scheduler",
            "[offhours]\nholidays = [\"2026-11-23\"]\n",
            &[],
        )
        .await;
    // Fourteen minutes late (interval 15): still inside the window.
    let out = scheduler
        .response_to(&scheduled("2026-11-20T19:14:00Z"))
        .await;
    assert_eq!(
        out["targets"][0]["done"][0]["outcome"], "stopped",
        "{out:#}"
    );
    assert_eq!(instance_state(&config, &dev).await, "stopped");
    // Sixteen minutes late: outside the window, nothing (the previous run acted).
    let mut late = stack.function("offhours-scheduler", "", &[]).await;
    let other = instance(&config, &[("env", "dev")], false).await;
    let out = late.response_to(&scheduled("2026-11-20T19:16:00Z")).await;
    assert!(
        out["targets"][0]["done"].as_array().unwrap().is_empty(),
        "{out:#}"
    );
    assert_eq!(instance_state(&config, &other).await, "running");
    // Monday is a holiday: no start.
    stack.inbox.drain().await.unwrap();
    let out = scheduler.response_to(&scheduled(MONDAY_MORNING)).await;
    assert_eq!(out["notification"], "none", "{out:#}");
    assert_eq!(instance_state(&config, &dev).await, "stopped");
    // Tuesday morning it starts.
    scheduler
        .response_to(&scheduled("2026-11-24T07:05:00Z"))
        .await;
    assert_eq!(instance_state(&config, &dev).await, "running");
}

#[tokio::test]
async fn seven_day_restart_is_undone_in_off_time_only() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    db_instance(&config, "dev-postgres", &[("env", "dev")], None).await;
    db_instance(&config, "prod-postgres", &[("env", "prod")], None).await;
    aurora(&config, "dev-aurora", &[("env", "dev")]).await;
    let mut scheduler = stack
        .function(
            "offhours-scheduler",
            "[offhours]\nrestart_wait_seconds = 30\n",
            &[],
        )
        .await;
    // Sunday 03:12: RDS started dev-postgres after seven days stopped.
    let out = scheduler
        .response_to(&event("rds-event-0154-instance-restarted.json"))
        .await;
    assert_eq!(out["outcome"], "stopped", "{out:#}");
    assert_eq!(db_status(&config, "dev-postgres").await, "stopped");
    let out = scheduler
        .response_to(&event("rds-event-0153-cluster-restarted.json"))
        .await;
    assert_eq!(out["outcome"], "stopped", "{out:#}");
    assert_eq!(cluster_status(&config, "dev-aurora").await, "stopped");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 2);
    assert!(
        received[0]
            .subject
            .contains("restarted by RDS after 7 days: stopped"),
        "{}",
        received[0].subject
    );
    assert_eq!(
        received[0].chat["metadata"]["eventType"],
        "steward.offhours.restart-undone"
    );
    // A prod database is never stopped again; neither is a dev one in its on time.
    let mut prod = event("rds-event-0154-instance-restarted.json");
    prod["id"] = json!("prod-restart");
    prod["detail"]["SourceIdentifier"] = json!("prod-postgres");
    let out = scheduler.response_to(&prod).await;
    assert!(
        out["left_running"]
            .as_str()
            .unwrap()
            .contains("environments"),
        "{out:#}"
    );
    assert_eq!(db_status(&config, "prod-postgres").await, "available");
    aws_sdk_rds::Client::new(&config)
        .start_db_instance()
        .db_instance_identifier("dev-postgres")
        .send()
        .await
        .unwrap();
    let mut tuesday = event("rds-event-0154-instance-restarted.json");
    tuesday["id"] = json!("tuesday-restart");
    tuesday["time"] = json!("2026-11-24T11:00:00Z");
    let out = scheduler.response_to(&tuesday).await;
    assert!(
        out["left_running"].as_str().unwrap().contains("on time"),
        "{out:#}"
    );
    assert_eq!(db_status(&config, "dev-postgres").await, "available");
}

#[tokio::test]
async fn cross_account_target_is_reached_through_the_member_role() {
    let stack = Stack::new().await;
    let member = stack.member_config().await;
    let there = instance(&member, &[("env", "dev")], false).await;
    let here = instance(&stack.moto.config(), &[("env", "dev")], false).await;
    let policy = format!("[targets]\naccounts = [\"{MEMBER_ACCOUNT}\"]\n");
    let mut scheduler = stack.function("offhours-scheduler", &policy, &[]).await;
    let out = scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert_eq!(
        out["targets"][0]["target"]["account"], MEMBER_ACCOUNT,
        "{out:#}"
    );
    assert_eq!(instance_state(&member, &there).await, "stopped");
    assert_eq!(
        instance_state(&stack.moto.config(), &here).await,
        "running",
        "the hub is not a target"
    );
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(digest(&received).attributes["account"], MEMBER_ACCOUNT);
}

#[tokio::test]
async fn sqs_fan_out_reports_only_the_failing_target() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = work_queue(&config).await;
    let hub = instance(&config, &[("env", "dev")], false).await;
    let member = stack.member_config().await;
    let there = instance(&member, &[("env", "dev")], false).await;
    // Two targets fanned out; a third work item names a region the emulator does not know.
    let policy = format!(
        "[targets]\naccounts = [\"{HUB_ACCOUNT}\", \"{MEMBER_ACCOUNT}\"]\nregions = [\"{REGION}\"]\n[offhours]\nfan_out_above = 1\n# The run is replayed at a fixed past date: allow its work items to be old.\nmax_work_item_age_minutes = 100000000\n"
    );
    let mut fan = fan_out_scheduler(&stack, &policy, &queue).await;
    let out = fan.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert_eq!(out["fanned_out"], 2, "{out:#}");
    assert_eq!(
        instance_state(&config, &hub).await,
        "running",
        "the fan-out run itself changes nothing"
    );
    let mut records = Vec::new();
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    for m in received.messages() {
        records.push(json!({"messageId": m.message_id().unwrap(), "body": m.body().unwrap(), "eventSource": "aws:sqs", "awsRegion": REGION}));
    }
    assert_eq!(records.len(), 2);
    records.push(json!({
        "messageId": "failing-target",
        "body": json!({"account": HUB_ACCOUNT, "region": "xx-nowhere-1", "time": FRIDAY_EVENING}).to_string(),
        "eventSource": "aws:sqs",
        "awsRegion": REGION
    }));
    let out = fan.response_to(&json!({"Records": records})).await;
    assert_eq!(
        out["batchItemFailures"],
        json!([{"itemIdentifier": "failing-target"}]),
        "{out:#}"
    );
    assert_eq!(instance_state(&config, &hub).await, "stopped");
    assert_eq!(instance_state(&member, &there).await, "stopped");
    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    assert_eq!(m.attributes["severity"], "MEDIUM");
    assert_eq!(m.attributes["account"], "multiple");
    assert!(
        m.subject.contains("2 stopped") && m.subject.contains("1 target(s) failed"),
        "{}",
        m.subject
    );
    let text = m.description();
    assert!(
        text.contains(&format!("target {HUB_ACCOUNT}/xx-nowhere-1 failed")),
        "{text}"
    );
    assert!(
        !text.contains(&format!("target {MEMBER_ACCOUNT}/{REGION} failed")),
        "{text}"
    );
}

#[tokio::test]
async fn blast_radius_limit_changes_nothing_and_alerts_high() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let a = instance(&config, &[("env", "dev")], false).await;
    let b = instance(&config, &[("env", "dev")], false).await;
    let mut scheduler = stack
        .function(
            "offhours-scheduler",
            "[limits]\nmax_changes_per_run = 1\n",
            &[],
        )
        .await;
    let out = scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert!(
        out["blocked"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{out:#}"
    );
    assert_eq!(instance_state(&config, &a).await, "running");
    assert_eq!(instance_state(&config, &b).await, "running");
    assert_one_high_blast_radius_alert(&stack, "steward.offhours.blast-radius").await;
}

#[tokio::test]
async fn dry_run_changes_nothing_and_bad_events_fail_clearly() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let dev = instance(&config, &[("env", "dev")], false).await;
    let mut scheduler = stack
        .function("offhours-scheduler", "", &[("STEWARD_DRY_RUN", "true")])
        .await;
    let out = scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert_eq!(
        out["targets"][0]["done"][0]["outcome"], "would be stopped",
        "{out:#}"
    );
    assert_eq!(instance_state(&config, &dev).await, "running");
    let received = stack.inbox.drain().await.unwrap();
    assert!(digest(&received).subject.contains("(DRY RUN)"));
    let error = scheduler
        .error_for(&json!({"scheduledTime": "<aws.scheduler.scheduled-time>"}))
        .await;
    assert!(error.to_string().contains("unexpanded template"), "{error}");
    // The EventBridge Scheduler payload works as a trigger.
    let mut live = stack.function("offhours-scheduler", "", &[]).await;
    let mut payload = event("scheduler-eventbridge-scheduler.json");
    payload["scheduledTime"] = json!(FRIDAY_EVENING);
    live.response_to(&payload).await;
    assert_eq!(instance_state(&config, &dev).await, "stopped");
}

/// Needs the emulator's EKS node-group tagging extension (moto 5.2.5 tags clusters only).
#[tokio::test]
async fn eks_node_group_scales_to_zero_and_back_exactly() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let eks = aws_sdk_eks::Client::new(&config);
    eks.create_cluster()
        .name("dev-eks")
        .role_arn(format!("arn:aws:iam::{HUB_ACCOUNT}:role/eks"))
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    eks.create_nodegroup()
        .cluster_name("dev-eks")
        .nodegroup_name("workers")
        .node_role(format!("arn:aws:iam::{HUB_ACCOUNT}:role/node"))
        .subnets("subnet-1")
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder()
                .min_size(1)
                .max_size(4)
                .desired_size(3)
                .build(),
        )
        .tags("env", "dev")
        .send()
        .await
        .unwrap();
    let scaling = |eks: aws_sdk_eks::Client| async move {
        let g = eks
            .describe_nodegroup()
            .cluster_name("dev-eks")
            .nodegroup_name("workers")
            .send()
            .await
            .unwrap();
        let g = g.nodegroup().unwrap().clone();
        let s = g.scaling_config().unwrap();
        (
            (
                s.min_size().unwrap(),
                s.max_size().unwrap(),
                s.desired_size().unwrap(),
            ),
            g.tags().cloned().unwrap_or_default(),
        )
    };
    let mut scheduler = stack.function("offhours-scheduler", "", &[]).await;
    let out = scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    let (capacity, tags) = scaling(eks.clone()).await;
    assert_eq!(capacity, (0, 4, 0), "{out:#}");
    assert_eq!(tags["steward:saved-capacity"], "1:4:3");
    scheduler.response_to(&scheduled(MONDAY_MORNING)).await;
    assert_eq!(scaling(eks).await.0, (1, 4, 3));
}

#[tokio::test]
async fn steward_plan_shows_the_run_and_changes_nothing() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let dev = instance(&config, &[("env", "dev")], false).await;
    let prod = instance(&config, &[("env", "prod")], false).await;
    let output = tokio::process::Command::new(function_binary("steward"))
        .args(["plan", "--at", FRIDAY_EVENING, "--json"])
        .env_clear()
        .envs(stack.moto.env())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["changes"], 1, "{plan:#}");
    let items = plan["targets"][0]["items"].as_array().unwrap();
    assert_eq!(items[0]["resource"]["id"], dev.as_str());
    assert_eq!(items[0]["decision"], "stop");
    assert!(!items.iter().any(|i| i["resource"]["id"] == prod.as_str()));
    assert_eq!(
        instance_state(&config, &dev).await,
        "running",
        "plan changes nothing"
    );
    assert!(stack.inbox.drain().await.unwrap().is_empty());
}

/// Issue 14: the account is a floor. An `env=dev` instance in an account that
/// `tagging.account_environments` maps to `prod` is not stopped, and the
/// digest says so; `allow_mixed_accounts = true` allows it explicitly.
#[tokio::test]
async fn account_floor_keeps_dev_tagged_instance_in_prod_account_running() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let dev = instance(&config, &[("env", "dev")], false).await;
    let policy = format!("[tagging.account_environments]\n\"{HUB_ACCOUNT}\" = \"prod\"\n");
    let mut scheduler = stack.function("offhours-scheduler", &policy, &[]).await;
    let out = scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert_eq!(instance_state(&config, &dev).await, "running", "{out:#}");
    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    let text = m.description();
    assert!(
        text.contains(&format!("skipped ec2-instance {dev}")) && text.contains("account floor"),
        "{text}"
    );
    assert!(text.contains("mapped to prod"), "{text}");
    assert_eq!(
        m.chat["metadata"]["additionalContext"]["account_floor_skips"], "1",
        "{:#}",
        m.chat
    );
    // Mixed accounts allowed explicitly: the tag decides again.
    let mut mixed = stack
        .function(
            "offhours-scheduler",
            &format!("{policy}[offhours]\nallow_mixed_accounts = true\n"),
            &[],
        )
        .await;
    mixed.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert_eq!(instance_state(&config, &dev).await, "stopped");
}

/// Issue 14: a resource whose `env` changed since the previous run of its
/// target is reported in the digest (even in a run with no transition).
#[tokio::test]
async fn changed_env_tag_is_reported_in_the_next_digest() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let orders = instance(&config, &[("env", "prod")], false).await;
    let mut scheduler = stack.function("offhours-scheduler", "", &[]).await;
    scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    stack.inbox.drain().await.unwrap();
    aws_sdk_ec2::Client::new(&config)
        .create_tags()
        .resources(&orders)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("env")
                .value("dev")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let out = scheduler.response_to(&scheduled(SATURDAY_NOON)).await;
    assert_eq!(instance_state(&config, &orders).await, "running", "{out:#}");
    let received = stack.inbox.drain().await.unwrap();
    let text = digest(&received).description();
    assert!(
        text.contains(&format!(
            "env changed on arn:aws:ec2:{REGION}:{HUB_ACCOUNT}:instance/{orders}: env=prod -> env=dev"
        )),
        "{text}"
    );
    // The next run compares with the new value: nothing to report.
    scheduler
        .response_to(&scheduled("2026-11-21T12:15:00Z"))
        .await;
    assert!(stack.inbox.drain().await.unwrap().is_empty());
}

/// Issue 9 section 4: a work item older than `max_work_item_age_minutes` is
/// reported and dropped (never replayed); an extreme `time` is a bad item,
/// not a crash.
#[tokio::test]
async fn stale_work_items_are_reported_and_dropped_extreme_times_do_not_crash() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let dev = instance(&config, &[("env", "dev")], false).await;
    let mut scheduler = stack.function("offhours-scheduler", "", &[]).await;
    let record = |id: &str, time: &str| {
        json!({
            "messageId": id,
            "body": json!({"account": HUB_ACCOUNT, "region": REGION, "time": time}).to_string(),
            "eventSource": "aws:sqs",
            "awsRegion": REGION
        })
    };
    let out = scheduler
        .response_to(&json!({"Records": [
            record("friday-redriven", FRIDAY_EVENING),
            record("far-future", "+262142-12-31T23:59:59Z"),
            record("year-zero", "0000-01-01T00:00:00Z"),
        ]}))
        .await;
    assert_eq!(instance_state(&config, &dev).await, "running", "{out:#}");
    let failed: Vec<&str> = out["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    assert_eq!(failed, vec!["far-future", "year-zero"], "{out:#}");
    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    assert_eq!(m.attributes["severity"], "MEDIUM");
    assert_eq!(
        m.chat["metadata"]["eventType"],
        "steward.offhours.stale-work"
    );
    assert!(
        m.description().contains("friday-redriven"),
        "{}",
        m.description()
    );
    // The function is still alive after the extreme times.
    let out = scheduler.response_to(&scheduled(SATURDAY_NOON)).await;
    assert!(out.get("window").is_some(), "{out:#}");
}

/// One work-queue record as Lambda's SQS poller delivers it.
fn sqs_record(message_id: &str, body: &Value) -> Value {
    json!({
        "messageId": message_id,
        "body": body.to_string(),
        "eventSource": "aws:sqs",
        "awsRegion": REGION
    })
}

/// Issue 17: a `budget-stop` job from the budget alerter stops the dev
/// resources of its account and region (prod untouched, exempt skipped), tags
/// them with the hold, notifies once (dry-run first: nothing written), and
/// the held instance stays stopped through the next off-hours start while an
/// unheld one in another region is started.
#[tokio::test]
async fn budget_stop_holds_dev_through_the_next_morning_and_leaves_prod() {
    use chrono::{Datelike, Duration, Utc};
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let dev = instance(&config, &[("env", "dev")], false).await;
    let prod = instance(&config, &[("env", "prod")], false).await;
    let exempt = instance(
        &config,
        &[("env", "dev"), ("steward:exempt", "true")],
        false,
    )
    .await;
    let elsewhere = config
        .to_builder()
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    let unheld = instance(&elsewhere, &[("env", "dev")], false).await;
    stop_by_hand(&elsewhere, &unheld).await;

    let now = Utc::now();
    let period_start = now.date_naive();
    let period_end = period_start + Duration::days(20);
    let job = json!({
        "job": "budget-stop", "account": HUB_ACCOUNT, "region": REGION,
        "budget": "dev-monthly",
        "period_start": period_start.to_string(), "period_end": period_end.to_string(),
        "time": now.to_rfc3339(),
    });
    let policy = format!("[targets]\nregions = [\"{REGION}\", \"eu-west-1\"]\n");

    // A job for an account the scheduler does not govern is refused.
    let mut foreign = job.clone();
    foreign["account"] = json!(MEMBER_ACCOUNT);
    let mut scheduler = stack.function("offhours-scheduler", &policy, &[]).await;
    let out = scheduler
        .response_to(&json!({"Records": [sqs_record("foreign", &foreign)]}))
        .await;
    assert_eq!(
        out["batchItemFailures"],
        json!([{"itemIdentifier": "foreign"}]),
        "{out:#}"
    );
    assert!(
        out["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a target"),
        "{out:#}"
    );
    assert!(stack.inbox.drain().await.unwrap().is_empty());

    // A job older than max_work_item_age_minutes (60) is reported and dropped.
    let mut stale_job = job.clone();
    stale_job["time"] = json!((now - Duration::minutes(90)).to_rfc3339());
    let out = scheduler
        .response_to(&json!({"Records": [sqs_record("stale", &stale_job)]}))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert_eq!(instance_state(&config, &dev).await, "running");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(
        digest(&received).chat["metadata"]["eventType"],
        "steward.offhours.stale-work"
    );
    let records_before = stack.idempotency_records().await;

    // Dry-run: the plan is reported, nothing is written.
    let mut dry = stack
        .function(
            "offhours-scheduler",
            &policy,
            &[("STEWARD_DRY_RUN", "true")],
        )
        .await;
    let out = dry
        .response_to(&json!({"Records": [sqs_record("dry", &job)]}))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert_eq!(instance_state(&config, &dev).await, "running");
    assert!(!instance_tags(&config, &dev)
        .await
        .contains_key("steward:budget-hold"));
    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    assert!(m.subject.contains("(DRY RUN)"), "{}", m.subject);
    assert!(m.subject.contains("1 would be stopped"), "{}", m.subject);
    assert_eq!(
        stack.idempotency_records().await,
        records_before,
        "dry-run writes no record"
    );

    // Live: dev stopped and held, prod untouched, exempt skipped; one message.
    let out = scheduler
        .response_to(&json!({"Records": [sqs_record("first", &job)]}))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert_eq!(instance_state(&config, &dev).await, "stopped");
    assert_eq!(
        instance_tags(&config, &dev).await["steward:budget-hold"],
        period_end.to_string()
    );
    assert_eq!(instance_state(&config, &prod).await, "running");
    assert!(!instance_tags(&config, &prod)
        .await
        .contains_key("steward:budget-hold"));
    assert_eq!(instance_state(&config, &exempt).await, "running");
    assert_eq!(instance_state(&elsewhere, &unheld).await, "stopped");
    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    assert_eq!(m.attributes["category"], "budget");
    assert_eq!(m.attributes["account"], HUB_ACCOUNT);
    assert_eq!(m.attributes["region"], REGION);
    assert_eq!(
        m.chat["metadata"]["eventType"],
        "steward.budget.dev-stop-result"
    );
    assert!(
        m.subject.contains("1 stopped, 0 held, 1 skipped"),
        "{}",
        m.subject
    );
    let text = m.description();
    assert!(
        text.contains(&format!("stopped and held ec2-instance {dev}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "skipped ec2-instance {exempt}: steward:exempt=true"
        )),
        "{text}"
    );
    assert!(!text.contains(&prod), "prod is never in the plan: {text}");
    assert!(
        m.chat["content"]["nextSteps"]
            .to_string()
            .contains("To undo: remove the tag steward:budget-hold"),
        "{:#}",
        m.chat
    );

    // Redelivered in another batch: nothing stopped or sent twice.
    start_by_hand(&config, &dev).await;
    let out = scheduler
        .response_to(&json!({"Records": [sqs_record("redelivered", &job)]}))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert_eq!(
        instance_state(&config, &dev).await,
        "running",
        "the job was carried out already; a redelivery stops nothing again"
    );
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    stop_by_hand(&config, &dev).await;

    // The next weekday morning start inside the period: the held instance stays stopped.
    let mut monday = now.date_naive() + Duration::days(1);
    while monday.weekday() != chrono::Weekday::Mon {
        monday += Duration::days(1);
    }
    assert!(monday < period_end);
    let morning = format!("{monday}T07:05:00Z");
    let out = scheduler.response_to(&scheduled(&morning)).await;
    assert_eq!(instance_state(&config, &dev).await, "stopped", "{out:#}");
    assert_eq!(
        instance_state(&elsewhere, &unheld).await,
        "running",
        "the morning start ran"
    );
    let received = stack.inbox.drain().await.unwrap();
    let text = digest(&received).description();
    assert!(
        text.contains(&format!("skipped ec2-instance {dev}"))
            && text.contains("steward:budget-hold"),
        "{text}"
    );
}

/// A fanned-out work item for `region` of the hub at `time`.
fn work_item(message_id: &str, region: &str, time: &str) -> Value {
    sqs_record(
        message_id,
        &json!({"account": HUB_ACCOUNT, "region": region, "time": time}),
    )
}

fn of_type<'a>(received: &'a [Received], event_type: &str) -> Vec<&'a Received> {
    received
        .iter()
        .filter(|m| m.chat["metadata"]["eventType"] == event_type)
        .collect()
}

/// Issue 10 section 1: three targets of two dev instances each, delivered
/// one per invocation, with a limit of 3: the run changes at most 3 (the
/// first target's two; the others do not fit) and alerts HIGH once.
#[tokio::test]
async fn fanned_out_run_changes_at_most_the_limit_and_alerts_once() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let regions = [REGION, "eu-west-1", "us-west-2"];
    let mut fleet = Vec::new();
    for region in regions {
        let c = in_region(&config, region);
        for _ in 0..2 {
            let id = instance(&c, &[("env", "dev")], false).await;
            fleet.push((c.clone(), id));
        }
    }
    let policy = "[limits]\nmax_changes_per_run = 3\n[offhours]\n# The run is replayed at a fixed past date: allow its work items to be old.\nmax_work_item_age_minutes = 100000000\n";
    let mut scheduler = stack.function("offhours-scheduler", policy, &[]).await;
    for (i, region) in regions.iter().enumerate() {
        let out = scheduler
            .response_to(
                &json!({"Records": [work_item(&format!("target-{i}"), region, FRIDAY_EVENING)]}),
            )
            .await;
        assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    }
    let mut stopped = 0;
    for (c, id) in &fleet {
        if instance_state(c, id).await == "stopped" {
            stopped += 1;
        }
    }
    assert_eq!(
        stopped, 2,
        "the first target's two fit in the limit of 3; the next two do not"
    );
    let received = stack.inbox.drain().await.unwrap();
    let alerts = of_type(&received, "steward.offhours.blast-radius");
    assert_eq!(alerts.len(), 1, "one alert per run, not per batch");
    assert_eq!(alerts[0].attributes["severity"], "HIGH");
    assert!(
        alerts[0].description().contains("held back"),
        "{}",
        alerts[0].description()
    );
    let digests = of_type(&received, "steward.offhours.digest");
    assert_eq!(digests.len(), 3, "one digest per batch's new targets");
    assert!(digests.iter().any(|d| d
        .description()
        .contains("held back by the run's blast radius")));
    // A held-back target's work item delivered again: still held back, no second alert.
    scheduler
        .response_to(&json!({"Records": [work_item("again", "us-west-2", FRIDAY_EVENING)]}))
        .await;
    let received = stack.inbox.drain().await.unwrap();
    assert!(of_type(&received, "steward.offhours.blast-radius").is_empty());
    let mut stopped_after = 0;
    for (c, id) in &fleet {
        if instance_state(c, id).await == "stopped" {
            stopped_after += 1;
        }
    }
    assert_eq!(stopped_after, 2);
}

/// Issue 10 section 2: a stop throttled at 19:00 is retried by the 19:15 run
/// (while a resource started by hand since stays up), and one still failing
/// is not retried after the catch-up limit (120 minutes).
///
/// Throttling fails a whole batch (issue 11: a throttled batch is retried
/// whole, never split), so the throttled instance is the only one in its
/// batch: it hibernates, the others stop plainly. The stubborn one is
/// refused for itself (`IncorrectInstanceState`), which isolates it.
#[tokio::test]
async fn a_throttled_stop_is_retried_by_the_next_run_until_the_catch_up_limit() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let throttled = instance(&config, &[("env", "dev")], true).await;
    let by_hand = instance(&config, &[("env", "dev")], false).await;
    let stubborn = instance(&config, &[("env", "dev")], false).await;
    let throttle = |id: String| {
        let moto = &stack.moto;
        async move {
            moto.post(
                "/_steward/faults",
                &json!({"action": "StopInstances", "count": 1000, "match": id}),
            )
            .await
            .unwrap();
        }
    };
    let refuse = |id: String| {
        let moto = &stack.moto;
        async move {
            moto.post(
                "/_steward/faults",
                &json!({"action": "StopInstances", "count": 1000, "match": id,
                        "code": "IncorrectInstanceState", "status": 400}),
            )
            .await
            .unwrap();
        }
    };
    throttle(throttled.clone()).await;
    refuse(stubborn.clone()).await;
    let mut scheduler = stack
        .function("offhours-scheduler", "[offhours]\nhibernate = true\n", &[])
        .await;
    let out = scheduler
        .response_to(&scheduled("2026-11-20T19:00:00Z"))
        .await;
    assert_eq!(
        instance_state(&config, &throttled).await,
        "running",
        "{out:#}"
    );
    assert_eq!(instance_state(&config, &stubborn).await, "running");
    assert_eq!(instance_state(&config, &by_hand).await, "stopped");
    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    assert_eq!(m.attributes["severity"], "MEDIUM");
    assert!(m.subject.contains("2 failed"), "{}", m.subject);
    assert!(
        m.description().contains("RequestLimitExceeded"),
        "{}",
        m.description()
    );

    // A developer starts one by hand; the throttling ends for one of the two.
    start_by_hand(&config, &by_hand).await;
    stack
        .moto
        .post("/_steward/faults", &json!({"clear": true}))
        .await
        .unwrap();
    refuse(stubborn.clone()).await;
    let out = scheduler
        .response_to(&scheduled("2026-11-20T19:15:00Z"))
        .await;
    assert_eq!(
        instance_state(&config, &throttled).await,
        "stopped",
        "{out:#}"
    );
    assert_eq!(
        instance_state(&config, &by_hand).await,
        "running",
        "started by hand: stays up"
    );
    assert_eq!(instance_state(&config, &stubborn).await, "running");
    let received = stack.inbox.drain().await.unwrap();
    let text = digest(&received).description();
    assert!(text.contains("retried"), "{text}");

    // After the catch-up limit nothing is retried, even with the throttling gone.
    stack
        .moto
        .post("/_steward/faults", &json!({"clear": true}))
        .await
        .unwrap();
    let out = scheduler
        .response_to(&scheduled("2026-11-20T21:15:00Z"))
        .await;
    assert_eq!(
        instance_state(&config, &stubborn).await,
        "running",
        "{out:#}"
    );
    assert_eq!(instance_state(&config, &by_hand).await, "running");
    let received = stack.inbox.drain().await.unwrap();
    let text = digest(&received).description();
    assert!(text.contains("given up"), "{text}");
}

/// Issue 10 section 3: a work item redelivered in another batch sends no
/// second digest (and changes nothing twice).
#[tokio::test]
async fn a_redelivered_work_item_in_another_batch_sends_no_second_digest() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let here = instance(&config, &[("env", "dev")], false).await;
    let there_config = in_region(&config, "eu-west-1");
    let there = instance(&there_config, &[("env", "dev")], false).await;
    let policy = "[offhours]\nmax_work_item_age_minutes = 100000000\n";
    let mut scheduler = stack.function("offhours-scheduler", policy, &[]).await;
    let out = scheduler
        .response_to(&json!({"Records": [
            work_item("a", REGION, FRIDAY_EVENING),
            work_item("b", "eu-west-1", FRIDAY_EVENING),
        ]}))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert_eq!(instance_state(&config, &here).await, "stopped");
    assert_eq!(instance_state(&there_config, &there).await, "stopped");
    let received = stack.inbox.drain().await.unwrap();
    assert!(digest(&received).subject.contains("2 stopped"));
    let out = scheduler
        .response_to(&json!({"Records": [work_item("a-again", REGION, FRIDAY_EVENING)]}))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert!(
        stack.inbox.drain().await.unwrap().is_empty(),
        "the run's digest reported this target already"
    );
}

/// Issue 10 section 3: an account in an OU nested under a targeted OU is scheduled.
#[tokio::test]
async fn a_nested_ous_accounts_are_scheduled() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let (org, root) = organizations::organization(&config).await;
    let dev_ou = organizations::organizational_unit(&org, &root, "dev").await;
    let team_ou = organizations::organizational_unit(&org, &dev_ou, "team").await;
    let account = organizations::account(&org, "team-dev").await;
    organizations::move_account(&org, &account, &root, &team_ou).await;
    let member = stack
        .moto
        .account_config(&account, MEMBER_ROLE)
        .await
        .unwrap();
    let nested = instance(&member, &[("env", "dev")], false).await;
    let policy = format!("[targets]\norganizational_units = [\"{dev_ou}\"]\n");
    let mut scheduler = stack.function("offhours-scheduler", &policy, &[]).await;
    let out = scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert_eq!(
        out["targets"][0]["target"]["account"],
        account.as_str(),
        "{out:#}"
    );
    assert_eq!(instance_state(&member, &nested).await, "stopped");
}

/// Issue 10 section 2: a transition that fell in a window no run covered
/// (the 19:00 run never happened) is caught up by the next run, within the
/// catch-up limit; a first run never replays the past.
#[tokio::test]
async fn a_missed_run_is_caught_up_by_the_next_one() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let dev = instance(&config, &[("env", "dev")], false).await;
    let mut scheduler = stack.function("offhours-scheduler", "", &[]).await;
    scheduler
        .response_to(&scheduled("2026-11-20T18:45:00Z"))
        .await;
    assert_eq!(instance_state(&config, &dev).await, "running");
    // The 19:00 run is lost; the 19:15 run covers (18:45, 19:15].
    let out = scheduler
        .response_to(&scheduled("2026-11-20T19:15:00Z"))
        .await;
    assert_eq!(instance_state(&config, &dev).await, "stopped", "{out:#}");
    let received = stack.inbox.drain().await.unwrap();
    let text = digest(&received).description();
    assert!(text.contains("Runs were missed"), "{text}");
}

/// Issue 17: a budget-stop job that would change more than
/// `max_changes_per_run` changes nothing, alerts HIGH, and is not recorded
/// as done (the same job sent again after raising the limit acts).
#[tokio::test]
async fn budget_stop_over_the_blast_radius_changes_nothing_and_alerts_high() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let a = instance(&config, &[("env", "dev")], false).await;
    let b = instance(&config, &[("env", "dev")], false).await;
    let now = chrono::Utc::now();
    let job = json!({
        "job": "budget-stop", "account": HUB_ACCOUNT, "region": REGION,
        "budget": "dev-monthly",
        "period_start": now.date_naive().to_string(),
        "period_end": (now.date_naive() + chrono::Duration::days(20)).to_string(),
        "time": now.to_rfc3339(),
    });
    let mut limited = stack
        .function(
            "offhours-scheduler",
            "[limits]\nmax_changes_per_run = 1\n",
            &[],
        )
        .await;
    let out = limited
        .response_to(&json!({"Records": [sqs_record("m1", &job)]}))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert_eq!(instance_state(&config, &a).await, "running");
    assert_eq!(instance_state(&config, &b).await, "running");
    assert_one_high_blast_radius_alert(&stack, "steward.budget.blast-radius").await;
    // Raised limit, same job: carried out.
    let mut raised = stack.function("offhours-scheduler", "", &[]).await;
    raised
        .response_to(&json!({"Records": [sqs_record("m2", &job)]}))
        .await;
    assert_eq!(instance_state(&config, &a).await, "stopped");
    assert_eq!(instance_state(&config, &b).await, "stopped");
}

/// The scheduler with a work queue, as a fanning-out deployment runs it.
async fn fan_out_scheduler(stack: &Stack, policy: &str, queue: &str) -> Function {
    stack
        .function(
            "offhours-scheduler",
            policy,
            &[("STEWARD_WORK_QUEUE", queue)],
        )
        .await
}

/// One instance tagged `tags` in each of `regions`, with the configuration
/// that reaches it.
async fn one_instance_per_region(
    config: &SdkConfig,
    regions: &[&str],
    tags: &[(&str, &str)],
) -> Vec<(SdkConfig, String)> {
    let mut fleet = Vec::new();
    for region in regions {
        let c = in_region(config, region);
        let id = instance(&c, tags, false).await;
        fleet.push((c, id));
    }
    fleet
}

/// Starts an instance as someone would by hand, outside steward.
async fn start_by_hand(config: &SdkConfig, id: &str) {
    aws_sdk_ec2::Client::new(config)
        .start_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
}

/// Stops an instance as someone would by hand, outside steward.
async fn stop_by_hand(config: &SdkConfig, id: &str) {
    aws_sdk_ec2::Client::new(config)
        .stop_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
}

/// Asserts that the inbox's one message is a HIGH alert of `event_type`.
async fn assert_one_high_blast_radius_alert(stack: &Stack, event_type: &str) {
    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    assert_eq!(m.attributes["severity"], "HIGH");
    assert_eq!(m.chat["metadata"]["eventType"], event_type);
}

/// A work queue for the fan-out.
async fn work_queue(config: &SdkConfig) -> String {
    aws_sdk_sqs::Client::new(config)
        .create_queue()
        .queue_name(unique("steward-offhours-work"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

/// The `n` work items the fan-out queued, as SQS records, ordered by region.
async fn queued(config: &SdkConfig, queue: &str, n: usize) -> Vec<(String, Value)> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut records = Vec::new();
    for _ in 0..10 {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in received.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let region = body["region"].as_str().unwrap().to_string();
            records.push((region, json!({"messageId": m.message_id().unwrap(), "body": m.body().unwrap(), "eventSource": "aws:sqs", "awsRegion": REGION})));
        }
        if records.len() >= n {
            break;
        }
    }
    assert_eq!(records.len(), n, "the fan-out queued one item per target");
    records.sort_by(|a, b| a.0.cmp(&b.0));
    records
}

/// Issue 10 section 3: a fanned-out run of three targets delivered one per
/// invocation sends exactly one digest, after the last target, listing all
/// three; a work item redelivered in another batch sends no second one.
#[tokio::test]
async fn a_fanned_out_run_sends_one_digest_listing_every_target() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let queue = work_queue(&config).await;
    let regions = [REGION, "eu-west-1", "us-west-2"];
    let fleet = one_instance_per_region(&config, &regions, &[("env", "dev")]).await;
    let policy = format!(
        "[targets]\naccounts = [\"{HUB_ACCOUNT}\"]\nregions = [\"{REGION}\", \"eu-west-1\", \"us-west-2\"]\n[offhours]\nfan_out_above = 1\n# The run is replayed at a fixed past date: allow its work items to be old.\nmax_work_item_age_minutes = 100000000\n"
    );
    let mut scheduler = fan_out_scheduler(&stack, &policy, &queue).await;
    let out = scheduler.response_to(&scheduled(FRIDAY_EVENING)).await;
    assert_eq!(out["fanned_out"], 3, "{out:#}");
    let records = queued(&config, &queue, 3).await;
    for (i, (_, record)) in records.iter().enumerate() {
        let out = scheduler.response_to(&json!({"Records": [record]})).await;
        assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
        let received = stack.inbox.drain().await.unwrap();
        if i < 2 {
            assert!(
                received.is_empty(),
                "no digest before the run's last target reported: {:#?}",
                received.iter().map(|r| &r.subject).collect::<Vec<_>>()
            );
        } else {
            let m = digest(&received);
            assert!(m.subject.contains("3 stopped"), "{}", m.subject);
            assert_eq!(m.attributes["account"], "multiple");
            let text = m.description();
            for (_, id) in &fleet {
                assert!(text.contains(id.as_str()), "{id} missing from {text}");
            }
        }
    }
    for (c, id) in &fleet {
        assert_eq!(instance_state(c, id).await, "stopped");
    }
    // The first work item delivered again, in another batch: still one digest.
    let out = scheduler
        .response_to(&json!({"Records": [records[0].1]}))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert!(
        stack.inbox.drain().await.unwrap().is_empty(),
        "a redelivered work item sends no second digest"
    );
}

/// Issue 10 section 3: a target whose work item never completes does not
/// silence the run: the first scheduled run after
/// `max_work_item_age_minutes` sends the run's digest naming it as missing.
/// Times are near the wall clock, so the work items are fresh with the
/// default age limit; each instance's own schedule turns off at this hour.
#[tokio::test]
async fn a_target_that_never_reports_is_named_by_the_next_runs_overdue_digest() {
    use chrono::{Duration, Timelike, Utc};
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let queue = work_queue(&config).await;
    // The latest HH:05 at least a minute ago: the instances' LaunchTime
    // (now) comes after the run's window, so it is no evidence of a change
    // by hand inside it.
    let now = Utc::now();
    let mut run_at = now
        .with_minute(5)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap();
    if run_at + Duration::minutes(1) > now {
        run_at -= Duration::hours(1);
    }
    let tag = format!(
        "off=(M-U,{});on=(M-U,{});tz=utc",
        run_at.hour(),
        (run_at.hour() + 12) % 24
    );
    let regions = [REGION, "eu-west-1", "us-west-2"];
    let fleet = one_instance_per_region(
        &config,
        &regions,
        &[("env", "dev"), ("steward:offhours", &tag)],
    )
    .await;
    let policy = format!(
        "[targets]\naccounts = [\"{HUB_ACCOUNT}\"]\nregions = [\"{REGION}\", \"eu-west-1\", \"us-west-2\"]\n[offhours]\nfan_out_above = 1\nmax_work_item_age_minutes = 90\n"
    );
    let mut scheduler = fan_out_scheduler(&stack, &policy, &queue).await;
    let out = scheduler
        .response_to(&scheduled(&run_at.to_rfc3339()))
        .await;
    assert_eq!(out["fanned_out"], 3, "{out:#}");
    let records = queued(&config, &queue, 3).await;
    // eu-west-1 and us-east-1 report; us-west-2's item is never processed.
    for (_, record) in &records[..2] {
        let out = scheduler.response_to(&json!({"Records": [record]})).await;
        assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    }
    assert!(
        stack.inbox.drain().await.unwrap().is_empty(),
        "the run waits for its third target"
    );
    assert_eq!(records[2].0, "us-west-2");
    // A run before the deadline does not send it yet.
    scheduler
        .response_to(&scheduled(&(run_at + Duration::minutes(30)).to_rfc3339()))
        .await;
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    // The first run past max_work_item_age_minutes (90) sends it.
    scheduler
        .response_to(&scheduled(&(run_at + Duration::minutes(105)).to_rfc3339()))
        .await;
    let received = stack.inbox.drain().await.unwrap();
    let m = digest(&received);
    assert_eq!(m.attributes["severity"], "MEDIUM");
    assert!(
        m.subject.contains("2 stopped") && m.subject.contains("1 target(s) never reported"),
        "{}",
        m.subject
    );
    let text = m.description();
    assert!(
        text.contains(&format!("target {HUB_ACCOUNT}/us-west-2 never reported")),
        "{text}"
    );
    assert!(
        text.contains(fleet[0].1.as_str()) && text.contains(fleet[1].1.as_str()),
        "{text}"
    );
    // Sent once: the next run does not repeat it.
    scheduler
        .response_to(&scheduled(&(run_at + Duration::minutes(110)).to_rfc3339()))
        .await;
    assert!(stack.inbox.drain().await.unwrap().is_empty());
}

/// Issue 10 section 1: a stop that fails gives its reservation back to the
/// run's budget, so the run does not stop short for nothing: with a limit
/// of 3, the first target's one failed stop (of two) leaves room for the
/// second target's two.
#[tokio::test]
async fn a_failed_stop_gives_its_reserved_change_back_to_the_run() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let failing = instance(&config, &[("env", "dev")], false).await;
    let fine = instance(&config, &[("env", "dev")], false).await;
    let there_config = in_region(&config, "eu-west-1");
    let there = [
        instance(&there_config, &[("env", "dev")], false).await,
        instance(&there_config, &[("env", "dev")], false).await,
    ];
    stack
        .moto
        .post(
            "/_steward/faults",
            // Refused for this id (a throttle would fail the whole batch).
            &json!({"action": "StopInstances", "count": 1000, "match": failing,
                    "code": "IncorrectInstanceState", "status": 400}),
        )
        .await
        .unwrap();
    let policy = "[limits]\nmax_changes_per_run = 3\n[offhours]\n# The run is replayed at a fixed past date: allow its work items to be old.\nmax_work_item_age_minutes = 100000000\n";
    let mut scheduler = stack.function("offhours-scheduler", policy, &[]).await;
    let out = scheduler
        .response_to(&json!({"Records": [work_item("here", REGION, FRIDAY_EVENING)]}))
        .await;
    assert_eq!(
        out["batchItemFailures"],
        json!([{"itemIdentifier": "here"}]),
        "{out:#}"
    );
    assert_eq!(instance_state(&config, &failing).await, "running");
    assert_eq!(instance_state(&config, &fine).await, "stopped");
    let out = scheduler
        .response_to(&json!({"Records": [work_item("there", "eu-west-1", FRIDAY_EVENING)]}))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    let received = stack.inbox.drain().await.unwrap();
    for id in &there {
        assert_eq!(
            instance_state(&there_config, id).await,
            "stopped",
            "1 change used + 2 fit in the limit of 3: {:#?}",
            received.iter().map(|m| m.description()).collect::<Vec<_>>()
        );
    }
    assert!(
        of_type(&received, "steward.offhours.blast-radius").is_empty(),
        "nothing was held back"
    );
}
