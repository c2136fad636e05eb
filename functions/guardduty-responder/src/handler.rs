//! The responder's flow for one finding: parse, triage, read the resource in
//! the finding's account (`detail.accountId`), decide, check the blast
//! radius, contain (unless dry-run or the kill switch), notify the security
//! team once per finding, band and renotify window, and write the metrics line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_shared::context::{NotifyOutcome, Once};
use steward_shared::observability::Metrics;
use steward_shared::{safety, Policy, Steward};

use crate::ec2::{snapshotted_for, AwsEc2, Ec2Api};
use crate::finding::{self, Finding, Target};
use crate::iam::{AwsIam, IamApi};
use crate::plan::{self, CredentialAction, Hold, InstanceAction};
use crate::report::{self, Outcome};
use crate::triage::{self, Band, Thresholds};
use crate::FUNCTION_NAME;

/// Builds the per-account adapters (the real ones assume the member role).
#[async_trait::async_trait]
pub trait Apis: Send + Sync {
    async fn ec2(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn Ec2Api>>;
    async fn iam(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn IamApi>>;
}

/// The SDK adapters, reached through the shared AWS context.
pub struct AwsApis {
    aws: steward_shared::aws::AwsContext,
}

impl AwsApis {
    pub fn new(aws: steward_shared::aws::AwsContext) -> AwsApis {
        AwsApis { aws }
    }
}

#[async_trait::async_trait]
impl Apis for AwsApis {
    async fn ec2(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn Ec2Api>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsEc2::new(&config)))
    }

    async fn iam(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn IamApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsIam::new(&config)))
    }
}

/// Whether a notification key was already sent (read-only look at the idempotency table).
#[async_trait::async_trait]
pub trait History: Send + Sync {
    async fn sent(&self, key: &str) -> anyhow::Result<bool>;
}

/// No table configured: nothing is known to be sent.
pub struct NoHistory;

#[async_trait::async_trait]
impl History for NoHistory {
    async fn sent(&self, _key: &str) -> anyhow::Result<bool> {
        Ok(false)
    }
}

/// Reads the records `Steward::notify` writes in the idempotency table.
pub struct DynamoHistory {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoHistory {
    pub fn new(config: &aws_config::SdkConfig, table: String) -> DynamoHistory {
        DynamoHistory {
            client: aws_sdk_dynamodb::Client::new(config),
            table,
        }
    }
}

#[async_trait::async_trait]
impl History for DynamoHistory {
    async fn sent(&self, key: &str) -> anyhow::Result<bool> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "idempotency table {}: GetItem failed: {}",
                    self.table,
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        let Some(item) = out.item() else {
            return Ok(false);
        };
        let done = item
            .get("status")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|s| s == "DONE");
        let live = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .is_some_and(|t| t > Utc::now().timestamp());
        Ok(done && live)
    }
}

/// The GuardDuty responder, built once per process.
pub struct Responder<A: Apis> {
    steward: Arc<Steward>,
    apis: A,
    history: Arc<dyn History>,
}

impl<A: Apis> Responder<A> {
    pub fn new(steward: Arc<Steward>, apis: A, history: Arc<dyn History>) -> Responder<A> {
        Responder {
            steward,
            apis,
            history,
        }
    }

    /// Handles one invocation; the span puts the request and event ids on every log line.
    pub async fn invoke(&self, payload: Value, request_id: &str) -> anyhow::Result<Value>
    where
        A: 'static,
    {
        steward_shared::entry::invoke(self, FUNCTION_NAME, payload, request_id).await
    }

    async fn process(&self, payload: Value, metrics: &mut Metrics) -> anyhow::Result<Value> {
        let event = finding::parse(&payload)?;
        tracing::Span::current().record("event_id", event.event_id.as_str());
        let f = &event.finding;
        let policy = self.steward.policy.current().await;
        let band = Band::of(f.severity);
        let thresholds = triage::thresholds(&policy.containment, &f.finding_type);
        let (_, label, _) = report::resource_of(f);
        metrics.resources_evaluated += 1;
        tracing::info!(
            finding_id = %f.id, finding_type = %f.finding_type, severity = f.severity, band = %band,
            account = %f.account_id, region = %f.region, resource = %label, count = f.count(),
            "GuardDuty finding received"
        );
        let base = json!({
            "event_id": event.event_id,
            "finding_id": f.id,
            "type": f.finding_type,
            "band": band.as_str(),
            "resource": label,
            "mode": self.steward.mode().as_str(),
        });
        if f.service.archived {
            tracing::info!(finding_id = %f.id, "the finding is archived; not notified, nothing contained");
            return Ok(merge(base, json!({"skipped": "archived"})));
        }
        if band < thresholds.notify && band < thresholds.contain {
            tracing::info!(band = %band, notify_from = %thresholds.notify, "below the notify and contain thresholds; logged only");
            return Ok(merge(
                base,
                json!({"skipped": format!("{band} is below the notify threshold {}", thresholds.notify)}),
            ));
        }

        // A containment that cannot even start (the member role cannot be
        // assumed, a read is denied) is still reported, then retried.
        let contained = match self
            .contain(&event.event_id, f, band, thresholds, &policy, metrics)
            .await
        {
            Ok(contained) => contained,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "containment could not run");
                metrics.actions_failed += 1;
                Contained::Outcome(Outcome {
                    failures: vec![format!("containment could not run: {e:#}")],
                    tags: f.resource_tags(),
                    ..Outcome::default()
                })
            }
        };
        let outcome = match contained {
            Contained::Outcome(o) => o,
            Contained::Blocked(exceeded, count) => {
                let o = Outcome::held(
                    Hold::Unsupported {
                        what: exceeded.clone(),
                    },
                    f.resource_tags(),
                );
                let key = format!("{}#blast-radius", triage::notification_key(&f.id, band, 0));
                let mut n = report::notification(f, band, &o, self.steward.mode(), key);
                n.severity = steward_shared::Severity::High;
                n.what = "blast-radius".into();
                n.summary = format!(
                    "{label} not contained (blast-radius limit): {}",
                    f.finding_type
                );
                if self.notify(&n, &policy).await? == "sent" {
                    metrics.notifications_sent += 1;
                }
                return Ok(merge(
                    base,
                    json!({"blocked": exceeded, "planned_changes": count}),
                ));
            }
        };
        let status = outcome.status(self.steward.mode());
        let wants_notify = band >= thresholds.notify || outcome.acted();
        let notification = if !wants_notify {
            "below-threshold".to_string()
        } else {
            let window = triage::window(f.updated_at, policy.containment.renotify_after_hours);
            let mut key = triage::notification_key(&f.id, band, window);
            if !outcome.failures.is_empty() {
                key.push_str("#failed");
            }
            if outcome.failures.is_empty() && self.notified_higher(&f.id, band, window).await? {
                tracing::info!(finding_id = %f.id, band = %band, "already notified in a higher band in this window; not notified again");
                "suppressed".to_string()
            } else {
                let n = report::notification(f, band, &outcome, self.steward.mode(), key);
                let sent = self.notify(&n, &policy).await?;
                if sent == "sent" {
                    metrics.notifications_sent += 1;
                }
                sent
            }
        };
        if !outcome.failures.is_empty() {
            anyhow::bail!(
                "containment of {label} for finding {} failed: {}; the retry will try again",
                f.id,
                outcome.failures.join("; ")
            );
        }
        Ok(merge(
            base,
            json!({
                "containment": status,
                "actions": outcome.steps,
                "held": outcome.hold.as_ref().map(Hold::reason),
                "already": outcome.already,
                "snapshots": outcome.snapshots,
                "notification": notification,
            }),
        ))
    }

    async fn notify(
        &self,
        n: &steward_shared::Notification,
        policy: &Policy,
    ) -> anyhow::Result<String> {
        Ok(match self.steward.notify(n, policy).await? {
            NotifyOutcome::Sent(_) => "sent",
            NotifyOutcome::Duplicate => "duplicate",
            NotifyOutcome::BelowThreshold => "below-min-severity",
        }
        .to_string())
    }

    /// True when the same finding was notified in a higher band in this window.
    async fn notified_higher(
        &self,
        finding_id: &str,
        band: Band,
        window: i64,
    ) -> anyhow::Result<bool> {
        if !self.steward.mode().may_change() {
            return Ok(false);
        }
        for key in triage::higher_band_keys(finding_id, band, window) {
            let full = format!("notify#{}#{key}", self.steward.function_name());
            if self.history.sent(&full).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn contain(
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
            return Ok(Contained::Outcome(Outcome::held(
                Hold::BelowBand {
                    band,
                    contain_from: thresholds.contain,
                },
                finding_tags,
            )));
        }
        if !policy.containment.enabled {
            return Ok(Contained::Outcome(Outcome::held(
                Hold::Disabled,
                finding_tags,
            )));
        }
        match f.target() {
            Target::Instance { instance_id } => {
                let ec2 = self.apis.ec2(&f.account_id, &f.region, event_id).await?;
                self.contain_instance(ec2.as_ref(), f, &instance_id, band, thresholds, policy, metrics).await
            }
            Target::UserKey { user, access_key_id } => {
                let iam = self.apis.iam(&f.account_id, &f.region, event_id).await?;
                let Some(tags) = iam.user_tags(&user).await? else {
                    return Ok(Contained::Outcome(Outcome::held(
                        Hold::Gone { what: format!("IAM user {user} no longer exists; nothing to deactivate") },
                        finding_tags,
                    )));
                };
                if let Err(hold) = plan::gate(&policy.containment, thresholds, band, &tags) {
                    return Ok(Contained::Outcome(Outcome::held(hold, tags)));
                }
                let status = iam.access_key_status(&user, &access_key_id).await?;
                match plan::plan_user_key(&policy.containment, &user, &access_key_id, status.as_deref()) {
                    Err(hold) => Ok(Contained::Outcome(Outcome::held(hold, tags))),
                    Ok(None) => Ok(Contained::Outcome(Outcome {
                        already: Some(format!("access key {access_key_id} of {user} is already inactive")),
                        tags,
                        ..Outcome::default()
                    })),
                    Ok(Some(action)) => Ok(Contained::Outcome(self.apply_credentials(iam.as_ref(), action, tags, metrics).await)),
                }
            }
            Target::RoleSession { role, .. } => {
                let iam = self.apis.iam(&f.account_id, &f.region, event_id).await?;
                let Some(tags) = iam.role_tags(&role).await? else {
                    return Ok(Contained::Outcome(Outcome::held(
                        Hold::Gone { what: format!("IAM role {role} no longer exists; its sessions cannot be used") },
                        finding_tags,
                    )));
                };
                if let Err(hold) = plan::gate(&policy.containment, thresholds, band, &tags) {
                    return Ok(Contained::Outcome(Outcome::held(hold, tags)));
                }
                let cutoff = iam.revocation_cutoff(&role).await?;
                match plan::plan_role_sessions(&policy.containment, &role, cutoff, f.last_seen(), Utc::now()) {
                    Err(hold) => Ok(Contained::Outcome(Outcome::held(hold, tags))),
                    Ok(None) => Ok(Contained::Outcome(Outcome {
                        already: Some(format!(
                            "sessions of role {role} issued before {} are already denied ({})",
                            cutoff.map(|c| c.to_rfc3339()).unwrap_or_default(),
                            plan::REVOKE_POLICY_NAME
                        )),
                        tags,
                        ..Outcome::default()
                    })),
                    Ok(Some(action)) => Ok(Contained::Outcome(self.apply_credentials(iam.as_ref(), action, tags, metrics).await)),
                }
            }
            Target::OtherCredentials { user_type, .. } => Ok(Contained::Outcome(Outcome::held(
                Hold::Unsupported { what: format!("{user_type} credentials are not contained automatically; act by hand") },
                finding_tags,
            ))),
            Target::S3Bucket { .. } | Target::Other { .. } => Ok(Contained::Outcome(Outcome::held(
                Hold::Unsupported {
                    what: format!(
                        "steward contains EC2 instances and IAM credentials; a {} finding is notified only",
                        f.resource.resource_type
                    ),
                },
                finding_tags,
            ))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn contain_instance(
        &self,
        ec2: &dyn Ec2Api,
        f: &Finding,
        instance_id: &str,
        band: Band,
        thresholds: Thresholds,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Contained> {
        let Some(facts) = ec2.instance(instance_id).await? else {
            return Ok(Contained::Outcome(Outcome::held(
                Hold::Gone { what: format!("instance {instance_id} no longer exists (or is terminated); nothing to contain") },
                f.resource_tags(),
            )));
        };
        if let Err(hold) = plan::gate(&policy.containment, thresholds, band, &facts.tags) {
            return Ok(Contained::Outcome(Outcome::held(hold, facts.tags)));
        }
        let name = &policy.containment.quarantine_group_name;
        let group = match &facts.vpc_id {
            Some(vpc) => ec2.quarantine_group(vpc, name).await?,
            None => None,
        };
        let snapshots = ec2.forensic_snapshots(&facts.volumes).await?;
        let done = snapshotted_for(&snapshots, &f.id);
        let now = Utc::now();
        let actions = match plan::plan_instance(
            &facts,
            group.as_ref(),
            name,
            &done,
            policy.containment.snapshot_volumes,
            &f.id,
            now,
        ) {
            Ok(actions) => actions,
            Err(hold) => return Ok(Contained::Outcome(Outcome::held(hold, facts.tags))),
        };
        if actions.is_empty() {
            return Ok(Contained::Outcome(Outcome {
                already: Some(format!(
                    "{instance_id} is already contained ({}); nothing left to change",
                    facts
                        .tags
                        .get(steward_shared::tags::QUARANTINED)
                        .cloned()
                        .unwrap_or_default()
                )),
                tags: facts.tags,
                ..Outcome::default()
            }));
        }
        let changes = 1 + actions
            .iter()
            .filter(|a| matches!(a, InstanceAction::IsolateInterface { .. }))
            .count();
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
                tags: facts.tags,
                ..Outcome::default()
            }));
        }
        let log = Mutex::new(Execution::default());
        let key = format!("gd-contain#{}#{instance_id}", f.id);
        let keep = Duration::from_secs(policy.notifications.dedupe_days as u64 * 86_400);
        let once = self
            .steward
            .once(&key, keep, || async {
                let group_id = group.as_ref().map(|g| g.id.clone());
                execute_instance(ec2, instance_id, &f.id, group_id, &actions, &log).await
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

    async fn apply_credentials(
        &self,
        iam: &dyn IamApi,
        action: CredentialAction,
        tags: steward_shared::tags::TagMap,
        metrics: &mut Metrics,
    ) -> Outcome {
        let mut outcome = Outcome {
            tags,
            ..Outcome::default()
        };
        if !self.steward.mode().may_change() {
            outcome.steps.push(action.describe(false));
            return outcome;
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
                outcome.failures.push(format!(
                    "{}: {e:#}",
                    action.describe(false).trim_start_matches("would ")
                ));
            }
        }
        outcome
    }
}

/// The result of the containment phase.
enum Contained {
    Outcome(Outcome),
    /// The blast-radius limit stopped it: the reason and the planned change count.
    Blocked(String, usize),
}

#[derive(Default)]
struct Execution {
    steps: Vec<String>,
    failures: Vec<String>,
    snapshots: Vec<String>,
}

/// Runs the containment steps in order; the first failure stops the rest (the
/// retry plans again from what is in place).
async fn execute_instance(
    ec2: &dyn Ec2Api,
    instance_id: &str,
    finding_id: &str,
    mut group_id: Option<String>,
    actions: &[InstanceAction],
    log: &Mutex<Execution>,
) -> anyhow::Result<String> {
    let record = |f: &dyn Fn(&mut Execution)| {
        let mut guard = log.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    };
    for action in actions {
        let result: anyhow::Result<String> = async {
            match action {
                InstanceAction::CreateQuarantineGroup { vpc_id, name } => {
                    let id = ec2.create_quarantine_group(vpc_id, name).await?;
                    group_id = Some(id.clone());
                    Ok(format!("{} ({id})", action.describe(instance_id, true)))
                }
                InstanceAction::RemoveQuarantineGroupRules => {
                    let id = group_id
                        .clone()
                        .ok_or_else(|| anyhow::anyhow!("no quarantine group"))?;
                    ec2.remove_all_rules(&id).await?;
                    Ok(format!("{} ({id})", action.describe(instance_id, true)))
                }
                InstanceAction::IsolateInterface {
                    interface_id,
                    previous,
                    keep_record,
                } => {
                    let id = group_id
                        .clone()
                        .ok_or_else(|| anyhow::anyhow!("no quarantine group"))?;
                    if !keep_record {
                        ec2.tag(
                            interface_id,
                            steward_shared::tags::PREVIOUS_GROUPS,
                            &previous.join(","),
                        )
                        .await?;
                    }
                    ec2.set_interface_groups(interface_id, std::slice::from_ref(&id))
                        .await?;
                    Ok(action.describe(instance_id, true))
                }
                InstanceAction::EnableTerminationProtection => {
                    ec2.enable_termination_protection(instance_id).await?;
                    Ok(action.describe(instance_id, true))
                }
                InstanceAction::Snapshot { volume_id } => {
                    let snapshot = ec2.snapshot(volume_id, instance_id, finding_id).await?;
                    record(&|e: &mut Execution| e.snapshots.push(snapshot.clone()));
                    Ok(format!(
                        "{} as {snapshot}",
                        action.describe(instance_id, true)
                    ))
                }
                InstanceAction::TagInstance { value } => {
                    ec2.tag(instance_id, steward_shared::tags::QUARANTINED, value)
                        .await?;
                    Ok(action.describe(instance_id, true))
                }
            }
        }
        .await;
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
                anyhow::bail!("{line}");
            }
        }
    }
    let guard = log.lock().unwrap_or_else(|e| e.into_inner());
    Ok(format!("{} steps at {}", guard.steps.len(), now_string()))
}

fn now_string() -> String {
    let now: DateTime<Utc> = Utc::now();
    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

#[async_trait::async_trait]
impl<A: Apis + 'static> steward_shared::entry::Handler for Responder<A> {
    async fn handle(
        &self,
        payload: Value,
        invocation: &mut steward_shared::entry::Invocation,
    ) -> anyhow::Result<Value> {
        self.process(payload, &mut invocation.metrics).await
    }
}

#[cfg(test)]
mod tests {
    //! The flow with in-memory adapters: a step failing part-way, the retry
    //! completing from what is in place, and the third delivery changing nothing.

    use steward_shared::notify::{Publish, Rendered};
    use steward_shared::policy_store::PolicyStore;
    use steward_shared::settings::{PolicySource, Settings};
    use steward_shared::tags::TagMap;
    use steward_shared::RunMode;

    use super::*;
    use crate::ec2::ForensicSnapshot;
    use crate::plan::{GroupFacts, InstanceFacts, InterfaceFacts};

    #[derive(Default)]
    struct Ec2State {
        instance: Option<InstanceFacts>,
        group: Option<(String, bool)>,
        snapshots: Vec<ForensicSnapshot>,
        calls: Vec<String>,
    }

    #[derive(Default)]
    struct FakeEc2 {
        state: Mutex<Ec2State>,
        fail_snapshot_of: Mutex<Option<String>>,
    }

    #[async_trait::async_trait]
    impl Ec2Api for FakeEc2 {
        async fn instance(&self, _id: &str) -> anyhow::Result<Option<InstanceFacts>> {
            Ok(self.state.lock().unwrap().instance.clone())
        }
        async fn quarantine_group(
            &self,
            _vpc: &str,
            _name: &str,
        ) -> anyhow::Result<Option<GroupFacts>> {
            Ok(self
                .state
                .lock()
                .unwrap()
                .group
                .clone()
                .map(|(id, has_rules)| GroupFacts { id, has_rules }))
        }
        async fn create_quarantine_group(&self, vpc: &str, _name: &str) -> anyhow::Result<String> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("create-group {vpc}"));
            s.group = Some(("sg-q".into(), false));
            Ok("sg-q".into())
        }
        async fn remove_all_rules(&self, group_id: &str) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("remove-rules {group_id}"));
            s.group = Some((group_id.into(), false));
            Ok(())
        }
        async fn set_interface_groups(&self, eni: &str, groups: &[String]) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("set-groups {eni}"));
            let i = s.instance.as_mut().unwrap();
            i.interfaces
                .iter_mut()
                .find(|n| n.id == eni)
                .unwrap()
                .groups = groups.to_vec();
            Ok(())
        }
        async fn tag(&self, resource: &str, key: &str, value: &str) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("tag {resource} {key}"));
            let i = s.instance.as_mut().unwrap();
            if i.id == resource {
                i.tags.insert(key.into(), value.into());
            } else {
                i.interfaces
                    .iter_mut()
                    .find(|n| n.id == resource)
                    .unwrap()
                    .tags
                    .insert(key.into(), value.into());
            }
            Ok(())
        }
        async fn untag(&self, _resource: &str, _key: &str) -> anyhow::Result<()> {
            unreachable!("containment never removes tags")
        }
        async fn enable_termination_protection(&self, id: &str) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("protect {id}"));
            s.instance.as_mut().unwrap().termination_protection = true;
            Ok(())
        }
        async fn snapshot(
            &self,
            volume: &str,
            _instance: &str,
            finding: &str,
        ) -> anyhow::Result<String> {
            if self.fail_snapshot_of.lock().unwrap().as_deref() == Some(volume) {
                anyhow::bail!("CreateSnapshot of {volume} failed: SnapshotLimitExceeded");
            }
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("snapshot {volume}"));
            let id = format!("snap-{volume}");
            s.snapshots.push(ForensicSnapshot {
                snapshot_id: id.clone(),
                volume_id: volume.into(),
                finding_id: finding.into(),
            });
            Ok(id)
        }
        async fn forensic_snapshots(
            &self,
            _volumes: &[String],
        ) -> anyhow::Result<Vec<ForensicSnapshot>> {
            Ok(self.state.lock().unwrap().snapshots.clone())
        }
    }

    struct FakeApis(Arc<FakeEc2>);

    #[async_trait::async_trait]
    impl Apis for FakeApis {
        async fn ec2(&self, _a: &str, _r: &str, _e: &str) -> anyhow::Result<Arc<dyn Ec2Api>> {
            Ok(self.0.clone())
        }
        async fn iam(&self, _a: &str, _r: &str, _e: &str) -> anyhow::Result<Arc<dyn IamApi>> {
            anyhow::bail!("no IAM in this test")
        }
    }

    #[derive(Default)]
    struct Inbox(Mutex<Vec<Rendered>>);

    #[async_trait::async_trait]
    impl Publish for Inbox {
        async fn publish(&self, rendered: &Rendered) -> anyhow::Result<Option<String>> {
            self.0.lock().unwrap().push(rendered.clone());
            Ok(Some("m-1".into()))
        }
    }

    use steward_shared::testing::MemoryStore;

    fn instance() -> InstanceFacts {
        let tags: TagMap = [("env".to_string(), "prod".to_string())].into();
        InstanceFacts {
            id: "i-0a1b2c3d4e5f67890".into(),
            vpc_id: Some("vpc-1".into()),
            state: "running".into(),
            tags,
            interfaces: vec![InterfaceFacts {
                id: "eni-1".into(),
                groups: vec!["sg-web".into()],
                tags: TagMap::new(),
            }],
            volumes: vec!["vol-1".into(), "vol-2".into()],
            termination_protection: false,
        }
    }

    fn finding() -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events/guardduty-ec2-backdoor.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    struct Rig {
        responder: Responder<FakeApis>,
        ec2: Arc<FakeEc2>,
        inbox: Arc<Inbox>,
        store: Arc<MemoryStore>,
    }

    fn rig(policy: Policy) -> Rig {
        let settings = Settings {
            function_name: FUNCTION_NAME.into(),
            topic_arn: None,
            policy_source: PolicySource::BuiltIn,
            mode: RunMode::Live,
            idempotency_table: None,
            member_role: None,
            work_queue: None,
            copy_queue: None,
        };
        let base = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let aws = steward_shared::aws::AwsContext::new(
            base,
            "123456789012".into(),
            "us-east-1".into(),
            None,
            FUNCTION_NAME,
        );
        let inbox = Arc::new(Inbox::default());
        let store = Arc::new(MemoryStore::default());
        let steward = Arc::new(Steward {
            settings,
            aws,
            policy: PolicyStore::fixed(policy),
            publisher: inbox.clone(),
            idempotency: Some(store.clone()),
        });
        let ec2 = Arc::new(FakeEc2::default());
        ec2.state.lock().unwrap().instance = Some(instance());
        let responder = Responder::new(steward, FakeApis(ec2.clone()), Arc::new(NoHistory));
        Rig {
            responder,
            ec2,
            inbox,
            store,
        }
    }

    #[tokio::test]
    async fn unreachable_account_is_still_reported_then_retried() {
        let rig = rig(Policy::default());
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events/guardduty-iam-user-tor.json");
        let tor: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let err = rig
            .responder
            .invoke(tor, "r-1")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no IAM in this test") && err.contains("the retry will try again"),
            "{err}"
        );
        let published = rig.inbox.0.lock().unwrap();
        assert_eq!(
            published.len(),
            1,
            "the team hears about the finding even though nothing could be done"
        );
        assert_eq!(
            published[0].chat["metadata"]["eventType"],
            "steward.guardduty.containment-failed"
        );
        assert!(published[0]
            .text
            .contains("containment could not run: no IAM in this test"));
    }

    #[tokio::test]
    async fn blast_radius_limit_changes_nothing_and_alerts_high() {
        let mut policy = Policy::default();
        policy.limits.max_changes_per_run = 1;
        let rig = rig(policy);
        let out = rig.responder.invoke(finding(), "r-1").await.unwrap();
        assert!(
            out["blocked"]
                .as_str()
                .unwrap()
                .contains("max_changes_per_run = 1"),
            "{out}"
        );
        assert!(rig.ec2.state.lock().unwrap().calls.is_empty());
        let published = rig.inbox.0.lock().unwrap();
        assert_eq!(published[0].attributes["severity"], "HIGH");
        assert_eq!(
            published[0].chat["metadata"]["eventType"],
            "steward.guardduty.blast-radius"
        );
    }

    #[tokio::test]
    async fn failed_step_is_reported_and_the_retry_completes_without_repeating_work() {
        let Rig {
            responder,
            ec2,
            inbox,
            store,
        } = rig(Policy::default());
        *ec2.fail_snapshot_of.lock().unwrap() = Some("vol-2".into());

        let err = responder
            .invoke(finding(), "r-1")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SnapshotLimitExceeded") && err.contains("the retry will try again"),
            "{err}"
        );
        {
            let published = inbox.0.lock().unwrap();
            assert_eq!(published.len(), 1);
            assert_eq!(published[0].attributes["severity"], "HIGH");
            assert_eq!(
                published[0].chat["metadata"]["eventType"],
                "steward.guardduty.containment-failed"
            );
            assert!(
                published[0].text.contains("- FAILED: snapshot vol-2"),
                "{}",
                published[0].text
            );
            assert!(published[0].text.contains("- done: snapshotted vol-1"));
        }
        let records = store.keys();
        assert!(
            !records.iter().any(|k| k.starts_with("gd-contain#")),
            "a failed attempt records nothing: {records:?}"
        );
        assert!(!ec2
            .state
            .lock()
            .unwrap()
            .instance
            .as_ref()
            .unwrap()
            .tags
            .contains_key("steward:quarantined"));

        // The retry: only the missing steps run.
        *ec2.fail_snapshot_of.lock().unwrap() = None;
        ec2.state.lock().unwrap().calls.clear();
        let out = responder.invoke(finding(), "r-2").await.unwrap();
        assert_eq!(out["containment"], "contained", "{out}");
        let calls = ec2.state.lock().unwrap().calls.clone();
        assert_eq!(
            calls,
            vec![
                "snapshot vol-2".to_string(),
                "tag i-0a1b2c3d4e5f67890 steward:quarantined".to_string()
            ]
        );
        assert_eq!(
            inbox.0.lock().unwrap().len(),
            2,
            "the completed containment is notified too"
        );
        assert_eq!(
            inbox.0.lock().unwrap()[1].chat["metadata"]["eventType"],
            "steward.guardduty.contained"
        );

        // A third delivery: nothing to do, nothing sent.
        ec2.state.lock().unwrap().calls.clear();
        let out = responder.invoke(finding(), "r-3").await.unwrap();
        assert_eq!(out["containment"], "already-contained");
        assert_eq!(out["notification"], "duplicate");
        assert!(ec2.state.lock().unwrap().calls.is_empty());
        assert_eq!(ec2.state.lock().unwrap().snapshots.len(), 2);
    }
}
