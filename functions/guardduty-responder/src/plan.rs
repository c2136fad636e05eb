//! Containment decisions, as pure functions over facts read from AWS: whether
//! a resource may be contained at all (policy, band, environment, exemption,
//! break-glass), and the exact actions that are still missing, so that a
//! repeated finding changes nothing once its containment is complete.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};
use steward_shared::policy::Containment;
use steward_shared::safety;
use steward_shared::tags::{self, TagMap};

use crate::triage::{Band, Thresholds};

/// Why a resource is only reported, not contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    Disabled,
    BelowBand { band: Band, contain_from: Band },
    Exempt,
    Environment { env: Option<String> },
    BreakGlass { user: String },
    RoleSessionsOff,
    Gone { what: String },
    Unsupported { what: String },
}

impl Hold {
    /// The reason, for the message and the logs.
    pub fn reason(&self) -> String {
        match self {
            Hold::Disabled => "containment is off ([containment] enabled = false)".into(),
            Hold::BelowBand { band, contain_from } => {
                format!("{band} is below the containment threshold {contain_from}; notified only")
            }
            Hold::Exempt => "the resource is tagged steward:exempt=true; notified only".into(),
            Hold::Environment { env: Some(env) } => {
                format!("env={env} is not in [containment] environments; notified only")
            }
            Hold::Environment { env: None } => {
                "the resource has no env tag and [containment] include_untagged = false; notified only".into()
            }
            Hold::BreakGlass { user } => {
                format!("{user} is on the break-glass list ([containment] break_glass_users); its keys are never touched")
            }
            Hold::RoleSessionsOff => "role-session revocation is off ([containment] revoke_role_sessions = false)".into(),
            Hold::Gone { what } => what.clone(),
            Hold::Unsupported { what } => what.clone(),
        }
    }
}

/// The gate every containment passes first: enabled, band, exemption and environment.
pub fn gate(
    policy: &Containment,
    thresholds: Thresholds,
    band: Band,
    resource_tags: &TagMap,
) -> Result<(), Hold> {
    if !policy.enabled {
        return Err(Hold::Disabled);
    }
    if band < thresholds.contain {
        return Err(Hold::BelowBand {
            band,
            contain_from: thresholds.contain,
        });
    }
    if safety::is_exempt(resource_tags) {
        return Err(Hold::Exempt);
    }
    if !safety::env_allows_containment(resource_tags, &policy.environments, policy.include_untagged)
    {
        let env = resource_tags
            .get(tags::ENV)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        return Err(Hold::Environment { env });
    }
    Ok(())
}

/// An instance as steward reads it before containing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFacts {
    pub id: String,
    pub vpc_id: Option<String>,
    pub state: String,
    pub tags: TagMap,
    pub interfaces: Vec<InterfaceFacts>,
    /// Attached EBS volume ids.
    pub volumes: Vec<String>,
    pub termination_protection: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceFacts {
    pub id: String,
    pub groups: Vec<String>,
    pub tags: TagMap,
}

/// The quarantine group of the instance's VPC, if it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFacts {
    pub id: String,
    /// True while it still has any inbound or outbound rule.
    pub has_rules: bool,
}

/// One containment step on an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceAction {
    CreateQuarantineGroup {
        vpc_id: String,
        name: String,
    },
    RemoveQuarantineGroupRules,
    /// Record `previous` on the interface's tag (unless `keep_record`), then replace its groups.
    IsolateInterface {
        interface_id: String,
        previous: Vec<String>,
        keep_record: bool,
    },
    EnableTerminationProtection,
    Snapshot {
        volume_id: String,
    },
    TagInstance {
        value: String,
    },
}

impl InstanceAction {
    /// What the step does, in words (`done` true for past tense).
    pub fn describe(&self, instance_id: &str, done: bool) -> String {
        let (verb_create, verb_remove, verb_replace, verb_enable, verb_snap, verb_tag) = if done {
            (
                "created",
                "removed",
                "replaced",
                "enabled",
                "snapshotted",
                "tagged",
            )
        } else {
            (
                "would create",
                "would remove",
                "would replace",
                "would enable",
                "would snapshot",
                "would tag",
            )
        };
        match self {
            InstanceAction::CreateQuarantineGroup { vpc_id, name } => {
                format!("{verb_create} quarantine security group {name} in {vpc_id} (no inbound, no outbound rules)")
            }
            InstanceAction::RemoveQuarantineGroupRules => format!("{verb_remove} every rule of the quarantine group"),
            InstanceAction::IsolateInterface { interface_id, previous, .. } => format!(
                "{verb_replace} the security groups of {interface_id} ({}) with the quarantine group; previous groups recorded in {}",
                if previous.is_empty() { "none".to_string() } else { previous.join(", ") },
                tags::PREVIOUS_GROUPS
            ),
            InstanceAction::EnableTerminationProtection => format!("{verb_enable} termination protection on {instance_id}"),
            InstanceAction::Snapshot { volume_id } => {
                format!("{verb_snap} {volume_id} for forensics (tagged {})", tags::FINDING)
            }
            InstanceAction::TagInstance { value } => format!("{verb_tag} {instance_id} {}={value}", tags::QUARANTINED),
        }
    }
}

/// The value of the `steward:quarantined` tag.
pub fn quarantine_tag(finding_id: &str, at: DateTime<Utc>) -> String {
    format!(
        "{finding_id} {}",
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// The steps still missing to contain an instance.
///
/// An interface counts as isolated when its only group is the quarantine
/// group, or when it carries a `steward:previous-groups` record and the
/// instance carries `steward:quarantined` (the record is written before the
/// change, the instance tag last). An existing record is never overwritten
/// with the quarantine group itself. Volumes with a snapshot for this finding
/// are not snapshotted again.
pub fn plan_instance(
    facts: &InstanceFacts,
    group: Option<&GroupFacts>,
    group_name: &str,
    already_snapshotted: &BTreeSet<String>,
    snapshot_volumes: bool,
    finding_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<InstanceAction>, Hold> {
    let vpc_id = facts.vpc_id.clone().ok_or_else(|| Hold::Unsupported {
        what: format!("{} is not in a VPC; isolate it by hand", facts.id),
    })?;
    let mut actions = Vec::new();
    match group {
        None => actions.push(InstanceAction::CreateQuarantineGroup {
            vpc_id,
            name: group_name.to_string(),
        }),
        Some(g) if g.has_rules => actions.push(InstanceAction::RemoveQuarantineGroupRules),
        Some(_) => {}
    }
    let quarantined = facts.tags.contains_key(tags::QUARANTINED);
    for eni in &facts.interfaces {
        let only_quarantine = group.is_some_and(|g| eni.groups.len() == 1 && eni.groups[0] == g.id);
        let recorded = eni.tags.contains_key(tags::PREVIOUS_GROUPS);
        if only_quarantine || (recorded && quarantined) {
            continue;
        }
        let previous: Vec<String> = eni
            .groups
            .iter()
            .filter(|g| group.is_none_or(|q| q.id != **g))
            .cloned()
            .collect();
        let keep_record = recorded && previous.is_empty();
        actions.push(InstanceAction::IsolateInterface {
            interface_id: eni.id.clone(),
            previous,
            keep_record,
        });
    }
    if !facts.termination_protection {
        actions.push(InstanceAction::EnableTerminationProtection);
    }
    if snapshot_volumes {
        for volume in facts
            .volumes
            .iter()
            .filter(|v| !already_snapshotted.contains(*v))
        {
            actions.push(InstanceAction::Snapshot {
                volume_id: volume.clone(),
            });
        }
    }
    if !quarantined {
        actions.push(InstanceAction::TagInstance {
            value: quarantine_tag(finding_id, now),
        });
    }
    Ok(actions)
}

/// Parses a `steward:previous-groups` record (comma-separated group ids).
pub fn parse_previous_groups(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// One containment step on credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialAction {
    DeactivateKey {
        user: String,
        access_key_id: String,
    },
    /// Attach the inline deny policy for sessions issued before `cutoff`.
    RevokeRoleSessions {
        role: String,
        cutoff: DateTime<Utc>,
    },
}

/// Inline policy name of the session revocation.
pub const REVOKE_POLICY_NAME: &str = "steward-revoke-sessions";

impl CredentialAction {
    pub fn describe(&self, done: bool) -> String {
        match (self, done) {
            (CredentialAction::DeactivateKey { user, access_key_id }, true) => {
                format!("set access key {access_key_id} of IAM user {user} inactive")
            }
            (CredentialAction::DeactivateKey { user, access_key_id }, false) => {
                format!("would set access key {access_key_id} of IAM user {user} inactive")
            }
            (CredentialAction::RevokeRoleSessions { role, cutoff }, d) => format!(
                "{} inline policy {REVOKE_POLICY_NAME} to role {role}: denies every action to sessions issued before {}",
                if d { "attached" } else { "would attach" },
                cutoff.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        }
    }
}

/// The decision for a user's long-term key: break-glass users are never touched;
/// a key already inactive needs nothing.
pub fn plan_user_key(
    policy: &Containment,
    user: &str,
    access_key_id: &str,
    key_status: Option<&str>,
) -> Result<Option<CredentialAction>, Hold> {
    if policy.break_glass_users.iter().any(|u| u == user) {
        return Err(Hold::BreakGlass {
            user: user.to_string(),
        });
    }
    match key_status {
        None => Err(Hold::Gone {
            what: format!(
                "access key {access_key_id} of {user} no longer exists; nothing to deactivate"
            ),
        }),
        Some(s) if s.eq_ignore_ascii_case("Inactive") => Ok(None),
        Some(_) => Ok(Some(CredentialAction::DeactivateKey {
            user: user.to_string(),
            access_key_id: access_key_id.to_string(),
        })),
    }
}

/// The decision for a role whose temporary credentials leaked: a revocation
/// already in place that covers the finding's last activity needs nothing.
pub fn plan_role_sessions(
    policy: &Containment,
    role: &str,
    existing_cutoff: Option<DateTime<Utc>>,
    last_seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<CredentialAction>, Hold> {
    if !policy.revoke_role_sessions {
        return Err(Hold::RoleSessionsOff);
    }
    if policy.break_glass_users.iter().any(|u| u == role) {
        return Err(Hold::BreakGlass {
            user: role.to_string(),
        });
    }
    match existing_cutoff {
        Some(cutoff) if cutoff >= last_seen => Ok(None),
        _ => Ok(Some(CredentialAction::RevokeRoleSessions {
            role: role.to_string(),
            cutoff: now,
        })),
    }
}

/// The inline policy document that denies sessions issued before `cutoff`
/// (the document the IAM console's "Revoke active sessions" attaches).
pub fn revoke_policy_document(cutoff: DateTime<Utc>) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "StewardRevokeOlderSessions",
            "Effect": "Deny",
            "Action": ["*"],
            "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff.to_rfc3339_opts(SecondsFormat::Secs, true)}}
        }]
    })
    .to_string()
}

/// Reads the cutoff back from a revocation policy document (plain or URL-encoded, as IAM returns it).
pub fn revoke_policy_cutoff(document: &str) -> Option<DateTime<Utc>> {
    let decoded = percent_decode(document);
    let value: serde_json::Value = serde_json::from_str(&decoded).ok()?;
    let statements = match &value["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    statements
        .iter()
        .filter_map(|s| s["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str())
        .filter_map(|t| t.parse::<DateTime<Utc>>().ok())
        .max()
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> TagMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn instance() -> InstanceFacts {
        InstanceFacts {
            id: "i-1".into(),
            vpc_id: Some("vpc-1".into()),
            state: "running".into(),
            tags: tags(&[("env", "dev")]),
            interfaces: vec![
                InterfaceFacts {
                    id: "eni-1".into(),
                    groups: vec!["sg-a".into(), "sg-b".into()],
                    tags: TagMap::new(),
                },
                InterfaceFacts {
                    id: "eni-2".into(),
                    groups: vec!["sg-c".into()],
                    tags: TagMap::new(),
                },
            ],
            volumes: vec!["vol-1".into(), "vol-2".into()],
            termination_protection: false,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-20T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn gate_follows_policy_band_exemption_and_environment() {
        let p = Containment::default();
        let t = Thresholds {
            notify: Band::Low,
            contain: Band::High,
        };
        assert!(
            gate(&p, t, Band::High, &tags(&[])).is_ok(),
            "untagged is contained by default"
        );
        assert!(gate(&p, t, Band::Critical, &tags(&[("env", "prod")])).is_ok());
        assert_eq!(
            gate(&p, t, Band::Medium, &tags(&[])),
            Err(Hold::BelowBand {
                band: Band::Medium,
                contain_from: Band::High
            })
        );
        assert_eq!(
            gate(&p, t, Band::High, &tags(&[("steward:exempt", "true")])),
            Err(Hold::Exempt)
        );
        let mut only_dev = Containment {
            environments: vec!["dev".into()],
            include_untagged: false,
            ..Containment::default()
        };
        assert_eq!(
            gate(&only_dev, t, Band::High, &tags(&[("env", "prod")])),
            Err(Hold::Environment {
                env: Some("prod".into())
            })
        );
        assert_eq!(
            gate(&only_dev, t, Band::High, &tags(&[])),
            Err(Hold::Environment { env: None })
        );
        only_dev.enabled = false;
        assert_eq!(
            gate(&only_dev, t, Band::High, &tags(&[("env", "dev")])),
            Err(Hold::Disabled)
        );
    }

    #[test]
    fn fresh_instance_gets_every_step() {
        let actions = plan_instance(
            &instance(),
            None,
            "steward-quarantine",
            &BTreeSet::new(),
            true,
            "f1",
            now(),
        )
        .unwrap();
        assert_eq!(
            actions,
            vec![
                InstanceAction::CreateQuarantineGroup {
                    vpc_id: "vpc-1".into(),
                    name: "steward-quarantine".into()
                },
                InstanceAction::IsolateInterface {
                    interface_id: "eni-1".into(),
                    previous: vec!["sg-a".into(), "sg-b".into()],
                    keep_record: false
                },
                InstanceAction::IsolateInterface {
                    interface_id: "eni-2".into(),
                    previous: vec!["sg-c".into()],
                    keep_record: false
                },
                InstanceAction::EnableTerminationProtection,
                InstanceAction::Snapshot {
                    volume_id: "vol-1".into()
                },
                InstanceAction::Snapshot {
                    volume_id: "vol-2".into()
                },
                InstanceAction::TagInstance {
                    value: "f1 2026-11-20T10:00:00Z".into()
                },
            ]
        );
    }

    #[test]
    fn contained_instance_needs_nothing() {
        let mut facts = instance();
        facts.tags.insert(
            "steward:quarantined".into(),
            "f1 2026-11-20T10:00:00Z".into(),
        );
        facts.termination_protection = true;
        // As the emulator shows it: launch groups still listed, records present.
        for eni in &mut facts.interfaces {
            eni.tags
                .insert("steward:previous-groups".into(), eni.groups.join(","));
        }
        facts.interfaces[1].groups = vec!["sg-q".into()];
        let group = GroupFacts {
            id: "sg-q".into(),
            has_rules: false,
        };
        let done: BTreeSet<String> = ["vol-1".to_string(), "vol-2".to_string()].into();
        let actions = plan_instance(
            &facts,
            Some(&group),
            "steward-quarantine",
            &done,
            true,
            "f1",
            now(),
        )
        .unwrap();
        assert!(actions.is_empty(), "{actions:?}");
    }

    #[test]
    fn retry_after_partial_failure_keeps_the_true_previous_groups() {
        let mut facts = instance();
        facts.interfaces[0].groups = vec!["sg-q".into(), "sg-a".into()];
        facts.interfaces[1].groups = vec!["sg-q".into()];
        facts.interfaces[1]
            .tags
            .insert("steward:previous-groups".into(), "sg-c".into());
        let group = GroupFacts {
            id: "sg-q".into(),
            has_rules: true,
        };
        let done: BTreeSet<String> = ["vol-1".to_string()].into();
        let actions = plan_instance(&facts, Some(&group), "q", &done, true, "f1", now()).unwrap();
        assert_eq!(actions[0], InstanceAction::RemoveQuarantineGroupRules);
        assert_eq!(
            actions[1],
            InstanceAction::IsolateInterface {
                interface_id: "eni-1".into(),
                previous: vec!["sg-a".into()],
                keep_record: false
            }
        );
        assert!(!actions.iter().any(|a| matches!(a, InstanceAction::IsolateInterface { interface_id, .. } if interface_id == "eni-2")));
        assert!(actions.contains(&InstanceAction::Snapshot {
            volume_id: "vol-2".into()
        }));
        assert!(!actions.contains(&InstanceAction::Snapshot {
            volume_id: "vol-1".into()
        }));
    }

    #[test]
    fn snapshots_can_be_turned_off_and_ec2_classic_is_refused() {
        let actions =
            plan_instance(&instance(), None, "q", &BTreeSet::new(), false, "f1", now()).unwrap();
        assert!(!actions
            .iter()
            .any(|a| matches!(a, InstanceAction::Snapshot { .. })));
        let mut classic = instance();
        classic.vpc_id = None;
        assert!(matches!(
            plan_instance(&classic, None, "q", &BTreeSet::new(), true, "f1", now()),
            Err(Hold::Unsupported { .. })
        ));
    }

    #[test]
    fn user_keys_spare_break_glass_and_skip_inactive() {
        let p = Containment {
            break_glass_users: vec!["breakglass".into()],
            ..Containment::default()
        };
        assert_eq!(
            plan_user_key(&p, "breakglass", "AKIA1", Some("Active")),
            Err(Hold::BreakGlass {
                user: "breakglass".into()
            })
        );
        assert_eq!(
            plan_user_key(&p, "alice", "AKIA1", Some("Inactive")),
            Ok(None)
        );
        assert!(matches!(
            plan_user_key(&p, "alice", "AKIA1", None),
            Err(Hold::Gone { .. })
        ));
        assert_eq!(
            plan_user_key(&p, "alice", "AKIA1", Some("Active")),
            Ok(Some(CredentialAction::DeactivateKey {
                user: "alice".into(),
                access_key_id: "AKIA1".into()
            }))
        );
    }

    #[test]
    fn role_sessions_are_revoked_once_per_activity() {
        let p = Containment::default();
        let last_seen: DateTime<Utc> = "2026-11-20T09:00:00Z".parse().unwrap();
        assert_eq!(
            plan_role_sessions(&p, "web", None, last_seen, now()),
            Ok(Some(CredentialAction::RevokeRoleSessions {
                role: "web".into(),
                cutoff: now()
            }))
        );
        assert_eq!(
            plan_role_sessions(&p, "web", Some(now()), last_seen, now()),
            Ok(None)
        );
        let off = Containment {
            revoke_role_sessions: false,
            ..Containment::default()
        };
        assert_eq!(
            plan_role_sessions(&off, "web", None, last_seen, now()),
            Err(Hold::RoleSessionsOff)
        );
    }

    #[test]
    fn revoke_policy_round_trips_plain_and_url_encoded() {
        let doc = revoke_policy_document(now());
        assert_eq!(revoke_policy_cutoff(&doc), Some(now()));
        let encoded: String = doc
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert_eq!(revoke_policy_cutoff(&encoded), Some(now()));
        assert_eq!(revoke_policy_cutoff("{}"), None);
        assert_eq!(
            parse_previous_groups("sg-a, sg-b,,"),
            vec!["sg-a".to_string(), "sg-b".to_string()]
        );
    }
}
