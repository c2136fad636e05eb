//! The scheduler's flow for one invocation: parse the trigger; for a
//! scheduled run send the overdue digests of earlier fanned-out runs
//! (`run_digest`), resolve the targets and either fan them out to the work
//! queue or hand them to the [`Runner`] (plan, blast radius, apply, digest);
//! for an SQS batch drop stale items, carry out `budget-stop` jobs
//! (`budget_stop`), run the targets grouped by run, and report partial batch
//! failures; for an RDS seven-day restart hand over to `restart`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_shared::notify::Notification;
use steward_shared::observability::Metrics;
use steward_shared::sqs::BatchOutcome;
use steward_shared::{Policy, Steward};

use crate::events::{self, Trigger, WorkRecord};
use crate::plan::{self, Window};
use crate::report;
use crate::resources::Target;
use crate::run::{AwsFleet, Fleet};
use crate::runner::Runner;
use crate::targets::{self, Organization};
use crate::FUNCTION_NAME;

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
                crate::restart::handle(&self.steward, &self.fleet, event, &policy, metrics).await
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
        crate::run_digest::send_overdue(&self.steward, policy, window.end, metrics).await;
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
                crate::run_digest::open_run(&self.steward, window.end, &targets).await?;
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
        let key = crate::run_digest::run_key(window.end);
        let (out, _) = self
            .runner()
            .run(&targets, window, policy, &run_id, &key, false, metrics)
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
                    if let Some(job) = &item.budget_stop {
                        if let Err(why) = self.governed(&item.target(), policy).await {
                            tracing::error!(message_id = %r.message_id, why = %why, "budget-stop job refused");
                            batch.fail(&r.message_id, why);
                            continue;
                        }
                        match crate::budget_stop::run(
                            &self.steward,
                            &self.fleet,
                            &item,
                            job,
                            policy,
                            metrics,
                            now,
                        )
                        .await
                        {
                            Ok(out) => {
                                tracing::info!(message_id = %r.message_id, result = %out, "budget-stop job handled");
                                batch.ok();
                            }
                            Err(e) => {
                                tracing::error!(message_id = %r.message_id, target = %item.target(), error = %format!("{e:#}"), "budget-stop job failed; it is delivered again");
                                batch.fail(&r.message_id, format!("{e:#}"));
                            }
                        }
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
                .runner()
                .run(&targets, window, policy, &run_id, &key, true, metrics)
                .await?;
            for (message_id, target) in &items {
                if failed_targets.contains(target) {
                    batch.fail(
                        message_id,
                        format!("target {target} failed (the target or one of its resources); delivered again"),
                    );
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
        self.send(&report::stale_work(stale, policy), policy, metrics)
            .await?;
        Ok(())
    }

    /// Whether `target` is one of this scheduler's targets (the policy's
    /// accounts and OUs times its regions): a job for anything else is
    /// refused, whoever could write to the queue.
    async fn governed(&self, target: &Target, policy: &Policy) -> Result<(), String> {
        let aws = &self.steward.aws;
        let targets = targets::resolve(
            policy,
            aws.own_account(),
            aws.own_region(),
            self.org.as_deref(),
        )
        .await
        .map_err(|e| format!("could not resolve the targets to check the job: {e:#}"))?;
        if targets.contains(target) {
            Ok(())
        } else {
            Err(format!("{target} is not a target of this scheduler ([targets] accounts, organizational_units and regions); a budget-stop job for it is refused"))
        }
    }

    fn runner(&self) -> Runner<'_, F> {
        Runner {
            steward: &self.steward,
            fleet: &self.fleet,
        }
    }

    async fn send(
        &self,
        n: &Notification,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<&'static str> {
        report::send(&self.steward, n, policy, metrics).await
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
