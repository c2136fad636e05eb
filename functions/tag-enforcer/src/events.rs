//! Typed models of the tag enforcer's triggers: EventBridge `AWS API Call via
//! CloudTrail` events for create calls and for tagging calls, and AWS Config
//! custom rule events. CloudTrail events are read leniently from JSON (the
//! `userIdentity` shapes of console, MFA, web-identity and root sessions vary
//! and gain fields): unknown and extra fields never fail an event; a missing
//! field the tag enforcer needs is a `BadEvent` naming it.

use std::collections::BTreeMap;

use aws_lambda_events::event::config::ConfigEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::{
    ConfigInvocation, ConfigItem, ConfigItemSummary, ConfigRuleEvent, CreateCall, Identity, IdsAt,
    ResourceRef, ResourceType, TagCall, TagCalls,
};

pub use steward_shared::failure::BadEvent;

/// A trigger the tag enforcer understands.
#[derive(Debug, Clone)]
pub enum Trigger {
    CreateCall(Box<CreateCall>),
    TagCall(Box<TagCall>),
    Config(Box<ConfigRuleEvent>),
}

/// The CloudTrail tagging calls the tag enforcer watches.
pub const TAGGING_CALLS: &[&str] = &[
    "CreateTags",
    "DeleteTags",
    "AddTagsToResource",
    "RemoveTagsFromResource",
    "CreateOrUpdateTags",
    "TagResource",
    "UntagResource",
];

/// Per resource: tag key -> new value (`None`: removed).
pub type TagChanges = Vec<(ResourceRef, BTreeMap<String, Option<String>>)>;

fn bad(message: impl Into<String>) -> BadEvent {
    BadEvent(message.into())
}

/// Parses any tag-enforcer trigger; `types` are the governed resource types.
pub fn parse(payload: &Value, types: &[&'static ResourceType]) -> Result<Trigger, BadEvent> {
    let object = payload
        .as_object()
        .ok_or_else(|| bad("the payload is not a JSON object"))?;
    if let Some(detail_type) = object.get("detail-type") {
        let detail_type = detail_type.as_str().unwrap_or_default();
        if detail_type != "AWS API Call via CloudTrail" {
            return Err(bad(format!(
                "EventBridge detail-type `{detail_type}` is not handled by the tag enforcer (expected `AWS API Call via CloudTrail`)"
            )));
        }
        return parse_cloudtrail(payload, types);
    }
    if object.contains_key("invokingEvent") || object.contains_key("resultToken") {
        return parse_config_event(payload).map(|event| Trigger::Config(Box::new(event)));
    }
    Err(bad(
        "unknown event shape: expected an EventBridge `AWS API Call via CloudTrail` event or an AWS Config rule event (invokingEvent, resultToken)",
    ))
}

/// A non-empty string at a JSON pointer.
fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `value` when it is a 12-digit account id; else a `BadEvent` naming `what`.
fn account_id(value: &str, what: &str) -> Result<String, BadEvent> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_string())
    } else {
        let shown: String = value.chars().take(40).collect();
        Err(bad(format!(
            "{what} {shown:?} is not a 12-digit account id"
        )))
    }
}

/// A JSON pointer as people read it: `/responseElements/volumeId` -> `responseElements.volumeId`.
fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

fn parse_cloudtrail(payload: &Value, types: &[&'static ResourceType]) -> Result<Trigger, BadEvent> {
    let event_id = text(payload, "/id")
        .ok_or_else(|| bad("CloudTrail event: missing `id`"))?
        .to_string();
    let account =
        text(payload, "/account").ok_or_else(|| bad("CloudTrail event: missing `account`"))?;
    let account = account_id(account, "CloudTrail event: `account`")?;
    let detail = payload
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| bad("CloudTrail event: missing `detail`"))?;
    let region = text(payload, "/region")
        .or_else(|| text(detail, "/awsRegion"))
        .ok_or_else(|| bad("CloudTrail event: missing `region`"))?
        .to_string();
    let event_name = text(detail, "/eventName")
        .ok_or_else(|| bad("CloudTrail event: missing `detail.eventName`"))?
        .to_string();
    let identity = Identity::from_value(detail.get("userIdentity").unwrap_or(&Value::Null));
    let error_code = text(detail, "/errorCode").map(str::to_string);
    if let Some(kind) = types.iter().copied().find(|t| t.create_call == event_name) {
        let resources = if error_code.is_some() {
            Vec::new()
        } else {
            created_resources(kind, detail)?
        };
        return Ok(Trigger::CreateCall(Box::new(CreateCall {
            event_id,
            account,
            region,
            event_name,
            identity,
            error_code,
            resources,
        })));
    }
    if TAGGING_CALLS.contains(&event_name.as_str()) {
        let time = text(detail, "/eventTime")
            .or_else(|| text(payload, "/time"))
            .ok_or_else(|| bad(format!("{event_name} event: missing `detail.eventTime`")))?;
        let event_time = DateTime::parse_from_rfc3339(time)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                bad(format!(
                    "{event_name} event: `eventTime` {time:?} is not a time: {e}"
                ))
            })?;
        let changes = if error_code.is_some() {
            Vec::new()
        } else {
            let source = text(detail, "/eventSource").unwrap_or_default();
            tag_changes(&event_name, source, detail, types)?
        };
        return Ok(Trigger::TagCall(Box::new(TagCall {
            event_id,
            account,
            region,
            event_name,
            event_time,
            identity,
            error_code,
            changes,
        })));
    }
    let creates: Vec<&str> = types.iter().map(|t| t.create_call).collect();
    Err(bad(format!(
        "CloudTrail event `{event_name}` is not a create call the tag enforcer handles ({}) nor a tagging call it watches ({})",
        creates.join(", "),
        TAGGING_CALLS.join(", ")
    )))
}

/// The resources a successful create call made, from its request and response.
pub fn created_resources(
    kind: &'static ResourceType,
    detail: &Value,
) -> Result<Vec<ResourceRef>, BadEvent> {
    let name = kind.create_call;
    let one = |id: &str| ResourceRef {
        kind: kind.kind,
        id: id.to_string(),
    };
    match kind.ids {
        IdsAt::EachOf { array, field } => {
            let items = detail
                .pointer(array)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("{name} event: missing `{}`", dotted(array))))?;
            items
                .iter()
                .map(|item| {
                    text(item, &format!("/{field}")).map(one).ok_or_else(|| {
                        bad(format!(
                            "{name} event: missing `{}[].{field}`",
                            dotted(array)
                        ))
                    })
                })
                .collect()
        }
        IdsAt::FirstOf(pointers) => pointers
            .iter()
            .find_map(|p| text(detail, p))
            .map(|id| vec![one(id)])
            .ok_or_else(|| {
                bad(format!(
                    "{name} event: missing `{}`",
                    dotted(pointers.first().copied().unwrap_or_default())
                ))
            }),
    }
}

/// `[{key, value}]` (value optional) as key -> value.
fn key_values(list: Option<&Value>) -> BTreeMap<String, Option<String>> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|t| {
                    let key = text(t, "/key").or_else(|| text(t, "/Key"))?;
                    let value = t
                        .get("value")
                        .or_else(|| t.get("Value"))
                        .and_then(Value::as_str);
                    Some((key.to_string(), value.map(str::to_string)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `[key, ...]` as key -> removed.
fn removed_keys(list: Option<&Value>) -> BTreeMap<String, Option<String>> {
    list.and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(Value::as_str)
                .map(|k| (k.to_string(), None))
                .collect()
        })
        .unwrap_or_default()
}

fn reference(kind: &ResourceType, id: &str) -> ResourceRef {
    ResourceRef {
        kind: kind.kind,
        id: id.to_string(),
    }
}

/// The tag changes a tagging call made, per governed resource it names.
/// Resources of types the tag enforcer does not govern are left out.
pub fn tag_changes(
    event_name: &str,
    event_source: &str,
    detail: &Value,
    types: &[&'static ResourceType],
) -> Result<TagChanges, BadEvent> {
    let request = detail.get("requestParameters").unwrap_or(&Value::Null);
    let missing = |field: &str| {
        bad(format!(
            "{event_name} event: missing `requestParameters.{field}`"
        ))
    };
    let service = event_source.trim_end_matches(".amazonaws.com");
    let removing = matches!(
        event_name,
        "DeleteTags" | "RemoveTagsFromResource" | "UntagResource"
    );
    let of = |wanted: TagCalls| types.iter().copied().find(|t| t.tag_calls == wanted);
    let mut out = Vec::new();
    match (service, event_name) {
        ("ec2", "CreateTags" | "DeleteTags") => {
            let ids = request
                .pointer("/resourcesSet/items")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("resourcesSet.items"))?;
            let mut changes = key_values(request.pointer("/tagSet/items"));
            if removing {
                changes.values_mut().for_each(|v| *v = None);
            }
            for id in ids.iter().filter_map(|i| text(i, "/resourceId")) {
                let kind = types.iter().copied().find(|t| {
                    matches!(t.tag_calls, TagCalls::Ec2 { id_prefix } if id.starts_with(id_prefix))
                });
                if let Some(kind) = kind {
                    out.push((reference(kind, id), changes.clone()));
                }
            }
        }
        ("rds", "AddTagsToResource" | "RemoveTagsFromResource") => {
            let arn = text(request, "/resourceName").ok_or_else(|| missing("resourceName"))?;
            let changes = if removing {
                removed_keys(request.get("tagKeys"))
            } else {
                key_values(request.get("tags"))
            };
            for kind in types {
                if let TagCalls::Rds { arn_segment } = kind.tag_calls {
                    if let Some((_, id)) = arn.split_once(arn_segment) {
                        out.push((reference(kind, id), changes.clone()));
                    }
                }
            }
        }
        ("autoscaling", "CreateOrUpdateTags" | "DeleteTags") => {
            let tags = request
                .get("tags")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("tags"))?;
            let Some(kind) = of(TagCalls::AutoScaling) else {
                return Ok(out);
            };
            let mut by_group: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
            for tag in tags {
                let (Some(group), Some(key)) = (text(tag, "/resourceId"), text(tag, "/key")) else {
                    continue;
                };
                let value = (!removing).then(|| {
                    tag.get("value")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                });
                by_group
                    .entry(group.to_string())
                    .or_default()
                    .insert(key.to_string(), value);
            }
            out.extend(
                by_group
                    .into_iter()
                    .map(|(group, changes)| (reference(kind, &group), changes)),
            );
        }
        ("secretsmanager", "TagResource" | "UntagResource") => {
            let secret = text(request, "/secretId").ok_or_else(|| missing("secretId"))?;
            let changes = if removing {
                removed_keys(request.get("tagKeys"))
            } else {
                key_values(request.get("tags"))
            };
            if let Some(kind) = of(TagCalls::SecretsManager) {
                out.push((reference(kind, secret), changes));
            }
        }
        _ => {}
    }
    Ok(out)
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
    let account = account_id(&account, "AWS Config event: `accountId`")?;
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

fn time_field(v: &Value, name: &str) -> Result<DateTime<Utc>, BadEvent> {
    let text = field(v, name)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
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
    use crate::resources::types;
    use serde_json::json;

    fn parse(payload: &Value) -> Result<Trigger, BadEvent> {
        super::parse(payload, &types())
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn every_create_fixture_parses() {
        for (file, kind, count) in [
            ("cloudtrail-run-instances.json", "ec2-instance", 2),
            ("cloudtrail-create-volume.json", "ec2-volume", 1),
            ("cloudtrail-create-db-instance.json", "rds-instance", 1),
            ("cloudtrail-create-db-cluster.json", "rds-cluster", 1),
            (
                "cloudtrail-create-auto-scaling-group.json",
                "auto-scaling-group",
                1,
            ),
            ("cloudtrail-create-secret.json", "secret", 1),
            ("cloudtrail-create-bucket.json", "s3-bucket", 1),
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

    #[test]
    fn every_identity_shape_parses_and_names_its_creator() {
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
            let Trigger::CreateCall(call) = parse(&fixture(file)).unwrap() else {
                panic!("{file}")
            };
            let who = crate::plan::creator(&call.identity).expect(file);
            assert_eq!(who.by, creator, "{file}");
            assert_eq!(who.via.as_deref(), via, "{file}");
        }
    }

    #[test]
    fn unknown_and_odd_identity_fields_never_fail() {
        let mut e = fixture("cloudtrail-run-instances.json");
        e["detail"]["userIdentity"]["sessionContext"] = json!({"sessionIssuer": {}, "webIdFederationData": {"attributes": {"a": 1}}, "sourceIdentity": 7, "ec2RoleDelivery": "2.0"});
        e["detail"]["userIdentity"]["userName"] = json!(42);
        e["detail"]["userIdentity"]["newField"] = json!([1, 2]);
        e["detail"]["brandNew"] = json!({"x": null});
        assert!(matches!(parse(&e), Ok(Trigger::CreateCall(_))));
        e["detail"]["userIdentity"] = json!("not an object");
        assert!(matches!(parse(&e), Ok(Trigger::CreateCall(_))));
    }

    #[test]
    fn every_tagging_fixture_parses() {
        for (file, kind, id, key, value) in [
            (
                "cloudtrail-tag-ec2-create-tags.json",
                "ec2-instance",
                "i-0123456789abcdef0",
                "env",
                Some("dev"),
            ),
            (
                "cloudtrail-tag-ec2-delete-tags.json",
                "ec2-volume",
                "vol-0abcdef1234567890",
                "steward:offhours",
                None,
            ),
            (
                "cloudtrail-tag-rds-add-tags.json",
                "rds-instance",
                "orders-db",
                "env",
                Some("dev"),
            ),
            (
                "cloudtrail-tag-rds-remove-tags.json",
                "rds-instance",
                "orders-db",
                "steward:offhours",
                None,
            ),
            (
                "cloudtrail-tag-asg-create-or-update-tags.json",
                "auto-scaling-group",
                "web-asg",
                "steward:exempt",
                Some("true"),
            ),
            (
                "cloudtrail-tag-asg-delete-tags.json",
                "auto-scaling-group",
                "web-asg",
                "env",
                None,
            ),
            (
                "cloudtrail-tag-secret-tag-resource.json",
                "secret",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/dev/db-AbCdEf",
                "steward:exempt",
                Some("true"),
            ),
            (
                "cloudtrail-tag-secret-untag-resource.json",
                "secret",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/dev/db-AbCdEf",
                "env",
                None,
            ),
        ] {
            let Trigger::TagCall(call) = parse(&fixture(file)).unwrap() else {
                panic!("{file}")
            };
            assert_eq!(call.changes.len(), 1, "{file}");
            let (r, changes) = &call.changes[0];
            assert_eq!((r.kind, r.id.as_str()), (kind, id), "{file}");
            assert_eq!(
                changes.get(key).cloned(),
                Some(value.map(str::to_string)),
                "{file}"
            );
        }
        let mut e = fixture("cloudtrail-tag-ec2-create-tags.json");
        e["detail"]["requestParameters"] = json!({});
        assert!(parse(&e).unwrap_err().0.contains("resourcesSet.items"));
        // An AMI is not a governed type: no change to report.
        let mut e = fixture("cloudtrail-tag-ec2-create-tags.json");
        e["detail"]["requestParameters"]["resourcesSet"]["items"] =
            json!([{"resourceId": "ami-1"}]);
        let Trigger::TagCall(call) = parse(&e).unwrap() else {
            panic!()
        };
        assert!(call.changes.is_empty());
    }
}
