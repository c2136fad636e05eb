//! Undoing an instance quarantine (`steward quarantine release INSTANCE`):
//! restores each network interface's recorded security groups, registers the
//! instance again in the target groups steward recorded, takes it out of
//! Standby in its Auto Scaling group (and gives back the scale-in protection
//! it had), removes steward's records, and says what it deliberately left in
//! place (forensic snapshots, termination protection, the shared quarantine
//! group) and what it could not undo. It always reports the allow-all group
//! of the two-step swap: still attached to an interface (that interface
//! allows all traffic) or left in the VPC.
//!
//! What is undone comes from the undo record in steward's table
//! ([`crate::undo`]), never from a tag alone: a tag that disagrees with the
//! record is reported and the record wins; a tag steward has no record of is
//! not acted on unless the operator passes `--trust-tags`; a record whose tag
//! is gone is left for a person (someone removed the tag).

use steward_shared::tags;

use crate::autoscaling::AutoScalingApi;
use crate::ec2::Ec2Api;
use crate::elbv2::TargetGroupsApi;
use crate::plan::{
    open_group_name, parse_previous_groups, parse_standby_record, parse_target_record, STANDBY_TAG,
    TARGET_GROUPS_TAG,
};
use crate::undo::{agreement, Agreement, UndoLog};

/// Where the release learns what to undo.
pub struct Records<'a> {
    /// steward's undo record (`None`: its table is not reachable).
    pub undo: Option<&'a UndoLog<'a>>,
    /// Act on steward's tags where no record exists (`--trust-tags`: the
    /// operator checked them by hand).
    pub trust_tags: bool,
}

/// The adapters of the instance's account and region.
pub struct Adapters<'a> {
    pub ec2: &'a dyn Ec2Api,
    pub autoscaling: &'a dyn AutoScalingApi,
    pub targets: &'a dyn TargetGroupsApi,
}

/// The allow-all group of the swap, as the release found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenGroup {
    pub id: String,
    pub vpc_id: String,
    /// Interfaces of this instance that still carry it after the release.
    pub attached_to: Vec<String>,
}

/// What a release did and what it left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseReport {
    pub instance_id: String,
    /// The `steward:quarantined` value that was removed (finding id and time).
    pub quarantined: Option<String>,
    /// (interface, restored group ids).
    pub restored: Vec<(String, Vec<String>)>,
    /// Interfaces without a record (left as they are).
    pub unrecorded: Vec<String>,
    /// Target groups the instance was registered in again (ARN and port).
    pub reregistered: Vec<String>,
    /// The Auto Scaling group it was taken out of Standby in.
    pub standby_exited: Option<String>,
    /// The group where its scale-in protection was turned off again (it had none before).
    pub protection_removed: Option<String>,
    /// The allow-all group of the swap, when it exists in the instance's VPC.
    pub open_group: Option<OpenGroup>,
    /// Things left in place on purpose or because they cannot be undone.
    pub left: Vec<String>,
    /// steward's tags that disagree with its undo record (the record was used).
    pub tags_changed: Vec<String>,
    /// Undo steps that failed (the operator finishes them by hand).
    pub failed: Vec<String>,
    pub snapshots_left: Vec<String>,
    pub termination_protection_left: bool,
    /// True when nothing was changed (dry run).
    pub dry_run: bool,
}

impl ReleaseReport {
    /// The report as lines for the operator.
    pub fn lines(&self) -> Vec<String> {
        let would = |done: &str, base: &str| {
            if self.dry_run {
                format!("would {base}")
            } else {
                done.to_string()
            }
        };
        let mut lines = Vec::new();
        for (eni, groups) in &self.restored {
            lines.push(format!(
                "{} {eni} security groups: {}",
                would("restored", "restore"),
                groups.join(", ")
            ));
        }
        for eni in &self.unrecorded {
            lines.push(format!(
                "left {eni} as it is: it has no {} record",
                tags::PREVIOUS_GROUPS
            ));
        }
        for tg in &self.reregistered {
            lines.push(format!(
                "{} {} in target group {tg}",
                would("registered", "register"),
                self.instance_id
            ));
        }
        if let Some(group) = &self.protection_removed {
            lines.push(format!(
                "{} the scale-in protection of {} in Auto Scaling group {group} (it had none before containment)",
                would("removed", "remove"),
                self.instance_id
            ));
        }
        if let Some(group) = &self.standby_exited {
            lines.push(format!(
                "{} {} out of Standby in Auto Scaling group {group} (the group's desired capacity grows by one)",
                would("took", "take"),
                self.instance_id
            ));
        }
        if let Some(q) = &self.quarantined {
            lines.push(format!(
                "{} {}={q} from {}",
                would("removed", "remove"),
                tags::QUARANTINED,
                self.instance_id
            ));
        }
        for t in &self.tags_changed {
            lines.push(format!("WARNING: {t}"));
        }
        for f in &self.failed {
            lines.push(format!("FAILED: {f}"));
        }
        if let Some(open) = &self.open_group {
            if open.attached_to.is_empty() {
                lines.push(format!(
                    "left: the allow-all group {} of the two-step swap in {} (it allows all traffic; no interface of this instance uses it; delete it when no containment is in progress: aws ec2 delete-security-group --group-id {})",
                    open.id, open.vpc_id, open.id
                ));
            } else {
                lines.push(format!(
                    "WARNING: the allow-all group {} (all traffic in and out) is STILL ATTACHED to {}: replace those interfaces' groups by hand now",
                    open.id,
                    open.attached_to.join(", ")
                ));
            }
        }
        lines.extend(self.left.iter().map(|l| format!("left: {l}")));
        if self.snapshots_left.is_empty() {
            lines.push("left: no forensic snapshots".into());
        } else {
            lines.push(format!(
                "left: forensic snapshots {} (delete them when the investigation is closed: aws ec2 delete-snapshot --snapshot-id ...)",
                self.snapshots_left.join(", ")
            ));
        }
        if self.termination_protection_left {
            lines.push(format!(
                "left: termination protection on {} (to remove: aws ec2 modify-instance-attribute --instance-id {} --no-disable-api-termination)",
                self.instance_id, self.instance_id
            ));
        }
        lines.push(
            "left: the quarantine security group (shared by the VPC's contained instances)".into(),
        );
        lines
    }
}

/// Releases a quarantined instance from the records steward wrote.
/// `quarantine_group_name` is the policy's, to find the allow-all group.
pub async fn release(
    apis: &Adapters<'_>,
    records: &Records<'_>,
    instance_id: &str,
    quarantine_group_name: &str,
    dry_run: bool,
) -> anyhow::Result<ReleaseReport> {
    let ec2 = apis.ec2;
    let facts = ec2
        .instance(instance_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("instance {instance_id} does not exist (or is terminated) in this account and region; check --account and --region"))?;
    let record = match records.undo {
        Some(undo) => undo.read().await?,
        None if records.trust_tags => None,
        None => anyhow::bail!(
            "steward's undo record of {instance_id} cannot be read without its table: set STEWARD_IDEMPOTENCY_TABLE to the hub's idempotency table (with credentials that may read it), or check the instance's steward:* tags by hand and pass --trust-tags"
        ),
    };
    let quarantined = facts.tags.get(tags::QUARANTINED).cloned();
    let tagged = facts
        .interfaces
        .iter()
        .any(|i| i.tags.contains_key(tags::PREVIOUS_GROUPS));
    let evidence_records =
        facts.tags.contains_key(STANDBY_TAG) || facts.tags.contains_key(TARGET_GROUPS_TAG);
    if quarantined.is_none() && !tagged && !evidence_records && record.is_none() {
        anyhow::bail!(
            "{instance_id} carries no {} tag, none of its network interfaces has a {} record and steward's table holds no containment of it: it is not quarantined by steward, nothing to release",
            tags::QUARANTINED,
            tags::PREVIOUS_GROUPS
        );
    }
    let mut report = ReleaseReport {
        instance_id: instance_id.to_string(),
        quarantined: quarantined.clone(),
        dry_run,
        ..Default::default()
    };
    // A recorded change left for a person keeps the record live, so the
    // groups it holds are still there when they restore it.
    let mut left_to_a_person = false;
    for eni in &facts.interfaces {
        let recorded = record
            .as_ref()
            .and_then(|r| r.interfaces.get(&eni.id).cloned());
        let tag = eni.tags.get(tags::PREVIOUS_GROUPS).map(String::as_str);
        let groups = match agreement(recorded, tag, |r, t| same_groups(r, t)) {
            Agreement::Agree(groups) => groups,
            Agreement::TagDiffers { recorded, tag } => {
                report.tags_changed.push(format!(
                    "{} of {} says {tag}, but steward recorded {}: restored what steward recorded",
                    tags::PREVIOUS_GROUPS,
                    eni.id,
                    recorded.join(",")
                ));
                recorded
            }
            Agreement::TagOnly(tag) if records.trust_tags => {
                report.left.push(format!(
                    "{}: no record in steward's table; restored from its tag (--trust-tags)",
                    eni.id
                ));
                parse_previous_groups(&tag)
            }
            Agreement::TagOnly(tag) => {
                report.failed.push(format!(
                    "{} carries {}={tag} but steward recorded no groups for it, so it was not restored (the tag may have been written by someone else): check the groups, then restore them by hand (aws ec2 modify-network-interface-attribute --network-interface-id {} --groups ...) or run again with --trust-tags",
                    eni.id,
                    tags::PREVIOUS_GROUPS,
                    eni.id
                ));
                continue;
            }
            Agreement::RecordOnly(groups) => {
                left_to_a_person = true;
                report.unrecorded.push(eni.id.clone());
                report.left.push(format!(
                    "{}: its {} tag was removed after containment; steward recorded {}: restore them by hand after checking (aws ec2 modify-network-interface-attribute --network-interface-id {} --groups {})",
                    eni.id,
                    tags::PREVIOUS_GROUPS,
                    groups.join(","),
                    eni.id,
                    groups.join(" ")
                ));
                continue;
            }
            Agreement::Neither => {
                report.unrecorded.push(eni.id.clone());
                continue;
            }
        };
        if groups.is_empty() {
            anyhow::bail!(
                "{} of {instance_id} has an empty {} record; restore its security groups by hand, then remove the tag",
                eni.id,
                tags::PREVIOUS_GROUPS
            );
        }
        if !dry_run {
            ec2.set_interface_groups(&eni.id, &groups).await?;
            if tag.is_some() {
                ec2.untag(&eni.id, tags::PREVIOUS_GROUPS).await?;
            }
        }
        report.restored.push((eni.id.clone(), groups));
    }
    let recorded_targets = record.as_ref().and_then(|r| r.target_groups.clone());
    let had_targets = recorded_targets.is_some();
    let tag = facts.tags.get(TARGET_GROUPS_TAG).map(String::as_str);
    match chosen(
        records,
        &mut report,
        TARGET_GROUPS_TAG,
        recorded_targets,
        tag,
    ) {
        Some(value) => reregister(apis, instance_id, &value, dry_run, &mut report).await,
        None => left_to_a_person |= had_targets,
    }
    let recorded_standby = record.as_ref().and_then(|r| r.standby.clone());
    let tag = facts.tags.get(STANDBY_TAG).map(String::as_str);
    let either = tag.is_some() || recorded_standby.is_some();
    let had_standby = recorded_standby.is_some();
    let standby = chosen(records, &mut report, STANDBY_TAG, recorded_standby, tag);
    left_to_a_person |= had_standby && standby.is_none();
    // Only a value steward stands behind is undone; with neither record nor
    // tag, a Standby steward did not set is reported.
    if standby.is_some() || !either {
        leave_standby(apis, instance_id, standby.as_ref(), dry_run, &mut report).await;
    }
    if quarantined.is_some() && !dry_run {
        ec2.untag(instance_id, tags::QUARANTINED).await?;
    }
    if let (Some(undo), Some(record)) = (records.undo, &record) {
        if left_to_a_person {
            report.left.push(
                "steward's undo record is kept (not marked released) until what it holds is undone"
                    .into(),
            );
        } else if report.failed.is_empty() && !dry_run {
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            if let Err(e) = undo.mark_released(record, &at).await {
                report
                    .failed
                    .push(format!("mark steward's undo record released: {e:#}"));
            }
        }
    }
    if let Some(vpc) = &facts.vpc_id {
        if let Some(id) = ec2
            .open_group(vpc, &open_group_name(quarantine_group_name))
            .await?
        {
            let attached_to = facts
                .interfaces
                .iter()
                .filter(|i| !report.restored.iter().any(|(r, _)| *r == i.id))
                .filter(|i| i.groups.contains(&id))
                .map(|i| i.id.clone())
                .collect();
            report.open_group = Some(OpenGroup {
                id,
                vpc_id: vpc.clone(),
                attached_to,
            });
        }
    }
    report.snapshots_left = ec2
        .forensic_snapshots(&facts.volumes)
        .await?
        .into_iter()
        .map(|s| s.snapshot_id)
        .collect();
    report.termination_protection_left = facts.termination_protection;
    Ok(report)
}

/// Same groups, in any order.
fn same_groups(recorded: &[String], tag: &str) -> bool {
    let mut a = recorded.to_vec();
    let mut b = parse_previous_groups(tag);
    a.sort();
    b.sort();
    a == b
}

/// The value of an instance record (`key`) to act on, from steward's record
/// and the tag (see the module doc); reports what disagrees.
fn chosen(
    records: &Records<'_>,
    report: &mut ReleaseReport,
    key: &str,
    recorded: Option<String>,
    tag: Option<&str>,
) -> Option<String> {
    let instance = report.instance_id.clone();
    match agreement(recorded, tag, |r, t| r == t) {
        Agreement::Agree(value) => Some(value),
        Agreement::TagDiffers { recorded, tag } => {
            report.tags_changed.push(format!(
                "{key} of {instance} says {tag}, but steward recorded {recorded}: undid what steward recorded"
            ));
            Some(recorded)
        }
        Agreement::TagOnly(tag) if records.trust_tags => {
            report.left.push(format!(
                "{key}: no record in steward's table; undone from the tag (--trust-tags)"
            ));
            Some(tag)
        }
        Agreement::TagOnly(tag) => {
            report.failed.push(format!(
                "{instance} carries {key}={tag} but steward recorded nothing of it, so it was not undone (the tag may have been written by someone else): check it, then undo by hand or run again with --trust-tags"
            ));
            None
        }
        Agreement::RecordOnly(value) => {
            report.left.push(format!(
                "the {key} tag of {instance} was removed after containment; steward recorded {value}: not undone, undo it by hand after checking"
            ));
            None
        }
        Agreement::Neither => None,
    }
}

/// Registers the instance again where [`TARGET_GROUPS_TAG`] says it was;
/// the record goes only when every entry is back.
async fn reregister(
    apis: &Adapters<'_>,
    instance_id: &str,
    record: &str,
    dry_run: bool,
    report: &mut ReleaseReport,
) {
    let arns = match apis.targets.target_group_arns().await {
        Ok(arns) => arns,
        Err(e) => {
            report.failed.push(format!(
                "the target groups could not be listed, so {instance_id} was not registered again ({e:#}); the record {TARGET_GROUPS_TAG}={record} stays"
            ));
            return;
        }
    };
    let mut complete = true;
    for (name_id, port) in parse_target_record(record) {
        let suffix = format!(":targetgroup/{name_id}");
        let Some(arn) = arns.iter().find(|a| a.ends_with(&suffix)) else {
            report.left.push(format!(
                "target group {name_id} no longer exists; {instance_id} is not registered there"
            ));
            continue;
        };
        let label = match port {
            Some(p) => format!("{arn} (port {p})"),
            None => arn.clone(),
        };
        if !dry_run {
            if let Err(e) = apis.targets.register(arn, instance_id, port).await {
                report.failed.push(format!("register in {label}: {e:#}"));
                complete = false;
                continue;
            }
        }
        report.reregistered.push(label);
    }
    if complete && !dry_run {
        if let Err(e) = apis.ec2.untag(instance_id, TARGET_GROUPS_TAG).await {
            report
                .failed
                .push(format!("remove {TARGET_GROUPS_TAG}: {e:#}"));
        }
    }
}

/// Takes the instance out of Standby and gives back its protection, when
/// [`STANDBY_TAG`] says steward changed them; reports a Standby it did not set.
async fn leave_standby(
    apis: &Adapters<'_>,
    instance_id: &str,
    record: Option<&String>,
    dry_run: bool,
    report: &mut ReleaseReport,
) {
    let membership = match apis.autoscaling.membership(instance_id).await {
        Ok(m) => m,
        Err(e) => {
            if record.is_some() {
                report.failed.push(format!(
                    "the Auto Scaling group of {instance_id} could not be read, so it was not taken out of Standby ({e:#})"
                ));
            }
            return;
        }
    };
    let Some(m) = membership else {
        if record.is_some() {
            report.left.push(format!(
                "{instance_id} is no longer in an Auto Scaling group; nothing to take out of Standby"
            ));
            if !dry_run {
                apis.ec2.untag(instance_id, STANDBY_TAG).await.ok();
            }
        }
        return;
    };
    let Some(value) = record else {
        if m.lifecycle_state == "Standby" {
            report.left.push(format!(
                "{instance_id} is in Standby in Auto Scaling group {} but steward did not record putting it there; left as it is (aws autoscaling exit-standby --auto-scaling-group-name {} --instance-ids {instance_id})",
                m.group, m.group
            ));
        }
        return;
    };
    let (protected_before, _) = parse_standby_record(value).unwrap_or((true, false));
    let mut complete = true;
    if m.lifecycle_state == "Standby" {
        match dry_run {
            true => report.standby_exited = Some(m.group.clone()),
            false => match apis.autoscaling.exit_standby(&m.group, instance_id).await {
                Ok(()) => report.standby_exited = Some(m.group.clone()),
                Err(e) => {
                    report.failed.push(format!("take out of Standby: {e:#}"));
                    complete = false;
                }
            },
        }
    } else {
        report.left.push(format!(
            "{instance_id} is {} in Auto Scaling group {}, not in Standby; nothing to take out",
            m.lifecycle_state, m.group
        ));
    }
    if !protected_before && m.protected {
        match dry_run {
            true => report.protection_removed = Some(m.group.clone()),
            false => match apis
                .autoscaling
                .set_scale_in_protection(&m.group, instance_id, false)
                .await
            {
                Ok(()) => report.protection_removed = Some(m.group.clone()),
                Err(e) => {
                    report
                        .failed
                        .push(format!("remove scale-in protection: {e:#}"));
                    complete = false;
                }
            },
        }
    }
    if complete && !dry_run {
        if let Err(e) = apis.ec2.untag(instance_id, STANDBY_TAG).await {
            report.failed.push(format!("remove {STANDBY_TAG}: {e:#}"));
        }
    }
}
