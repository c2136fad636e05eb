//! The `budget-stop` job (SPEC section 4): the budget alerter found an ACTUAL
//! breach of a dev account's budget and put one job per (account, region)
//! on the work queue. The scheduler lists the target's resources, plans with
//! the pure [`plan::plan_budget_stop`] (its invariants: allowed `env` only,
//! `steward:exempt`, the account floor, owners, the blast radius), tags
//! each in-scope resource `steward:budget-hold=<period_end>` and stops the
//! running ones, then sends one notification. The job is carried out at
//! most once (`Steward::once` on the job's key): a redelivered job stops and
//! notifies nothing twice. A failure fails the work item so SQS delivers it
//! again; dry-run and the kill switch plan and notify, and write nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_shared::context::Once;
use steward_shared::idempotency::keys;
use steward_shared::notify::Category;
use steward_shared::observability::Metrics;
use steward_shared::{safety, Policy, Steward};

use crate::events::{BudgetStop, WorkItem};
use crate::model::{Kind, Resource, BUDGET_HOLD};
use crate::plan::{self, HoldDecision, HoldPlan};
use crate::report::{self, HoldDone, HoldOutcome};
use crate::resources::{ScheduledResource, StopItem};
use crate::run::Fleet;
use crate::FUNCTION_NAME;

/// The job's identity: one per account, region, budget and period.
pub fn job_key(item: &WorkItem, job: &BudgetStop) -> String {
    format!(
        "budget-stop#{}#{}#{}#{}",
        item.account, item.region, job.budget, job.period_start
    )
}

/// Carries out one `budget-stop` job. `Ok` consumes the work item (done,
/// done before, or stopped by the blast radius with a HIGH alert); `Err`
/// fails it so it is delivered again.
pub async fn run(
    steward: &Steward,
    fleet: &dyn Fleet,
    item: &WorkItem,
    job: &BudgetStop,
    policy: &Policy,
    metrics: &mut Metrics,
    now: DateTime<Utc>,
) -> anyhow::Result<Value> {
    let target = item.target();
    let key = job_key(item, job);
    let adapters = fleet.adapters(&target, "steward-budget-stop").await?;
    let mut resources: Vec<Resource> = Vec::new();
    for adapter in &adapters {
        let listed = adapter
            .list()
            .await
            .map_err(|e| anyhow::anyhow!("listing {} in {target}: {e:#}", adapter.kind()))?;
        resources.extend(listed);
    }
    let plan = plan::plan_budget_stop(
        resources,
        policy,
        &target.account,
        job.period_end,
        now.date_naive(),
    );
    metrics.resources_evaluated += plan.evaluated as u64;
    if let Err(exceeded) =
        safety::check_blast_radius(plan.changes(), policy.limits.max_changes_per_run)
    {
        tracing::error!(job = %key, planned = exceeded.planned, limit = exceeded.limit, "budget stop over the blast-radius limit; changing nothing");
        let mut n = safety::blast_radius_notice(
            Category::Budget,
            &exceeded,
            format!(
                "budget stop of {target} would change {} resources; limit {}",
                exceeded.planned, exceeded.limit
            ),
            plan.items
                .iter()
                .map(|p| format!("{:?} {} {}", p.decision, p.resource.kind, p.resource.id))
                .collect(),
            "Check why so many dev resources run in this account before stopping them all.",
        );
        n.account = target.account.clone();
        n.region = target.region.clone();
        n.thread_id = report::thread_id(item, job);
        n.dedupe_key = format!("{key}#blast-radius");
        n.facts.insert("job".into(), serde_json::to_string(item)?);
        let sent = steward.notify(&n, policy).await?;
        metrics.notifications_sent += u64::from(sent.is_sent());
        return Ok(
            json!({"job": key, "blocked": exceeded.to_string(), "notification": sent.as_str()}),
        );
    }
    let change = steward.mode().may_change();
    let keep = Duration::from_secs(
        ((job.period_end - now.date_naive())
            .num_days()
            .clamp(1, plan::MAX_HOLD_DAYS) as u64
            + 7)
            * 86_400,
    );
    let action = keys::action(FUNCTION_NAME, &key);
    let (plan, adapters, key_ref, target) = (&plan, &adapters, &key, &target);
    let outcome = steward
        .once(&action, keep, move || async move {
            let key = key_ref;
            let done = execute(plan, adapters, job, change).await;
            let failed = done.iter().filter(|d| d.outcome == HoldOutcome::Failed).count();
            let n = report::budget_stop(item, job, &done, change, policy);
            let sent = steward.notify(&n, policy).await?;
            if sent.is_sent() {
                metrics.notifications_sent += 1;
            }
            for d in &done {
                match d.outcome {
                    HoldOutcome::Failed => metrics.actions_failed += 1,
                    HoldOutcome::Stopped | HoldOutcome::Held if change => {
                        metrics.actions_taken += 1
                    }
                    _ => {}
                }
                tracing::info!(job = %key, resource = %d.arn, outcome = ?d.outcome, reason = d.reason.as_deref().unwrap_or(""), "budget stop");
            }
            if failed > 0 {
                anyhow::bail!(
                    "{failed} resource(s) of {target} could not be stopped or held; the work item is delivered again"
                );
            }
            Ok(json!({"job": key, "done": done, "notification": sent.as_str()}).to_string())
        })
        .await?;
    Ok(match outcome {
        Once::Ran(result) => serde_json::from_str(&result).unwrap_or(Value::Null),
        Once::AlreadyDone(_) => {
            tracing::info!(job = %key, "budget-stop job already carried out; nothing to do");
            json!({"job": key, "already_done": true})
        }
    })
}

/// Tags the hold, then stops (per resource type, in batches); reports what
/// would happen when `change` is false.
async fn execute(
    plan: &HoldPlan,
    adapters: &[Arc<dyn ScheduledResource>],
    job: &BudgetStop,
    change: bool,
) -> Vec<HoldDone> {
    let hold = job.period_end.format("%Y-%m-%d").to_string();
    let mut done = Vec::new();
    let mut stops: BTreeMap<Kind, Vec<StopItem<'_>>> = BTreeMap::new();
    for p in &plan.items {
        let r = &p.resource;
        let (outcome, reason) = match &p.decision {
            HoldDecision::Skip { reason } => (HoldOutcome::Skipped, Some(reason.clone())),
            HoldDecision::AlreadyHeld => (HoldOutcome::AlreadyHeld, None),
            HoldDecision::Hold | HoldDecision::StopAndHold { .. } if change => {
                let adapter = adapters.iter().find(|a| a.kind() == r.kind);
                let tagged = match adapter {
                    Some(a) => a.tag(r, BUDGET_HOLD, &hold).await,
                    None => Err(format!("no adapter for {}", r.kind)),
                };
                match (tagged, &p.decision) {
                    (Err(e), _) => (
                        HoldOutcome::Failed,
                        Some(format!(
                            "tagging {BUDGET_HOLD} failed, so it was not stopped: {e}"
                        )),
                    ),
                    (Ok(()), HoldDecision::StopAndHold { hibernate }) => {
                        stops.entry(r.kind).or_default().push(StopItem {
                            resource: r,
                            hibernate: *hibernate,
                        });
                        continue;
                    }
                    (Ok(()), _) => (HoldOutcome::Held, None),
                }
            }
            HoldDecision::Hold => (HoldOutcome::Held, None),
            HoldDecision::StopAndHold { .. } => (HoldOutcome::Stopped, None),
        };
        done.push(HoldDone::of(r, outcome, reason));
    }
    for (kind, batch) in stops {
        let Some(adapter) = adapters.iter().find(|a| a.kind() == kind) else {
            continue;
        };
        for result in adapter.stop(&batch).await {
            let Some(item) = batch.iter().find(|s| s.resource.id == result.id) else {
                continue;
            };
            done.push(match result.result {
                Ok(()) => HoldDone::of(item.resource, HoldOutcome::Stopped, None),
                Err(e) => HoldDone::of(
                    item.resource,
                    HoldOutcome::Failed,
                    Some(format!("held, but stopping it failed: {e}")),
                ),
            });
        }
    }
    done
}
