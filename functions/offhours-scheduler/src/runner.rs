//! One run over a set of targets, from plan to digest: load the targets'
//! pending retries, list and plan (`run::plan_targets`), hold the blast
//! radius (for the whole invocation, or the fanned-out run's budget in the
//! idempotency table), apply, record failed transitions for the following
//! runs, and send the digest (one per run: a fanned-out run's batches record
//! their results and the last one sends it, see `run_digest`). Used by the
//! handler for a scheduled run and for each batch of work items.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use steward_shared::observability::Metrics;
use steward_shared::{safety, Policy, Steward};

use crate::plan::{self, Window};
use crate::resources::Target;
use crate::run::{self, Fleet, Outcome, TargetReport};
use crate::{digest, env_watch, report, run_digest, run_state};

/// A run's collaborators: the shared context and the fleet of adapters.
pub struct Runner<'a, F: Fleet> {
    pub steward: &'a Steward,
    pub fleet: &'a F,
}

impl<F: Fleet> Runner<'_, F> {
    /// Plans, checks the blast radius, applies and reports one run; returns
    /// the response and the targets that failed (the target, or one of its
    /// resources). `fanned`: the targets are one batch of a fanned-out run,
    /// so the blast radius is the run's budget in the idempotency table and
    /// the digest leaves out targets a batch before reported.
    #[allow(clippy::too_many_arguments)]
    pub async fn run(
        &self,
        targets: &[Target],
        window: Window,
        policy: &Policy,
        run_id: &str,
        dedupe_key: &str,
        fanned: bool,
        metrics: &mut Metrics,
    ) -> anyhow::Result<(Value, Vec<Target>)> {
        let calls_before = crate::calls::sent();
        let operations_before = crate::calls::by_operation();
        let change = self.steward.mode().may_change();
        let store = self.steward.idempotency.as_deref();
        let live_store = store.filter(|_| change);
        // What earlier runs left, read in batches before planning.
        let (carried, env_before): (BTreeMap<Target, plan::Carried>, env_watch::Previous) =
            match store {
                Some(store) => {
                    futures::join!(
                        run_state::load_carried(store, targets),
                        env_watch::Previous::load(store, targets)
                    )
                }
                None => (BTreeMap::new(), env_watch::Previous::none()),
            };
        let plans = run::plan_targets(self.fleet, targets, policy, window, run_id, &carried).await;
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
        let limit = policy.limits.max_changes_per_run;
        let mut held_back: BTreeMap<Target, String> = BTreeMap::new();
        let mut budget_errors: BTreeMap<Target, String> = BTreeMap::new();
        // Targets holding a reservation from the run's budget: what they do
        // not change is given back after applying.
        let mut reserved: std::collections::BTreeSet<Target> = Default::default();
        match live_store.filter(|_| fanned) {
            Some(store) => {
                for p in &plans {
                    let Ok((plan, _)) = &p.result else { continue };
                    let n = plan.changes() as u64;
                    match run_state::reserve(store, window.end, &p.target, n, u64::from(limit))
                        .await
                    {
                        Ok(run_state::Reservation::Refused) => {
                            held_back.insert(p.target.clone(), format!("its {n} change(s) do not fit in what is left of the run's [limits] max_changes_per_run = {limit}; nothing was changed in this target"));
                        }
                        Ok(_) => {
                            if n > 0 {
                                reserved.insert(p.target.clone());
                            }
                        }
                        Err(e) => {
                            budget_errors.insert(p.target.clone(), format!("the run's blast-radius budget could not be reserved ({e:#}); nothing was changed, the work item is delivered again"));
                        }
                    }
                }
                if !held_back.is_empty() {
                    let n = report::run_blast_radius(&held_back, &plans, window, limit, run_id);
                    report::send(self.steward, &n, policy, metrics).await?;
                }
            }
            None => {
                if let Err(exceeded) = safety::check_blast_radius(changes, limit) {
                    tracing::error!(
                        planned = changes,
                        limit = exceeded.limit,
                        "blast-radius limit exceeded; changing nothing"
                    );
                    let mut n = report::blast_radius(&exceeded, &plans, targets, window, run_id);
                    n.dedupe_key = format!("{dedupe_key}#blast-radius");
                    let sent = report::send(self.steward, &n, policy, metrics).await?;
                    return Ok((
                        json!({"window": window, "blocked": exceeded.to_string(), "notification": sent}),
                        Vec::new(),
                    ));
                }
            }
        }
        let bound = policy.offhours.concurrency.max(1) as usize;
        let (held_back, budget_errors, carried, reserved, env_before) =
            (&held_back, &budget_errors, &carried, &reserved, &env_before);
        let reports: Vec<TargetReport> = stream::iter(plans)
            .map(|p| async move {
                let (plan, adapters) = match p.result {
                    Ok(ok) => ok,
                    Err(e) => {
                        tracing::error!(target = %p.target, error = %format!("{e:#}"), "target failed; the others proceed");
                        // With no earlier run on record the next run would start
                        // after this window and lose its transitions: record its
                        // start, so the next run catches this window up.
                        let previous = carried.get(&p.target).and_then(|c| c.covered_until);
                        if let (Some(store), None) = (live_store, previous) {
                            if let Err(e) = run_state::save_covered(store, &p.target, None, window.start).await {
                                tracing::error!(target = %p.target, error = %format!("{e:#}"), "could not record where the failed target's next run must catch up from");
                            }
                        }
                        return TargetReport::failed(p.target, format!("{e:#}"));
                    }
                };
                if let Some(why) = budget_errors.get(&p.target) {
                    return TargetReport::failed(p.target, why.clone());
                }
                let blocked = held_back.get(&p.target).cloned();
                // The env comparison and the changes are independent: one round trip, not two.
                let (env_changes, done) = futures::join!(
                    env_watch::changes_since_last_run(store, env_before, &p.target, &plan.seen_env, change),
                    async {
                        if blocked.is_some() {
                            Vec::new()
                        } else {
                            run::apply(&plan, &adapters, change).await
                        }
                    }
                );
                if let Some(store) = live_store {
                    let give_back = async {
                        if reserved.contains(&p.target) {
                            let succeeded = done.iter().filter(|d| d.outcome.is_stop() || d.outcome.is_start()).count();
                            run_state::settle(store, window.end, &p.target, plan.changes() as u64, succeeded as u64).await;
                        }
                    };
                    let covered = async {
                        if blocked.is_none() {
                            let previous = carried.get(&p.target).and_then(|c| c.covered_until);
                            if let Err(e) = run_state::save_covered(store, &p.target, previous, window.end).await {
                                tracing::error!(target = %p.target, error = %format!("{e:#}"), "could not record the window this run covered; the next run does not catch up past it");
                            }
                        }
                    };
                    let retries = async {
                        if blocked.is_none() {
                            run_state::record_retries(store, &p.target, &plan, &done, carried.get(&p.target).map(|c| &c.retries), window).await;
                        }
                    };
                    futures::join!(give_back, covered, retries);
                }
                TargetReport {
                    target: p.target,
                    error: None,
                    done,
                    malformed: plan.malformed,
                    evaluated: plan.evaluated,
                    env_changes,
                    held_back: blocked,
                    caught_up_from: plan.window.map(|w| w.start).filter(|s| *s < window.start),
                    retried: plan.retried,
                    gave_up: plan.gave_up,
                }
            })
            .buffered(bound)
            .collect()
            .await;
        for r in &reports {
            for d in &r.done {
                match d.outcome {
                    Outcome::Failed => {
                        metrics.actions_failed += 1;
                        tracing::error!(resource = %d.arn, kind = %d.kind, error = d.reason.as_deref().unwrap_or(""), "action failed; retried by the following runs within [offhours] catch_up_minutes");
                    }
                    Outcome::Skipped => {
                        tracing::info!(resource = %d.arn, kind = %d.kind, reason = d.reason.as_deref().unwrap_or(""), "skipped")
                    }
                    outcome => {
                        if change {
                            metrics.actions_taken += 1;
                        }
                        tracing::info!(resource = %d.arn, kind = %d.kind, outcome = %outcome, mode = %self.steward.mode(), "resource changed");
                    }
                }
            }
        }
        let failed: Vec<Target> = reports
            .iter()
            .filter(|r| r.has_failures())
            .map(|r| r.target.clone())
            .collect();
        let notification = self
            .digest(
                &reports, window, policy, run_id, dedupe_key, fanned, metrics,
            )
            .await?;
        let aws_calls = crate::calls::sent() - calls_before;
        let by_operation: BTreeMap<String, u64> = crate::calls::by_operation()
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

    /// Sends the run's digest: for a batch of a fanned-out run, the run's
    /// one digest once its last target reported (`run_digest`); otherwise
    /// the digest of this invocation's run.
    #[allow(clippy::too_many_arguments)]
    async fn digest(
        &self,
        reports: &[TargetReport],
        window: Window,
        policy: &Policy,
        run_id: &str,
        dedupe_key: &str,
        fanned: bool,
        metrics: &mut Metrics,
    ) -> anyhow::Result<&'static str> {
        if fanned {
            return run_digest::after_batch(self.steward, reports, window, policy, run_id, metrics)
                .await;
        }
        let all: Vec<&TargetReport> = reports.iter().collect();
        if !digest::worth_sending(&all, run_digest::default_transition(policy, window)) {
            tracing::info!("nothing to report this run; no digest");
            return Ok("none");
        }
        let n = digest::build(&all, window, policy, run_id, dedupe_key);
        report::send(self.steward, &n, policy, metrics).await
    }
}
