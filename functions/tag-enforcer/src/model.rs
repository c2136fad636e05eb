//! The tag enforcer's domain types, shared by the event parser, the pure
//! plan, the adapters and the report: resource types and references, the
//! caller of a CloudTrail call, the calls themselves, configuration items and
//! evaluations. Nothing here talks to AWS.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Where a create call's resource ids are, as JSON pointers into the
/// CloudTrail `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdsAt {
    /// `field` of every element of the array at `array` (several resources per call).
    EachOf {
        array: &'static str,
        field: &'static str,
    },
    /// The first of these pointers that holds a non-empty string.
    FirstOf(&'static [&'static str]),
}

/// Which CloudTrail tagging calls change a type's tags, and how its resources
/// are recognised in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagCalls {
    /// EC2 `CreateTags`/`DeleteTags` on resource ids with this prefix.
    Ec2 { id_prefix: &'static str },
    /// RDS `AddTagsToResource`/`RemoveTagsFromResource` on ARNs with this segment (`:db:`, `:cluster:`).
    Rds { arn_segment: &'static str },
    /// Auto Scaling `CreateOrUpdateTags`/`DeleteTags` on groups.
    AutoScaling,
    /// Secrets Manager `TagResource`/`UntagResource`.
    SecretsManager,
    /// Not watched.
    None,
}

/// What the tag enforcer knows about one resource type, as data: each file in
/// `resources/` declares one.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// A short stable name (`ec2-instance`).
    pub kind: &'static str,
    /// The AWS Config resource type.
    pub config_type: &'static str,
    /// What people call it (`EC2 instance`).
    pub label: &'static str,
    /// The CloudTrail call that creates it.
    pub create_call: &'static str,
    /// Where that call's ids are.
    pub ids: IdsAt,
    /// The tagging calls that change its tags.
    pub tag_calls: TagCalls,
}

/// A resource named the way its service's API names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceRef {
    /// `ResourceType::kind`.
    pub kind: &'static str,
    /// Instance id, volume id, DB identifier or ARN, group name, secret ARN or name, bucket name.
    pub id: String,
}

/// A resource as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceState {
    pub r: ResourceRef,
    /// `ResourceType::config_type`.
    pub config_type: &'static str,
    pub arn: String,
    /// The id AWS Config uses for this resource (for RDS its resource id, for groups and secrets the ARN).
    pub config_id: String,
    pub tags: HashMap<String, String>,
}

/// The caller of a CloudTrail call, read leniently from `userIdentity`:
/// missing, empty or unexpected fields are simply absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `IAMUser`, `Root`, `AssumedRole`, `FederatedUser`, `WebIdentityUser`, `AWSService`, ...
    pub kind: String,
    pub arn: Option<String>,
    pub user_name: Option<String>,
    pub principal_id: Option<String>,
    pub invoked_by: Option<String>,
    /// `sessionContext.sessionIssuer.userName` (the role), when the issuer is not empty.
    pub issuer_name: Option<String>,
    /// `sessionContext.webIdFederationData.federatedProvider`, for web identities.
    pub web_identity_provider: Option<String>,
    /// `onBehalfOf.userId` (IAM Identity Center).
    pub on_behalf_of: Option<String>,
}

impl Identity {
    /// Reads `userIdentity`; never fails.
    pub fn from_value(v: &Value) -> Identity {
        let s = |pointer: &str| {
            v.pointer(pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Identity {
            kind: s("/type").unwrap_or_default(),
            arn: s("/arn"),
            user_name: s("/userName"),
            principal_id: s("/principalId"),
            invoked_by: s("/invokedBy"),
            issuer_name: s("/sessionContext/sessionIssuer/userName"),
            web_identity_provider: s("/sessionContext/webIdFederationData/federatedProvider"),
            on_behalf_of: s("/onBehalfOf/userId"),
        }
    }

    /// `(ROLE, SESSION)` of an assumed-role ARN.
    pub fn role_session(&self) -> Option<(&str, &str)> {
        let rest = self.arn.as_deref()?.split(":assumed-role/").nth(1)?;
        rest.split_once('/')
    }
}

/// Who created a resource, as steward records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    /// The `steward:created-by` value.
    pub by: String,
    /// The `steward:created-via` value (`cloudformation`), when the caller acted through a service.
    pub via: Option<String>,
}

/// A create call recorded by CloudTrail.
#[derive(Debug, Clone)]
pub struct CreateCall {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub event_name: String,
    pub identity: Identity,
    /// Set when the call failed: nothing was created.
    pub error_code: Option<String>,
    pub resources: Vec<ResourceRef>,
}

/// A tagging call recorded by CloudTrail (issue: governance tags are watched).
#[derive(Debug, Clone)]
pub struct TagCall {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub event_name: String,
    pub event_time: DateTime<Utc>,
    pub identity: Identity,
    pub error_code: Option<String>,
    /// Per resource: key -> new value (`None`: the tag was removed).
    pub changes: Vec<(ResourceRef, BTreeMap<String, Option<String>>)>,
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
    Scheduled { notification_time: DateTime<Utc> },
}

/// The parts of a configuration item the evaluation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigItem {
    pub resource_type: String,
    pub resource_id: String,
    pub arn: Option<String>,
    pub status: String,
    pub capture_time: DateTime<Utc>,
    pub tags: HashMap<String, String>,
}

/// The identifying part of an oversized item.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigItemSummary {
    pub resource_type: String,
    pub resource_id: String,
    pub status: String,
    pub capture_time: DateTime<Utc>,
}

/// The compliance types the rule reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Compliant,
    NonCompliant,
    NotApplicable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compliant => "COMPLIANT",
            Verdict::NonCompliant => "NON_COMPLIANT",
            Verdict::NotApplicable => "NOT_APPLICABLE",
        }
    }
}

/// One evaluation to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub resource_type: String,
    pub resource_id: String,
    pub verdict: Verdict,
    pub annotation: String,
    pub ordering: DateTime<Utc>,
}
