//! Typed models of the tag enforcer's triggers: EventBridge `AWS API Call via
//! CloudTrail` events for create calls, and AWS Config custom rule events.
//! Parsing fails with an error that names the problem; nothing is guessed.

use aws_lambda_events::event::cloudwatch_events::cloudtrail::{AWSAPICall, UserIdentity};
use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::config::ConfigEvent;
use serde_json::Value;

use crate::resources::{ResourceKind, ResourceRef};

/// A trigger the tag enforcer understands.
#[derive(Debug, Clone)]
pub enum Trigger {
    CreateCall(Box<CreateCall>),
    Config(Box<ConfigRuleEvent>),
}

/// A create call recorded by CloudTrail.
#[derive(Debug, Clone)]
pub struct CreateCall {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub event_name: String,
    pub identity: UserIdentity,
    /// Set when the call failed: nothing was created.
    pub error_code: Option<String>,
    pub resources: Vec<ResourceRef>,
}

/// What an AWS Config rule event asks for.
#[derive(Debug, Clone)]
pub struct ConfigRuleEvent {
    pub rule_name: String,
    pub account: String,
    pub region: String,
    pub result_token: String,
    pub event_left_scope: bool,
    pub parameters: serde_json::Map<String, Value>,
    pub invocation: ConfigInvocation,
    /// Identifies this invocation in logs and idempotency keys.
    pub event_id: String,
}

/// The three kinds of Config invocations.
#[derive(Debug, Clone)]
pub enum ConfigInvocation {
    /// A configuration item in full.
    Change(ConfigItem),
    /// Only a summary: the item must be fetched with `GetResourceConfigHistory`.
    Oversized(ConfigItemSummary),
    /// Periodic: evaluate every supported resource.
    Scheduled {
        notification_time: chrono::DateTime<chrono::Utc>,
    },
}

/// The parts of a configuration item the evaluation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigItem {
    pub resource_type: String,
    pub resource_id: String,
    pub arn: Option<String>,
    pub status: String,
    pub capture_time: chrono::DateTime<chrono::Utc>,
    pub tags: std::collections::HashMap<String, String>,
}

/// The identifying part of an oversized item.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigItemSummary {
    pub resource_type: String,
    pub resource_id: String,
    pub status: String,
    pub capture_time: chrono::DateTime<chrono::Utc>,
}

pub use steward_shared::failure::BadEvent;

fn bad(message: impl Into<String>) -> BadEvent {
    BadEvent(message.into())
}

/// Parses any tag-enforcer trigger from the invocation payload.
pub fn parse(payload: &Value) -> Result<Trigger, BadEvent> {
    let object = payload
        .as_object()
        .ok_or_else(|| bad("the payload is not a JSON object"))?;
    if object.contains_key("detail-type") {
        let detail_type = object["detail-type"].as_str().unwrap_or_default();
        if detail_type != "AWS API Call via CloudTrail" {
            return Err(bad(format!(
                "EventBridge detail-type `{detail_type}` is not handled by the tag enforcer (expected `AWS API Call via CloudTrail`)"
            )));
        }
        return parse_create_call(payload).map(|call| Trigger::CreateCall(Box::new(call)));
    }
    if object.contains_key("invokingEvent") || object.contains_key("resultToken") {
        return parse_config_event(payload).map(|event| Trigger::Config(Box::new(event)));
    }
    Err(bad(
        "unknown event shape: expected an EventBridge `AWS API Call via CloudTrail` event or an AWS Config rule event (invokingEvent, resultToken)",
    ))
}

fn parse_create_call(payload: &Value) -> Result<CreateCall, BadEvent> {
    let event: CloudWatchEvent<AWSAPICall> = serde_json::from_value(payload.clone())
        .map_err(|e| bad(format!("CloudTrail event: {e}")))?;
    let event_id = event
        .id
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("CloudTrail event: missing `id`"))?;
    let account = event
        .account_id
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("CloudTrail event: missing `account`"))?;
    let detail = event
        .detail
        .ok_or_else(|| bad("CloudTrail event: missing `detail`"))?;
    let region = event
        .region
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| detail.aws_region.clone());
    let error_code = payload
        .pointer("/detail/errorCode")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let resources = if error_code.is_some() {
        Vec::new()
    } else {
        created_resources(
            &detail.event_name,
            &detail.request_parameters,
            detail.response_elements.as_ref(),
        )?
    };
    Ok(CreateCall {
        event_id,
        account,
        region,
        event_name: detail.event_name.clone(),
        identity: detail.user_identity.clone(),
        error_code,
        resources,
    })
}

fn str_at<'a>(value: Option<&'a Value>, path: &[&str]) -> Option<&'a str> {
    let mut v = value?;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

/// The resources a successful create call made, from its request and response.
pub fn created_resources(
    event_name: &str,
    request: &Value,
    response: Option<&Value>,
) -> Result<Vec<ResourceRef>, BadEvent> {
    let need = |found: Option<&str>, field: &str| -> Result<String, BadEvent> {
        found
            .map(str::to_string)
            .ok_or_else(|| bad(format!("{event_name} event: missing `{field}`")))
    };
    let one = |kind, id| Ok(vec![ResourceRef { kind, id }]);
    match event_name {
        "RunInstances" => {
            let items = response
                .and_then(|r| r.pointer("/instancesSet/items"))
                .and_then(Value::as_array)
                .ok_or_else(|| bad("RunInstances event: missing `responseElements.instancesSet.items`"))?;
            items
                .iter()
                .map(|item| {
                    need(item.get("instanceId").and_then(Value::as_str), "responseElements.instancesSet.items[].instanceId")
                        .map(|id| ResourceRef { kind: ResourceKind::Ec2Instance, id })
                })
                .collect()
        }
        "CreateVolume" => one(ResourceKind::Ec2Volume, need(str_at(response, &["volumeId"]), "responseElements.volumeId")?),
        "CreateDBInstance" => one(
            ResourceKind::RdsInstance,
            need(
                str_at(response, &["dBInstanceIdentifier"]).or(str_at(Some(request), &["dBInstanceIdentifier"])),
                "responseElements.dBInstanceIdentifier",
            )?,
        ),
        "CreateDBCluster" => one(
            ResourceKind::RdsCluster,
            need(
                str_at(response, &["dBClusterIdentifier"]).or(str_at(Some(request), &["dBClusterIdentifier"])),
                "responseElements.dBClusterIdentifier",
            )?,
        ),
        "CreateAutoScalingGroup" => one(
            ResourceKind::AutoScalingGroup,
            need(str_at(Some(request), &["autoScalingGroupName"]), "requestParameters.autoScalingGroupName")?,
        ),
        "CreateSecret" => one(
            ResourceKind::Secret,
            need(
                str_at(response, &["aRN"])
                    .or(str_at(response, &["arn"]))
                    .or(str_at(response, &["ARN"]))
                    .or(str_at(Some(request), &["name"])),
                "responseElements.aRN",
            )?,
        ),
        "CreateBucket" => one(
            ResourceKind::S3Bucket,
            need(str_at(Some(request), &["bucketName"]), "requestParameters.bucketName")?,
        ),
        other => Err(bad(format!(
            "CloudTrail event `{other}` is not a create call the tag enforcer handles (RunInstances, CreateVolume, CreateDBInstance, CreateDBCluster, CreateAutoScalingGroup, CreateSecret, CreateBucket)"
        ))),
    }
}

fn parse_config_event(payload: &Value) -> Result<ConfigRuleEvent, BadEvent> {
    let event: ConfigEvent = serde_json::from_value(payload.clone())
        .map_err(|e| bad(format!("AWS Config event: {e}")))?;
    let result_token = event
        .result_token
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("AWS Config event: missing `resultToken`"))?;
    let rule_name = event
        .config_rule_name
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("AWS Config event: missing `configRuleName`"))?;
    let invoking_text = event
        .invoking_event
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("AWS Config event: missing `invokingEvent`"))?;
    let invoking: Value = serde_json::from_str(invoking_text).map_err(|e| {
        bad(format!(
            "AWS Config event: `invokingEvent` is not JSON: {e}"
        ))
    })?;
    let parameters = match event.rule_parameters.as_deref().map(str::trim) {
        None | Some("") => serde_json::Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(bad(
                    "AWS Config event: `ruleParameters` is not a JSON object",
                ))
            }
            Err(e) => {
                return Err(bad(format!(
                    "AWS Config event: `ruleParameters` is not JSON: {e}"
                )))
            }
        },
    };
    let message_type = invoking
        .get("messageType")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("AWS Config event: `invokingEvent.messageType` is missing"))?;
    let rule_arn_parts: Vec<&str> = event
        .config_rule_arn
        .as_deref()
        .unwrap_or_default()
        .split(':')
        .collect();
    let arn_region = rule_arn_parts
        .get(3)
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty());
    let arn_account = rule_arn_parts
        .get(4)
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty());
    let invocation = match message_type {
        "ConfigurationItemChangeNotification" => {
            let item = invoking
                .get("configurationItem")
                .filter(|v| v.is_object())
                .ok_or_else(|| bad("AWS Config event: `invokingEvent.configurationItem` is missing"))?;
            ConfigInvocation::Change(parse_config_item(item)?)
        }
        "OversizedConfigurationItemChangeNotification" => {
            let summary = invoking
                .get("configurationItemSummary")
                .filter(|v| v.is_object())
                .ok_or_else(|| bad("AWS Config event: `invokingEvent.configurationItemSummary` is missing"))?;
            ConfigInvocation::Oversized(ConfigItemSummary {
                resource_type: field(summary, "resourceType")?,
                resource_id: field(summary, "resourceId")?,
                status: field(summary, "configurationItemStatus")?,
                capture_time: time_field(summary, "configurationItemCaptureTime")?,
            })
        }
        "ScheduledNotification" => ConfigInvocation::Scheduled {
            notification_time: time_field(&invoking, "notificationCreationTime")?,
        },
        other => {
            return Err(bad(format!(
                "AWS Config event: messageType `{other}` is not handled (ConfigurationItemChangeNotification, OversizedConfigurationItemChangeNotification, ScheduledNotification)"
            )))
        }
    };
    let item_account = match &invocation {
        ConfigInvocation::Change(_) => invoking.pointer("/configurationItem/awsAccountId"),
        ConfigInvocation::Oversized(_) => {
            invoking.pointer("/configurationItemSummary/awsAccountId")
        }
        ConfigInvocation::Scheduled { .. } => invoking.get("awsAccountId"),
    }
    .and_then(Value::as_str)
    .map(str::to_string);
    let item_region = match &invocation {
        ConfigInvocation::Change(_) => invoking.pointer("/configurationItem/awsRegion"),
        ConfigInvocation::Oversized(_) => invoking.pointer("/configurationItemSummary/awsRegion"),
        ConfigInvocation::Scheduled { .. } => None,
    }
    .and_then(Value::as_str)
    .map(str::to_string);
    let account = event
        .account_id
        .clone()
        .filter(|s| !s.is_empty())
        .or(arn_account)
        .or(item_account)
        .ok_or_else(|| bad("AWS Config event: missing `accountId`"))?;
    let region = arn_region.or(item_region).ok_or_else(|| {
        bad("AWS Config event: no region in `configRuleArn` or the configuration item")
    })?;
    let event_id = format!(
        "config-{}",
        steward_shared::policy::short_hash(&format!("{result_token}{invoking_text}"))
    );
    Ok(ConfigRuleEvent {
        rule_name,
        account,
        region,
        result_token,
        event_left_scope: event.event_left_scope,
        parameters,
        invocation,
        event_id,
    })
}

fn field(v: &Value, name: &str) -> Result<String, BadEvent> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            bad(format!(
                "AWS Config event: configuration item is missing `{name}`"
            ))
        })
}

fn time_field(v: &Value, name: &str) -> Result<chrono::DateTime<chrono::Utc>, BadEvent> {
    let text = field(v, name)?;
    chrono::DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            bad(format!(
                "AWS Config event: `{name}` = {text:?} is not a time: {e}"
            ))
        })
}

/// Parses a full configuration item (from an event or from `GetResourceConfigHistory`).
pub fn parse_config_item(item: &Value) -> Result<ConfigItem, BadEvent> {
    let tags = match item.get("tags") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        Some(_) => {
            return Err(bad(
                "AWS Config event: configuration item `tags` is not an object",
            ))
        }
    };
    Ok(ConfigItem {
        resource_type: field(item, "resourceType")?,
        resource_id: field(item, "resourceId")?,
        arn: item
            .get("ARN")
            .or_else(|| item.get("arn"))
            .and_then(Value::as_str)
            .map(str::to_string),
        status: field(item, "configurationItemStatus")?,
        capture_time: time_field(item, "configurationItemCaptureTime")?,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn every_create_fixture_parses() {
        for (file, kind, count) in [
            (
                "cloudtrail-run-instances.json",
                ResourceKind::Ec2Instance,
                2,
            ),
            ("cloudtrail-create-volume.json", ResourceKind::Ec2Volume, 1),
            (
                "cloudtrail-create-db-instance.json",
                ResourceKind::RdsInstance,
                1,
            ),
            (
                "cloudtrail-create-db-cluster.json",
                ResourceKind::RdsCluster,
                1,
            ),
            (
                "cloudtrail-create-auto-scaling-group.json",
                ResourceKind::AutoScalingGroup,
                1,
            ),
            ("cloudtrail-create-secret.json", ResourceKind::Secret, 1),
            ("cloudtrail-create-bucket.json", ResourceKind::S3Bucket, 1),
        ] {
            let Trigger::CreateCall(call) = parse(&fixture(file)).unwrap() else {
                panic!("{file}")
            };
            assert_eq!(call.resources.len(), count, "{file}");
            assert!(call.resources.iter().all(|r| r.kind == kind), "{file}");
            assert!(call.error_code.is_none());
        }
    }

    #[test]
    fn failed_call_has_no_resources() {
        let Trigger::CreateCall(call) =
            parse(&fixture("cloudtrail-run-instances-failed.json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            call.error_code.as_deref(),
            Some("Client.UnauthorizedOperation")
        );
        assert!(call.resources.is_empty());
    }

    #[test]
    fn config_fixtures_parse() {
        let Trigger::Config(e) = parse(&fixture("config-change-ec2-instance.json")).unwrap() else {
            panic!()
        };
        assert!(
            matches!(e.invocation, ConfigInvocation::Change(ref item) if item.resource_type == "AWS::EC2::Instance")
        );
        let Trigger::Config(e) = parse(&fixture("config-oversized.json")).unwrap() else {
            panic!()
        };
        assert!(matches!(e.invocation, ConfigInvocation::Oversized(_)));
        let Trigger::Config(e) = parse(&fixture("config-scheduled.json")).unwrap() else {
            panic!()
        };
        assert!(matches!(e.invocation, ConfigInvocation::Scheduled { .. }));
    }

    #[test]
    fn bad_inputs_name_the_problem() {
        assert!(parse(&json!([1]))
            .unwrap_err()
            .0
            .contains("not a JSON object"));
        assert!(parse(&json!({"foo": 1}))
            .unwrap_err()
            .0
            .contains("unknown event shape"));
        let mut e = fixture("cloudtrail-run-instances.json");
        e["detail"]["responseElements"] = json!({});
        assert!(parse(&e).unwrap_err().0.contains("instancesSet"));
        let mut c = fixture("config-change-ec2-instance.json");
        c["invokingEvent"] = json!("{not json");
        assert!(parse(&c).unwrap_err().0.contains("invokingEvent"));
        let mut d = fixture("cloudtrail-run-instances.json");
        d["detail"]["eventName"] = json!("DeleteBucket");
        assert!(parse(&d).unwrap_err().0.contains("not a create call"));
    }
}
