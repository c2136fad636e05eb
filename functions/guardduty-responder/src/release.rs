//! Undoing an instance quarantine (`steward quarantine release INSTANCE`):
//! restores each network interface's recorded security groups, removes the
//! records and the `steward:quarantined` tag, and says what it deliberately
//! left in place (forensic snapshots, termination protection, the shared
//! quarantine group).

use steward_shared::tags;

use crate::ec2::Ec2Api;
use crate::plan::parse_previous_groups;

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
    pub snapshots_left: Vec<String>,
    pub termination_protection_left: bool,
    /// True when nothing was changed (dry run).
    pub dry_run: bool,
}

impl ReleaseReport {
    /// The report as lines for the operator.
    pub fn lines(&self) -> Vec<String> {
        let verb = if self.dry_run {
            "would restore"
        } else {
            "restored"
        };
        let mut lines = Vec::new();
        for (eni, groups) in &self.restored {
            lines.push(format!(
                "{verb} {eni} security groups: {}",
                groups.join(", ")
            ));
        }
        for eni in &self.unrecorded {
            lines.push(format!(
                "left {eni} as it is: it has no {} record",
                tags::PREVIOUS_GROUPS
            ));
        }
        if let Some(q) = &self.quarantined {
            let verb = if self.dry_run {
                "would remove"
            } else {
                "removed"
            };
            lines.push(format!(
                "{verb} {}={q} from {}",
                tags::QUARANTINED,
                self.instance_id
            ));
        }
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
pub async fn release(
    ec2: &dyn Ec2Api,
    instance_id: &str,
    dry_run: bool,
) -> anyhow::Result<ReleaseReport> {
    let facts = ec2
        .instance(instance_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("instance {instance_id} does not exist (or is terminated) in this account and region; check --account and --region"))?;
    let quarantined = facts.tags.get(tags::QUARANTINED).cloned();
    let recorded: Vec<_> = facts
        .interfaces
        .iter()
        .filter(|i| i.tags.contains_key(tags::PREVIOUS_GROUPS))
        .collect();
    if quarantined.is_none() && recorded.is_empty() {
        anyhow::bail!(
            "{instance_id} carries no {} tag and none of its network interfaces has a {} record: it is not quarantined by steward, nothing to release",
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
    for eni in &facts.interfaces {
        let Some(value) = eni.tags.get(tags::PREVIOUS_GROUPS) else {
            report.unrecorded.push(eni.id.clone());
            continue;
        };
        let groups = parse_previous_groups(value);
        if groups.is_empty() {
            anyhow::bail!(
                "{} of {instance_id} has an empty {} record; restore its security groups by hand, then remove the tag",
                eni.id,
                tags::PREVIOUS_GROUPS
            );
        }
        if !dry_run {
            ec2.set_interface_groups(&eni.id, &groups).await?;
            ec2.untag(&eni.id, tags::PREVIOUS_GROUPS).await?;
        }
        report.restored.push((eni.id.clone(), groups));
    }
    if quarantined.is_some() && !dry_run {
        ec2.untag(instance_id, tags::QUARANTINED).await?;
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
