//! The scheduler's flow for one invocation: parse the trigger; for a
//! scheduled run resolve the targets and either fan them out to the work
//! queue or plan them, check the blast radius, apply (unless dry-run or the
//! kill switch), and send one digest; for an SQS batch do the same for its
//! targets and report partial batch failures; for an RDS seven-day restart
//! stop the database again when it is in its off time.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use steward_shared::context::NotifyOutcome;
use steward_shared::notify::{Category, Notification, Severity, MULTIPLE};
use steward_shared::observability::Metrics;
use steward_shared::sqs::BatchOutcome;
use steward_shared::{safety, Policy, Steward};

use crate::events::{self, RdsRestart, Trigger, WorkRecord};
use crate::model::{Kind, Power, RESTART_PENDING};
use crate::plan::{self, Window};
use crate::resources::{
    aurora::AuroraClusters, rds::RdsInstances, ScheduledResource, StopItem, Target,
};
use crate::run::{self, AwsFleet, Fleet, TargetReport};
use crate::schedule;
use crate::targets::{self, Organization};
use crate::{digest, env_watch, FUNCTION_NAME};

/// How often the RDS restart handler checks whether the database is available.
const RESTART_POLL: Duration = Duration::from_secs(15);

/// The off-hours scheduler, built once per process.
pub struct Scheduler<F: Fleet> {
    steward: Arc<Steward>,
    fleet: F,
    org: Option<Arc<dyn Organization>>,
    sqs: aws_sdk_sqs::Client,
}

impl Scheduler<AwsFleet> {
    /// The scheduler on the real SDK adapters.
    pub fn from_steward(steward: Arc<Steward>) -> Scheduler<AwsFleet> {
        let base = steward.aws.base().clone();
        let org: Arc<dyn Organization> = Arc::new(aws_sdk_organizations::Client::new(&base));
        Scheduler {
            fleet: AwsFleet {
                aws: steward.aws.clone(),
            },
            org: Some(org),
            sqs: aws_sdk_sqs::Client::new(&base),
            steward,
        }
    }
}

impl<F: Fleet> Scheduler<F> {
    pub fn new(
        steward: Arc<Steward>,
        fleet: F,
        org: Option<Arc<dyn Organization>>,
    ) -> Scheduler<F> {
        let sqs = aws_sdk_sqs::Client::new(steward.aws.base());
        Scheduler {
            steward,
            fleet,
            org,
            sqs,
        }
    }

    /// Handles one invocation; the span puts the request and event ids on every log line.
    pub async fn invoke(&self, payload: Value, request_id: &str) -> anyhow::Result<Value>
    where
        F: 'static,
    {
        steward_shared::entry::invoke(self, FUNCTION_NAME, payload, request_id).await
    }

    async fn process(&self, payload: Value, metrics: &mut Metrics) -> anyhow::Result<Value> {
        let trigger = events::parse(&payload)?;
        let policy = self.steward.policy.current().await;
        match trigger {
            Trigger::Scheduled { id, time } => {
                tracing::Span::current().record("event_id", id.as_str());
                self.on_schedule(time, &policy, metrics).await
            }
            Trigger::Work(records) => {
                tracing::Span::current().record(
                    "event_id",
                    records.first().map(|r| r.message_id.as_str()).unwrap_or(""),
                );
                self.on_work(records, &policy, metrics).await
            }
            Trigger::RdsRestart(event) => {
                tracing::Span::current().record("event_id", event.event_id.as_str());
                self.on_rds_restart(event, &policy, metrics).await
            }
            Trigger::Ignored { id, why } => {
                tracing::Span::current().record("event_id", id.as_str());
                tracing::info!(why = %why, "event not acted on");
                Ok(json!({"event_id": id, "ignored": why}))
            }
        }
    }

    async fn on_schedule(
        &self,
        time: DateTime<Utc>,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Value> {
        let window = Window::ending_at(time, policy);
        if !policy.offhours.enabled {
            tracing::info!("[offhours] enabled = false; nothing to do");
            return Ok(json!({"window": window, "disabled": "[offhours] enabled = false"}));
        }
        let aws = &self.steward.aws;
        let targets = targets::resolve(
            policy,
            aws.own_account(),
            aws.own_region(),
            self.org.as_deref(),
        )
        .await?;
        if let Some(queue) = &self.steward.settings.work_queue {
            if targets.len() > policy.offhours.fan_out_above as usize {
                let failed = targets::fan_out(&self.sqs, queue, &targets, window.end).await;
                if !failed.is_empty() {
                    let list: Vec<String> =
                        failed.iter().map(|(t, e)| format!("{t}: {e}")).collect();
                    anyhow::bail!(
                        "could not queue {} of {} targets ({}); check the queue policy of STEWARD_WORK_QUEUE. The retry re-queues all targets, which is harmless",
                        failed.len(),
                        targets.len(),
                        list.join("; ")
                    );
                }
                tracing::info!(
                    targets = targets.len(),
                    "targets fanned out to the work queue"
                );
                return Ok(json!({"window": window, "fanned_out": targets.len()}));
            }
        }
        let run_id = format!("offhours-run-{}", window.end.to_rfc3339());
        let key = format!("run#{}", window.end.to_rfc3339());
        let (out, _) = self
            .run(&targets, window, policy, &run_id, &key, metrics)
            .await?;
        Ok(out)
    }

    async fn on_work(
        &self,
        records: Vec<WorkRecord>,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Value> {
        let mut batch = BatchOutcome::default();
        let mut stale: Vec<String> = Vec::new();
        let mut by_time: std::collections::BTreeMap<DateTime<Utc>, Vec<(String, Target)>> =
            Default::default();
        let now = Utc::now();
        for r in records {
            match r.item {
                Ok(item) => {
                    if let Err(why) = plan::fresh_work_item(item.time, now, policy) {
                        tracing::error!(message_id = %r.message_id, target = %item.target(), why = %why, "stale work item dropped, not replayed");
                        stale.push(format!("{} for {} ({why})", r.message_id, item.target()));
                        batch.ok();
                        continue;
                    }
                    if item.budget_stop.is_some() {
                        // Parsed (events::BudgetStop) but not acted on yet: fail it so it is
                        // retried and lands in the dead-letter queue instead of being lost.
                        tracing::error!(message_id = %r.message_id, target = %item.target(), "budget-stop jobs are not handled by this version; the message is retried, then dead-lettered");
                        batch.fail(
                            &r.message_id,
                            "budget-stop jobs are not handled by this version of the scheduler yet",
                        );
                        continue;
                    }
                    by_time
                        .entry(item.time)
                        .or_default()
                        .push((r.message_id, item.target()));
                }
                Err(e) => {
                    tracing::error!(message_id = %r.message_id, error = %e, "bad work item; reported as a batch item failure");
                    batch.fail(&r.message_id, e);
                }
            }
        }
        if !stale.is_empty() {
            self.report_stale(&stale, policy, metrics).await?;
        }
        for (time, items) in by_time {
            let window = Window::ending_at(time, policy);
            let targets: Vec<Target> = items.iter().map(|(_, t)| t.clone()).collect();
            let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
            let run_id = format!("offhours-run-{}", window.end.to_rfc3339());
            let key = format!("run#{}#{}", window.end.to_rfc3339(), names.join(","));
            let (out, failed_targets) = self
                .run(&targets, window, policy, &run_id, &key, metrics)
                .await?;
            for (message_id, target) in &items {
                if failed_targets.contains(target) {
                    batch.fail(message_id, format!("target {target} failed"));
                } else {
                    batch.ok();
                }
            }
            tracing::info!(notification = %out["notification"], aws_calls = %out["aws_calls"], "work batch run finished");
        }
        // `batchItemFailures` is what Lambda's SQS poller reads.
        Ok(batch.response())
    }

    /// One MEDIUM message for the stale work items of a batch (dropped, not replayed).
    async fn report_stale(
        &self,
        stale: &[String],
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<()> {
        let mut n = Notification::new(
            Severity::Medium,
            Category::Offhours,
            "stale-work",
            format!("{} stale work item(s) dropped, not replayed", stale.len()),
        );
        n.details.push(format!(
            "Work items older than [offhours] max_work_item_age_minutes = {} are dropped: replaying an old run (for example a dead-letter redrive days later) would stop or start resources at the wrong time.",
            policy.offhours.max_work_item_age_minutes
        ));
        n.items = stale.to_vec();
        n.next_steps.push("Nothing was changed for these items. If the run still matters, wait for the next scheduled run or run `steward plan` to see what it would do.".into());
        n.account = MULTIPLE.into();
        n.region = MULTIPLE.into();
        n.thread_id = "offhours-stale-work".into();
        n.dedupe_key = format!("stale#{}", stale.join(","));
        self.send(&n, policy, metrics).await?;
        Ok(())
    }

    /// Plans, checks the blast radius, applies and reports one run; returns
    /// the response and the targets that failed.
    async fn run(
        &self,
        targets: &[Target],
        window: Window,
        policy: &Policy,
        run_id: &str,
        dedupe_key: &str,
        metrics: &mut Metrics,
    ) -> anyhow::Result<(Value, Vec<Target>)> {
        let calls_before = crate::calls::sent();
        let operations_before = crate::calls::by_operation();
        let plans = run::plan_targets(&self.fleet, targets, policy, window, run_id).await;
        let changes: usize = plans
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .map(|(plan, _)| plan.changes())
            .sum();
        metrics.resources_evaluated += plans
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .map(|(p, _)| p.evaluated as u64)
            .sum::<u64>();
        if let Err(exceeded) =
            safety::check_blast_radius(changes, policy.limits.max_changes_per_run)
        {
            tracing::error!(
                planned = changes,
                limit = exceeded.limit,
                "blast-radius limit exceeded; changing nothing"
            );
            let mut n = Notification::new(
                Severity::High,
                Category::Offhours,
                "blast-radius",
                format!(
                    "off-hours run would change {changes} resources; limit {}",
                    exceeded.limit
                ),
            );
            n.details.push(exceeded.to_string());
            n.details.push(format!(
                "Window ({}, {}].",
                window.start.to_rfc3339(),
                window.end.to_rfc3339()
            ));
            for p in plans.iter().filter_map(|p| p.result.as_ref().ok()) {
                for item in &p.0.items {
                    n.items.push(format!(
                        "{:?} {} {}",
                        item.decision, item.resource.kind, item.resource.id
                    ));
                }
            }
            n.next_steps
                .push("Check which resources gained an allowed env tag or a new schedule.".into());
            n.next_steps.push(
                "If the change is intended, raise [limits] max_changes_per_run; the next run acts."
                    .into(),
            );
            n.account = if targets.len() == 1 {
                targets[0].account.clone()
            } else {
                "multiple".into()
            };
            n.region = if targets.len() == 1 {
                targets[0].region.clone()
            } else {
                "multiple".into()
            };
            n.thread_id = run_id.to_string();
            n.dedupe_key = format!("{dedupe_key}#blast-radius");
            let sent = self.send(&n, policy, metrics).await?;
            return Ok((
                json!({"window": window, "blocked": exceeded.to_string(), "notification": sent}),
                Vec::new(),
            ));
        }
        let change = self.steward.mode().may_change();
        let bound = policy.offhours.concurrency.max(1) as usize;
        let reports: Vec<TargetReport> = stream::iter(plans)
            .map(|p| async move {
                match p.result {
                    Ok((plan, adapters)) => {
                        let env_changes = self.env_changes(&p.target, &plan.seen_env, change).await;
                        let done = run::apply(&plan, &adapters, change).await;
                        TargetReport { target: p.target, error: None, done, malformed: plan.malformed, evaluated: plan.evaluated, env_changes }
                    }
                    Err(e) => {
                        tracing::error!(target = %p.target, error = %format!("{e:#}"), "target failed; the others proceed");
                        TargetReport { target: p.target, error: Some(format!("{e:#}")), done: vec![], malformed: vec![], evaluated: 0, env_changes: vec![] }
                    }
                }
            })
            .buffered(bound)
            .collect()
            .await;
        for r in &reports {
            for d in &r.done {
                match d.outcome.as_str() {
                    "failed" => {
                        metrics.actions_failed += 1;
                        tracing::error!(resource = %d.arn, kind = %d.kind, error = d.reason.as_deref().unwrap_or(""), "action failed");
                    }
                    "skipped" => {
                        tracing::info!(resource = %d.arn, kind = %d.kind, reason = d.reason.as_deref().unwrap_or(""), "skipped")
                    }
                    outcome => {
                        if change {
                            metrics.actions_taken += 1;
                        }
                        tracing::info!(resource = %d.arn, kind = %d.kind, outcome, mode = %self.steward.mode(), "resource changed");
                    }
                }
            }
        }
        let default_transition = schedule::parse("", &policy.offhours)
            .map(|s| {
                s.action(
                    window.start,
                    window.end,
                    &schedule::parse_holidays(&policy.offhours),
                ) != schedule::Action::None
            })
            .unwrap_or(true);
        let notification = if digest::worth_sending(&reports, default_transition) {
            let n = digest::build(&reports, window, policy, run_id, dedupe_key);
            self.send(&n, policy, metrics).await?
        } else {
            tracing::info!("nothing to report this run; no digest");
            "none"
        };
        let failed: Vec<Target> = reports
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| r.target.clone())
            .collect();
        let aws_calls = crate::calls::sent() - calls_before;
        let by_operation: std::collections::BTreeMap<String, u64> = crate::calls::by_operation()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v - operations_before.get(&k).copied().unwrap_or(0),
                )
            })
            .filter(|(_, v)| *v > 0)
            .collect();
        tracing::info!(aws_calls, targets = reports.len(), "run finished");
        Ok((
            json!({"window": window, "targets": reports, "notification": notification, "aws_calls": aws_calls, "aws_calls_by_operation": by_operation}),
            failed,
        ))
    }

    async fn on_rds_restart(
        &self,
        event: RdsRestart,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Value> {
        let config = self
            .steward
            .aws
            .config_for(&event.account, &event.region, &event.event_id)
            .await?;
        let target = Target {
            account: event.account.clone(),
            region: event.region.clone(),
        };
        let adapter: Arc<dyn ScheduledResource> = if event.cluster {
            Arc::new(AuroraClusters::new(&config))
        } else {
            Arc::new(RdsInstances::new(&config))
        };
        let found = adapter
            .list()
            .await?
            .into_iter()
            .find(|r| r.id == event.identifier);
        let Some(resource) = found else {
            tracing::warn!(identifier = %event.identifier, "the database no longer exists; nothing to do");
            return Ok(
                json!({"event_id": event.event_id, "ignored": format!("{} not found", event.identifier)}),
            );
        };
        metrics.resources_evaluated += 1;
        let holidays = schedule::parse_holidays(&policy.offhours);
        if let Err(why) = plan::restop_after_restart(&resource, policy, event.time, &holidays) {
            tracing::info!(resource = %resource.arn, why = %why, "restarted by RDS after seven days; left running");
            return Ok(json!({"event_id": event.event_id, "left_running": why}));
        }
        // RDS is still starting when the event arrives: wait, within a bound, until it is available.
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(policy.offhours.restart_wait_seconds as u64);
        let mut power = resource.power.clone();
        loop {
            if !matches!(power, Power::Busy(_)) {
                break;
            }
            if tokio::time::Instant::now() + RESTART_POLL > deadline {
                break;
            }
            tokio::time::sleep(RESTART_POLL).await;
            power = if event.cluster {
                AuroraClusters::new(&config)
                    .power(&event.identifier)
                    .await?
            } else {
                RdsInstances::new(&config).power(&event.identifier).await?
            };
        }
        let kind = if event.cluster {
            Kind::AuroraCluster
        } else {
            Kind::RdsInstance
        };
        let (outcome, severity, detail) = match &power {
            Power::Running if self.steward.mode().may_change() => {
                let result = adapter.stop(&[StopItem { resource: &resource, hibernate: false }]).await;
                match result.first().map(|r| r.result.clone()) {
                    Some(Ok(())) => {
                        metrics.actions_taken += 1;
                        ("stopped", Severity::Info, "it was in its off time, so it was stopped again".to_string())
                    }
                    Some(Err(e)) => {
                        metrics.actions_failed += 1;
                        ("failed", Severity::Medium, format!("stopping it again failed: {e}"))
                    }
                    None => ("failed", Severity::Medium, "no result from the stop call".to_string()),
                }
            }
            Power::Running => ("would be stopped", Severity::Info, "it is in its off time; this run changes nothing".into()),
            Power::Stopped => ("already stopped", Severity::Info, "it is already stopped".into()),
            Power::Busy(state) if self.steward.mode().may_change() => {
                match crate::resources::rds::mark_restart_pending(&config, &resource.arn, event.time).await {
                    Ok(()) => (
                        "left for the next run",
                        Severity::Info,
                        format!(
                            "it is still {state} after {} s ([offhours] restart_wait_seconds); it is tagged {RESTART_PENDING} and the next run stops it",
                            policy.offhours.restart_wait_seconds
                        ),
                    ),
                    Err(e) => {
                        metrics.actions_failed += 1;
                        (
                            "failed",
                            Severity::Medium,
                            format!("it is still {state} and marking it for the next run failed: {e:#}; stop it by hand"),
                        )
                    }
                }
            }
            Power::Busy(state) => (
                "would be left for the next run",
                Severity::Info,
                format!("it is still {state}; this run changes nothing"),
            ),
        };
        tracing::info!(resource = %resource.arn, outcome, "seven-day restart handled");
        let mut n = Notification::new(
            severity,
            Category::Offhours,
            "restart-undone",
            format!(
                "{kind} {} restarted by RDS after 7 days: {outcome}",
                resource.id
            ),
        );
        n.details.push(format!(
            "RDS started {} because it had been stopped for seven days; {detail}.",
            resource.id
        ));
        n.account = target.account.clone();
        n.region = target.region.clone();
        n.environment = resource.tags.get(steward_shared::tags::ENV).cloned();
        n.related_resources.push(resource.arn.clone());
        n.thread_id = resource.arn.clone();
        n.dedupe_key = event.event_id.clone();
        let sent = self.send(&n, policy, metrics).await?;
        Ok(
            json!({"event_id": event.event_id, "resource": resource.arn, "outcome": outcome, "notification": sent}),
        )
    }

    /// The resources of a target whose `env` changed since its previous run;
    /// records this run's tags (not in dry-run or under the kill switch). A
    /// failing table is logged: the run goes on without the comparison.
    async fn env_changes(
        &self,
        target: &Target,
        seen: &std::collections::BTreeMap<String, String>,
        change: bool,
    ) -> Vec<env_watch::EnvChange> {
        let Some(store) = self.steward.idempotency.as_deref() else {
            return Vec::new();
        };
        let previous = match env_watch::load(store, target).await {
            Ok(previous) => previous,
            Err(e) => {
                tracing::error!(target = %target, error = %format!("{e:#}"), "could not read the last seen env tags; changes are not reported this run");
                return Vec::new();
            }
        };
        let changes = previous
            .as_ref()
            .map(|before| env_watch::compare(before, seen))
            .unwrap_or_default();
        for c in &changes {
            tracing::warn!(target = %target, resource = %c.arn, change = %c, "env tag changed since the last run");
        }
        if change && previous.as_ref() != Some(seen) {
            if let Err(e) = env_watch::save(store, target, seen).await {
                tracing::error!(target = %target, error = %format!("{e:#}"), "could not record the env tags seen; the next run compares with older ones");
            }
        }
        changes
    }

    async fn send(
        &self,
        n: &Notification,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<&'static str> {
        Ok(match self.steward.notify(n, policy).await? {
            NotifyOutcome::Sent(_) => {
                metrics.notifications_sent += 1;
                "sent"
            }
            NotifyOutcome::Duplicate => "duplicate",
            NotifyOutcome::BelowThreshold => "below-threshold",
        })
    }
}

#[async_trait::async_trait]
impl<F: Fleet + 'static> steward_shared::entry::Handler for Scheduler<F> {
    async fn handle(
        &self,
        payload: Value,
        invocation: &mut steward_shared::entry::Invocation,
    ) -> anyhow::Result<Value> {
        self.process(payload, &mut invocation.metrics).await
    }
}
