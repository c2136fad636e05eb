//! The GuardDuty finding as EventBridge delivers it (`source` `aws.guardduty`,
//! `detail-type` `GuardDuty Finding`), modelled with serde. Only the fields
//! steward uses are typed; everything else is kept in `other` maps, never
//! rejected. Parsing fails with an error that names the missing or mistyped
//! field and changes nothing.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use steward_shared::tags::TagMap;

pub use steward_shared::failure::BadEvent;

/// One delivery of a finding.
#[derive(Debug, Clone)]
pub struct FindingEvent {
    /// The EventBridge event id (one per delivery attempt chain).
    pub event_id: String,
    pub finding: Finding,
}

/// A GuardDuty finding (`detail` of the event).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub id: String,
    #[serde(rename = "type")]
    pub finding_type: String,
    /// 1.0 to 10.0; GuardDuty sends a JSON number.
    pub severity: f64,
    /// The account the finding is in: the account steward acts in.
    pub account_id: String,
    pub region: String,
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub partition: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub resource: Resource,
    #[serde(default)]
    pub service: Service,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `detail.resource`: what the finding is about.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `Instance`, `AccessKey`, `S3Bucket`, `EKSCluster`, ... (others passed through).
    pub resource_type: String,
    #[serde(default)]
    pub instance_details: Option<InstanceDetails>,
    #[serde(default)]
    pub access_key_details: Option<AccessKeyDetails>,
    #[serde(default)]
    pub s3_bucket_details: Option<Vec<S3BucketDetails>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetails {
    pub instance_id: String,
    #[serde(default)]
    pub instance_state: Option<String>,
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
    #[serde(default)]
    pub tags: Vec<FindingTag>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    #[serde(default)]
    pub network_interface_id: Option<String>,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupRef>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupRef {
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub group_name: Option<String>,
}

/// GuardDuty writes tags as `{"key": ..., "value": ...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct FindingTag {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyDetails {
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub user_name: Option<String>,
    /// `IAMUser`, `AssumedRole`, `Root`, `Role`, `FederatedUser`, ...
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub principal_id: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3BucketDetails {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub tags: Vec<FindingTag>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `detail.service`: GuardDuty's own bookkeeping of the finding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// How many times GuardDuty saw the activity (grows on repeated findings).
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub event_first_seen: Option<DateTime<Utc>>,
    #[serde(default)]
    pub event_last_seen: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// What the finding is about, in the terms steward acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Instance {
        instance_id: String,
    },
    /// Long-term IAM user key (`AKIA...`).
    UserKey {
        user: String,
        access_key_id: String,
    },
    /// Temporary credentials (`ASIA...`) of a role session.
    RoleSession {
        role: String,
        access_key_id: String,
    },
    /// Other credentials (root, federated users, unknown kinds): reported only.
    OtherCredentials {
        user_type: String,
        user: Option<String>,
        access_key_id: Option<String>,
    },
    S3Bucket {
        name: String,
    },
    /// Anything else GuardDuty reports (EKS, RDS, Lambda, ...): reported only.
    Other {
        resource_type: String,
    },
}

impl Finding {
    /// The resource this finding targets.
    pub fn target(&self) -> Target {
        match self.resource.resource_type.as_str() {
            "Instance" => match &self.resource.instance_details {
                Some(d) => Target::Instance {
                    instance_id: d.instance_id.clone(),
                },
                None => Target::Other {
                    resource_type: "Instance".into(),
                },
            },
            "AccessKey" => {
                let details = self.resource.access_key_details.clone();
                let key = details.as_ref().and_then(|d| d.access_key_id.clone());
                let user = details.as_ref().and_then(|d| d.user_name.clone());
                let user_type = details
                    .as_ref()
                    .and_then(|d| d.user_type.clone())
                    .unwrap_or_default();
                match (key, user, user_type.as_str()) {
                    (Some(k), Some(u), "IAMUser") if k.starts_with("AKIA") => Target::UserKey {
                        user: u,
                        access_key_id: k,
                    },
                    (Some(k), Some(u), "AssumedRole" | "Role") if k.starts_with("ASIA") => {
                        Target::RoleSession {
                            role: u,
                            access_key_id: k,
                        }
                    }
                    (key, user, _) => Target::OtherCredentials {
                        user_type: if user_type.is_empty() {
                            "unknown".into()
                        } else {
                            user_type
                        },
                        user,
                        access_key_id: key,
                    },
                }
            }
            "S3Bucket" => {
                let name = self
                    .resource
                    .s3_bucket_details
                    .as_ref()
                    .and_then(|b| b.first())
                    .and_then(|b| b.name.clone());
                match name {
                    Some(name) => Target::S3Bucket { name },
                    None => Target::Other {
                        resource_type: "S3Bucket".into(),
                    },
                }
            }
            other => Target::Other {
                resource_type: other.to_string(),
            },
        }
    }

    /// The resource's tags as GuardDuty recorded them (instance or first bucket).
    pub fn resource_tags(&self) -> TagMap {
        let tags = match (
            &self.resource.instance_details,
            &self.resource.s3_bucket_details,
        ) {
            (Some(d), _) => d.tags.clone(),
            (None, Some(buckets)) => buckets.first().map(|b| b.tags.clone()).unwrap_or_default(),
            _ => Vec::new(),
        };
        tags.into_iter()
            .map(|t| (t.key, t.value.unwrap_or_default()))
            .collect()
    }

    /// The partition (`aws` unless the finding says otherwise).
    pub fn partition(&self) -> &str {
        self.partition
            .as_deref()
            .unwrap_or_else(|| steward_shared::aws::partition_of(&self.region))
    }

    /// GuardDuty's count of the activity (1 when absent).
    pub fn count(&self) -> u64 {
        self.service.count.unwrap_or(1)
    }

    /// First time the activity was seen (falls back to `createdAt`).
    pub fn first_seen(&self) -> DateTime<Utc> {
        self.service.event_first_seen.unwrap_or(self.created_at)
    }

    /// Last time the activity was seen (falls back to `updatedAt`).
    pub fn last_seen(&self) -> DateTime<Utc> {
        self.service.event_last_seen.unwrap_or(self.updated_at)
    }

    /// True for GuardDuty's sample findings (`CreateSampleFindings`):
    /// `service.additionalInfo.sample` in events, or `"sample": true` inside
    /// the `additionalInfo.value` JSON that `GetFindings` returns.
    pub fn is_sample(&self) -> bool {
        let Some(info) = self.service.other.get("additionalInfo") else {
            return false;
        };
        if info.get("sample").and_then(Value::as_bool) == Some(true) {
            return true;
        }
        info.get("value")
            .and_then(Value::as_str)
            .and_then(|v| serde_json::from_str::<Value>(v).ok())
            .is_some_and(|v| v.get("sample").and_then(Value::as_bool) == Some(true))
    }

    /// The finding in the GuardDuty console.
    pub fn console_url(&self) -> String {
        format!(
            "https://console.aws.amazon.com/guardduty/home?region={}#/findings?macros=current&fId={}",
            self.region, self.id
        )
    }
}

/// Parses an EventBridge delivery of a GuardDuty finding.
pub fn parse(payload: &Value) -> Result<FindingEvent, BadEvent> {
    let object = payload.as_object().ok_or_else(|| {
        BadEvent(format!(
            "expected a JSON object (an EventBridge event), got {}",
            kind(payload)
        ))
    })?;
    let source = object
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let detail_type = object
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if source != "aws.guardduty" || detail_type != "GuardDuty Finding" {
        return Err(BadEvent(format!(
            "unknown event shape: expected source `aws.guardduty` and detail-type `GuardDuty Finding`, got source `{source}` and detail-type `{detail_type}`; route only GuardDuty findings to this function"
        )));
    }
    let event_id = object
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| BadEvent("missing `id` (the EventBridge event id)".into()))?
        .to_string();
    let detail = object
        .get("detail")
        .ok_or_else(|| BadEvent("missing `detail` (the finding)".into()))?;
    let finding = parse_detail(detail)?;
    Ok(FindingEvent { event_id, finding })
}

/// Parses a finding in the `detail` shape: the event's, or GuardDuty's own
/// (`GetFindings`, turned into the same shape by the GuardDuty adapter).
pub fn parse_detail(detail: &Value) -> Result<Finding, BadEvent> {
    check_shape(detail)?;
    let finding: Finding = serde_json::from_value(detail.clone())
        .map_err(|e| BadEvent(format!("detail is not a GuardDuty finding: {e}")))?;
    if !finding.severity.is_finite() || !(0.0..=10.0).contains(&finding.severity) {
        return Err(BadEvent(format!(
            "detail.severity {} is outside 0 to 10",
            finding.severity
        )));
    }
    if finding.account_id.len() != 12 || !finding.account_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(BadEvent(format!(
            "detail.accountId `{}` is not a 12-digit account id",
            finding.account_id
        )));
    }
    Ok(finding)
}

/// Checks the required fields one by one so the error names the field.
fn check_shape(detail: &Value) -> Result<(), BadEvent> {
    let strings = [
        "id",
        "type",
        "accountId",
        "region",
        "createdAt",
        "updatedAt",
    ];
    for field in strings {
        match detail.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(other) => {
                return Err(BadEvent(format!(
                    "detail.{field} must be a non-empty string, got {}",
                    kind(other)
                )))
            }
            None => return Err(BadEvent(format!("missing detail.{field}"))),
        }
    }
    match detail.get("severity") {
        Some(Value::Number(_)) => {}
        Some(other) => {
            return Err(BadEvent(format!(
                "detail.severity must be a JSON number (for example 8.0), got {}",
                kind(other)
            )))
        }
        None => return Err(BadEvent("missing detail.severity".into())),
    }
    match detail.get("resource").and_then(|r| r.get("resourceType")) {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(other) => {
            return Err(BadEvent(format!(
                "detail.resource.resourceType must be a string, got {}",
                kind(other)
            )))
        }
        None => return Err(BadEvent("missing detail.resource.resourceType".into())),
    }
    if detail["resource"]["resourceType"] == "Instance" {
        match detail["resource"].get("instanceDetails").and_then(|d| d.get("instanceId")) {
            Some(Value::String(s)) if s.starts_with("i-") => {}
            Some(other) => {
                return Err(BadEvent(format!(
                    "detail.resource.instanceDetails.instanceId must be an instance id (i-...), got {other}"
                )))
            }
            None => return Err(BadEvent("missing detail.resource.instanceDetails.instanceId".into())),
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn every_fixture_parses_to_its_target() {
        let ec2 = parse(&fixture("guardduty-ec2-backdoor.json")).unwrap();
        assert_eq!(
            ec2.finding.target(),
            Target::Instance {
                instance_id: "i-0a1b2c3d4e5f67890".into()
            }
        );
        assert_eq!(ec2.finding.severity, 8.0);
        assert_eq!(ec2.finding.count(), 3);
        assert_eq!(
            ec2.finding.resource_tags().get("env").map(String::as_str),
            Some("dev")
        );
        assert!(
            ec2.finding.other.contains_key("schemaVersion"),
            "unknown fields are kept"
        );
        assert!(ec2.finding.service.other.contains_key("action"));
        assert!(ec2
            .finding
            .console_url()
            .ends_with("#/findings?macros=current&fId=2ec6e3b5a1f04d7c9e8b6a4f3d2c1b0a"));
        let repeated = parse(&fixture("guardduty-ec2-backdoor-repeated.json")).unwrap();
        assert_eq!(repeated.finding.id, ec2.finding.id);
        assert!(repeated.finding.count() > ec2.finding.count());
        assert!(
            parse(&fixture("guardduty-archived.json"))
                .unwrap()
                .finding
                .service
                .archived
        );
        let tor = parse(&fixture("guardduty-iam-user-tor.json")).unwrap();
        assert_eq!(
            tor.finding.target(),
            Target::UserKey {
                user: "ci-deployer".into(),
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into()
            }
        );
        let exf = parse(&fixture("guardduty-instance-credential-exfiltration.json")).unwrap();
        assert_eq!(
            exf.finding.target(),
            Target::RoleSession {
                role: "orders-api-dev".into(),
                access_key_id: "ASIAIOSFODNN7EXAMPLE".into()
            }
        );
        let s3 = parse(&fixture("guardduty-s3-block-public-access-disabled.json")).unwrap();
        assert_eq!(
            s3.finding.target(),
            Target::S3Bucket {
                name: "orders-prod-exports".into()
            }
        );
        assert_eq!(
            s3.finding.resource_tags().get("env").map(String::as_str),
            Some("prod")
        );
        let low = parse(&fixture("guardduty-low-port-probe.json")).unwrap();
        assert!(low.finding.severity < 4.0);
    }

    type Mutation = Box<dyn Fn(&mut Value)>;

    #[test]
    fn malformed_findings_name_the_problem() {
        let good = fixture("guardduty-ec2-backdoor.json");
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|e| e["detail"]["severity"] = Value::String("8".into())),
                "detail.severity must be a JSON number",
            ),
            (
                Box::new(|e| {
                    e["detail"].as_object_mut().unwrap().remove("accountId");
                }),
                "missing detail.accountId",
            ),
            (
                Box::new(|e| e["detail"]["accountId"] = Value::String("12345".into())),
                "not a 12-digit account id",
            ),
            (
                Box::new(|e| {
                    e["detail"]["resource"]
                        .as_object_mut()
                        .unwrap()
                        .remove("resourceType");
                }),
                "missing detail.resource.resourceType",
            ),
            (
                Box::new(|e| {
                    e["detail"]["resource"]["instanceDetails"]["instanceId"] = Value::Null
                }),
                "instanceId must be an instance id",
            ),
            (
                Box::new(|e| e["detail"]["createdAt"] = Value::String("yesterday".into())),
                "detail is not a GuardDuty finding",
            ),
            (
                Box::new(|e| e["source"] = Value::String("aws.ec2".into())),
                "unknown event shape",
            ),
            (
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("detail");
                }),
                "missing `detail`",
            ),
        ];
        for (change, expected) in cases {
            let mut e = good.clone();
            change(&mut e);
            let err = parse(&e).unwrap_err().to_string();
            assert!(
                err.starts_with("bad event: ") && err.contains(expected),
                "{err} (expected {expected})"
            );
        }
        assert!(parse(&Value::Array(vec![]))
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
    }
}
