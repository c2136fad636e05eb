//! The copier's flow for one invocation: parse the trigger; for a snapshot
//! event or a waiting copy read the snapshot and its database from RDS,
//! decide, check the DR key and the capacity, copy or park; for the sweep
//! hand over to `sweep`. Dry-run and the kill switch stop after the plan.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_shared::entry::Invocation;
use steward_shared::{Handler, Policy, Steward};

use crate::clients::{AwsConnect, Connect};
use crate::events::{self, SnapshotEvent, Trigger};
use crate::execute::Executor;
use crate::model::WaitingCopy;
use crate::plan::{self, Decision};
use crate::queue::{CopyQueue, SqsCopyQueue};
use crate::rds::Rds;
use crate::report::{self, Batch, CopyResults};
use crate::{drill_run, sweep, FUNCTION_NAME};

/// The copier, built once per process.
pub struct Copier {
    pub steward: Arc<Steward>,
    pub connect: Arc<dyn Connect>,
    pub queue: Option<Arc<dyn CopyQueue>>,
}

impl Copier {
    /// The copier on the real SDK adapters.
    pub fn from_steward(steward: Arc<Steward>) -> Copier {
        let queue: Option<Arc<dyn CopyQueue>> = match &steward.settings.copy_queue {
            Some(url) => Some(Arc::new(SqsCopyQueue {
                client: aws_sdk_sqs::Client::new(steward.aws.base()),
                url: url.clone(),
            })),
            None => {
                tracing::warn!("STEWARD_COPY_QUEUE is not set: copies waiting for capacity are left to the next sweep");
                None
            }
        };
        Copier {
            connect: Arc::new(AwsConnect(steward.aws.clone())),
            queue,
            steward,
        }
    }

    /// Reads one source snapshot and decides its copy.
    async fn decide_one(
        &self,
        copy: &WaitingCopy,
        session: &str,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(Decision, Option<Box<dyn Rds>>)> {
        let cfg = &policy.snapshots;
        if !cfg.enabled || cfg.dr_region.is_empty() {
            return Ok((
                Decision::Ignore("copying is off (snapshots.enabled, snapshots.dr_region)".into()),
                None,
            ));
        }
        if copy.region == cfg.dr_region {
            return Ok((
                Decision::Ignore(
                    "the snapshot is in the DR region; copies are never sources".into(),
                ),
                None,
            ));
        }
        let source_rds = self
            .connect
            .rds(&copy.account, &copy.region, session)
            .await?;
        let Some(source) = source_rds.snapshot(copy.kind, &copy.snapshot_id).await? else {
            return Ok((
                Decision::Ignore(format!(
                    "{} snapshot {} no longer exists",
                    copy.kind, copy.snapshot_id
                )),
                None,
            ));
        };
        let database_tags = source_rds
            .database_tags(copy.kind, &source.database)
            .await?;
        let dr = self
            .connect
            .rds(&copy.account, &cfg.dr_region, session)
            .await?;
        let exists = dr
            .snapshot(copy.kind, &plan::target_identifier(&source.arn))
            .await?
            .is_some();
        Ok((
            plan::decide(&source, database_tags.as_ref(), exists, cfg, now),
            Some(dr),
        ))
    }

    /// Carries out copy orders in `dr` (see [`crate::execute`]).
    pub fn executor(&self) -> Executor<'_> {
        Executor {
            connect: self.connect.as_ref(),
            queue: self.queue.as_deref(),
            mode: self.steward.mode(),
        }
    }

    /// Sends the alerts of a copy result (key, quota, encryption).
    pub async fn alert(
        &self,
        batch: Batch<'_>,
        policy: &Policy,
        run_id: &str,
        invocation: &mut Invocation,
    ) -> anyhow::Result<()> {
        for note in report::alerts(&batch, &policy.snapshots, run_id) {
            self.steward
                .notify_counted(&note, policy, invocation)
                .await?;
        }
        Ok(())
    }

    /// One source snapshot, from an event or the copy queue.
    async fn copy_one(
        &self,
        copy: WaitingCopy,
        run_id: &str,
        policy: &Policy,
        invocation: &mut Invocation,
    ) -> anyhow::Result<Value> {
        let now = Utc::now();
        let (decision, dr) = self.decide_one(&copy, run_id, policy, now).await?;
        invocation.metrics.resources_evaluated += 1;
        let (orders, refused) = match decision {
            Decision::Copy(order) => (vec![*order], vec![]),
            Decision::Present { target_id } => {
                tracing::info!(%target_id, "the DR copy exists already; nothing to do");
                return Ok(json!({"snapshot": copy.snapshot_id, "present": target_id}));
            }
            Decision::Ignore(why) => {
                tracing::info!(why = %why, snapshot = %copy.snapshot_id, "not copied");
                return Ok(json!({"snapshot": copy.snapshot_id, "ignored": why}));
            }
            Decision::Refuse { target_id, why } => {
                let source = self
                    .connect
                    .rds(&copy.account, &copy.region, run_id)
                    .await?;
                let snapshot = source.snapshot(copy.kind, &copy.snapshot_id).await?;
                let refused: Vec<_> = snapshot.into_iter().map(|s| (s, why.clone())).collect();
                let batch = Batch {
                    account: &copy.account,
                    results: &CopyResults::default(),
                    orders: &[],
                    refused: &refused,
                };
                self.alert(batch, policy, run_id, invocation).await?;
                return Ok(
                    json!({"snapshot": copy.snapshot_id, "refused": why, "target": target_id}),
                );
            }
        };
        let Some(dr) = dr else {
            anyhow::bail!("no DR client for a copy decision");
        };
        let results = self
            .executor()
            .run(&copy.account, dr.as_ref(), orders.clone(), policy, run_id)
            .await?;
        invocation.metrics.actions_taken += results.started.len() as u64;
        invocation.metrics.actions_failed += results.failed.len() as u64;
        let batch = Batch {
            account: &copy.account,
            results: &results,
            orders: &orders,
            refused: &refused,
        };
        self.alert(batch, policy, run_id, invocation).await?;
        let response = json!({"snapshot": copy.snapshot_id, "mode": self.steward.mode().as_str(), "results": results});
        if results.key_missing.is_none() {
            if let Some((source, why)) = results.failed.first() {
                anyhow::bail!(
                    "copy of {source} failed: {why}; the retry or the next sweep tries again"
                );
            }
        }
        Ok(response)
    }

    async fn on_event(
        &self,
        event: SnapshotEvent,
        policy: &Policy,
        invocation: &mut Invocation,
    ) -> anyhow::Result<Value> {
        tracing::info!(code = %event.code, account = %event.account, snapshot = %event.snapshot_id, "snapshot created");
        let copy = WaitingCopy {
            account: event.account,
            region: event.region,
            kind: event.kind,
            snapshot_id: event.snapshot_id,
        };
        self.copy_one(copy, &event.event_id, policy, invocation)
            .await
    }

    async fn on_queue(
        &self,
        records: Vec<steward_shared::sqs::SqsRecord>,
        policy: &Policy,
        invocation: &mut Invocation,
    ) -> anyhow::Result<Value> {
        let mut outcome = steward_shared::sqs::BatchOutcome::default();
        for record in &records {
            let result = match events::parse_waiting(&record.body) {
                Ok(copy) => self
                    .copy_one(copy, &record.message_id, policy, invocation)
                    .await
                    .map(|_| ()),
                Err(e) => Err(anyhow::Error::new(e)),
            };
            match result {
                Ok(()) => outcome.ok(),
                Err(e) => {
                    tracing::error!(message_id = %record.message_id, error = %format!("{e:#}"), "waiting copy failed; it will be delivered again");
                    outcome.fail(&record.message_id, format!("{e:#}"));
                }
            }
        }
        Ok(outcome.response())
    }
}

#[async_trait::async_trait]
impl Handler for Copier {
    async fn handle(&self, payload: Value, invocation: &mut Invocation) -> anyhow::Result<Value> {
        let trigger = events::parse(&payload, Utc::now())?;
        let policy = self.steward.policy.current().await;
        match trigger {
            Trigger::Snapshot(event) => {
                invocation.set_event_id(&event.event_id);
                self.on_event(event, &policy, invocation).await
            }
            Trigger::Queue(records) => {
                invocation
                    .set_event_id(records.first().map(|r| r.message_id.as_str()).unwrap_or(""));
                self.on_queue(records, &policy, invocation).await
            }
            Trigger::Scheduled(run) => {
                invocation.set_event_id(&run.id);
                if run.job == "dr-drill" {
                    return drill_run::job(self, &run, None, &policy, invocation).await;
                }
                sweep::run(self, &run, &policy, invocation).await
            }
            Trigger::Drill { run, database } => {
                invocation.set_event_id(&run.id);
                drill_run::job(self, &run, Some(&database), &policy, invocation).await
            }
            Trigger::Ignored { id, why } => {
                invocation.set_event_id(&id);
                tracing::info!(why = %why, "event not acted on");
                Ok(json!({"event_id": id, "ignored": why, "function": FUNCTION_NAME}))
            }
        }
    }
}
