//! The responder's pure decisions. Triage: the severity band of a finding,
//! the policy's notify and contain thresholds for its type (with per-prefix
//! overrides), and the notification key that makes a repeated finding notify
//! again only when its band rises or a new `renotify_after_hours` window
//! starts. Trust: whether a finding may lead to containment at all (verified
//! by GuardDuty, not a sample, in a governed account, under the hourly cap).
//! Containment decisions, as pure functions over facts read from AWS: whether
//! a resource may be contained at all (policy, band, environment, exemption,
//! break-glass), and the exact actions that are still missing, so that a
//! repeated finding changes nothing once its containment is complete.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};

use steward_shared::policy::{Containment, Targets};
use steward_shared::safety;
use steward_shared::tags::{self, TagMap};

/// Why a resource is only reported, not contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    Disabled,
    BelowBand {
        band: Band,
        contain_from: Band,
    },
    Exempt,
    Environment {
        env: Option<String>,
    },
    BreakGlass {
        user: String,
    },
    RoleSessionsOff,
    Gone {
        what: String,
    },
    Unsupported {
        what: String,
    },
    /// GuardDuty does not know the finding, or could not be asked.
    Unverified {
        why: String,
    },
    /// A sample finding (`CreateSampleFindings`).
    Sample,
    /// The finding's account is not one steward governs.
    NotGoverned {
        account: String,
        /// Why (not listed, not under a targeted unit, or the unit lookup failed).
        why: String,
    },
    /// `containment.max_per_hour` containments in the last hour.
    CapReached {
        max: u32,
    },
    /// Role-session revocation is for credential findings only.
    NotCredentialFinding {
        finding_type: String,
    },
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
            Hold::Unverified { why } => format!("UNVERIFIED: {why}; nothing is contained until GuardDuty confirms the finding"),
            Hold::Sample => "a GuardDuty sample finding; sample findings are never contained".into(),
            Hold::NotGoverned { account, why } => format!("account {account} is not governed by steward: {why}; notified only"),
            Hold::CapReached { max } => format!("{max} containments in the last hour ([containment] max_per_hour); containment paused, notified only"),
            Hold::NotCredentialFinding { finding_type } => format!("{finding_type} is not a credential finding; role sessions are revoked only for leaked credentials"),
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

/// Where a finding stands with GuardDuty, as the responder could establish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// GuardDuty returned the finding (the responder acts on that version).
    Verified,
    /// GuardDuty was asked and does not know the finding.
    Unknown,
    /// GuardDuty could not be asked (the error).
    Unreachable(String),
    /// GuardDuty gave no answer (throttled, a 5xx, no connection): the
    /// invocation is retried soon.
    NoAnswer(String),
}

/// Whether a finding may lead to containment at all: GuardDuty vouches for
/// it, it is not a sample, and its account is governed (checked in that order).
pub fn trust(
    verification: &Verification,
    finding_id: &str,
    sample: bool,
    account: &str,
    governed: Result<(), String>,
) -> Result<(), Hold> {
    match verification {
        Verification::Verified => {}
        Verification::Unknown => {
            return Err(Hold::Unverified {
                why: format!("GuardDuty does not know finding {finding_id} (neither the hub's detector nor the member's)"),
            })
        }
        Verification::Unreachable(e) | Verification::NoAnswer(e) => {
            return Err(Hold::Unverified {
                why: format!("GuardDuty could not be asked about finding {finding_id}: {e}"),
            })
        }
    }
    if sample {
        return Err(Hold::Sample);
    }
    if let Err(why) = governed {
        return Err(Hold::NotGoverned {
            account: account.to_string(),
            why,
        });
    }
    Ok(())
}

/// Whether an account is one steward governs, as far as the policy alone says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Governance {
    Governed,
    /// Not governed, and why.
    NotGoverned(String),
    /// Only its place in the organization can tell: ask for its ancestors
    /// and decide with [`governed_by_units`].
    AskOrganizations,
}

/// An account is governed when `[targets] accounts` lists it, or it lies
/// (at any depth) under one of `[targets] organizational_units`; with both
/// lists empty (the default), only the function's own account is.
pub fn governance(targets: &Targets, own_account: &str, account: &str) -> Governance {
    if targets.accounts.iter().any(|a| a == account) {
        return Governance::Governed;
    }
    if !targets.organizational_units.is_empty() {
        return Governance::AskOrganizations;
    }
    if targets.accounts.is_empty() {
        if account == own_account {
            Governance::Governed
        } else {
            Governance::NotGoverned(format!(
                "[targets] is empty, so only the function's own account {own_account} is governed"
            ))
        }
    } else {
        Governance::NotGoverned("it is not in [targets] accounts".into())
    }
}

/// The decision once the account's ancestors (nearest first, up to the root)
/// are known, or their lookup failed (then nothing is contained).
pub fn governed_by_units(
    targets: &Targets,
    ancestors: Result<&[String], &str>,
) -> Result<(), String> {
    match ancestors {
        Err(e) => Err(format!(
            "its organizational unit could not be read from Organizations ({e}), so it cannot be shown to be under [targets] organizational_units"
        )),
        Ok(chain) if chain
            .iter()
            .any(|a| targets.organizational_units.iter().any(|ou| ou == a)) => Ok(()),
        Ok(chain) => Err(format!(
            "it is not in [targets] accounts and none of its parents ({}) is in [targets] organizational_units",
            if chain.is_empty() { "none found".to_string() } else { chain.join(" < ") }
        )),
    }
}

/// Credential findings: leaked or misused credentials (instance credential
/// exfiltration, credential access). Only these revoke role sessions.
pub fn is_credential_finding(finding_type: &str) -> bool {
    finding_type.contains("CredentialExfiltration") || finding_type.starts_with("CredentialAccess:")
}

/// The containment slot for this rolling hour: the first of `max` slots
/// (each kept an hour once taken) that is free, or the cap is reached.
pub fn containment_slots(max: u32) -> impl Iterator<Item = String> {
    (0..max).map(|n| format!("containment-slot#{n}"))
}

/// The de-duplication key of the CRITICAL cap alert: one per clock hour.
pub fn cap_alert_key(now: DateTime<Utc>) -> String {
    format!("gd-cap#{}", now.timestamp().div_euclid(3600))
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

/// Tag on a contained instance that steward put in Standby (or protected
/// from scale-in): `protected=<bool>;decremented=<bool>;group=<name>`, the
/// protection it had before and whether Standby lowered the desired capacity.
pub const STANDBY_TAG: &str = "steward:standby";

/// Tag on a contained instance that steward deregistered from load-balancer
/// target groups: the groups, space-separated, each `name/id` (the end of the
/// target group's ARN) with `:port` when the registration had one.
pub const TARGET_GROUPS_TAG: &str = "steward:target-groups";

/// AWS's limit on a tag value.
pub const TAG_VALUE_MAX: usize = 256;

/// The Auto Scaling group an instance belongs to, as steward reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembership {
    pub group: String,
    /// `InService`, `Standby`, `Pending`, `Terminating`, ...
    pub lifecycle_state: String,
    pub protected: bool,
    pub min_size: i32,
    pub desired: i32,
}

/// One registration of the instance in a load-balancer target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRegistration {
    pub target_group_arn: String,
    pub port: Option<i32>,
}

/// What keeping the evidence needs to know, each read on its own (a failed
/// read is reported and retried; it does not stop the network isolation).
/// Not read when the policy key is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceFacts {
    pub group: Result<Option<GroupMembership>, String>,
    pub targets: Result<Vec<TargetRegistration>, String>,
}

impl Default for EvidenceFacts {
    fn default() -> Self {
        EvidenceFacts {
            group: Ok(None),
            targets: Ok(Vec::new()),
        }
    }
}

/// The `steward:standby` value.
pub fn standby_record(protected_before: bool, decremented: bool, group: &str) -> String {
    format!("protected={protected_before};decremented={decremented};group={group}")
}

/// Reads a `steward:standby` value: (protected before, decremented).
pub fn parse_standby_record(value: &str) -> Option<(bool, bool)> {
    let mut parts = value.splitn(3, ';');
    let protected = parts.next()?.strip_prefix("protected=")?.parse().ok()?;
    let decremented = parts.next()?.strip_prefix("decremented=")?.parse().ok()?;
    Some((protected, decremented))
}

/// The record entry of a registration: `name/id[:port]`.
pub fn target_entry(r: &TargetRegistration) -> String {
    let tail = r
        .target_group_arn
        .split_once(":targetgroup/")
        .map(|(_, t)| t)
        .unwrap_or(&r.target_group_arn);
    match r.port {
        Some(p) => format!("{tail}:{p}"),
        None => tail.to_string(),
    }
}

/// Reads a `steward:target-groups` value: (`name/id`, port) per entry.
pub fn parse_target_record(value: &str) -> Vec<(String, Option<i32>)> {
    value
        .split_whitespace()
        .map(|entry| match entry.rsplit_once(':') {
            Some((tg, port)) => match port.parse::<i32>() {
                Ok(p) => (tg.to_string(), Some(p)),
                Err(_) => (entry.to_string(), None),
            },
            None => (entry.to_string(), None),
        })
        .collect()
}

/// Packs entries into one tag value (at most [`TAG_VALUE_MAX`] characters);
/// returns the value and the entries that did not fit.
pub fn pack_target_record(entries: &[String]) -> (String, Vec<String>) {
    let mut value = String::new();
    let mut left_out = Vec::new();
    for e in entries {
        let extra = if value.is_empty() {
            e.len()
        } else {
            e.len() + 1
        };
        if value.len() + extra <= TAG_VALUE_MAX {
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(e);
        } else {
            left_out.push(e.clone());
        }
    }
    (value, left_out)
}

/// The evidence steps still missing before the network swap, and the
/// problems that keep some of them from being planned (reported as
/// failures, so the event is retried).
///
/// Auto Scaling (`asg_standby`): record the state in [`STANDBY_TAG`] (unless
/// recorded), protect from scale-in, then Standby from InService; the
/// desired capacity is lowered by one when it stays at or above the group's
/// minimum (the release's ExitStandby raises it again), else kept (the group
/// launches a replacement). Target groups (`deregister_targets`): record every
/// registration (with those recorded before, so a retry after a partial
/// deregistration keeps them) in [`TARGET_GROUPS_TAG`], then deregister each.
pub fn plan_evidence(
    policy: &Containment,
    instance_id: &str,
    instance_tags: &TagMap,
    facts: &EvidenceFacts,
) -> (Vec<InstanceAction>, Vec<String>) {
    let mut actions = Vec::new();
    let mut problems = Vec::new();
    if policy.asg_standby {
        match &facts.group {
            Err(e) => problems.push(format!(
                "could not read the Auto Scaling group of {instance_id}, so it was not put in Standby: {e}"
            )),
            Ok(None) => {}
            Ok(Some(m)) => {
                let state = m.lifecycle_state.as_str();
                let standby = state == "InService";
                if !standby && state != "Standby" && state != "EnteringStandby" {
                    problems.push(format!(
                        "{instance_id} is {state} in Auto Scaling group {}: only an InService instance can be put in Standby, so the group may still replace it",
                        m.group
                    ));
                }
                let decrement = m.desired > m.min_size;
                if (standby || !m.protected) && !instance_tags.contains_key(STANDBY_TAG) {
                    actions.push(InstanceAction::RecordStandby {
                        value: standby_record(m.protected, standby && decrement, &m.group),
                    });
                }
                if !m.protected {
                    actions.push(InstanceAction::ProtectFromScaleIn {
                        group: m.group.clone(),
                    });
                }
                if standby {
                    actions.push(InstanceAction::EnterStandby {
                        group: m.group.clone(),
                        decrement,
                    });
                }
            }
        }
    }
    if policy.deregister_targets {
        match &facts.targets {
            Err(e) => problems.push(format!(
                "could not read the load-balancer target groups of {instance_id}, so it was not deregistered: {e}"
            )),
            Ok(registrations) if !registrations.is_empty() => {
                let recorded = instance_tags.get(TARGET_GROUPS_TAG);
                let mut entries: Vec<String> = recorded
                    .map(|v| v.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default();
                for r in registrations {
                    let e = target_entry(r);
                    if !entries.contains(&e) {
                        entries.push(e);
                    }
                }
                let (value, left_out) = pack_target_record(&entries);
                if recorded != Some(&value) {
                    actions.push(InstanceAction::RecordTargets { value, left_out });
                }
                for r in registrations {
                    actions.push(InstanceAction::DeregisterTarget {
                        target_group_arn: r.target_group_arn.clone(),
                        port: r.port,
                    });
                }
            }
            Ok(_) => {}
        }
    }
    (actions, problems)
}

/// One containment step on an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceAction {
    /// Keep the evidence: tag the instance's Auto Scaling state ([`STANDBY_TAG`]).
    RecordStandby {
        value: String,
    },
    ProtectFromScaleIn {
        group: String,
    },
    EnterStandby {
        group: String,
        decrement: bool,
    },
    /// Keep the evidence: tag the target groups ([`TARGET_GROUPS_TAG`]);
    /// `left_out` did not fit in the tag.
    RecordTargets {
        value: String,
        left_out: Vec<String>,
    },
    DeregisterTarget {
        target_group_arn: String,
        port: Option<i32>,
    },
    CreateQuarantineGroup {
        vpc_id: String,
        name: String,
    },
    RemoveQuarantineGroupRules,
    /// The allow-all group of the two-step swap (all traffic in and out for
    /// 0.0.0.0/0 and ::/0), so that tracked flows become untracked.
    CreateOpenGroup {
        vpc_id: String,
        name: String,
    },
    /// Record `previous` on the interface's tag (unless `keep_record`), then
    /// replace its groups: first with the allow-all group, then with the
    /// quarantine group alone.
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
    /// A step that keeps the evidence: its failure is reported but does not
    /// stop the network isolation that follows.
    pub fn is_evidence(&self) -> bool {
        matches!(
            self,
            InstanceAction::RecordStandby { .. }
                | InstanceAction::ProtectFromScaleIn { .. }
                | InstanceAction::EnterStandby { .. }
                | InstanceAction::RecordTargets { .. }
                | InstanceAction::DeregisterTarget { .. }
        )
    }

    /// [`InstanceAction::describe`] for the evidence steps.
    fn describe_evidence(&self, instance_id: &str, done: bool) -> String {
        let verb = |past: &str, base: &str| {
            if done {
                past.to_string()
            } else {
                format!("would {base}")
            }
        };
        match self {
            InstanceAction::RecordStandby { value } => {
                format!(
                    "{} the Auto Scaling state of {instance_id} in {STANDBY_TAG}={value}",
                    verb("recorded", "record")
                )
            }
            InstanceAction::ProtectFromScaleIn { group } => {
                format!(
                    "{} scale-in protection on {instance_id} in Auto Scaling group {group}",
                    verb("set", "set")
                )
            }
            InstanceAction::EnterStandby { group, decrement } => {
                format!(
                    "{} {instance_id} in Standby in Auto Scaling group {group}, so failing health checks do not get it replaced and terminated ({})",
                    verb("put", "put"),
                    if *decrement {
                        "desired capacity lowered by one"
                    } else {
                        "desired capacity kept at the minimum: the group launches a replacement"
                    }
                )
            }
            InstanceAction::RecordTargets { value, left_out } => {
                let mut line = format!(
                    "{} the target groups of {instance_id} in {TARGET_GROUPS_TAG}={value}",
                    verb("recorded", "record")
                );
                if !left_out.is_empty() {
                    line.push_str(&format!(
                        " (not recorded, the tag is full: {}; register those again by hand after the release)",
                        left_out.join(", ")
                    ));
                }
                line
            }
            InstanceAction::DeregisterTarget {
                target_group_arn,
                port,
            } => {
                format!(
                    "{} {instance_id}{} from load-balancer target group {target_group_arn}",
                    verb("deregistered", "deregister"),
                    port.map(|p| format!(" (port {p})")).unwrap_or_default()
                )
            }
            _ => String::new(),
        }
    }

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
            InstanceAction::CreateOpenGroup { vpc_id, name } => {
                format!("{verb_create} the allow-all group {name} in {vpc_id} (first step of the swap: existing flows become untracked)")
            }
            InstanceAction::IsolateInterface { interface_id, previous, .. } => format!(
                "{verb_replace} the security groups of {interface_id} ({}) with the allow-all group, then with the quarantine group alone; previous groups recorded in steward's undo record and in {}",
                if previous.is_empty() { "none".to_string() } else { previous.join(", ") },
                tags::PREVIOUS_GROUPS
            ),
            InstanceAction::EnableTerminationProtection => format!("{verb_enable} termination protection on {instance_id}"),
            InstanceAction::Snapshot { volume_id } => {
                format!("{verb_snap} {volume_id} for forensics (tagged {})", tags::FINDING)
            }
            InstanceAction::TagInstance { value } => format!("{verb_tag} {instance_id} {}={value}", tags::QUARANTINED),
            evidence => evidence.describe_evidence(instance_id, done),
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

/// The name of the allow-all group of the two-step swap.
pub fn open_group_name(quarantine_group_name: &str) -> String {
    format!("{quarantine_group_name}-open")
}

/// The steps still missing to contain an instance.
///
/// An interface counts as isolated only when its groups are exactly the
/// quarantine group, as EC2 reports them; steward's own tags never decide it
/// (a pre-tagged instance, or groups put back after containment, are isolated
/// again). The record of the previous groups is the interface's current
/// groups without steward's own; an existing record is kept when there is
/// nothing else to record. Volumes with a snapshot for this finding are not
/// snapshotted again.
#[allow(clippy::too_many_arguments)]
pub fn plan_instance(
    facts: &InstanceFacts,
    group: Option<&GroupFacts>,
    group_name: &str,
    open_group: Option<&str>,
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
            vpc_id: vpc_id.clone(),
            name: group_name.to_string(),
        }),
        Some(g) if g.has_rules => actions.push(InstanceAction::RemoveQuarantineGroupRules),
        Some(_) => {}
    }
    let quarantined = facts.tags.contains_key(tags::QUARANTINED);
    let to_isolate: Vec<&InterfaceFacts> = facts
        .interfaces
        .iter()
        .filter(|eni| !group.is_some_and(|g| eni.groups.len() == 1 && eni.groups[0] == g.id))
        .collect();
    if !to_isolate.is_empty() && open_group.is_none() {
        actions.push(InstanceAction::CreateOpenGroup {
            vpc_id,
            name: open_group_name(group_name),
        });
    }
    for eni in to_isolate {
        let recorded = eni.tags.contains_key(tags::PREVIOUS_GROUPS);
        let previous: Vec<String> = eni
            .groups
            .iter()
            .filter(|g| group.is_none_or(|q| q.id != **g) && open_group != Some(g.as_str()))
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

/// The decision for a role whose temporary credentials leaked: only with
/// `revoke_role_sessions` on (it cuts every user of the role) and only for a
/// credential finding; a revocation already in place that covers the
/// finding's last activity needs nothing.
pub fn plan_role_sessions(
    policy: &Containment,
    finding_type: &str,
    role: &str,
    existing_cutoff: Option<DateTime<Utc>>,
    last_seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<CredentialAction>, Hold> {
    if !policy.revoke_role_sessions {
        return Err(Hold::RoleSessionsOff);
    }
    if !is_credential_finding(finding_type) {
        return Err(Hold::NotCredentialFinding {
            finding_type: finding_type.to_string(),
        });
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

// ---- Triage ----

/// GuardDuty severity bands, typed at load in the policy.
pub use steward_shared::policy::SeverityBand as Band;

/// The lowest bands that are notified and contained for one finding type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub notify: Band,
    pub contain: Band,
}

/// The thresholds for a finding type: the policy's bands, replaced by those of
/// the longest matching `[[containment.overrides]]` prefix.
pub fn thresholds(policy: &Containment, finding_type: &str) -> Thresholds {
    let mut t = Thresholds {
        notify: policy.notify_min_band,
        contain: policy.contain_min_band,
    };
    let best = policy
        .overrides
        .iter()
        .filter(|o| finding_type.starts_with(&o.prefix))
        .max_by_key(|o| o.prefix.len());
    if let Some(o) = best {
        if let Some(b) = o.notify_min_band {
            t.notify = b;
        }
        if let Some(b) = o.contain_min_band {
            t.contain = b;
        }
    }
    t
}

/// The renotify window a moment falls in: windows of `hours` aligned to the
/// epoch; `hours = 0` makes every update of the finding its own window.
pub fn window(at: DateTime<Utc>, hours: u32) -> i64 {
    if hours == 0 {
        at.timestamp()
    } else {
        at.timestamp().div_euclid(hours as i64 * 3600)
    }
}

/// The notification key of a finding in a band and window: the same finding
/// delivered again, or updated with a higher count, maps to the same key and is
/// not notified twice; a higher band or a new window gives a new key.
pub fn notification_key(finding_id: &str, band: Band, window: i64) -> String {
    format!("gd#{finding_id}#{}#{window}", band.as_str())
}

/// The keys whose earlier notification makes this one redundant: the same
/// finding in a higher band within the same window (the band fell).
pub fn higher_band_keys(finding_id: &str, band: Band, window: i64) -> Vec<String> {
    Band::ALL
        .iter()
        .filter(|b| **b > band)
        .map(|b| notification_key(finding_id, *b, window))
        .collect()
}

/// A one-line explanation of a finding type, from its threat purpose (the part before `:`).
pub fn explain(finding_type: &str) -> &'static str {
    let purpose = finding_type.split(':').next().unwrap_or_default();
    match purpose {
        "Backdoor" => "the resource appears compromised and is being controlled by, or talking to, an attacker",
        "Behavior" => "the resource behaves unlike its usual baseline",
        "CryptoCurrency" => "the resource is talking to cryptocurrency infrastructure, often a sign of mining malware",
        "Trojan" => "the resource shows activity of a trojan program",
        "UnauthorizedAccess" => "credentials or the resource are being used by someone who should not",
        "Recon" => "someone is probing the account or the resource for weaknesses",
        "Stealth" => "someone is trying to hide their activity (for example by disabling logging)",
        "PenTest" => "a penetration-testing tool is being used against the account",
        "Policy" => "a setting goes against security best practice",
        "Persistence" => "someone is making sure they keep access",
        "PrivilegeEscalation" => "someone is trying to gain more permissions than they were given",
        "Impact" => "the resource is being used to do harm (for example denial of service or data destruction)",
        "Exfiltration" => "data appears to be leaving the account",
        "Discovery" => "someone is enumerating the account's resources",
        "CredentialAccess" => "someone is trying to steal credentials",
        "DefenseEvasion" => "someone is trying to evade detection",
        "Execution" => "suspicious code is being run",
        "InitialAccess" => "someone may have gained a first foothold",
        "AttackSequence" => "GuardDuty correlated several signals into a likely attack in progress",
        _ => "GuardDuty reported suspicious activity",
    }
}

#[cfg(test)]
mod triage_tests {
    use super::*;
    use steward_shared::policy::ContainmentOverride;

    #[test]
    fn bands_follow_the_guardduty_ranges() {
        assert_eq!(Band::of(0.1), Band::Low);
        assert_eq!(Band::of(3.9), Band::Low);
        assert_eq!(Band::of(4.0), Band::Medium);
        assert_eq!(Band::of(6.9), Band::Medium);
        assert_eq!(Band::of(7.0), Band::High);
        assert_eq!(Band::of(8.9), Band::High);
        assert_eq!(Band::of(9.0), Band::Critical);
        assert_eq!(Band::of(10.0), Band::Critical);
        assert!(Band::Low < Band::Critical);
    }

    #[test]
    fn longest_override_prefix_wins() {
        let mut policy = Containment::default();
        assert_eq!(
            thresholds(&policy, "Recon:EC2/PortProbeUnprotectedPort"),
            Thresholds {
                notify: Band::Low,
                contain: Band::High
            }
        );
        policy.overrides = vec![
            ContainmentOverride {
                prefix: "Recon:".into(),
                notify_min_band: Some(Band::Medium),
                contain_min_band: None,
            },
            ContainmentOverride {
                prefix: "Recon:EC2/".into(),
                notify_min_band: None,
                contain_min_band: Some(Band::Critical),
            },
        ];
        assert_eq!(
            thresholds(&policy, "Recon:EC2/PortProbeUnprotectedPort"),
            Thresholds {
                notify: Band::Low,
                contain: Band::Critical
            }
        );
        assert_eq!(
            thresholds(&policy, "Recon:IAMUser/MaliciousIPCaller"),
            Thresholds {
                notify: Band::Medium,
                contain: Band::High
            }
        );
        assert_eq!(
            thresholds(&policy, "Backdoor:EC2/C&CActivity.B!DNS"),
            Thresholds {
                notify: Band::Low,
                contain: Band::High
            }
        );
    }

    #[test]
    fn repeated_findings_share_a_key_until_band_or_window_changes() {
        let t0: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
        let t1: DateTime<Utc> = "2026-11-20T18:00:00Z".parse().unwrap();
        let t2: DateTime<Utc> = "2026-11-21T10:00:00Z".parse().unwrap();
        let k0 = notification_key("f1", Band::High, window(t0, 24));
        assert_eq!(k0, notification_key("f1", Band::High, window(t1, 24)));
        assert_ne!(k0, notification_key("f1", Band::Critical, window(t1, 24)));
        assert_ne!(k0, notification_key("f1", Band::High, window(t2, 24)));
        assert_ne!(window(t0, 0), window(t1, 0));
        let higher = higher_band_keys("f1", Band::Medium, 7);
        assert_eq!(
            higher,
            vec!["gd#f1#HIGH#7".to_string(), "gd#f1#CRITICAL#7".to_string()]
        );
        assert!(higher_band_keys("f1", Band::Critical, 7).is_empty());
    }

    #[test]
    fn explanations_by_threat_purpose() {
        assert!(explain("Backdoor:EC2/C&CActivity.B!DNS").contains("attacker"));
        assert!(explain("UnauthorizedAccess:IAMUser/TorIPCaller").contains("credentials"));
        assert_eq!(
            explain("Something:New/Kind"),
            "GuardDuty reported suspicious activity"
        );
    }
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

    fn membership(state: &str, protected: bool, min: i32, desired: i32) -> GroupMembership {
        GroupMembership {
            group: "web".into(),
            lifecycle_state: state.into(),
            protected,
            min_size: min,
            desired,
        }
    }

    fn registration(name: &str, port: Option<i32>) -> TargetRegistration {
        TargetRegistration {
            target_group_arn: format!(
                "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/{name}/0123456789abcdef"
            ),
            port,
        }
    }

    #[test]
    fn evidence_is_kept_in_order_from_the_real_state() {
        let policy = Containment::default();
        let facts = EvidenceFacts {
            group: Ok(Some(membership("InService", false, 1, 2))),
            targets: Ok(vec![
                registration("web", Some(8080)),
                registration("api", None),
            ]),
        };
        let (actions, problems) = plan_evidence(&policy, "i-1", &TagMap::new(), &facts);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            actions,
            vec![
                InstanceAction::RecordStandby {
                    value: "protected=false;decremented=true;group=web".into()
                },
                InstanceAction::ProtectFromScaleIn {
                    group: "web".into()
                },
                InstanceAction::EnterStandby {
                    group: "web".into(),
                    decrement: true
                },
                InstanceAction::RecordTargets {
                    value: "web/0123456789abcdef:8080 api/0123456789abcdef".into(),
                    left_out: vec![]
                },
                InstanceAction::DeregisterTarget {
                    target_group_arn: registration("web", None).target_group_arn,
                    port: Some(8080)
                },
                InstanceAction::DeregisterTarget {
                    target_group_arn: registration("api", None).target_group_arn,
                    port: None
                },
            ]
        );
        assert!(actions.iter().all(InstanceAction::is_evidence));
        assert_eq!(
            parse_target_record("web/0123456789abcdef:8080 api/0123456789abcdef"),
            vec![
                ("web/0123456789abcdef".to_string(), Some(8080)),
                ("api/0123456789abcdef".to_string(), None)
            ]
        );
        assert_eq!(
            parse_standby_record("protected=false;decremented=true;group=a;b"),
            Some((false, true))
        );
    }

    #[test]
    fn evidence_at_the_minimum_keeps_capacity_and_done_steps_are_not_repeated() {
        let policy = Containment::default();
        // At the group's minimum: Standby keeps the desired capacity.
        let at_min = EvidenceFacts {
            group: Ok(Some(membership("InService", true, 2, 2))),
            targets: Ok(vec![]),
        };
        let (actions, _) = plan_evidence(&policy, "i-1", &TagMap::new(), &at_min);
        assert_eq!(
            actions,
            vec![
                InstanceAction::RecordStandby {
                    value: "protected=true;decremented=false;group=web".into()
                },
                InstanceAction::EnterStandby {
                    group: "web".into(),
                    decrement: false
                },
            ]
        );
        // Already in Standby and protected, not registered anywhere: nothing.
        let done = EvidenceFacts {
            group: Ok(Some(membership("Standby", true, 1, 1))),
            targets: Ok(vec![]),
        };
        let (actions, problems) = plan_evidence(&policy, "i-1", &TagMap::new(), &done);
        assert!(actions.is_empty() && problems.is_empty());
        // A retry after a partial deregistration keeps the earlier record.
        let tags: TagMap = [(
            TARGET_GROUPS_TAG.to_string(),
            "api/0123456789abcdef".to_string(),
        )]
        .into();
        let partial = EvidenceFacts {
            group: Ok(None),
            targets: Ok(vec![registration("web", Some(80))]),
        };
        let (actions, _) = plan_evidence(&policy, "i-1", &tags, &partial);
        assert_eq!(
            actions[0],
            InstanceAction::RecordTargets {
                value: "api/0123456789abcdef web/0123456789abcdef:80".into(),
                left_out: vec![]
            }
        );
        // Off in the policy: nothing, even with facts.
        let off = Containment {
            asg_standby: false,
            deregister_targets: false,
            ..Containment::default()
        };
        let (actions, problems) = plan_evidence(&off, "i-1", &tags, &partial);
        assert!(actions.is_empty() && problems.is_empty());
    }

    #[test]
    fn unreadable_or_unusable_evidence_is_a_problem_not_a_step() {
        let policy = Containment::default();
        let facts = EvidenceFacts {
            group: Ok(Some(membership("Terminating", false, 0, 1))),
            targets: Err("AccessDenied".into()),
        };
        let (actions, problems) = plan_evidence(&policy, "i-1", &TagMap::new(), &facts);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("Terminating"), "{problems:?}");
        assert!(problems[1].contains("AccessDenied"), "{problems:?}");
        // Still protected from scale-in (recorded first).
        assert!(matches!(actions[0], InstanceAction::RecordStandby { .. }));
        assert!(matches!(
            actions[1],
            InstanceAction::ProtectFromScaleIn { .. }
        ));
        assert_eq!(actions.len(), 2);
    }

    #[test]
    fn a_full_target_record_names_what_it_left_out() {
        let entries: Vec<String> = (0..10)
            .map(|i| format!("group-with-a-long-name-{i:02}/0123456789abcdef:8080"))
            .collect();
        let (value, left_out) = pack_target_record(&entries);
        assert!(value.len() <= TAG_VALUE_MAX);
        assert!(!left_out.is_empty());
        assert_eq!(value.split(' ').count() + left_out.len(), entries.len());
    }

    #[test]
    fn fresh_instance_gets_every_step() {
        let actions = plan_instance(
            &instance(),
            None,
            "steward-quarantine",
            None,
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
                InstanceAction::CreateOpenGroup {
                    vpc_id: "vpc-1".into(),
                    name: "steward-quarantine-open".into()
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
        for eni in &mut facts.interfaces {
            eni.tags
                .insert("steward:previous-groups".into(), eni.groups.join(","));
            eni.groups = vec!["sg-q".into()];
        }
        let group = GroupFacts {
            id: "sg-q".into(),
            has_rules: false,
        };
        let done: BTreeSet<String> = ["vol-1".to_string(), "vol-2".to_string()].into();
        let actions = plan_instance(
            &facts,
            Some(&group),
            "steward-quarantine",
            Some("sg-o"),
            &done,
            true,
            "f1",
            now(),
        )
        .unwrap();
        assert!(actions.is_empty(), "{actions:?}");
    }

    #[test]
    fn tags_never_decide_isolation() {
        // Pre-tagged by whoever can write tags, or groups put back after
        // containment: the interfaces do not carry only the quarantine group.
        let mut facts = instance();
        facts
            .tags
            .insert("steward:quarantined".into(), "forged".into());
        for eni in &mut facts.interfaces {
            eni.tags
                .insert("steward:previous-groups".into(), "sg-evil".into());
        }
        facts.interfaces[1].groups = vec!["sg-q".into(), "sg-c".into()];
        let group = GroupFacts {
            id: "sg-q".into(),
            has_rules: false,
        };
        let actions = plan_instance(
            &facts,
            Some(&group),
            "q",
            Some("sg-o"),
            &BTreeSet::new(),
            false,
            "f1",
            now(),
        )
        .unwrap();
        assert_eq!(
            actions
                .iter()
                .filter_map(|a| match a {
                    InstanceAction::IsolateInterface {
                        interface_id,
                        previous,
                        keep_record,
                    } => Some((interface_id.as_str(), previous.clone(), *keep_record)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            vec![
                ("eni-1", vec!["sg-a".to_string(), "sg-b".to_string()], false),
                ("eni-2", vec!["sg-c".to_string()], false),
            ],
            "both interfaces are isolated again and the record is the real groups"
        );
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
        let actions = plan_instance(
            &facts,
            Some(&group),
            "q",
            Some("sg-o"),
            &done,
            true,
            "f1",
            now(),
        )
        .unwrap();
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
        let actions = plan_instance(
            &instance(),
            None,
            "q",
            None,
            &BTreeSet::new(),
            false,
            "f1",
            now(),
        )
        .unwrap();
        assert!(!actions
            .iter()
            .any(|a| matches!(a, InstanceAction::Snapshot { .. })));
        let mut classic = instance();
        classic.vpc_id = None;
        assert!(matches!(
            plan_instance(
                &classic,
                None,
                "q",
                None,
                &BTreeSet::new(),
                true,
                "f1",
                now()
            ),
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
        let p = Containment {
            revoke_role_sessions: true,
            ..Containment::default()
        };
        const EXFIL: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS";
        let last_seen: DateTime<Utc> = "2026-11-20T09:00:00Z".parse().unwrap();
        assert_eq!(
            plan_role_sessions(&p, EXFIL, "web", None, last_seen, now()),
            Ok(Some(CredentialAction::RevokeRoleSessions {
                role: "web".into(),
                cutoff: now()
            }))
        );
        assert_eq!(
            plan_role_sessions(&p, EXFIL, "web", Some(now()), last_seen, now()),
            Ok(None)
        );
        assert_eq!(
            plan_role_sessions(
                &Containment::default(),
                EXFIL,
                "web",
                None,
                last_seen,
                now()
            ),
            Err(Hold::RoleSessionsOff),
            "off by default"
        );
        assert!(matches!(
            plan_role_sessions(
                &p,
                "Recon:IAMUser/MaliciousIPCaller",
                "web",
                None,
                last_seen,
                now()
            ),
            Err(Hold::NotCredentialFinding { .. })
        ));
    }

    #[test]
    fn only_verified_non_sample_findings_in_governed_accounts_are_contained() {
        let ok = Verification::Verified;
        assert_eq!(trust(&ok, "f", false, "111", Ok(())), Ok(()));
        assert!(matches!(
            trust(&Verification::Unknown, "f", false, "111", Ok(())),
            Err(Hold::Unverified { .. })
        ));
        assert!(matches!(
            trust(
                &Verification::Unreachable("503".into()),
                "f",
                false,
                "111",
                Ok(())
            ),
            Err(Hold::Unverified { .. })
        ));
        assert_eq!(trust(&ok, "f", true, "111", Ok(())), Err(Hold::Sample));
        assert!(matches!(
            trust(&ok, "f", false, "111", Err("not listed".into())),
            Err(Hold::NotGoverned { .. })
        ));
        let listed = |accounts: &[&str]| Targets {
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
            ..Targets::default()
        };
        let governed = |t: &Targets, own: &str, account: &str| {
            governance(t, own, account) == Governance::Governed
        };
        assert!(governed(&listed(&[]), "123", "123"));
        assert!(!governed(&listed(&[]), "123", "999"));
        assert!(governed(&listed(&["999"]), "123", "999"));
        assert!(!governed(&listed(&["999"]), "123", "123"));
        assert_eq!(containment_slots(2).count(), 2);
        let t: DateTime<Utc> = "2026-11-20T10:59:00Z".parse().unwrap();
        let u: DateTime<Utc> = "2026-11-20T11:00:00Z".parse().unwrap();
        assert_ne!(cap_alert_key(t), cap_alert_key(u));
    }

    #[test]
    fn accounts_under_a_targeted_unit_at_any_depth_are_governed() {
        let t = Targets {
            accounts: vec!["111111111111".into()],
            organizational_units: vec!["ou-root-prod".into()],
            regions: vec![],
        };
        assert_eq!(governance(&t, "000", "111111111111"), Governance::Governed);
        assert_eq!(
            governance(&t, "000", "222222222222"),
            Governance::AskOrganizations
        );
        let nested = [
            "ou-root-team".to_string(),
            "ou-root-prod".into(),
            "r-root".into(),
        ];
        assert_eq!(governed_by_units(&t, Ok(&nested)), Ok(()));
        let elsewhere = ["ou-root-sandbox".to_string(), "r-root".into()];
        let err = governed_by_units(&t, Ok(&elsewhere)).unwrap_err();
        assert!(err.contains("ou-root-sandbox < r-root"), "{err}");
        let err = governed_by_units(&t, Err("AccessDenied")).unwrap_err();
        assert!(err.contains("AccessDenied"), "{err}");
        let root = Targets {
            organizational_units: vec!["r-root".into()],
            ..Targets::default()
        };
        assert_eq!(governed_by_units(&root, Ok(&elsewhere)), Ok(()));
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
