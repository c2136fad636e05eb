//! The tag enforcer's decisions, as pure functions over data (no SDK types,
//! no clock): who created a resource, which tags to add, whether a set of
//! tags is compliant, what to report to AWS Config (including when a
//! resource is NOT_APPLICABLE), whether a tagging call came from steward
//! itself, and what a change to a governance tag means.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;
use steward_shared::notify::Severity;
use steward_shared::policy::Policy;
use steward_shared::{safety, schedule, tags};

use crate::model::{
    ConfigItem, ConfigItemSummary, Creator, Evaluation, Identity, ResourceState, Verdict,
};

/// `steward:created-via`: the AWS service the creator acted through.
pub const CREATED_VIA: &str = "steward:created-via";

/// The governance tags whose changes are reported.
pub const WATCHED: [&str; 3] = [tags::ENV, tags::EXEMPT, tags::OFFHOURS];

/// The creator steward records for a caller, or `None` for callers that are
/// not people: AWS services, service-linked roles and EC2 instance roles.
/// IAM users (console and MFA sessions included) are their user name, the
/// root user is `root`, assumed roles and web identities (GitHub OIDC, EKS
/// IRSA, Cognito) are `ROLE/SESSION`. A person acting through CloudFormation
/// (`invokedBy`) is recorded with `via = cloudformation`; other services
/// acting on someone's behalf are not a creator steward can name.
pub fn creator(identity: &Identity) -> Option<Creator> {
    let via = match identity.invoked_by.as_deref() {
        None => None,
        Some("cloudformation.amazonaws.com") => Some("cloudformation".to_string()),
        Some(_) => return None,
    };
    let by = match identity.kind.as_str() {
        "IAMUser" => identity.user_name.clone().or_else(|| {
            identity
                .arn
                .as_deref()
                .and_then(|a| a.rsplit('/').next())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        }),
        "Root" => Some("root".to_string()),
        "AssumedRole" => {
            // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
            let (role, session) = identity.role_session()?;
            if role.starts_with("AWSServiceRole") || is_instance_id(session) {
                return None;
            }
            Some(format!("{role}/{session}"))
        }
        "WebIdentityUser" => identity
            .user_name
            .clone()
            .or_else(|| identity.principal_id.clone()),
        "FederatedUser" => identity
            .arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        "IdentityCenterUser" => identity
            .on_behalf_of
            .clone()
            .or_else(|| identity.user_name.clone()),
        _ => None,
    }?;
    Some(Creator { by, via })
}

/// True when the call was made by steward itself: the member role in a
/// session steward names (`steward-<function>-<event>`), or a function's own
/// role in the hub account. Decided from the calling role, never from tags.
pub fn is_steward_caller(
    identity: &Identity,
    member_role: Option<&str>,
    own_role: Option<&str>,
) -> bool {
    if identity.kind != "AssumedRole" {
        return false;
    }
    let Some((role, session)) = identity.role_session() else {
        return false;
    };
    member_role.is_some_and(|m| m == role && session.starts_with("steward-"))
        || own_role.is_some_and(|own| own == role)
}

fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The tags a resource must carry and the values they may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    pub keys: Vec<String>,
    pub allowed: BTreeMap<String, Vec<String>>,
}

impl Requirements {
    /// The policy's requirements, overridden by AWS Config rule parameters when
    /// they name tags: `requiredTags` (comma-separated keys) and the managed
    /// REQUIRED_TAGS rule's `tagNKey` / `tagNValue` (comma-separated values).
    pub fn from_policy(
        policy: &Policy,
        rule_parameters: &serde_json::Map<String, Value>,
    ) -> Result<Requirements, String> {
        let mut keys: Vec<String> = Vec::new();
        let mut allowed = BTreeMap::new();
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        };
        if let Some(list) = rule_parameters.get("requiredTags").and_then(text) {
            keys.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string),
            );
        }
        for n in 1..=50 {
            let Some(key) = rule_parameters.get(&format!("tag{n}Key")).and_then(text) else {
                continue;
            };
            let key = key.trim().to_string();
            if key.is_empty() {
                continue;
            }
            if let Some(values) = rule_parameters.get(&format!("tag{n}Value")).and_then(text) {
                let values: Vec<String> = values
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect();
                if !values.is_empty() {
                    allowed.insert(key.clone(), values);
                }
            }
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let unknown: Vec<&String> = rule_parameters
            .keys()
            .filter(|k| {
                k.as_str() != "requiredTags"
                    && !(k.starts_with("tag") && (k.ends_with("Key") || k.ends_with("Value")))
            })
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown rule parameters {unknown:?}: use `requiredTags` (comma-separated keys) or `tag1Key`/`tag1Value`..."
            ));
        }
        if keys.is_empty() {
            return Ok(Requirements {
                keys: policy.tagging.required.clone(),
                allowed: policy.tagging.allowed_values.clone(),
            });
        }
        // Values the policy restricts stay restricted unless the rule says otherwise.
        for key in &keys {
            if !allowed.contains_key(key) {
                if let Some(values) = policy.tagging.allowed_values.get(key) {
                    allowed.insert(key.clone(), values.clone());
                }
            }
        }
        Ok(Requirements { keys, allowed })
    }
}

/// The result of checking a resource's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compliance {
    pub missing: Vec<String>,
    /// (key, value, allowed values)
    pub invalid: Vec<(String, String, Vec<String>)>,
}

impl Compliance {
    pub fn is_compliant(&self) -> bool {
        self.missing.is_empty() && self.invalid.is_empty()
    }

    /// A short human sentence (also the Config annotation, at most 256 characters).
    pub fn annotation(&self) -> String {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "missing required tags: {}",
                self.missing.join(", ")
            ));
        }
        for (key, value, allowed) in &self.invalid {
            parts.push(format!(
                "{key}={value:?} is not one of {}",
                allowed.join("|")
            ));
        }
        if parts.is_empty() {
            parts.push("all required tags present with allowed values".to_string());
        }
        let text = parts.join("; ");
        if text.chars().count() > 256 {
            let mut clipped: String = text.chars().take(253).collect();
            clipped.push_str("...");
            clipped
        } else {
            text
        }
    }
}

/// Checks required keys (present with a non-blank value) and allowed values.
pub fn evaluate(tags: &HashMap<String, String>, requirements: &Requirements) -> Compliance {
    let mut result = Compliance::default();
    for key in &requirements.keys {
        match tags.get(key).map(|v| v.trim()) {
            None | Some("") => result.missing.push(key.clone()),
            Some(value) => {
                if let Some(allowed) = requirements.allowed.get(key) {
                    if !allowed.iter().any(|a| a == value) {
                        result
                            .invalid
                            .push((key.clone(), value.to_string(), allowed.clone()));
                    }
                }
            }
        }
    }
    result
}

/// What to do with one new resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePlan {
    /// Tags to add (never overwriting an existing value).
    pub add: BTreeMap<String, String>,
    /// `steward:exempt=true`: nothing is added, the resource is still reported.
    pub exempt: bool,
    /// Compliance once `add` is applied.
    pub compliance: Compliance,
}

/// Decides the tags to add to a new resource and its compliance afterwards.
pub fn plan_resource(
    existing: &HashMap<String, String>,
    creator: Option<&Creator>,
    account: &str,
    policy: &Policy,
    requirements: &Requirements,
) -> ResourcePlan {
    let exempt = safety::is_exempt(existing);
    let mut add = BTreeMap::new();
    if !exempt {
        if let Some(who) = creator.filter(|_| policy.tagging.tag_creator) {
            if !existing.contains_key(tags::CREATED_BY) {
                add.insert(tags::CREATED_BY.to_string(), clip_tag_value(&who.by));
                if let Some(via) = &who.via {
                    if !existing.contains_key(CREATED_VIA) {
                        add.insert(CREATED_VIA.to_string(), clip_tag_value(via));
                    }
                }
            }
        }
        let env_missing = existing.get(tags::ENV).is_none_or(|v| v.trim().is_empty());
        if policy.tagging.add_default_env && env_missing {
            if let Some(env) = policy.environment_of_account(account) {
                add.insert(tags::ENV.to_string(), env.to_string());
            }
        }
    }
    let mut after = existing.clone();
    after.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
    ResourcePlan {
        compliance: evaluate(&after, requirements),
        add,
        exempt,
    }
}

/// Tag values are at most 256 characters.
fn clip_tag_value(value: &str) -> String {
    value.chars().take(256).collect()
}

/// Item statuses meaning the resource is gone.
const DELETED: [&str; 3] = [
    "ResourceDeleted",
    "ResourceDeletedNotRecorded",
    "ResourceNotRecorded",
];

/// Evaluates one configuration item (change-triggered and oversized paths).
pub fn evaluate_item(
    item: &ConfigItem,
    event_left_scope: bool,
    requirements: &Requirements,
) -> Evaluation {
    let (verdict, annotation) = if event_left_scope {
        (
            Verdict::NotApplicable,
            "the resource left the rule's scope".to_string(),
        )
    } else if DELETED.contains(&item.status.as_str()) {
        (
            Verdict::NotApplicable,
            format!("the resource is deleted ({})", item.status),
        )
    } else {
        let compliance = evaluate(&item.tags, requirements);
        let verdict = if compliance.is_compliant() {
            Verdict::Compliant
        } else {
            Verdict::NonCompliant
        };
        (verdict, compliance.annotation())
    };
    Evaluation {
        resource_type: item.resource_type.clone(),
        resource_id: item.resource_id.clone(),
        verdict,
        annotation,
        ordering: item.capture_time,
    }
}

/// Periodic evaluation: every listed resource, plus `NOT_APPLICABLE` for the
/// resources the rule reported before that are no longer present.
pub fn periodic_evaluations(
    current: &[ResourceState],
    previously_reported: &[(String, String)],
    requirements: &Requirements,
    time: DateTime<Utc>,
) -> Vec<Evaluation> {
    let mut out = Vec::new();
    let mut present = BTreeSet::new();
    for resource in current {
        let compliance = evaluate(&resource.tags, requirements);
        present.insert((resource.config_type.to_string(), resource.config_id.clone()));
        out.push(Evaluation {
            resource_type: resource.config_type.to_string(),
            resource_id: resource.config_id.clone(),
            verdict: if compliance.is_compliant() {
                Verdict::Compliant
            } else {
                Verdict::NonCompliant
            },
            annotation: compliance.annotation(),
            ordering: time,
        });
    }
    let mut gone = BTreeSet::new();
    for key in previously_reported {
        if !present.contains(key) && gone.insert(key.clone()) {
            out.push(Evaluation {
                resource_type: key.0.clone(),
                resource_id: key.1.clone(),
                verdict: Verdict::NotApplicable,
                annotation: "the resource no longer exists".to_string(),
                ordering: time,
            });
        }
    }
    out
}

/// For an oversized notification: the NOT_APPLICABLE evaluation when the
/// item need not (or could not) be fetched, else `None` (fetch it). `fetched`
/// is `Some(None)` when the fetch found no item.
pub fn oversized_not_applicable(
    summary: &ConfigItemSummary,
    event_left_scope: bool,
    fetched: Option<Option<&ConfigItem>>,
) -> Option<Evaluation> {
    let gone =
        summary.status.starts_with("ResourceDeleted") || summary.status == "ResourceNotRecorded";
    let annotation = if event_left_scope {
        "the resource left the rule's scope".to_string()
    } else if gone || matches!(fetched, Some(None)) {
        format!(
            "the resource is deleted or not recorded ({})",
            summary.status
        )
    } else {
        return None;
    };
    Some(Evaluation {
        resource_type: summary.resource_type.clone(),
        resource_id: summary.resource_id.clone(),
        verdict: Verdict::NotApplicable,
        annotation,
        ordering: summary.capture_time,
    })
}

/// Counts of evaluations per compliance type (for logs and the dry-run notice).
pub fn verdict_counts(evaluations: &[Evaluation]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for e in evaluations {
        *counts.entry(e.verdict.as_str()).or_default() += 1;
    }
    counts
}

/// What steward knew of a tag before a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// From the resource's AWS Config history: the value, or absent.
    Known(Option<String>),
    /// Config recorded nothing (or could not be read): why.
    Unknown(String),
}

impl Previous {
    /// The value of `key` in the tags Config recorded before the call
    /// (`Ok(None)`: nothing recorded; `Err`: the history could not be read).
    pub fn from_history(
        history: &Result<Option<HashMap<String, String>>, String>,
        key: &str,
    ) -> Previous {
        match history {
            Ok(Some(tags)) => Previous::Known(tags.get(key).cloned()),
            Ok(None) => Previous::Unknown("AWS Config recorded no earlier configuration".into()),
            Err(e) => Previous::Unknown(format!("AWS Config history could not be read: {e}")),
        }
    }

    /// For a subject line: the value, `not set` or `unknown`.
    pub fn short(&self) -> String {
        match self {
            Previous::Known(Some(v)) => v.clone(),
            Previous::Known(None) => "not set".to_string(),
            Previous::Unknown(_) => "unknown".to_string(),
        }
    }

    /// For the message body, with the reason when unknown.
    pub fn text(&self) -> String {
        match self {
            Previous::Known(Some(v)) => format!("`{v}`"),
            Previous::Known(None) => "not set".to_string(),
            Previous::Unknown(why) => format!("previous value unknown ({why})"),
        }
    }
}

/// One change to a governance tag on one resource, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceChange {
    pub resource: String,
    pub label: &'static str,
    pub key: String,
    pub previous: Previous,
    /// `None`: the tag was removed.
    pub now: Option<String>,
    pub severity: Severity,
    /// What the change means for steward's actions.
    pub meaning: String,
}

/// The watched keys among a call's changes (`env`, `steward:exempt`, `steward:offhours`).
pub fn watched(changes: &BTreeMap<String, Option<String>>) -> Vec<(&str, Option<&str>)> {
    changes
        .iter()
        .filter(|(k, _)| WATCHED.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect()
}

/// Judges a change of `key` to `now` on `name`, whose tags after the call are
/// `after`: HIGH when `env` becomes an off-hours environment (unless the
/// previous value is known to be one too) and when `steward:exempt=true` is
/// added; LOW otherwise. `at` is the call's time (for the next stop).
#[allow(clippy::too_many_arguments)]
pub fn judge_change(
    name: &str,
    label: &'static str,
    key: &str,
    previous: Previous,
    now: Option<&str>,
    after: &HashMap<String, String>,
    policy: &Policy,
    at: DateTime<Utc>,
) -> GovernanceChange {
    let offhours_env = |v: &str| policy.offhours.environments.iter().any(|e| e == v.trim());
    let was_exempt =
        matches!(&previous, Previous::Known(Some(v)) if v.trim().eq_ignore_ascii_case("true"));
    let (severity, meaning) = match (key, now) {
        (tags::ENV, Some(value)) if offhours_env(value) => {
            let already = matches!(&previous, Previous::Known(Some(p)) if offhours_env(p));
            let severity = if already { Severity::Low } else { Severity::High };
            (severity, format!("{name} is now `env={value}`; {}", stop_meaning(after, policy, at)))
        }
        (tags::ENV, Some(value)) => (
            Severity::Low,
            format!("{name} is now `env={value}`; the off-hours scheduler does not stop {value} resources"),
        ),
        (tags::ENV, None) => (
            Severity::Low,
            format!("{name} has no `env` tag now; steward never stops a resource without one"),
        ),
        (tags::EXEMPT, Some(v)) if v.trim().eq_ignore_ascii_case("true") => (
            if was_exempt { Severity::Low } else { Severity::High },
            format!("{name} is now `steward:exempt=true`: out of governance, steward will not change it (it is still reported)"),
        ),
        (tags::EXEMPT, _) => (
            Severity::Low,
            format!("{name} is not exempt now: steward governs it again"),
        ),
        (_, Some(value)) => (
            Severity::Low,
            format!("{name} has the off-hours schedule `{value}` now; {}", stop_meaning(after, policy, at)),
        ),
        (_, None) => (
            Severity::Low,
            format!("{name} has no `steward:offhours` tag now; {}", stop_meaning(after, policy, at)),
        ),
    };
    GovernanceChange {
        resource: name.to_string(),
        label,
        key: key.to_string(),
        previous,
        now: now.map(str::to_string),
        severity,
        meaning,
    }
}

/// What the off-hours scheduler would do with a resource carrying `after`.
fn stop_meaning(after: &HashMap<String, String>, policy: &Policy, at: DateTime<Utc>) -> String {
    if safety::is_exempt(after) {
        return "it is exempt, so the scheduler leaves it alone".to_string();
    }
    if !safety::env_allows_cost_action(after, &policy.offhours.environments) {
        return "its env is not one the scheduler stops".to_string();
    }
    match schedule::resolve(after, &policy.offhours) {
        schedule::Resolution::Scheduled(s) => {
            let holidays = schedule::holiday_dates(&policy.offhours);
            match s.next_stop(at, &holidays) {
                Some(t) => format!(
                    "the scheduler would stop it at {}",
                    t.format("%H:%M UTC on %a %Y-%m-%d")
                ),
                None => "the scheduler may stop it (no stop time in its schedule)".to_string(),
            }
        }
        schedule::Resolution::OptedOut => {
            "its schedule says `off`: the scheduler leaves it alone".to_string()
        }
        schedule::Resolution::NotScheduled => {
            "opt-in mode and no schedule tag: not scheduled".to_string()
        }
        schedule::Resolution::Malformed { value, .. } => {
            format!("its schedule `{value}` does not parse, so the scheduler leaves it alone")
        }
    }
}

/// The tags after a call: as read now, else the call's own changes.
pub fn tags_after(
    current: Option<&HashMap<String, String>>,
    changes: &BTreeMap<String, Option<String>>,
) -> HashMap<String, String> {
    match current {
        Some(tags) => tags.clone(),
        None => changes
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect(),
    }
}

/// Who made a call, for a notice: the creator name steward would record,
/// else the caller's ARN.
pub fn caller_name(identity: &Identity) -> String {
    creator(identity)
        .map(|c| c.by)
        .or_else(|| identity.arn.clone())
        .unwrap_or_else(|| "an unknown caller".into())
}

/// The highest severity of the changes (LOW when there are none).
pub fn overall_severity(changes: &[GovernanceChange]) -> Severity {
    changes
        .iter()
        .map(|c| c.severity)
        .max()
        .unwrap_or(Severity::Low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::model::{ResourceRef, ResourceState};
    use steward_shared::testing::tags;

    fn identity(v: Value) -> Identity {
        Identity::from_value(&v)
    }

    fn by(v: Value) -> Option<String> {
        creator(&identity(v)).map(|c| c.by)
    }

    fn who(name: &str) -> Creator {
        Creator {
            by: name.to_string(),
            via: None,
        }
    }

    #[test]
    fn creators() {
        assert_eq!(
            by(json!({"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::1:user/alice"})),
            Some("alice".into())
        );
        assert_eq!(
            by(
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_0123/bob@example.com"})
            ),
            Some("AWSReservedSSO_Admin_0123/bob@example.com".into())
        );
        assert_eq!(
            by(
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/web-role/i-0abc12345def67890"})
            ),
            None
        );
        assert_eq!(
            by(
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"})
            ),
            None
        );
        assert_eq!(
            by(json!({"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"})),
            None
        );
        assert_eq!(
            creator(&identity(
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/deploy/ci", "invokedBy": "cloudformation.amazonaws.com"})
            )),
            Some(Creator {
                by: "deploy/ci".into(),
                via: Some("cloudformation".into())
            }),
            "a person acting through CloudFormation is recorded with created-via (issue 9)"
        );
    }

    #[test]
    fn evaluation_reports_missing_and_invalid() {
        let policy = Policy::default();
        let req = Requirements::from_policy(&policy, &Default::default()).unwrap();
        let c = evaluate(&tags(&[("project", "web"), ("env", "qa")]), &req);
        assert_eq!(c.missing, vec!["cost_center"]);
        assert_eq!(c.invalid[0].0, "env");
        assert!(c
            .annotation()
            .contains("missing required tags: cost_center"));
        assert!(c.annotation().contains("env=\"qa\""));
        assert!(evaluate(
            &tags(&[("project", "web"), ("env", "dev"), ("cost_center", "42")]),
            &req
        )
        .is_compliant());
        assert_eq!(evaluate(&tags(&[("project", " ")]), &req).missing.len(), 3);
    }

    #[test]
    fn rule_parameters_override_required_tags() {
        let policy = Policy::default();
        let params = json!({"tag1Key": "owner", "tag2Key": "env", "tag2Value": "dev,prod"});
        let req = Requirements::from_policy(&policy, params.as_object().unwrap()).unwrap();
        assert_eq!(req.keys, vec!["owner", "env"]);
        assert_eq!(req.allowed["env"], vec!["dev", "prod"]);
        let params = json!({"requiredTags": "team, app"});
        let req = Requirements::from_policy(&policy, params.as_object().unwrap()).unwrap();
        assert_eq!(req.keys, vec!["team", "app"]);
        assert!(
            Requirements::from_policy(&policy, json!({"bogus": 1}).as_object().unwrap()).is_err()
        );
    }

    #[test]
    fn plan_never_overwrites_and_never_invents() {
        let mut policy = Policy::default();
        policy
            .tagging
            .account_environments
            .insert("111111111111".into(), "dev".into());
        let req = Requirements::from_policy(&policy, &Default::default()).unwrap();
        let plan = plan_resource(
            &tags(&[("steward:created-by", "carol")]),
            Some(&who("alice")),
            "111111111111",
            &policy,
            &req,
        );
        assert!(!plan.add.contains_key("steward:created-by"));
        assert_eq!(plan.add.get("env").map(String::as_str), Some("dev"));
        assert!(!plan.add.contains_key("project") && !plan.add.contains_key("cost_center"));
        assert_eq!(plan.compliance.missing, vec!["project", "cost_center"]);
        let plan = plan_resource(
            &tags(&[("steward:exempt", "true")]),
            Some(&who("alice")),
            "111111111111",
            &policy,
            &req,
        );
        assert!(plan.exempt && plan.add.is_empty());
        let plan = plan_resource(
            &tags(&[("env", "prod")]),
            None,
            "222222222222",
            &policy,
            &req,
        );
        assert!(plan.add.is_empty());
    }

    fn item(status: &str, tags: &[(&str, &str)]) -> ConfigItem {
        ConfigItem {
            resource_type: "AWS::EC2::Instance".into(),
            resource_id: "i-1".into(),
            arn: None,
            status: status.into(),
            capture_time: "2026-11-20T10:00:00Z".parse().unwrap(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn req() -> Requirements {
        Requirements::from_policy(&Policy::default(), &Default::default()).unwrap()
    }

    #[test]
    fn item_verdicts() {
        let ok = item(
            "OK",
            &[("project", "a"), ("env", "dev"), ("cost_center", "1")],
        );
        assert_eq!(
            evaluate_item(&ok, false, &req()).verdict,
            Verdict::Compliant
        );
        assert_eq!(
            evaluate_item(&ok, true, &req()).verdict,
            Verdict::NotApplicable
        );
        assert_eq!(
            evaluate_item(&item("ResourceDeleted", &[]), false, &req()).verdict,
            Verdict::NotApplicable
        );
        let bad = evaluate_item(&item("OK", &[("env", "qa")]), false, &req());
        assert_eq!(bad.verdict, Verdict::NonCompliant);
        assert_eq!(bad.ordering, ok.capture_time);
    }

    #[test]
    fn periodic_reports_vanished_resources_not_applicable() {
        let current = vec![ResourceState {
            r: ResourceRef {
                kind: "ec2-instance",
                id: "i-1".into(),
            },
            config_type: "AWS::EC2::Instance",
            arn: "arn".into(),
            config_id: "i-1".into(),
            tags: HashMap::new(),
        }];
        let previous = vec![
            ("AWS::EC2::Instance".to_string(), "i-1".to_string()),
            ("AWS::EC2::Instance".to_string(), "i-gone".to_string()),
        ];
        let evals = periodic_evaluations(&current, &previous, &req(), Utc::now());
        assert_eq!(evals.len(), 2);
        assert_eq!(evals[0].verdict, Verdict::NonCompliant);
        assert_eq!(
            (evals[1].resource_id.as_str(), evals[1].verdict),
            ("i-gone", Verdict::NotApplicable)
        );
    }

    #[test]
    fn cloudformation_creator_gets_created_via() {
        let policy = Policy::default();
        let req = Requirements::from_policy(&policy, &Default::default()).unwrap();
        let cfn = Creator {
            by: "deployer/deploy-pipeline".into(),
            via: Some("cloudformation".into()),
        };
        let plan = plan_resource(&tags(&[]), Some(&cfn), "1", &policy, &req);
        assert_eq!(plan.add[tags::CREATED_BY], "deployer/deploy-pipeline");
        assert_eq!(plan.add[CREATED_VIA], "cloudformation");
    }

    #[test]
    fn steward_callers_are_recognised_by_role_not_tag() {
        let member = identity(
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::111111111111:assumed-role/steward-member/steward-tag-enforcer-6f5ea4d3"}),
        );
        assert!(is_steward_caller(&member, Some("steward-member"), None));
        let person = identity(
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::111111111111:assumed-role/steward-member/mallory"}),
        );
        assert!(!is_steward_caller(&person, Some("steward-member"), None));
        let own = identity(
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/steward-TagEnforcerFunctionRole-AB12/tag-enforcer"}),
        );
        assert!(is_steward_caller(
            &own,
            Some("steward-member"),
            Some("steward-TagEnforcerFunctionRole-AB12")
        ));
        let user = identity(json!({"type": "IAMUser", "userName": "steward-member"}));
        assert!(!is_steward_caller(&user, Some("steward-member"), Some("x")));
    }

    #[test]
    fn governance_changes_are_judged() {
        let policy = Policy::default();
        let at: DateTime<Utc> = "2026-11-20T09:14:07Z".parse().unwrap();
        let after = tags(&[("env", "dev")]);
        let c = judge_change(
            "orders-db",
            "RDS DB instance",
            "env",
            Previous::Known(Some("prod".into())),
            Some("dev"),
            &after,
            &policy,
            at,
        );
        assert_eq!(c.severity, Severity::High);
        assert!(
            c.meaning.contains("orders-db is now `env=dev`"),
            "{}",
            c.meaning
        );
        assert!(c.meaning.contains("19:00 UTC"), "{}", c.meaning);
        let c = judge_change(
            "orders-db",
            "RDS DB instance",
            "env",
            Previous::Known(Some("dev".into())),
            Some("dev"),
            &after,
            &policy,
            at,
        );
        assert_eq!(c.severity, Severity::Low, "dev to dev changes nothing");
        let c = judge_change(
            "orders-db",
            "RDS DB instance",
            "env",
            Previous::Unknown("none".into()),
            Some("dev"),
            &after,
            &policy,
            at,
        );
        assert_eq!(
            c.severity,
            Severity::High,
            "unknown previous value is not known to be dev"
        );
        let c = judge_change(
            "x",
            "EC2 instance",
            "env",
            Previous::Known(Some("dev".into())),
            Some("prod"),
            &tags(&[("env", "prod")]),
            &policy,
            at,
        );
        assert_eq!(c.severity, Severity::Low);
        let c = judge_change(
            "x",
            "EC2 instance",
            "steward:exempt",
            Previous::Known(None),
            Some("true"),
            &tags(&[("steward:exempt", "true")]),
            &policy,
            at,
        );
        assert_eq!(c.severity, Severity::High);
        let c = judge_change(
            "x",
            "EC2 instance",
            "steward:offhours",
            Previous::Known(Some("off=(M-F,19)".into())),
            None,
            &tags(&[]),
            &policy,
            at,
        );
        assert_eq!(c.severity, Severity::Low);
    }

    #[test]
    fn oversized_items_not_applicable_when_gone_or_out_of_scope() {
        let summary = ConfigItemSummary {
            resource_type: "AWS::EC2::Instance".into(),
            resource_id: "i-1".into(),
            status: "OK".into(),
            capture_time: "2026-11-20T10:00:00Z".parse().unwrap(),
        };
        assert!(oversized_not_applicable(&summary, false, None).is_none());
        assert!(oversized_not_applicable(&summary, true, None).is_some());
        assert!(oversized_not_applicable(&summary, false, Some(None)).is_some());
        let deleted = ConfigItemSummary {
            status: "ResourceDeleted".into(),
            ..summary
        };
        let e = oversized_not_applicable(&deleted, false, None).unwrap();
        assert_eq!(e.verdict, Verdict::NotApplicable);
        assert!(e.annotation.contains("deleted"));
    }
}
