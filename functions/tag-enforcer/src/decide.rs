//! The tag enforcer's decisions, as pure functions over data: who created a
//! resource, which tags to add, and whether a set of tags is compliant.

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::event::cloudwatch_events::cloudtrail::UserIdentity;
use serde_json::Value;
use steward_shared::policy::Policy;
use steward_shared::{safety, tags};

/// The `steward:created-by` value for a caller, or `None` for callers that are
/// not people: AWS services, service-linked roles and EC2 instance roles.
pub fn creator(identity: &UserIdentity) -> Option<String> {
    if identity.invoked_by.is_some() {
        return None;
    }
    match identity.r#type.as_str() {
        "IAMUser" => identity.user_name.clone().or_else(|| {
            identity
                .arn
                .as_deref()
                .and_then(|a| a.rsplit('/').next())
                .map(str::to_string)
        }),
        "Root" => Some("root".to_string()),
        "AssumedRole" => {
            // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
            let arn = identity.arn.as_deref()?;
            let rest = arn.split(":assumed-role/").nth(1)?;
            let (role, session) = rest.split_once('/')?;
            if role.starts_with("AWSServiceRole") || is_instance_id(session) {
                return None;
            }
            Some(format!("{role}/{session}"))
        }
        "FederatedUser" => identity
            .arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .map(str::to_string),
        "IdentityCenterUser" => identity
            .on_behalf_of
            .as_ref()
            .map(|o| o.user_id.clone())
            .or_else(|| identity.user_name.clone()),
        _ => None,
    }
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
    creator: Option<&str>,
    account: &str,
    policy: &Policy,
    requirements: &Requirements,
) -> ResourcePlan {
    let exempt = safety::is_exempt(existing);
    let mut add = BTreeMap::new();
    if !exempt {
        if let Some(who) = creator.filter(|_| policy.tagging.tag_creator) {
            if !existing.contains_key(tags::CREATED_BY) {
                add.insert(tags::CREATED_BY.to_string(), clip_tag_value(who));
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(v: Value) -> UserIdentity {
        serde_json::from_value(v).unwrap()
    }

    fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn creators() {
        assert_eq!(
            creator(&identity(
                json!({"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::1:user/alice"})
            )),
            Some("alice".into())
        );
        assert_eq!(
            creator(&identity(
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_0123/bob@example.com"})
            )),
            Some("AWSReservedSSO_Admin_0123/bob@example.com".into())
        );
        assert_eq!(
            creator(&identity(
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/web-role/i-0abc12345def67890"})
            )),
            None
        );
        assert_eq!(
            creator(&identity(
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"})
            )),
            None
        );
        assert_eq!(
            creator(&identity(
                json!({"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"})
            )),
            None
        );
        assert_eq!(
            creator(&identity(
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/deploy/ci", "invokedBy": "cloudformation.amazonaws.com"})
            )),
            None
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
            Some("alice"),
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
            Some("alice"),
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
}
