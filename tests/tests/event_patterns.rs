//! Every EventBridge rule pattern in the templates, proven against every
//! EventBridge-shaped fixture in `events/`: each pattern becomes a rule on
//! moto's EventBridge (real pattern matching) with its own SQS target, each
//! fixture with a `detail-type` (scheduled events aside: schedules, not
//! patterns, deliver those) is put on the bus, and each must reach a rule of
//! its own function and no rule of another. The functions' rules listen on
//! the hub's organization bus, so each fixture must also match a forwarding
//! rule of the member or management template (the rule that carries it from
//! the account where it happens to the hub).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use serde_norway::Value;
use steward_tests::moto::Moto;
use steward_tests::templates::{templates, to_json};
use steward_tests::workspace_root;

/// Which function a fixture is for, by its file name.
fn owner(fixture: &str) -> Option<&'static str> {
    const OWNERS: &[(&str, &str)] = &[
        ("cloudtrail-", "tag-enforcer"),
        ("guardduty-", "guardduty-responder"),
        ("rds-event-0153", "offhours-scheduler"),
        ("rds-event-0154", "offhours-scheduler"),
        ("rds-snapshot-", "snapshot-copier"),
        ("rds-cluster-snapshot-", "snapshot-copier"),
        ("config-compliance-", "compliance-notifier"),
        ("anomaly-", "budget-alerter"),
    ];
    OWNERS
        .iter()
        .find(|(prefix, _)| fixture.starts_with(prefix))
        .map(|(_, function)| *function)
}

/// The label of a forwarding rule's owner (member and management templates).
const FORWARD: &str = "forward";

/// Every EventBridge rule pattern in the templates: (owner, rule label,
/// pattern). The owner is the function a rule invokes, or [`FORWARD`] for a
/// rule that forwards an account's events to the hub bus.
fn patterns() -> Vec<(String, String, Json)> {
    let mut out = Vec::new();
    for template in templates() {
        for (id, resource) in template.of_type("AWS::Serverless::Function") {
            let Some(props) = resource.get("Properties") else {
                continue;
            };
            let name = props
                .get("FunctionName")
                .and_then(Value::as_str)
                .unwrap_or(id)
                .to_string();
            let Some(events) = props.get("Events").and_then(Value::as_mapping) else {
                continue;
            };
            for (label, event) in events {
                if event.get("Type").and_then(Value::as_str) != Some("EventBridgeRule") {
                    continue;
                }
                if let Some(pattern) = event.get("Properties").and_then(|p| p.get("Pattern")) {
                    out.push((
                        name.clone(),
                        format!("{id}.{}", label.as_str().unwrap_or("?")),
                        to_json(pattern),
                    ));
                }
            }
        }
        for (id, resource) in template.of_type("AWS::Events::Rule") {
            if let Some(pattern) = resource
                .get("Properties")
                .and_then(|p| p.get("EventPattern"))
            {
                out.push((
                    FORWARD.to_string(),
                    format!("{} {id}", template.file),
                    to_json(pattern),
                ));
            }
        }
    }
    out
}

/// Every fixture with a `detail-type` except scheduled events.
fn fixtures() -> Vec<(String, Json)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(workspace_root().join("events"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let event: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(detail_type) = event.get("detail-type").and_then(Json::as_str) else {
            continue;
        };
        if detail_type == "Scheduled Event" {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        out.push((name, event));
    }
    out
}

#[tokio::test]
async fn every_fixture_reaches_its_own_function_and_no_other() {
    let patterns = patterns();
    assert!(
        !patterns.is_empty(),
        "no EventBridge rule pattern found in infra/"
    );
    let fixtures = fixtures();
    let unowned: Vec<&str> = fixtures
        .iter()
        .filter(|(name, _)| owner(name).is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        unowned.is_empty(),
        "fixtures with no owning function in this test's table: {unowned:?}"
    );

    let moto = Moto::start().await.unwrap();
    let config = moto.config();
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let mut queues = Vec::new();
    for (i, (function, label, pattern)) in patterns.iter().enumerate() {
        let queue_name = format!("rule-{i}");
        let url = sqs
            .create_queue()
            .queue_name(&queue_name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let arn = format!("arn:aws:sqs:us-east-1:123456789012:{queue_name}");
        events
            .put_rule()
            .name(format!("rule-{i}"))
            .event_pattern(pattern.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{label}: the pattern is not accepted: {e:?}"));
        events
            .put_targets()
            .rule(format!("rule-{i}"))
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("q")
                    .arn(arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        queues.push((function.clone(), label.clone(), url));
    }

    let mut reached: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, event) in &fixtures {
        let mut entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(event["source"].as_str().unwrap_or_default())
            .detail_type(event["detail-type"].as_str().unwrap_or_default())
            .detail(
                event
                    .get("detail")
                    .cloned()
                    .unwrap_or(Json::Null)
                    .to_string(),
            );
        for r in event["resources"].as_array().into_iter().flatten() {
            if let Some(r) = r.as_str() {
                entry = entry.resources(r);
            }
        }
        events
            .put_events()
            .entries(entry.build())
            .send()
            .await
            .unwrap();
        // moto delivers synchronously: read every queue now, so each delivery is tied to this fixture.
        for (function, label, url) in &queues {
            let got = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            for message in got.messages() {
                reached
                    .entry(name.clone())
                    .or_default()
                    .insert(format!("{function} ({label})"));
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    let mut problems = Vec::new();
    let forwarding = format!("{FORWARD} ");
    for (name, _) in &fixtures {
        let own = owner(name).unwrap_or_default();
        let (forwards, rules): (BTreeSet<String>, BTreeSet<String>) = reached
            .get(name)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .partition(|r| r.starts_with(&forwarding));
        if !rules.iter().any(|r| r.starts_with(&format!("{own} "))) {
            problems.push(format!(
                "{name} reaches no rule of {own} (reached: {rules:?})"
            ));
        }
        for other in rules.iter().filter(|r| !r.starts_with(&format!("{own} "))) {
            problems.push(format!("{name} also reaches {other}"));
        }
        // Every function rule listens on the hub bus: the event must be forwarded there.
        if forwards.is_empty() {
            problems.push(format!(
                "{name} is forwarded to the hub bus by no rule of infra/member.yaml or infra/management.yaml"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn a_broken_pattern_is_caught() {
    // The same matching, with the tag enforcer's pattern narrowed to a call
    // no fixture makes: its fixtures must then be reported as reaching nothing.
    let moto = Moto::start().await.unwrap();
    let config = moto.config();
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .create_queue()
        .queue_name("broken")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let (_, _, mut pattern) = patterns()
        .into_iter()
        .find(|(f, _, _)| f == "tag-enforcer")
        .expect("the tag enforcer has a pattern");
    pattern["detail"]["eventName"] = serde_json::json!(["NoSuchCall"]);
    events
        .put_rule()
        .name("broken")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("broken")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn("arn:aws:sqs:us-east-1:123456789012:broken")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (_, event) = fixtures()
        .into_iter()
        .find(|(n, _)| n == "cloudtrail-run-instances.json")
        .unwrap();
    events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source(event["source"].as_str().unwrap())
                .detail_type(event["detail-type"].as_str().unwrap())
                .detail(event["detail"].to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = sqs.receive_message().queue_url(&url).send().await.unwrap();
    assert!(
        got.messages().is_empty(),
        "a pattern that names another call must not match the fixture"
    );
}
