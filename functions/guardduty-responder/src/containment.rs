//! Containment of one trusted finding's resource, orchestration only: read
//! the resource in the finding's account (for an instance also its Auto
//! Scaling group and target groups, the evidence to keep), gate and plan
//! (pure, `plan`), check the blast radius and the hourly cap, then execute
//! through the adapters once per finding and resource (`Steward::once`).
//! Dry-run and the kill switch stop after the plan.

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use steward_shared::context::Once;
use steward_shared::failure::RetryLater;
use steward_shared::idempotency::keys;
use steward_shared::observability::Metrics;
use steward_shared::tags::TagMap;
use steward_shared::{safety, Policy, Steward};

use crate::clients::Apis;
use crate::ec2::{snapshotted_for, Ec2Api};
use crate::events::{Finding, Target};
use crate::execute::{self, Execution, Ports, SwapGroups};
use crate::iam::IamApi;
use crate::plan::{
    self, open_group_name, Band, CredentialAction, EvidenceFacts, Hold, InstanceAction, Thresholds,
};
use crate::report::Outcome;
use crate::undo::UndoLog;

/// The result of the containment phase.
pub enum Contained {
    Outcome(Outcome),
    /// The blast-radius limit stopped it: the reason and the planned change count.
    Blocked(String, usize),
    /// The hourly cap stopped it (the outcome says so; a CRITICAL alert goes out).
    Capped(Outcome),
}

/// Contains resources for the handler.
pub struct Containment<'a, A: Apis> {
    steward: &'a Steward,
    apis: &'a A,
}

fn held(hold: Hold, tags: TagMap) -> anyhow::Result<Contained> {
    Ok(Contained::Outcome(Outcome::held(hold, tags)))
}

impl<'a, A: Apis> Containment<'a, A> {
    pub fn new(steward: &'a Steward, apis: &'a A) -> Self {
        Containment { steward, apis }
    }

    pub async fn contain(
        &self,
        event_id: &str,
        f: &Finding,
        band: Band,
        thresholds: Thresholds,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Contained> {
        let finding_tags = f.resource_tags();
        if band < thresholds.contain {
            let hold = Hold::BelowBand {
                band,
                contain_from: thresholds.contain,
            };
            return held(hold, finding_tags);
        }
        if !policy.containment.enabled {
            return held(Hold::Disabled, finding_tags);
        }
        let c = &policy.containment;
        match f.target() {
            Target::Instance { instance_id } => {
                let (account, region) = (&f.account_id, &f.region);
                let ec2 = self.apis.ec2(account, region, event_id).await?;
                // The evidence adapters: a failure to build one is reported
                // with the evidence it keeps, not as a failed containment.
                let asg = match c.asg_standby {
                    true => Some(self.apis.autoscaling(account, region, event_id).await),
                    false => None,
                };
                let targets = match c.deregister_targets {
                    true => Some(self.apis.target_groups(account, region, event_id).await),
                    false => None,
                };
                let undo = self
                    .steward
                    .idempotency
                    .as_deref()
                    .filter(|_| self.steward.mode().may_change())
                    .map(|store| UndoLog::new(store, account, region, &instance_id));
                let ports = Ports {
                    undo: undo.as_ref(),
                    ec2: ec2.as_ref(),
                    autoscaling: asg
                        .as_ref()
                        .and_then(|a| a.as_ref().ok())
                        .map(|a| a.as_ref()),
                    targets: targets
                        .as_ref()
                        .and_then(|t| t.as_ref().ok())
                        .map(|t| t.as_ref()),
                };
                let mut evidence = EvidenceFacts::default();
                if let Some(Err(e)) = &asg {
                    evidence.group = Err(format!("{e:#}"));
                }
                if let Some(Err(e)) = &targets {
                    evidence.targets = Err(format!("{e:#}"));
                }
                self.contain_instance(
                    &ports,
                    evidence,
                    f,
                    &instance_id,
                    (band, thresholds),
                    policy,
                    metrics,
                )
                .await
            }
            Target::UserKey {
                user,
                access_key_id,
            } => {
                let iam = self.apis.iam(&f.account_id, &f.region, event_id).await?;
                let Some(tags) = iam.user_tags(&user).await? else {
                    let what = format!("IAM user {user} no longer exists; nothing to deactivate");
                    return held(Hold::Gone { what }, finding_tags);
                };
                if let Err(hold) = plan::gate(c, thresholds, band, &tags) {
                    return held(hold, tags);
                }
                let status = iam.access_key_status(&user, &access_key_id).await?;
                match plan::plan_user_key(c, &user, &access_key_id, status.as_deref()) {
                    Err(hold) => held(hold, tags),
                    Ok(None) => Ok(Contained::Outcome(Outcome {
                        already: Some(format!(
                            "access key {access_key_id} of {user} is already inactive"
                        )),
                        tags,
                        ..Outcome::default()
                    })),
                    Ok(Some(action)) => {
                        self.credentials(iam.as_ref(), action, tags, f, policy, metrics)
                            .await
                    }
                }
            }
            Target::RoleSession { role, .. } => {
                let iam = self.apis.iam(&f.account_id, &f.region, event_id).await?;
                let Some(tags) = iam.role_tags(&role).await? else {
                    let what =
                        format!("IAM role {role} no longer exists; its sessions cannot be used");
                    return held(Hold::Gone { what }, finding_tags);
                };
                if let Err(hold) = plan::gate(c, thresholds, band, &tags) {
                    return held(hold, tags);
                }
                let cutoff = iam.revocation_cutoff(&role).await?;
                match plan::plan_role_sessions(
                    c,
                    &f.finding_type,
                    &role,
                    cutoff,
                    f.last_seen(),
                    Utc::now(),
                ) {
                    Err(hold) => held(hold, tags),
                    Ok(None) => Ok(Contained::Outcome(Outcome {
                        already: Some(format!(
                            "sessions of role {role} issued before {} are already denied ({})",
                            cutoff.map(|c| c.to_rfc3339()).unwrap_or_default(),
                            plan::REVOKE_POLICY_NAME
                        )),
                        tags,
                        ..Outcome::default()
                    })),
                    Ok(Some(action)) => {
                        self.credentials(iam.as_ref(), action, tags, f, policy, metrics)
                            .await
                    }
                }
            }
            Target::OtherCredentials { user_type, .. } => {
                let what =
                    format!("{user_type} credentials are not contained automatically; act by hand");
                held(Hold::Unsupported { what }, finding_tags)
            }
            Target::S3Bucket { .. } | Target::Other { .. } => {
                let what = format!(
                    "steward contains EC2 instances and IAM credentials; a {} finding is notified only",
                    f.resource.resource_type
                );
                held(Hold::Unsupported { what }, finding_tags)
            }
        }
    }

    /// Takes one of the `max_per_hour` slots of the rolling hour (each kept
    /// an hour in the idempotency table); false when all are taken.
    async fn take_slot(&self, policy: &Policy, finding_id: &str) -> anyhow::Result<bool> {
        if !self.steward.mode().may_change() {
            return Ok(true);
        }
        for slot in plan::containment_slots(policy.containment.max_per_hour) {
            let key = keys::state(self.steward.function_name(), &slot);
            let taken = self
                .steward
                .once(&key, Duration::from_secs(3600), || async {
                    Ok(finding_id.to_string())
                })
                .await;
            match taken {
                Ok(Once::Ran(_)) => return Ok(true),
                Ok(Once::AlreadyDone(_)) => continue,
                Err(e) if e.downcast_ref::<RetryLater>().is_some() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    fn capped(&self, policy: &Policy, f: &Finding, tags: TagMap) -> Contained {
        tracing::error!(finding_id = %f.id, max_per_hour = policy.containment.max_per_hour, "containment cap reached; not contained");
        Contained::Capped(Outcome::held(
            Hold::CapReached {
                max: policy.containment.max_per_hour,
            },
            tags,
        ))
    }

    /// Reads the evidence facts the policy asks for (a failed read is kept
    /// as the reason, reported and retried).
    async fn read_evidence(
        &self,
        ports: &Ports<'_>,
        instance_id: &str,
        mut evidence: EvidenceFacts,
    ) -> EvidenceFacts {
        if let (Some(asg), Ok(_)) = (ports.autoscaling, &evidence.group) {
            evidence.group = asg
                .membership(instance_id)
                .await
                .map_err(|e| format!("{e:#}"));
        }
        if let (Some(tg), Ok(_)) = (ports.targets, &evidence.targets) {
            evidence.targets = tg
                .registrations(instance_id)
                .await
                .map_err(|e| format!("{e:#}"));
        }
        evidence
    }

    #[allow(clippy::too_many_arguments)]
    async fn contain_instance(
        &self,
        ports: &Ports<'_>,
        evidence: EvidenceFacts,
        f: &Finding,
        instance_id: &str,
        (band, thresholds): (Band, Thresholds),
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Contained> {
        let ec2: &dyn Ec2Api = ports.ec2;
        let Some(facts) = ec2.instance(instance_id).await? else {
            let what = format!(
                "instance {instance_id} no longer exists (or is terminated); nothing to contain"
            );
            return held(Hold::Gone { what }, f.resource_tags());
        };
        if let Err(hold) = plan::gate(&policy.containment, thresholds, band, &facts.tags) {
            return held(hold, facts.tags);
        }
        let name = &policy.containment.quarantine_group_name;
        let (group, open) = match &facts.vpc_id {
            Some(vpc) => (
                ec2.quarantine_group(vpc, name).await?,
                ec2.open_group(vpc, &open_group_name(name)).await?,
            ),
            None => (None, None),
        };
        let snapshots = ec2.forensic_snapshots(&facts.volumes).await?;
        let done = snapshotted_for(&snapshots, &f.id);
        let snap = policy.containment.snapshot_volumes;
        let planned = plan::plan_instance(
            &facts,
            group.as_ref(),
            name,
            open.as_deref(),
            &done,
            snap,
            &f.id,
            Utc::now(),
        );
        let network = match planned {
            Ok(actions) => actions,
            Err(hold) => return held(hold, facts.tags),
        };
        let evidence = self.read_evidence(ports, instance_id, evidence).await;
        let (mut actions, problems) =
            plan::plan_evidence(&policy.containment, instance_id, &facts.tags, &evidence);
        actions.extend(network);
        if actions.is_empty() && !problems.is_empty() {
            // Isolated already; only the evidence could not be read: report, retry.
            return Ok(Contained::Outcome(Outcome {
                failures: problems,
                tags: facts.tags,
                ..Outcome::default()
            }));
        }
        if actions.is_empty() {
            let tag = facts
                .tags
                .get(steward_shared::tags::QUARANTINED)
                .cloned()
                .unwrap_or_default();
            return Ok(Contained::Outcome(Outcome {
                already: Some(format!(
                    "{instance_id} is already contained ({tag}); nothing left to change"
                )),
                tags: facts.tags,
                ..Outcome::default()
            }));
        }
        let isolations = actions
            .iter()
            .filter(|a| matches!(a, InstanceAction::IsolateInterface { .. }));
        let changes = 1 + isolations.count();
        if let Err(exceeded) =
            safety::check_blast_radius(changes, policy.limits.max_changes_per_run)
        {
            return Ok(Contained::Blocked(exceeded.to_string(), changes));
        }
        if !self.steward.mode().may_change() {
            tracing::info!(instance = instance_id, mode = %self.steward.mode(), steps = actions.len(), "would contain; changing nothing");
            return Ok(Contained::Outcome(Outcome {
                steps: actions
                    .iter()
                    .map(|a| a.describe(instance_id, false))
                    .collect(),
                failures: problems,
                tags: facts.tags,
                ..Outcome::default()
            }));
        }
        if !self.take_slot(policy, &f.id).await? {
            return Ok(self.capped(policy, f, facts.tags));
        }
        let log = Mutex::new(Execution::default());
        let key = keys::action(
            self.steward.function_name(),
            &format!("contain#{}#{instance_id}", f.id),
        );
        let keep = Duration::from_secs(u64::from(policy.notifications.dedupe_days) * 86_400);
        let groups = SwapGroups {
            quarantine: group.as_ref().map(|g| g.id.clone()),
            open,
        };
        let once = self
            .steward
            .once(&key, keep, || {
                execute::execute(ports, instance_id, &f.id, groups, &actions, &problems, &log)
            })
            .await;
        let execution = log.into_inner().unwrap_or_else(|e| e.into_inner());
        metrics.actions_taken += execution.steps.len() as u64;
        metrics.actions_failed += execution.failures.len() as u64;
        let mut outcome = Outcome {
            steps: execution.steps,
            failures: execution.failures,
            snapshots: execution.snapshots,
            tags: facts.tags,
            ..Outcome::default()
        };
        match once {
            Ok(Once::Ran(_)) => {}
            Ok(Once::AlreadyDone(result)) => {
                outcome.hold = Some(Hold::Gone {
                    what: format!(
                        "steward contained {instance_id} for this finding before{} and the quarantine was released since; it is not contained again for the same finding",
                        result.map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                });
            }
            Err(e) if outcome.failures.is_empty() => outcome.failures.push(format!("{e:#}")),
            Err(_) => {}
        }
        Ok(Contained::Outcome(outcome))
    }

    async fn credentials(
        &self,
        iam: &dyn IamApi,
        action: CredentialAction,
        tags: TagMap,
        f: &Finding,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Contained> {
        let mut outcome = Outcome {
            tags,
            ..Outcome::default()
        };
        if !self.steward.mode().may_change() {
            outcome.steps.push(action.describe(false));
            return Ok(Contained::Outcome(outcome));
        }
        if !self.take_slot(policy, &f.id).await? {
            return Ok(self.capped(policy, f, outcome.tags));
        }
        let result = match &action {
            CredentialAction::DeactivateKey {
                user,
                access_key_id,
            } => iam.deactivate_key(user, access_key_id).await,
            CredentialAction::RevokeRoleSessions { role, cutoff } => {
                iam.revoke_sessions(role, *cutoff).await
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(action = %action.describe(true), "credentials contained");
                metrics.actions_taken += 1;
                outcome.steps.push(action.describe(true));
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "containing credentials failed");
                metrics.actions_failed += 1;
                let what = action.describe(false);
                outcome
                    .failures
                    .push(format!("{}: {e:#}", what.trim_start_matches("would ")));
            }
        }
        Ok(Contained::Outcome(outcome))
    }
}
