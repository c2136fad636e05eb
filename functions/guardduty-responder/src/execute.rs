//! Runs the planned containment steps of one instance through the adapters,
//! in the plan's order: the evidence steps (Auto Scaling Standby, target
//! group deregistration), then the two-step network swap, termination
//! protection, snapshots and the quarantine tag. A failed evidence step is
//! reported and the isolation goes on (cutting the instance off matters
//! more); any other failure stops the rest. Either way the execution fails,
//! so the idempotency claim is not recorded and the retry plans again from
//! what is in place.

use std::sync::Mutex;

use steward_shared::tags;

use crate::autoscaling::AutoScalingApi;
use crate::ec2::Ec2Api;
use crate::elbv2::TargetGroupsApi;
use crate::plan::{InstanceAction, STANDBY_TAG, TARGET_GROUPS_TAG};
use crate::undo::{UndoLog, UndoRecord};

/// The adapters of the instance's account and region (Auto Scaling and
/// target groups only when the policy keeps that evidence), and the undo
/// record in steward's table (absent only without an idempotency table).
pub struct Ports<'a> {
    pub ec2: &'a dyn Ec2Api,
    pub autoscaling: Option<&'a dyn AutoScalingApi>,
    pub targets: Option<&'a dyn TargetGroupsApi>,
    pub undo: Option<&'a UndoLog<'a>>,
}

/// Writes to the undo record before the tag that says the same (a step
/// whose record cannot be written is not done: the release would have
/// nothing trustworthy to undo it from).
async fn record_undo(
    ports: &Ports<'_>,
    finding_id: &str,
    change: impl FnOnce(&mut UndoRecord),
) -> anyhow::Result<()> {
    match ports.undo {
        Some(undo) => undo
            .update(finding_id, change)
            .await
            .map_err(|e| anyhow::anyhow!("keeping the undo record in steward's table: {e:#}")),
        None => Ok(()),
    }
}

/// What an execution did: the steps done, the failures, the snapshots taken.
#[derive(Debug, Default)]
pub struct Execution {
    pub steps: Vec<String>,
    pub failures: Vec<String>,
    pub snapshots: Vec<String>,
}

/// The groups the swap uses, known before or created on the way.
#[derive(Debug, Default)]
pub struct SwapGroups {
    pub quarantine: Option<String>,
    pub open: Option<String>,
}

/// Runs `actions` in order (see the module doc). `problems` (evidence that
/// could not even be read) are failures from the start. `log` keeps what was
/// done even when a step fails. Returns the result recorded with the
/// idempotency claim.
pub async fn execute(
    ports: &Ports<'_>,
    instance_id: &str,
    finding_id: &str,
    mut groups: SwapGroups,
    actions: &[InstanceAction],
    problems: &[String],
    log: &Mutex<Execution>,
) -> anyhow::Result<String> {
    let record = |f: &dyn Fn(&mut Execution)| {
        let mut guard = log.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    };
    for p in problems {
        tracing::error!(instance = instance_id, error = %p, "evidence could not be read");
        record(&|e: &mut Execution| e.failures.push(p.clone()));
    }
    for action in actions {
        let result = step(ports, instance_id, finding_id, &mut groups, action, log).await;
        match result {
            Ok(line) => {
                tracing::info!(instance = instance_id, step = %line, "containment step done");
                record(&|e: &mut Execution| e.steps.push(line.clone()));
            }
            Err(e) => {
                let line = format!(
                    "{}: {e:#}",
                    action
                        .describe(instance_id, false)
                        .replacen("would ", "", 1)
                );
                tracing::error!(instance = instance_id, error = %line, "containment step failed");
                record(&|ex: &mut Execution| ex.failures.push(line.clone()));
                if !action.is_evidence() {
                    anyhow::bail!("{line}");
                }
            }
        }
    }
    let guard = log.lock().unwrap_or_else(|e| e.into_inner());
    if !guard.failures.is_empty() {
        anyhow::bail!("{}", guard.failures.join("; "));
    }
    Ok(format!(
        "{} steps at {}",
        guard.steps.len(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    ))
}

fn missing(what: &str) -> anyhow::Error {
    anyhow::anyhow!("no {what} client for this account and region")
}

/// One step; returns its line for the report.
async fn step(
    ports: &Ports<'_>,
    instance_id: &str,
    finding_id: &str,
    groups: &mut SwapGroups,
    action: &InstanceAction,
    log: &Mutex<Execution>,
) -> anyhow::Result<String> {
    let ec2 = ports.ec2;
    match action {
        InstanceAction::RecordStandby { value } => {
            record_undo(ports, finding_id, |r| r.standby = Some(value.clone())).await?;
            ec2.tag(instance_id, STANDBY_TAG, value).await?;
        }
        InstanceAction::ProtectFromScaleIn { group } => {
            let asg = ports.autoscaling.ok_or_else(|| missing("Auto Scaling"))?;
            asg.set_scale_in_protection(group, instance_id, true)
                .await?;
        }
        InstanceAction::EnterStandby { group, decrement } => {
            let asg = ports.autoscaling.ok_or_else(|| missing("Auto Scaling"))?;
            asg.enter_standby(group, instance_id, *decrement).await?;
        }
        InstanceAction::RecordTargets { value, .. } => {
            record_undo(ports, finding_id, |r| r.target_groups = Some(value.clone())).await?;
            ec2.tag(instance_id, TARGET_GROUPS_TAG, value).await?;
        }
        InstanceAction::DeregisterTarget {
            target_group_arn,
            port,
        } => {
            let targets = ports
                .targets
                .ok_or_else(|| missing("Elastic Load Balancing"))?;
            targets
                .deregister(target_group_arn, instance_id, *port)
                .await?;
        }
        InstanceAction::CreateQuarantineGroup { vpc_id, name } => {
            let id = ec2.create_quarantine_group(vpc_id, name).await?;
            groups.quarantine = Some(id.clone());
            return Ok(format!("{} ({id})", action.describe(instance_id, true)));
        }
        InstanceAction::CreateOpenGroup { vpc_id, name } => {
            let id = ec2.create_open_group(vpc_id, name).await?;
            groups.open = Some(id.clone());
            return Ok(format!("{} ({id})", action.describe(instance_id, true)));
        }
        InstanceAction::RemoveQuarantineGroupRules => {
            let id = groups
                .quarantine
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no quarantine group"))?;
            ec2.remove_all_rules(&id).await?;
            return Ok(format!("{} ({id})", action.describe(instance_id, true)));
        }
        InstanceAction::IsolateInterface {
            interface_id,
            previous,
            keep_record,
        } => {
            let id = groups
                .quarantine
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no quarantine group"))?;
            let open = groups
                .open
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no allow-all group"))?;
            if !keep_record {
                // Isolating matters more than the record: a record that
                // cannot be written is a failure of this execution (so it is
                // retried and reported), and the release leaves the
                // interface for a person to restore.
                if let Err(e) = record_undo(ports, finding_id, |r| {
                    r.interfaces.insert(interface_id.clone(), previous.clone());
                })
                .await
                {
                    let mut guard = log.lock().unwrap_or_else(|p| p.into_inner());
                    guard.failures.push(format!("{interface_id}: {e:#}"));
                }
                ec2.tag(interface_id, tags::PREVIOUS_GROUPS, &previous.join(","))
                    .await?;
            }
            // The two steps of AWS's EC2 containment runbook: allow all
            // (tracked flows become untracked), then no rules.
            ec2.set_interface_groups(interface_id, std::slice::from_ref(&open))
                .await?;
            ec2.set_interface_groups(interface_id, std::slice::from_ref(&id))
                .await?;
        }
        InstanceAction::EnableTerminationProtection => {
            ec2.enable_termination_protection(instance_id).await?;
        }
        InstanceAction::Snapshot { volume_id } => {
            let snapshot = ec2.snapshot(volume_id, instance_id, finding_id).await?;
            let mut guard = log.lock().unwrap_or_else(|e| e.into_inner());
            guard.snapshots.push(snapshot.clone());
            return Ok(format!(
                "{} as {snapshot}",
                action.describe(instance_id, true)
            ));
        }
        InstanceAction::TagInstance { value } => {
            ec2.tag(instance_id, tags::QUARANTINED, value).await?;
        }
    }
    Ok(action.describe(instance_id, true))
}
