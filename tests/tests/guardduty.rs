//! The GuardDuty responder end to end: the built binary under the Lambda
//! Runtime API emulator, against moto (with the launcher's GuardDuty findings
//! store), with the security team's inbox subscribed; the release through the
//! built `steward` CLI. A finding the responder acts on must be one GuardDuty
//! reports: tests store it in the account's detector with `report`.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{
    Filter, InstanceAttributeName, InstanceType, ResourceType, Tag, TagSpecification,
};
use serde_json::{json, Value};
use steward_tests::moto::{HUB_ACCOUNT, REGION};
use steward_tests::organizations;
use steward_tests::stack::{Stack, MEMBER_ACCOUNT, MEMBER_ROLE};
use steward_tests::{event, function_binary, unique};

/// An instance with two network interfaces (each with its own groups) and two volumes.
struct Victim {
    instance: String,
    interfaces: Vec<String>,
    groups: Vec<Vec<String>>,
    volumes: Vec<String>,
    vpc: String,
}

async fn launch_victim(config: &SdkConfig, tags: &[(&str, &str)]) -> Victim {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpc = steward_tests::fixtures::default_vpc(config).await.unwrap();
    let web = ec2
        .create_security_group()
        .group_name(unique("web"))
        .description("web")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let web = web.group_id().unwrap().to_string();
    let admin = ec2
        .create_security_group()
        .group_name(unique("admin"))
        .description("admin")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let admin = admin.group_id().unwrap().to_string();
    let mut request = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .security_group_ids(&web);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        request = request.tag_specifications(spec.build());
    }
    let out = request.send().await.unwrap();
    let instance = &out.instances()[0];
    let id = instance.instance_id().unwrap().to_string();
    let subnet = instance.subnet_id().unwrap().to_string();
    let first_eni = instance.network_interfaces()[0]
        .network_interface_id()
        .unwrap()
        .to_string();
    let second = ec2
        .create_network_interface()
        .subnet_id(&subnet)
        .groups(&admin)
        .groups(&web)
        .send()
        .await
        .unwrap();
    let second_eni = second
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_string();
    ec2.attach_network_interface()
        .network_interface_id(&second_eni)
        .instance_id(&id)
        .device_index(1)
        .send()
        .await
        .unwrap();
    let az = instance
        .placement()
        .unwrap()
        .availability_zone()
        .unwrap()
        .to_string();
    let data = ec2
        .create_volume()
        .availability_zone(&az)
        .size(10)
        .send()
        .await
        .unwrap();
    let data = data.volume_id().unwrap().to_string();
    ec2.attach_volume()
        .volume_id(&data)
        .instance_id(&id)
        .device("/dev/sdf")
        .send()
        .await
        .unwrap();
    let described = ec2
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    let volumes: Vec<String> = described.reservations()[0].instances()[0]
        .block_device_mappings()
        .iter()
        .filter_map(|b| b.ebs().and_then(|e| e.volume_id()).map(str::to_string))
        .collect();
    assert_eq!(
        volumes.len(),
        2,
        "root and data volume attached: {volumes:?}"
    );
    Victim {
        instance: id,
        interfaces: vec![first_eni, second_eni],
        groups: vec![vec![web.clone()], vec![admin, web]],
        volumes,
        vpc,
    }
}

/// GuardDuty's detector in the account of `config` (created when missing).
async fn detector(config: &SdkConfig) -> String {
    let gd = aws_sdk_guardduty::Client::new(config);
    let existing = gd.list_detectors().send().await.unwrap();
    if let Some(id) = existing.detector_ids().first() {
        return id.clone();
    }
    gd.create_detector()
        .enable(true)
        .send()
        .await
        .unwrap()
        .detector_id()
        .unwrap()
        .to_string()
}

/// A dev instance in the hub (with the hub's EC2 client), the responder
/// (default policy) and a high EC2 finding about the instance that GuardDuty
/// reports and the responder has not seen yet.
async fn reported_dev_victim(
    stack: &Stack,
) -> (
    aws_sdk_ec2::Client,
    Victim,
    steward_tests::runtime_api::Function,
    Value,
) {
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let victim = launch_victim(&config, &[("env", "dev")]).await;
    let responder = stack.function("guardduty-responder", "", &[]).await;
    let finding = ec2_finding(&victim.instance, HUB_ACCOUNT);
    report(stack, &finding).await;
    (ec2, victim, responder, finding)
}

/// GuardDuty reports the event's finding (as its `detail` says) in the hub's
/// detector (the delegated administrator sees every member's findings).
async fn report(stack: &Stack, e: &Value) {
    detector(&stack.moto.config()).await;
    report_in(stack, HUB_ACCOUNT, &e["detail"]).await;
}

/// GuardDuty reports `detail` in `account`'s own detector (which must exist).
async fn report_in(stack: &Stack, account: &str, detail: &Value) {
    stack
        .moto
        .post(
            "/_steward/guardduty/findings",
            &json!({"account": account, "region": REGION, "finding": detail}),
        )
        .await
        .unwrap();
}

/// The groups EC2 lists for an interface, sorted.
async fn eni_groups(ec2: &aws_sdk_ec2::Client, id: &str) -> Vec<String> {
    let out = ec2
        .describe_network_interfaces()
        .network_interface_ids(id)
        .send()
        .await
        .unwrap();
    let mut groups: Vec<String> = out.network_interfaces()[0]
        .groups()
        .iter()
        .map(|g| g.group_id().unwrap().to_string())
        .collect();
    groups.sort();
    groups
}

/// The EC2 fixture pointed at a real instance, with a fresh finding id.
fn ec2_finding(instance: &str, account: &str) -> Value {
    let mut e = event("guardduty-ec2-backdoor.json");
    e["id"] = json!(uuid::Uuid::new_v4().to_string());
    // The envelope's account stays the hub's (GuardDuty's delegated
    // administrator); the acting account is the finding's own.
    e["detail"]["accountId"] = json!(account);
    e["detail"]["id"] = json!(uuid::Uuid::new_v4().simple().to_string());
    e["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(instance);
    e
}

async fn instance_tags(ec2: &aws_sdk_ec2::Client, id: &str) -> HashMap<String, String> {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect()
}

async fn eni_tags(ec2: &aws_sdk_ec2::Client, id: &str) -> HashMap<String, String> {
    let out = ec2
        .describe_network_interfaces()
        .network_interface_ids(id)
        .send()
        .await
        .unwrap();
    out.network_interfaces()[0]
        .tag_set()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect()
}

async fn termination_protected(ec2: &aws_sdk_ec2::Client, id: &str) -> bool {
    let out = ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap();
    out.disable_api_termination()
        .and_then(|v| v.value())
        .unwrap_or(false)
}

async fn finding_snapshots(ec2: &aws_sdk_ec2::Client, finding_id: &str) -> Vec<(String, String)> {
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("tag:steward:finding")
                .values(finding_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.snapshots()
        .iter()
        .map(|s| {
            (
                s.snapshot_id().unwrap().to_string(),
                s.volume_id().unwrap().to_string(),
            )
        })
        .collect()
}

/// The security groups named `name` (in `vpc`, or anywhere).
async fn groups_named(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    vpc: Option<&str>,
) -> Vec<aws_sdk_ec2::types::SecurityGroup> {
    let mut describe = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(name).build());
    if let Some(vpc) = vpc {
        describe = describe.filters(Filter::builder().name("vpc-id").values(vpc).build());
    }
    describe.send().await.unwrap().security_groups().to_vec()
}

/// Asserts that nothing of a quarantine is on `victim`: no quarantine tag on
/// the instance, no tag on its first interface, no termination protection.
async fn assert_not_quarantined(ec2: &aws_sdk_ec2::Client, victim: &Victim) {
    assert!(!instance_tags(ec2, &victim.instance)
        .await
        .contains_key("steward:quarantined"));
    assert!(eni_tags(ec2, &victim.interfaces[0]).await.is_empty());
    assert!(!termination_protected(ec2, &victim.instance).await);
}

async fn quarantine_group(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
) -> aws_sdk_ec2::types::SecurityGroup {
    let groups = groups_named(ec2, "steward-quarantine", Some(vpc)).await;
    assert_eq!(groups.len(), 1, "exactly one quarantine group per VPC");
    groups[0].clone()
}

#[tokio::test]
async fn high_ec2_finding_quarantines_snapshots_protects_and_notifies_once() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let victim = launch_victim(&config, &[("project", "orders"), ("env", "dev")]).await;
    let mut f = stack.function("guardduty-responder", "", &[]).await;
    let e = ec2_finding(&victim.instance, HUB_ACCOUNT);
    report(&stack, &e).await;
    let finding_id = e["detail"]["id"].as_str().unwrap().to_string();
    let out = f.response_to(&e).await;
    assert_eq!(out["containment"], "contained", "{out}");
    assert_eq!(out["notification"], "sent");
    assert_eq!(out["verified"], true);
    // Isolated for real: every interface lists exactly the quarantine group.
    let q = quarantine_group(&ec2, &victim.vpc).await;
    for eni in &victim.interfaces {
        assert_eq!(
            eni_groups(&ec2, eni).await,
            vec![q.group_id().unwrap().to_string()],
            "{eni}"
        );
    }

    // The quarantine group: managed, no inbound and no outbound rules.
    let group = quarantine_group(&ec2, &victim.vpc).await;
    let group_id = group.group_id().unwrap().to_string();
    assert!(
        group.ip_permissions().is_empty() && group.ip_permissions_egress().is_empty(),
        "{group:?}"
    );
    assert!(group
        .tags()
        .iter()
        .any(|t| t.key() == Some("steward:managed") && t.value() == Some("true")));
    // Every interface records its previous groups; the responder says it replaced them with the group it created.
    for (eni, groups) in victim.interfaces.iter().zip(&victim.groups) {
        let tags = eni_tags(&ec2, eni).await;
        let mut recorded: Vec<&str> = tags
            .get("steward:previous-groups")
            .expect("record")
            .split(',')
            .collect();
        recorded.sort();
        let mut expected: Vec<&str> = groups.iter().map(String::as_str).collect();
        expected.sort();
        assert_eq!(recorded, expected, "{eni}");
        let actions = out["actions"].as_array().unwrap();
        assert!(
            actions.iter().any(|a| a
                .as_str()
                .unwrap()
                .starts_with(&format!("replaced the security groups of {eni}"))),
            "{out}"
        );
    }
    assert!(
        out["actions"][0].as_str().unwrap().contains(&group_id),
        "the created group is named: {out}"
    );
    // Tag, termination protection, one snapshot per volume.
    let tags = instance_tags(&ec2, &victim.instance).await;
    let quarantined = tags.get("steward:quarantined").expect("quarantine tag");
    assert!(quarantined.starts_with(&finding_id), "{quarantined}");
    assert!(termination_protected(&ec2, &victim.instance).await);
    let snapshots = finding_snapshots(&ec2, &finding_id).await;
    let mut snapped: Vec<String> = snapshots.iter().map(|(_, v)| v.clone()).collect();
    snapped.sort();
    let mut volumes = victim.volumes.clone();
    volumes.sort();
    assert_eq!(snapped, volumes);
    // Nothing detached, nothing terminated.
    let described = ec2
        .describe_instances()
        .instance_ids(&victim.instance)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    assert_eq!(
        instance.state().unwrap().name().unwrap().as_str(),
        "running"
    );
    assert_eq!(instance.block_device_mappings().len(), 2);
    assert_eq!(instance.network_interfaces().len(), 2);

    // The message the security team receives.
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert!(
        m.subject.starts_with(&format!(
            "[steward] HIGH guardduty: {} contained: Backdoor:EC2/C&CActivity.B!DNS",
            victim.instance
        )),
        "{}",
        m.subject
    );
    assert!(m.subject.len() <= 100);
    assert_eq!(m.attributes["severity"], "HIGH");
    assert_eq!(m.attributes["category"], "guardduty");
    assert_eq!(m.attributes["account"], HUB_ACCOUNT);
    assert_eq!(m.attributes["region"], REGION);
    assert_eq!(m.attributes["environment"], "dev");
    assert_eq!(
        m.chat["metadata"]["eventType"],
        "steward.guardduty.contained"
    );
    let arn = format!(
        "arn:aws:ec2:{REGION}:{HUB_ACCOUNT}:instance/{}",
        victim.instance
    );
    assert_eq!(m.chat["metadata"]["threadId"], arn);
    assert_eq!(m.chat["metadata"]["relatedResources"][0], arn);
    let context = &m.chat["metadata"]["additionalContext"];
    assert_eq!(context["findingId"], finding_id);
    assert_eq!(context["band"], "HIGH");
    assert_eq!(context["severityScore"], "8.0");
    assert_eq!(context["count"], "3");
    assert_eq!(context["project"], "orders");
    assert!(context["consoleUrl"]
        .as_str()
        .unwrap()
        .contains(&format!("fId={finding_id}")));
    let text = m.description();
    for expected in [
        "Command and Control server domain name queried",
        "Environment: dev | Project: orders",
        "Severity: HIGH (8.0)",
        "First seen: 2026-11-20T09:12:31Z | Last seen: 2026-11-20T09:41:05Z | Count: 3",
        "snapshotted",
        "enabled termination protection",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
    let next: Vec<String> = m.chat["content"]["nextSteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(
        next.iter()
            .any(|s| s.contains("do not cut tracked connections")),
        "{next:?}"
    );
    assert!(
        next.iter()
            .any(|s| s.contains(&format!("steward quarantine release {}", victim.instance))),
        "{next:?}"
    );

    // The same delivery again: nothing new, no second snapshot, no second message.
    let again = f.response_to(&e).await;
    assert_eq!(again["containment"], "already-contained", "{again}");
    assert_eq!(again["notification"], "duplicate");
    assert_eq!(finding_snapshots(&ec2, &finding_id).await.len(), 2);
    assert_eq!(
        instance_tags(&ec2, &victim.instance)
            .await
            .get("steward:quarantined"),
        Some(quarantined)
    );
    assert!(stack.inbox.drain().await.unwrap().is_empty());

    // The repeated finding (same id, higher count, same window): no message, no change.
    let mut repeated = event("guardduty-ec2-backdoor-repeated.json");
    repeated["detail"]["id"] = json!(finding_id);
    repeated["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(victim.instance);
    report(&stack, &repeated).await;
    let out = f.response_to(&repeated).await;
    assert_eq!(out["notification"], "duplicate", "{out}");
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    // Its band rises to CRITICAL: notified again, with the new count; still no new snapshot.
    repeated["id"] = json!(uuid::Uuid::new_v4().to_string());
    repeated["detail"]["severity"] = json!(9.2);
    report(&stack, &repeated).await;
    let out = f.response_to(&repeated).await;
    assert_eq!(out["notification"], "sent", "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].attributes["severity"], "CRITICAL");
    assert_eq!(
        received[0].chat["metadata"]["additionalContext"]["count"],
        "17"
    );
    assert_eq!(
        received[0].chat["metadata"]["eventType"],
        "steward.guardduty.already-contained"
    );
    assert_eq!(finding_snapshots(&ec2, &finding_id).await.len(), 2);
    // A later update back in HIGH within the same window is not notified again.
    repeated["id"] = json!(uuid::Uuid::new_v4().to_string());
    repeated["detail"]["severity"] = json!(8.0);
    report(&stack, &repeated).await;
    let out = f.response_to(&repeated).await;
    assert_eq!(out["notification"], "suppressed", "{out}");
    // A new window (policy interval passed) notifies again.
    repeated["id"] = json!(uuid::Uuid::new_v4().to_string());
    repeated["detail"]["updatedAt"] = json!("2026-11-21T11:05:12.901Z");
    report(&stack, &repeated).await;
    let out = f.response_to(&repeated).await;
    assert_eq!(out["notification"], "sent", "{out}");
    assert_eq!(stack.inbox.drain().await.unwrap().len(), 1);

    // JSON logs with the event id, and the metrics line.
    let logs = f.logs();
    let event_id = e["id"].as_str().unwrap();
    assert!(
        logs.iter()
            .any(|l| l.contains("containment step done") && l.contains(event_id)),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("\"Namespace\":\"Steward\"") && l.contains("\"ActionsTaken\":8")),
        "{logs:#?}"
    );
    assert!(f.logs_are_json(), "every line is JSON");
}

#[tokio::test]
async fn low_finding_only_notifies_and_archived_is_silent() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let victim = launch_victim(&config, &[("env", "prod")]).await;
    let mut f = stack.function("guardduty-responder", "", &[]).await;
    let mut low = event("guardduty-low-port-probe.json");
    low["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(victim.instance);
    report(&stack, &low).await;
    let out = f.response_to(&low).await;
    assert_eq!(out["containment"], "not-contained", "{out}");
    assert!(out["held"]
        .as_str()
        .unwrap()
        .contains("LOW is below the containment threshold HIGH"));
    assert_not_quarantined(&ec2, &victim).await;
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].attributes["severity"], "LOW");
    assert_eq!(
        received[0].chat["metadata"]["eventType"],
        "steward.guardduty.finding"
    );
    // The fixture's tags (from the finding) name the environment when nothing was read.
    assert_eq!(received[0].attributes["environment"], "dev");
    assert!(received[0]
        .description()
        .contains("Containment: LOW is below the containment threshold HIGH"));

    let mut archived = event("guardduty-archived.json");
    archived["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(victim.instance);
    report(&stack, &archived).await;
    let out = f.response_to(&archived).await;
    assert_eq!(out["skipped"], "archived");
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    assert!(!instance_tags(&ec2, &victim.instance)
        .await
        .contains_key("steward:quarantined"));

    // A policy that notifies from MEDIUM logs the LOW finding only.
    let mut quiet = stack
        .function(
            "guardduty-responder",
            "[containment]\nnotify_min_band = \"MEDIUM\"\n",
            &[],
        )
        .await;
    low["id"] = json!(uuid::Uuid::new_v4().to_string());
    let out = quiet.response_to(&low).await;
    assert!(
        out["skipped"]
            .as_str()
            .unwrap()
            .contains("below the notify threshold MEDIUM"),
        "{out}"
    );
    assert!(stack.inbox.drain().await.unwrap().is_empty());
}

#[tokio::test]
async fn s3_finding_and_exempt_instance_are_notified_not_changed() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let mut f = stack.function("guardduty-responder", "", &[]).await;
    let s3 = event("guardduty-s3-block-public-access-disabled.json");
    report(&stack, &s3).await;
    let out = f.response_to(&s3).await;
    assert_eq!(out["containment"], "not-contained", "{out}");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received[0].attributes["severity"], "MEDIUM");
    assert_eq!(received[0].attributes["environment"], "prod");
    assert_eq!(
        received[0].chat["metadata"]["threadId"],
        "arn:aws:s3:::orders-prod-exports"
    );

    let exempt = launch_victim(&config, &[("env", "prod"), ("steward:exempt", "true")]).await;
    let e = ec2_finding(&exempt.instance, HUB_ACCOUNT);
    report(&stack, &e).await;
    let out = f.response_to(&e).await;
    assert!(
        out["held"]
            .as_str()
            .unwrap()
            .contains("steward:exempt=true"),
        "{out}"
    );
    assert!(!instance_tags(&ec2, &exempt.instance)
        .await
        .contains_key("steward:quarantined"));
    assert!(!termination_protected(&ec2, &exempt.instance).await);
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received[0].attributes["severity"], "HIGH");
    assert!(received[0]
        .description()
        .contains("steward:exempt=true; notified only"));

    // An environment outside the containment list is notified only, too.
    let mut only_dev = stack
        .function(
            "guardduty-responder",
            "[containment]\nenvironments = [\"dev\"]\n",
            &[],
        )
        .await;
    let prod = launch_victim(&config, &[("env", "prod")]).await;
    let e = ec2_finding(&prod.instance, HUB_ACCOUNT);
    report(&stack, &e).await;
    let out = only_dev.response_to(&e).await;
    assert!(
        out["held"]
            .as_str()
            .unwrap()
            .contains("env=prod is not in [containment] environments"),
        "{out}"
    );
    assert!(eni_tags(&ec2, &prod.interfaces[0]).await.is_empty());
}

#[tokio::test]
async fn user_key_is_deactivated_but_break_glass_is_spared() {
    let stack = Stack::new().await;
    let iam = aws_sdk_iam::Client::new(&stack.moto.config());
    let mut keys = Vec::new();
    for user in ["ci-deployer", "breakglass-admin"] {
        iam.create_user()
            .user_name(user)
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("env")
                    .value("prod")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let key = iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .unwrap();
        let id = key.access_key().unwrap().access_key_id().to_string();
        assert!(id.starts_with("AKIA"));
        keys.push(id);
    }
    let policy = "[containment]\nbreak_glass_users = [\"breakglass-admin\"]\n";
    let mut f = stack.function("guardduty-responder", policy, &[]).await;
    let status = |user: &'static str| {
        let iam = iam.clone();
        async move {
            let out = iam.list_access_keys().user_name(user).send().await.unwrap();
            out.access_key_metadata()[0]
                .status()
                .unwrap()
                .as_str()
                .to_string()
        }
    };

    let mut e = event("guardduty-iam-user-tor.json");
    e["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!(keys[0]);
    report(&stack, &e).await;
    let out = f.response_to(&e).await;
    assert_eq!(out["containment"], "contained", "{out}");
    assert_eq!(status("ci-deployer").await, "Inactive");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].attributes["severity"], "HIGH");
    assert_eq!(received[0].attributes["environment"], "prod");
    assert!(
        received[0].subject.contains(&keys[0]),
        "{}",
        received[0].subject
    );
    assert!(received[0].description().contains(&format!(
        "set access key {} of IAM user ci-deployer inactive",
        keys[0]
    )));
    let next = received[0].chat["content"]["nextSteps"].to_string();
    assert!(
        next.contains("--status Active"),
        "the undo is in the message: {next}"
    );

    let mut spared = event("guardduty-iam-user-tor.json");
    spared["id"] = json!(uuid::Uuid::new_v4().to_string());
    spared["detail"]["id"] = json!("aa11bb22cc33dd44ee55ff6600778899");
    spared["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!(keys[1]);
    spared["detail"]["resource"]["accessKeyDetails"]["userName"] = json!("breakglass-admin");
    report(&stack, &spared).await;
    let out = f.response_to(&spared).await;
    assert!(
        out["held"].as_str().unwrap().contains("break-glass"),
        "{out}"
    );
    assert_eq!(status("breakglass-admin").await, "Active");
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1, "the security team still hears about it");
    assert!(received[0].description().contains("break-glass list"));
}

#[tokio::test]
async fn role_session_finding_attaches_the_deny_policy_once() {
    let stack = Stack::new().await;
    let iam = aws_sdk_iam::Client::new(&stack.moto.config());
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name("orders-api-dev")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    // Revocation is off by default since it cuts every user of the role: set explicitly.
    let mut f = stack
        .function(
            "guardduty-responder",
            "[containment]\nrevoke_role_sessions = true\n",
            &[],
        )
        .await;
    let e = event("guardduty-instance-credential-exfiltration.json");
    report(&stack, &e).await;
    let out = f.response_to(&e).await;
    assert_eq!(out["containment"], "contained", "{out}");
    let policy = revoke_sessions_policy(&iam).await;
    let document = policy.policy_document();
    let decoded = document
        .replace("%22", "\"")
        .replace("%3A", ":")
        .replace("%7B", "{")
        .replace("%7D", "}");
    assert!(
        decoded.contains("aws:TokenIssueTime")
            && decoded.contains("DateLessThan")
            && decoded.contains("Deny"),
        "{document}"
    );
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].attributes["severity"], "HIGH");
    assert!(received[0].chat["content"]["nextSteps"].to_string().contains("aws iam delete-role-policy --role-name orders-api-dev --policy-name steward-revoke-sessions"));
    assert_eq!(
        received[0].chat["metadata"]["threadId"],
        format!("arn:aws:iam::{HUB_ACCOUNT}:role/orders-api-dev")
    );

    // The same finding again: the revocation already covers its activity; nothing changes.
    let mut again = e.clone();
    again["id"] = json!(uuid::Uuid::new_v4().to_string());
    let out = f.response_to(&again).await;
    assert_eq!(out["containment"], "already-contained", "{out}");
    let after = revoke_sessions_policy(&iam).await;
    assert_eq!(after.policy_document(), document, "the cutoff is not moved");
}

#[tokio::test]
async fn member_account_finding_is_contained_there() {
    let stack = Stack::new().await;
    let member = stack.member_config().await;
    let member_ec2 = aws_sdk_ec2::Client::new(&member);
    let victim = launch_victim(&member, &[("env", "staging")]).await;
    // The member account is governed; GuardDuty reports the finding in the
    // member's own detector (the hub's detector does not know it).
    let policy = format!("[targets]\naccounts = [\"{HUB_ACCOUNT}\", \"{MEMBER_ACCOUNT}\"]\n");
    let mut f = stack.function("guardduty-responder", &policy, &[]).await;
    detector(&stack.moto.config()).await;
    detector(&member).await;
    let e = ec2_finding(&victim.instance, MEMBER_ACCOUNT);
    report_in(&stack, MEMBER_ACCOUNT, &e["detail"]).await;
    let out = f.response_to(&e).await;
    assert_eq!(out["containment"], "contained", "{out}");
    assert!(instance_tags(&member_ec2, &victim.instance)
        .await
        .contains_key("steward:quarantined"));
    assert!(termination_protected(&member_ec2, &victim.instance).await);
    quarantine_group(&member_ec2, &victim.vpc).await;
    // Nothing in the hub account.
    let hub = aws_sdk_ec2::Client::new(&stack.moto.config());
    assert!(hub
        .describe_instances()
        .instance_ids(&victim.instance)
        .send()
        .await
        .is_err());
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received[0].attributes["account"], MEMBER_ACCOUNT);
    assert_eq!(received[0].attributes["environment"], "staging");

    // The operator releases it from the hub through the member role.
    let report = steward_json(
        &stack,
        &[
            "quarantine",
            "release",
            &victim.instance,
            "--account",
            MEMBER_ACCOUNT,
            "--role",
            MEMBER_ROLE,
            "--json",
        ],
    );
    assert_eq!(report["account"], MEMBER_ACCOUNT);
    assert_eq!(report["restored"].as_array().unwrap().len(), 2, "{report}");
    assert!(!instance_tags(&member_ec2, &victim.instance)
        .await
        .contains_key("steward:quarantined"));
}

#[tokio::test]
async fn release_restores_groups_and_says_what_it_left() {
    let stack = Stack::new().await;
    let (ec2, victim, mut f, e) = reported_dev_victim(&stack).await;
    f.response_to(&e).await;
    assert!(instance_tags(&ec2, &victim.instance)
        .await
        .contains_key("steward:quarantined"));

    let steward = function_binary("steward");
    let run = |args: Vec<String>| {
        let mut command = std::process::Command::new(&steward);
        command
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in stack.operator_env() {
            command.env(k, v);
        }
        command
            .output()
            .expect("the steward CLI is built (cargo build -p steward-cli)")
    };
    let dry = run(vec![
        "quarantine".into(),
        "release".into(),
        victim.instance.clone(),
        "--dry-run".into(),
    ]);
    assert_succeeded(&dry);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would restore"));
    assert!(
        instance_tags(&ec2, &victim.instance)
            .await
            .contains_key("steward:quarantined"),
        "dry run changes nothing"
    );

    let out = run(vec![
        "quarantine".into(),
        "release".into(),
        victim.instance.clone(),
        "--json".into(),
    ]);
    assert_succeeded(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["restored"].as_array().unwrap().len(), 2, "{report}");
    for (i, groups) in victim.groups.iter().enumerate() {
        assert_eq!(
            report["restored"][i]["interface"],
            victim.interfaces[i].as_str()
        );
        let mut restored: Vec<String> =
            serde_json::from_value(report["restored"][i]["groups"].clone()).unwrap();
        restored.sort();
        let mut expected = groups.clone();
        expected.sort();
        assert_eq!(restored, expected);
        assert!(!eni_tags(&ec2, &victim.interfaces[i])
            .await
            .contains_key("steward:previous-groups"));
    }
    assert_eq!(report["snapshots_left"].as_array().unwrap().len(), 2);
    assert_eq!(report["termination_protection_left"], true);
    assert!(!instance_tags(&ec2, &victim.instance)
        .await
        .contains_key("steward:quarantined"));
    // The groups the release set (moto lists what the last call set for attached interfaces).
    for (eni, groups) in victim.interfaces.iter().zip(&victim.groups) {
        let d = ec2
            .describe_network_interfaces()
            .network_interface_ids(eni)
            .send()
            .await
            .unwrap();
        let listed: Vec<String> = d.network_interfaces()[0]
            .groups()
            .iter()
            .map(|g| g.group_id().unwrap().to_string())
            .collect();
        for g in groups {
            assert!(listed.contains(g), "{eni}: {listed:?} lacks {g}");
        }
    }
    // Releasing again is refused with the reason.
    let again = run(vec![
        "quarantine".into(),
        "release".into(),
        victim.instance.clone(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not quarantined by steward"));
}

/// Runs `steward quarantine release INSTANCE --json` as an operator of `stack`.
fn release_cli(stack: &Stack, instance: &str) -> std::process::Output {
    steward_cli(stack, &["quarantine", "release", instance, "--json"])
}

/// Asserts that a CLI run succeeded, showing what it wrote to stderr if not.
fn assert_succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the `steward` CLI as an operator of this stack would.
fn steward_cli(stack: &Stack, args: &[&str]) -> std::process::Output {
    std::process::Command::new(function_binary("steward"))
        .args(args)
        .env_clear()
        .envs(stack.operator_env())
        .output()
        .expect("the steward CLI is built (cargo build -p steward-cli)")
}

/// Runs the `steward` CLI, which must succeed, and returns its JSON report.
fn steward_json(stack: &Stack, args: &[&str]) -> Value {
    let output = steward_cli(stack, args);
    assert_succeeded(&output);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The inline policy steward puts on a role whose sessions it revokes.
async fn revoke_sessions_policy(
    iam: &aws_sdk_iam::Client,
) -> aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput {
    iam.get_role_policy()
        .role_name("orders-api-dev")
        .policy_name("steward-revoke-sessions")
        .send()
        .await
        .unwrap()
}

async fn set_tag(ec2: &aws_sdk_ec2::Client, resource: &str, key: &str, value: &str) {
    ec2.create_tags()
        .resources(resource)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await
        .unwrap();
}

/// A group allowing everything, as an attacker would prepare it.
async fn wide_open_group(ec2: &aws_sdk_ec2::Client, vpc: &str) -> String {
    ec2.create_security_group()
        .group_name(unique("wide-open"))
        .description("attacker's choice")
        .vpc_id(vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn release_undoes_what_steward_recorded_not_what_a_rewritten_tag_says() {
    let stack = Stack::new().await;
    let (ec2, victim, mut f, e) = reported_dev_victim(&stack).await;
    f.response_to(&e).await;

    // Whoever may tag the instance (its own role) points the record at a
    // group of its choosing before the team releases it.
    let open = wide_open_group(&ec2, &victim.vpc).await;
    set_tag(
        &ec2,
        &victim.interfaces[0],
        "steward:previous-groups",
        &open,
    )
    .await;

    let out = release_cli(&stack, &victim.instance);
    assert_succeeded(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut restored: Vec<String> =
        serde_json::from_value(report["restored"][0]["groups"].clone()).unwrap();
    restored.sort();
    let mut expected = victim.groups[0].clone();
    expected.sort();
    assert_eq!(restored, expected, "{report}");
    let changed = report["tags_changed"].to_string();
    assert!(
        changed.contains(&victim.interfaces[0]) && changed.contains(&open),
        "{report}"
    );
    assert!(report["lines"].to_string().contains("WARNING"), "{report}");
    assert!(
        !eni_groups(&ec2, &victim.interfaces[0])
            .await
            .contains(&open),
        "the attacker's group is never attached"
    );
    // The record is released with the instance: a second release finds nothing.
    let again = release_cli(&stack, &victim.instance);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not quarantined by steward"));
}

#[tokio::test]
async fn steward_tags_on_an_instance_steward_never_contained_undo_nothing() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let victim = launch_victim(&config, &[("env", "dev")]).await;
    let open = wide_open_group(&ec2, &victim.vpc).await;
    set_tag(&ec2, &victim.instance, "steward:quarantined", "forged").await;
    set_tag(
        &ec2,
        &victim.interfaces[0],
        "steward:previous-groups",
        &open,
    )
    .await;

    let out = release_cli(&stack, &victim.instance);
    assert!(
        !out.status.success(),
        "a tag steward has no record of is not acted on"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["restored"], json!([]), "{report}");
    assert!(
        report["failed"].to_string().contains("--trust-tags"),
        "{report}"
    );
    assert!(!eni_groups(&ec2, &victim.interfaces[0])
        .await
        .contains(&open));
}

#[tokio::test]
async fn vanished_instance_malformed_findings_dry_run_and_kill_switch_change_nothing() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let mut f = stack.function("guardduty-responder", "", &[]).await;

    let gone = ec2_finding("i-0deadbeef0000000a", HUB_ACCOUNT);
    report(&stack, &gone).await;
    let out = f.response_to(&gone).await;
    assert!(
        out["held"].as_str().unwrap().contains("no longer exists"),
        "{out}"
    );
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert!(received[0]
        .description()
        .contains("instance i-0deadbeef0000000a no longer exists"));

    let victim = launch_victim(&config, &[("env", "dev")]).await;
    let err = f.invoke_raw("{\"detail-type\": ").await.unwrap().error();
    assert!(
        err.to_string().to_lowercase().contains("eof") || err.to_string().contains("JSON"),
        "{err}"
    );
    let mut bad = ec2_finding(&victim.instance, HUB_ACCOUNT);
    bad["detail"]["severity"] = json!("8.0");
    let err = f.error_for(&bad).await;
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("bad event: detail.severity must be a JSON number"),
        "{err}"
    );
    let mut bad = ec2_finding(&victim.instance, HUB_ACCOUNT);
    bad["detail"].as_object_mut().unwrap().remove("accountId");
    let err = f.error_for(&bad).await;
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("missing detail.accountId"),
        "{err}"
    );
    let err = f.error_for(&json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "id": "x", "detail": {}})).await;
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("unknown event shape"),
        "{err}"
    );
    assert!(stack.inbox.drain().await.unwrap().is_empty());

    for (var, marker) in [
        ("STEWARD_DRY_RUN", "(DRY RUN)"),
        ("STEWARD_DISABLED", "(DISABLED)"),
    ] {
        let mut g = stack
            .function("guardduty-responder", "", &[(var, "true")])
            .await;
        let e = ec2_finding(&victim.instance, HUB_ACCOUNT);
        report(&stack, &e).await;
        let out = g.response_to(&e).await;
        assert_eq!(out["containment"], "would-contain", "{var}: {out}");
        let received = stack.inbox.drain().await.unwrap();
        assert_eq!(received.len(), 1, "{var}");
        assert!(
            received[0].subject.contains(marker),
            "{}",
            received[0].subject
        );
        assert!(received[0]
            .description()
            .contains("would replace the security groups"));
    }
    assert_not_quarantined(&ec2, &victim).await;
    assert!(
        groups_named(&ec2, "steward-quarantine", None)
            .await
            .is_empty(),
        "no quarantine group created"
    );
    let snaps = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("tag-key")
                .values("steward:finding")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(snaps.snapshots().is_empty());
    // Only the vanished-instance notification above wrote records; dry-run and kill switch wrote none.
    assert_eq!(stack.idempotency_records().await, 1);
}

#[tokio::test]
async fn forged_inflated_and_sample_findings_contain_nothing_a_genuine_high_one_does() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    detector(&config).await;
    let victim = launch_victim(&config, &[("env", "dev")]).await;
    let mut f = stack.function("guardduty-responder", "", &[]).await;
    let untouched = |out: &Value| {
        assert_eq!(out["containment"], "not-contained", "{out}");
    };

    // Forged: GuardDuty never reported it.
    let forged = ec2_finding(&victim.instance, HUB_ACCOUNT);
    let out = f.response_to(&forged).await;
    untouched(&out);
    assert_eq!(out["verified"], false);
    assert!(
        out["held"].as_str().unwrap().contains("UNVERIFIED"),
        "{out}"
    );
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1, "an unverified finding is still notified");
    assert_eq!(
        received[0].chat["metadata"]["eventType"],
        "steward.guardduty.unverified"
    );
    assert!(
        received[0].subject.contains("UNVERIFIED"),
        "{}",
        received[0].subject
    );

    // Inflated: GuardDuty says LOW, the payload says HIGH.
    let inflated = ec2_finding(&victim.instance, HUB_ACCOUNT);
    let mut genuine = inflated["detail"].clone();
    genuine["severity"] = json!(2.0);
    report_in(&stack, HUB_ACCOUNT, &genuine).await;
    let out = f.response_to(&inflated).await;
    untouched(&out);
    assert_eq!(out["band"], "LOW", "GuardDuty's severity is used: {out}");
    stack.inbox.drain().await.unwrap();

    // A sample finding GuardDuty made (CreateSampleFindings-like): notified, never contained.
    let sample = ec2_finding(&victim.instance, HUB_ACCOUNT);
    let mut detail = sample["detail"].clone();
    detail["service"]["additionalInfo"] = json!({"value": "{\"sample\":true}", "type": "default"});
    report_in(&stack, HUB_ACCOUNT, &detail).await;
    let out = f.response_to(&sample).await;
    untouched(&out);
    assert!(out["held"].as_str().unwrap().contains("sample"), "{out}");
    assert_eq!(stack.inbox.drain().await.unwrap().len(), 1);

    assert!(!instance_tags(&ec2, &victim.instance)
        .await
        .contains_key("steward:quarantined"));
    assert!(!termination_protected(&ec2, &victim.instance).await);
    assert_eq!(
        eni_groups(&ec2, &victim.interfaces[0]).await,
        victim.groups[0]
    );

    // The genuine HIGH finding is contained.
    let real = ec2_finding(&victim.instance, HUB_ACCOUNT);
    report(&stack, &real).await;
    let out = f.response_to(&real).await;
    assert_eq!(out["containment"], "contained", "{out}");
}

#[tokio::test]
async fn guardduty_unreachable_contains_nothing_says_so_and_fails_for_a_retry() {
    let stack = Stack::new().await;
    let (ec2, victim, mut f, e) = reported_dev_victim(&stack).await;
    stack
        .moto
        .post("/_steward/guardduty/outage", &json!({"on": true}))
        .await
        .unwrap();
    // The invocation fails (Lambda delivers it again) after telling the team.
    let error = f.invoke(&e).await.unwrap().error();
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("GuardDuty could not be asked"),
        "{error}"
    );
    assert!(!instance_tags(&ec2, &victim.instance)
        .await
        .contains_key("steward:quarantined"));
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert!(received[0].description().contains("UNVERIFIED"));
    // Still down at the retry: failed again, not told twice.
    f.invoke(&e).await.unwrap().error();
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    // GuardDuty answers at the next retry: contained (issue 11: a transient
    // outage no longer loses the containment until the sweep).
    stack
        .moto
        .post("/_steward/guardduty/outage", &json!({"on": false}))
        .await
        .unwrap();
    let out = f.response_to(&e).await;
    assert_eq!(out["verified"], true, "{out}");
    assert!(instance_tags(&ec2, &victim.instance)
        .await
        .contains_key("steward:quarantined"));
}

#[tokio::test]
async fn pre_tagged_and_reverted_instances_are_isolated_from_their_real_groups() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    // Tags written in advance by whoever can write tags.
    let victim = launch_victim(
        &config,
        &[
            ("env", "dev"),
            ("steward:quarantined", "forged 2026-01-01T00:00:00Z"),
        ],
    )
    .await;
    for eni in &victim.interfaces {
        ec2.create_tags()
            .resources(eni)
            .tags(
                Tag::builder()
                    .key("steward:previous-groups")
                    .value("sg-0forged")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let mut f = stack.function("guardduty-responder", "", &[]).await;
    let e = ec2_finding(&victim.instance, HUB_ACCOUNT);
    report(&stack, &e).await;
    let out = f.response_to(&e).await;
    assert_eq!(out["containment"], "contained", "{out}");
    let q = quarantine_group(&ec2, &victim.vpc)
        .await
        .group_id()
        .unwrap()
        .to_string();
    for (eni, groups) in victim.interfaces.iter().zip(&victim.groups) {
        // The emulator reads back exactly the groups the swap set.
        assert_eq!(eni_groups(&ec2, eni).await, vec![q.clone()], "{eni}");
        let mut recorded: Vec<String> = eni_tags(&ec2, eni).await["steward:previous-groups"]
            .split(',')
            .map(str::to_string)
            .collect();
        recorded.sort();
        let mut expected = groups.clone();
        expected.sort();
        assert_eq!(
            recorded, expected,
            "the record is the real groups, not the forged one"
        );
    }

    // Someone puts the groups back; the next finding isolates it again.
    ec2.modify_network_interface_attribute()
        .network_interface_id(&victim.interfaces[0])
        .groups(&victim.groups[0][0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        eni_groups(&ec2, &victim.interfaces[0]).await,
        victim.groups[0]
    );
    let again = ec2_finding(&victim.instance, HUB_ACCOUNT);
    report(&stack, &again).await;
    let out = f.response_to(&again).await;
    assert_eq!(out["containment"], "contained", "{out}");
    assert_eq!(
        eni_groups(&ec2, &victim.interfaces[0]).await,
        vec![q.clone()]
    );
    // The allow-all group of the two-step swap exists, managed, open both ways.
    let open = groups_named(&ec2, "steward-quarantine-open", None).await;
    let open = &open[0];
    assert!(!open.ip_permissions().is_empty() && !open.ip_permissions_egress().is_empty());
}

#[tokio::test]
async fn sweep_catches_a_lost_event_and_contains_a_finding_seen_twice_once() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let lost = launch_victim(&config, &[("env", "dev")]).await;
    let seen = launch_victim(&config, &[("env", "dev")]).await;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut lost_event = ec2_finding(&lost.instance, HUB_ACCOUNT);
    lost_event["detail"]["updatedAt"] = json!(now);
    let mut seen_event = ec2_finding(&seen.instance, HUB_ACCOUNT);
    seen_event["detail"]["updatedAt"] = json!(now);
    // An old finding outside the look-back and a LOW one: not swept.
    let old = launch_victim(&config, &[("env", "dev")]).await;
    let old_event = ec2_finding(&old.instance, HUB_ACCOUNT);
    report(&stack, &lost_event).await;
    report(&stack, &seen_event).await;
    report(&stack, &old_event).await;
    let mut f = stack.function("guardduty-responder", "", &[]).await;
    let out = f.response_to(&seen_event).await;
    assert_eq!(out["containment"], "contained", "{out}");
    let seen_id = seen_event["detail"]["id"].as_str().unwrap();
    assert_eq!(finding_snapshots(&ec2, seen_id).await.len(), 2);
    stack.inbox.drain().await.unwrap();

    let out = f.response_to(&json!({"job": "findings-sweep"})).await;
    let handled = out["findings"].as_array().unwrap();
    assert_eq!(handled.len(), 2, "{out}");
    let by_id = |id: &str| {
        handled
            .iter()
            .find(|h| h["finding_id"] == id)
            .cloned()
            .unwrap()
    };
    let lost_id = lost_event["detail"]["id"].as_str().unwrap();
    assert_eq!(by_id(lost_id)["containment"], "contained", "{out}");
    assert_eq!(by_id(seen_id)["containment"], "already-contained", "{out}");
    assert!(instance_tags(&ec2, &lost.instance)
        .await
        .contains_key("steward:quarantined"));
    assert_eq!(
        finding_snapshots(&ec2, seen_id).await.len(),
        2,
        "contained once"
    );
    assert!(!instance_tags(&ec2, &old.instance)
        .await
        .contains_key("steward:quarantined"));
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1, "only the lost finding is news");
}

#[tokio::test]
async fn the_hourly_cap_stops_containment_with_one_critical_alert() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let mut f = stack
        .function(
            "guardduty-responder",
            "[containment]\nmax_per_hour = 1\n",
            &[],
        )
        .await;
    let mut victims = Vec::new();
    for _ in 0..3 {
        victims.push(launch_victim(&config, &[("env", "dev")]).await);
    }
    let mut outs = Vec::new();
    for v in &victims {
        let e = ec2_finding(&v.instance, HUB_ACCOUNT);
        report(&stack, &e).await;
        outs.push(f.response_to(&e).await);
    }
    assert_eq!(outs[0]["containment"], "contained", "{}", outs[0]);
    for out in &outs[1..] {
        assert_eq!(out["containment"], "not-contained", "{out}");
        assert!(
            out["held"].as_str().unwrap().contains("max_per_hour"),
            "{out}"
        );
    }
    assert!(!instance_tags(&ec2, &victims[2].instance)
        .await
        .contains_key("steward:quarantined"));
    let received = stack.inbox.drain().await.unwrap();
    let critical: Vec<_> = received
        .iter()
        .filter(|m| m.chat["metadata"]["eventType"] == "steward.guardduty.containment-cap")
        .collect();
    assert_eq!(critical.len(), 1, "one CRITICAL alert in the hour");
    assert_eq!(critical[0].attributes["severity"], "CRITICAL");
    assert_eq!(received.len(), 4, "every finding is still notified");
}

/// An Auto Scaling group holding `instance` (attached to it), with room to spare.
async fn group_with(config: &SdkConfig, instance: &str) -> String {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let template = unique("web-template");
    ec2.create_launch_template()
        .launch_template_name(&template)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let name = unique("web-asg");
    let asg = aws_sdk_autoscaling::Client::new(config);
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(&template)
                .build(),
        )
        .min_size(1)
        .max_size(4)
        .desired_capacity(1)
        .availability_zones(format!("{REGION}a"))
        .send()
        .await
        .unwrap();
    asg.attach_instances()
        .auto_scaling_group_name(&name)
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    name
}

/// (lifecycle state, scale-in protection) of an instance in its group.
async fn asg_state(config: &SdkConfig, instance: &str) -> (String, bool) {
    let out = aws_sdk_autoscaling::Client::new(config)
        .describe_auto_scaling_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    let i = &out.auto_scaling_instances()[0];
    (
        i.lifecycle_state().unwrap().to_string(),
        i.protected_from_scale_in().unwrap_or(false),
    )
}

async fn desired_capacity(config: &SdkConfig, group: &str) -> i32 {
    let out = aws_sdk_autoscaling::Client::new(config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap();
    out.auto_scaling_groups()[0].desired_capacity().unwrap()
}

/// A target group of instances in `vpc`; returns its ARN.
async fn target_group(config: &SdkConfig, vpc: &str) -> String {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(config);
    let out = elb
        .create_target_group()
        .name(
            unique("web")
                .replace('_', "-")
                .chars()
                .take(30)
                .collect::<String>(),
        )
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
        .send()
        .await
        .unwrap();
    out.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string()
}

/// The instances registered in a target group (draining ones excluded).
async fn registered(config: &SdkConfig, target_group: &str) -> Vec<String> {
    let out = aws_sdk_elasticloadbalancingv2::Client::new(config)
        .describe_target_health()
        .target_group_arn(target_group)
        .send()
        .await
        .unwrap();
    out.target_health_descriptions()
        .iter()
        .filter(|d| {
            d.target_health().and_then(|h| h.state())
                != Some(&aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum::Draining)
        })
        .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
        .collect()
}

/// The actions of the emulator's call log, in order (see tools/moto_ext_call_log.py).
async fn call_log(stack: &Stack) -> Vec<String> {
    let log: Vec<Value> =
        serde_json::from_str(&stack.moto.get("/_steward/calls").await.unwrap()).unwrap();
    log.iter()
        .map(|c| c["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn evidence_is_kept_before_the_swap_and_release_undoes_it_and_reports_the_open_group() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let victim = launch_victim(&config, &[("env", "prod")]).await;
    let group = group_with(&config, &victim.instance).await;
    assert_eq!(
        asg_state(&config, &victim.instance).await,
        ("InService".to_string(), false)
    );
    let desired = desired_capacity(&config, &group).await;
    let web = target_group(&config, &victim.vpc).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    elb.register_targets()
        .target_group_arn(&web)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id(&victim.instance)
                .port(8080)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let unrelated = target_group(&config, &victim.vpc).await;
    assert_eq!(
        registered(&config, &web).await,
        vec![victim.instance.clone()]
    );

    let mut f = stack.function("guardduty-responder", "", &[]).await;
    let e = ec2_finding(&victim.instance, HUB_ACCOUNT);
    report(&stack, &e).await;
    stack
        .moto
        .post("/_steward/calls/clear", &json!({}))
        .await
        .unwrap();
    let out = f.response_to(&e).await;
    assert_eq!(out["containment"], "contained", "{out}");

    // Standby with scale-in protection; the desired capacity lowered by one
    // (it stays at or above the minimum); deregistered from its target group.
    assert_eq!(
        asg_state(&config, &victim.instance).await,
        ("Standby".to_string(), true)
    );
    assert_eq!(desired_capacity(&config, &group).await, desired - 1);
    assert!(registered(&config, &web).await.is_empty());
    assert!(registered(&config, &unrelated).await.is_empty());
    let tags = instance_tags(&ec2, &victim.instance).await;
    assert_eq!(
        tags["steward:standby"],
        format!("protected=false;decremented=true;group={group}")
    );
    let tg_tail = web.split_once(":targetgroup/").unwrap().1;
    assert_eq!(tags["steward:target-groups"], format!("{tg_tail}:8080"));

    // In that order, all before the first step of the swap.
    let calls = call_log(&stack).await;
    let at = |action: &str| {
        calls
            .iter()
            .position(|c| c == action)
            .unwrap_or_else(|| panic!("no {action} in {calls:?}"))
    };
    assert!(
        at("SetInstanceProtection") < at("EnterStandby"),
        "{calls:?}"
    );
    assert!(at("EnterStandby") < at("DeregisterTargets"), "{calls:?}");
    assert!(
        at("DeregisterTargets") < at("ModifyNetworkInterfaceAttribute"),
        "{calls:?}"
    );

    // The message says what was done for the evidence.
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    let text = received[0].description();
    for expected in [
        format!(
            "- done: set scale-in protection on {} in Auto Scaling group {group}",
            victim.instance
        ),
        format!(
            "- done: put {} in Standby in Auto Scaling group {group}",
            victim.instance
        ),
        format!(
            "- done: deregistered {} (port 8080) from load-balancer target group {web}",
            victim.instance
        ),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in {text}");
    }
    assert!(!text.contains("FAILED"), "{text}");

    // A repeated delivery changes nothing.
    let again = f.response_to(&e).await;
    assert_eq!(again["containment"], "already-contained", "{again}");

    // Someone leaves the second interface on the allow-all group without a
    // record: the release restores what it can and says the group is attached.
    let open = groups_named(&ec2, "steward-quarantine-open", Some(&victim.vpc)).await[0]
        .group_id()
        .unwrap()
        .to_string();
    ec2.modify_network_interface_attribute()
        .network_interface_id(&victim.interfaces[1])
        .groups(&open)
        .send()
        .await
        .unwrap();
    ec2.delete_tags()
        .resources(&victim.interfaces[1])
        .tags(Tag::builder().key("steward:previous-groups").build())
        .send()
        .await
        .unwrap();

    let report = steward_json(
        &stack,
        &["quarantine", "release", &victim.instance, "--json"],
    );
    assert_eq!(report["standby_exited"], group.as_str(), "{report}");
    assert_eq!(report["protection_removed"], group.as_str(), "{report}");
    assert_eq!(
        report["reregistered"],
        json!([format!("{web} (port 8080)")]),
        "{report}"
    );
    assert_eq!(report["restored"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["open_group"]["id"], open.as_str(), "{report}");
    assert_eq!(
        report["open_group"]["still_attached_to"],
        json!([victim.interfaces[1]]),
        "{report}"
    );
    let lines = report["lines"].to_string();
    assert!(lines.contains("STILL ATTACHED"), "{lines}");
    // The interface whose tag was removed keeps its record for the person restoring it.
    assert!(lines.contains("undo record is kept"), "{lines}");
    assert_eq!(
        asg_state(&config, &victim.instance).await,
        ("InService".to_string(), false)
    );
    assert_eq!(
        registered(&config, &web).await,
        vec![victim.instance.clone()]
    );
    let tags = instance_tags(&ec2, &victim.instance).await;
    assert!(
        !tags.contains_key("steward:standby")
            && !tags.contains_key("steward:target-groups")
            && !tags.contains_key("steward:quarantined"),
        "{tags:?}"
    );
}

#[tokio::test]
async fn an_account_under_a_targeted_unit_is_governed_and_one_outside_is_not() {
    let stack = Stack::new().await;
    let config = stack.moto.config();
    let (org, root) = organizations::organization(&config).await;
    let prod = organizations::organizational_unit(&org, &root, "prod").await;
    let team = organizations::organizational_unit(&org, &prod, "team").await;
    let nested = organizations::account(&org, "nested").await;
    let outside = organizations::account(&org, "sandbox").await;
    organizations::move_account(&org, &nested, &root, &team).await;

    let policy =
        format!("[targets]\naccounts = [\"{HUB_ACCOUNT}\"]\norganizational_units = [\"{prod}\"]\n");
    let mut f = stack.function("guardduty-responder", &policy, &[]).await;
    // Inside the nested unit: governed (the instance is gone, so the hold is that).
    let inside = ec2_finding("i-0feedface0000000a", &nested);
    report(&stack, &inside).await;
    let out = f.response_to(&inside).await;
    let held = out["held"].as_str().unwrap();
    assert!(held.contains("no longer exists"), "{out}");
    // Outside: notified, nothing contained, and the message says why.
    let e = ec2_finding("i-0feedface0000000b", &outside);
    report(&stack, &e).await;
    let out = f.response_to(&e).await;
    assert_eq!(out["containment"], "not-contained", "{out}");
    let held = out["held"].as_str().unwrap();
    assert!(
        held.contains(&format!("account {outside} is not governed")) && held.contains(&root),
        "{out}"
    );
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 2, "both findings are notified");
    assert!(received[1].description().contains("is not governed"));
}
