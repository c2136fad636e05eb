//! The hub template deploys what a real organization needs, read statically
//! (moto checks none of it): the policy parameter holds the example policy
//! and fits its tier; every function is built by cargo-lambda under its own
//! name, logs to a group with a retention, and has Errors and Throttles
//! alarms on the security topic; the topic's key lets CloudWatch alarms
//! publish; EventBridge may write its dead-letter queue; every timeout is
//! longer than the waits inside it; and the raw cost events reach only the
//! budget alerter.

use serde_norway::Value;
use steward_shared::policy::Policy;
use steward_tests::templates::{hub, referenced, Template};
use steward_tests::workspace_root;

/// The largest value of an SSM parameter in each tier.
const STANDARD_TIER_BYTES: usize = 4096;
const ADVANCED_TIER_BYTES: usize = 8192;

fn properties<'a>(template: &'a Template, id: &str) -> &'a Value {
    template
        .resource(id)
        .and_then(|r| r.get("Properties"))
        .unwrap_or_else(|| panic!("{id} in {}", template.file))
}

fn functions(template: &Template) -> Vec<(String, &Value)> {
    template
        .of_type("AWS::Serverless::Function")
        .map(|(id, r)| (id.to_string(), r))
        .collect()
}

fn function_name(function: &Value) -> String {
    function["Properties"]["FunctionName"]
        .as_str()
        .expect("every function has a FunctionName (the binary name)")
        .to_string()
}

/// The example policy as the parameter holds it: settings only.
fn compact(example: &str) -> String {
    example
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn the_policy_parameter_holds_the_example_policy_and_fits_its_tier() {
    let hub = hub();
    let parameter = properties(&hub, "PolicyParameter");
    let value = parameter["Value"]
        .as_str()
        .expect("the policy parameter's value is a literal");
    let example =
        std::fs::read_to_string(workspace_root().join("infra/policy.example.toml")).unwrap();
    assert_eq!(
        value,
        compact(&example),
        "the policy parameter in infra/template.yaml is out of date: run `make sync-template`"
    );
    // The same settings (the version is a hash of the text, comments included).
    let settings = |text: &str| Policy {
        version: String::new(),
        ..Policy::from_toml(text).expect("a valid policy")
    };
    assert_eq!(
        settings(value),
        settings(&example),
        "the deployed policy differs from the example's settings"
    );
    let limit = match parameter["Tier"].as_str() {
        Some("Advanced") => ADVANCED_TIER_BYTES,
        _ => STANDARD_TIER_BYTES,
    };
    assert!(
        value.len() <= limit,
        "the policy parameter is {} bytes, over its tier's {limit}",
        value.len()
    );
}

#[test]
fn every_function_is_built_by_cargo_lambda_under_its_own_name() {
    let hub = hub();
    let make = std::fs::read_to_string(workspace_root().join("Makefile")).unwrap();
    let listed = make
        .lines()
        .find_map(|l| l.strip_prefix("FUNCTIONS := "))
        .expect("FUNCTIONS in the Makefile");
    let mut deployed = Vec::new();
    for (id, function) in functions(&hub) {
        let name = function_name(function);
        let metadata = &function["Metadata"];
        assert_eq!(
            metadata["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}: sam build needs BuildMethod rust-cargolambda"
        );
        assert_eq!(
            metadata["BuildProperties"]["Binary"].as_str(),
            Some(name.as_str()),
            "{id}: the binary built must be the function's name"
        );
        deployed.push(name);
    }
    let mut listed: Vec<String> = listed.split_whitespace().map(str::to_string).collect();
    listed.sort();
    deployed.sort();
    assert_eq!(
        deployed, listed,
        "the hub template deploys exactly the Makefile's FUNCTIONS"
    );
}

#[test]
fn every_function_logs_with_a_retention_and_has_error_and_throttle_alarms() {
    let hub = hub();
    let alarms: Vec<&Value> = hub
        .of_type("AWS::CloudWatch::Alarm")
        .map(|(_, a)| &a["Properties"])
        .collect();
    for (id, function) in functions(&hub) {
        let name = function_name(function);
        let group = function["Properties"]["LoggingConfig"]
            .get("LogGroup")
            .and_then(referenced)
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup names no log group"));
        let group = properties(&hub, &group);
        assert!(
            group.get("RetentionInDays").is_some(),
            "{id}: its log group keeps logs forever"
        );
        assert_eq!(
            group["LogGroupName"].as_str(),
            Some(format!("/aws/lambda/{name}").as_str())
        );
        for metric in ["Errors", "Throttles"] {
            let alarm = alarms.iter().find(|a| {
                a["MetricName"].as_str() == Some(metric)
                    && a["Dimensions"][0]["Value"].as_str() == Some(name.as_str())
            });
            let alarm = alarm.unwrap_or_else(|| {
                panic!("{name} has no {metric} alarm: run `make sync-template`")
            });
            let actions: Vec<Option<String>> = alarm["AlarmActions"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(referenced)
                .collect();
            assert_eq!(actions, vec![Some("SecurityTopic".to_string())]);
        }
    }
}

#[test]
fn cloudwatch_alarms_can_publish_to_the_security_topic() {
    let hub = hub();
    let topic = properties(&hub, "SecurityTopic");
    let key = topic
        .get("KmsMasterKeyId")
        .and_then(referenced)
        .expect("the security topic is encrypted with a key of this template (the AWS-managed SNS key refuses CloudWatch)");
    let policy = serde_norway::to_string(&properties(&hub, &key)["KeyPolicy"]).unwrap();
    assert!(
        policy.contains("cloudwatch.amazonaws.com"),
        "the key policy of {key} does not let CloudWatch alarms publish"
    );
    let topic_policy = hub
        .of_type("AWS::SNS::TopicPolicy")
        .map(|(_, p)| serde_norway::to_string(p).unwrap())
        .find(|p| p.contains("SecurityTopic"))
        .expect("a topic policy on the security topic");
    assert!(topic_policy.contains("cloudwatch.amazonaws.com"));
}

#[test]
fn eventbridge_may_write_every_dead_letter_queue_its_rules_name() {
    let hub = hub();
    // The queues whose policy lets EventBridge send.
    let writable: Vec<String> = hub
        .of_type("AWS::SQS::QueuePolicy")
        .filter(|(_, p)| {
            serde_norway::to_string(p)
                .unwrap()
                .contains("events.amazonaws.com")
        })
        .flat_map(|(_, p)| {
            p["Properties"]["Queues"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(referenced)
        })
        .collect();
    for (id, function) in functions(&hub) {
        let events = function["Properties"]["Events"].as_mapping();
        for (label, event) in events.into_iter().flatten() {
            if event["Type"].as_str() != Some("EventBridgeRule") {
                continue;
            }
            let queue = event["Properties"]["DeadLetterConfig"]
                .get("Arn")
                .and_then(referenced)
                .unwrap_or_else(|| panic!("{id}.{label:?}: no dead-letter queue"));
            assert!(
                writable.contains(&queue),
                "{id}.{label:?}: EventBridge has no queue policy to write {queue}"
            );
            assert!(
                event["Properties"].get("EventBusName").is_some(),
                "{id}.{label:?}: listens on the default bus, where member accounts' events never arrive"
            );
        }
    }
}

#[test]
fn timeouts_are_longer_than_the_waits_inside_them() {
    let hub = hub();
    let default_timeout = 120;
    let timeout = |id: &str| {
        properties(&hub, id)
            .get("Timeout")
            .and_then(Value::as_u64)
            .unwrap_or(default_timeout)
    };
    // The seven-day restart waits up to offhours.restart_wait_seconds, which
    // the policy caps at 840 s; the run around it needs a margin.
    assert!(
        timeout("OffhoursSchedulerFunction") >= 840 + 60,
        "the scheduler's timeout must exceed the longest restart wait"
    );
    // Lambda requires a queue's visibility timeout at least the function's.
    for (id, function) in functions(&hub) {
        let events = function["Properties"]["Events"].as_mapping();
        for (_, event) in events.into_iter().flatten() {
            if event["Type"].as_str() != Some("SQS") {
                continue;
            }
            let queue = referenced(&event["Properties"]["Queue"]).unwrap();
            let visibility = properties(&hub, &queue)["VisibilityTimeout"]
                .as_u64()
                .unwrap_or(30);
            assert!(
                visibility >= timeout(&id),
                "{queue}'s visibility timeout ({visibility} s) is below {id}'s timeout"
            );
        }
    }
}

#[test]
fn raw_cost_events_reach_only_the_budget_alerter() {
    let hub = hub();
    let mut readers = Vec::new();
    for (_, function) in functions(&hub) {
        let events = function["Properties"]["Events"].as_mapping();
        for (_, event) in events.into_iter().flatten() {
            if event["Type"].as_str() == Some("SNS")
                && referenced(&event["Properties"]["Topic"]).as_deref() == Some("CostEventsTopic")
            {
                readers.push(function_name(function));
            }
        }
    }
    assert_eq!(readers, vec!["budget-alerter".to_string()]);
    for (id, subscription) in hub.of_type("AWS::SNS::Subscription") {
        assert_ne!(
            referenced(&subscription["Properties"]["TopicArn"]).as_deref(),
            Some("CostEventsTopic"),
            "{id} subscribes someone to the raw cost events"
        );
    }
    let key = properties(&hub, "CostEventsTopic")
        .get("KmsMasterKeyId")
        .and_then(referenced)
        .expect("the cost events topic has its own key");
    assert_ne!(
        Some(key),
        properties(&hub, "SecurityTopic")
            .get("KmsMasterKeyId")
            .and_then(referenced)
    );
    let policy = hub
        .of_type("AWS::SNS::TopicPolicy")
        .map(|(_, p)| serde_norway::to_string(p).unwrap())
        .find(|p| p.contains("CostEventsTopic"))
        .expect("a topic policy on the cost events topic");
    assert!(
        policy.contains("aws:SourceOrgID"),
        "the cost events topic must accept only the organization's publishers"
    );
}
