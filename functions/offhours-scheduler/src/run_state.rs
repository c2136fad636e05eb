//! What a run keeps in the idempotency table between invocations (issue 10),
//! beside the per-target `env` record of `env_watch`:
//!
//! - pending retries per target (`state#offhours-scheduler#retry#ACCOUNT/REGION`,
//!   a JSON map from ARN to [`PendingRetry`]): the stops and starts that
//!   failed, retried by later runs within `[offhours] catch_up_minutes`;
//! - the run's blast-radius budget (`state#offhours-scheduler#run-budget#END`):
//!   the changes reserved so far by the targets of a fanned-out run, with a
//!   conditional atomic update (`IdempotencyStore::reserve`), and one marker
//!   per target that reserved, so a redelivered work item does not reserve
//!   twice;
//! - a fanned-out run's one digest: the targets the fan-out queued
//!   (`...#run-targets#END`, written before the work items are queued), the
//!   set of targets whose batch recorded a result (`...#run-reported#END`,
//!   an atomic set addition, so exactly one batch sees the run complete),
//!   each target's result (`...#run-result#END#TARGET`, the target's report
//!   as compact JSON), and the set of runs whose digest is still due
//!   (`...#open-runs`), read by the next scheduled run for overdue digests.
//!
//! Nothing here is written in dry-run or under the kill switch.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use steward_shared::idempotency::{keys, IdempotencyStore};

use crate::plan::{next_retries, Carried, Plan, Retries, Window};
use crate::resources::Target;
use crate::run::{Done, Outcome, TargetReport};
use crate::FUNCTION_NAME;

/// How long pending retries are kept without a run (the catch-up limit is
/// checked on each entry; this only bounds the record).
const RETRY_KEEP: Duration = Duration::from_secs(7 * 86_400);
/// How long a run's budget and digest records are kept.
const RUN_KEEP: Duration = Duration::from_secs(2 * 86_400);
/// How long the list of runs whose digest is due lives without a new fan-out.
const OPEN_RUNS_KEEP: Duration = Duration::from_secs(7 * 86_400);

fn retry_key(target: &Target) -> String {
    keys::state(FUNCTION_NAME, &format!("retry#{target}"))
}

fn budget_key(run_end: DateTime<Utc>) -> String {
    keys::state(
        FUNCTION_NAME,
        &format!("run-budget#{}", run_end.to_rfc3339()),
    )
}

fn reserved_key(run_end: DateTime<Utc>, target: &Target) -> String {
    keys::state(
        FUNCTION_NAME,
        &format!("run-budget#{}#{target}", run_end.to_rfc3339()),
    )
}

fn run_targets_key(run_end: DateTime<Utc>) -> String {
    keys::state(
        FUNCTION_NAME,
        &format!("run-targets#{}", run_end.to_rfc3339()),
    )
}

fn run_reported_key(run_end: DateTime<Utc>) -> String {
    keys::state(
        FUNCTION_NAME,
        &format!("run-reported#{}", run_end.to_rfc3339()),
    )
}

fn run_result_key(run_end: DateTime<Utc>, target: &str) -> String {
    keys::state(
        FUNCTION_NAME,
        &format!("run-result#{}#{target}", run_end.to_rfc3339()),
    )
}

fn open_runs_key() -> String {
    keys::state(FUNCTION_NAME, "open-runs")
}

/// Records the pending retries of a target.
pub async fn save_retries(
    store: &dyn IdempotencyStore,
    target: &Target,
    retries: &Retries,
) -> anyhow::Result<()> {
    store
        .put_state(
            &retry_key(target),
            &serde_json::to_string(retries)?,
            RETRY_KEEP,
        )
        .await
}

fn covered_key(target: &Target) -> String {
    keys::state(FUNCTION_NAME, &format!("covered#{target}"))
}

/// What each target carries from earlier runs: its pending retries and the
/// window end of its previous run, read in batches (two keys per target).
/// Records that cannot be read count as absent (logged): no retry and no
/// catch-up, never a wider window.
pub async fn load_carried(
    store: &dyn IdempotencyStore,
    targets: &[Target],
) -> BTreeMap<Target, Carried> {
    let keys: Vec<String> = targets
        .iter()
        .flat_map(|t| [retry_key(t), covered_key(t)])
        .collect();
    let records = match store.get_many(&keys).await {
        Ok(records) => records,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "could not read the targets' pending retries and previous windows; failed transitions of earlier runs are not retried and missed windows are not caught up this run");
            return BTreeMap::new();
        }
    };
    targets
        .iter()
        .zip(records.chunks(2))
        .map(|(target, pair)| {
            let retries = pair[0]
                .as_ref()
                .and_then(|r| r.result.as_deref())
                .and_then(|r| serde_json::from_str::<Retries>(r).ok())
                .unwrap_or_default();
            let covered_until = pair[1]
                .as_ref()
                .and_then(|r| r.result.as_deref())
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .map(|t| t.with_timezone(&Utc));
            (
                target.clone(),
                Carried {
                    retries,
                    covered_until,
                },
            )
        })
        .collect()
}

/// Records the window end this run covered for `target` (only ever moves forward).
pub async fn save_covered(
    store: &dyn IdempotencyStore,
    target: &Target,
    previous: Option<DateTime<Utc>>,
    end: DateTime<Utc>,
) -> anyhow::Result<()> {
    if previous.is_some_and(|p| p >= end) {
        return Ok(());
    }
    store
        .put_state(&covered_key(target), &end.to_rfc3339(), RETRY_KEEP)
        .await
}

/// The answer of the run's budget to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The target's changes fit: they are taken from the run's budget.
    Granted,
    /// This target reserved before (a redelivered work item): go ahead.
    AlreadyReserved,
    /// The run's budget cannot hold the target's changes: change nothing.
    Refused,
}

/// Reserves `changes` of the run's `limit` for `target`, atomically. The
/// target's marker holds the units it reserved and has not settled yet
/// (see [`settle`]): an attempt that finds enough of them (a redelivery of
/// an attempt that stopped before settling) uses them instead of
/// reserving again, and one that needs more reserves only the difference.
pub async fn reserve(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
    target: &Target,
    changes: u64,
    limit: u64,
) -> anyhow::Result<Reservation> {
    let marker = reserved_key(run_end, target);
    let outstanding = store
        .get(&marker)
        .await?
        .map(|r| r.result.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0));
    if outstanding.is_some_and(|held| changes <= held) {
        return Ok(Reservation::AlreadyReserved);
    }
    if changes == 0 {
        return Ok(Reservation::Granted);
    }
    let more = changes - outstanding.unwrap_or(0);
    if !store
        .reserve(&budget_key(run_end), more, limit, RUN_KEEP)
        .await?
    {
        return Ok(Reservation::Refused);
    }
    store
        .put_state(&marker, &changes.to_string(), RUN_KEEP)
        .await?;
    Ok(Reservation::Granted)
}

/// After applying: the `planned - succeeded` changes that did not happen
/// (failed stops and starts) are given back to the run's budget with a
/// conditional atomic decrement, so the run does not stop short for
/// nothing; the changes made stay counted. The target's marker is settled
/// to zero (a redelivery reserves what it then plans). Errors are logged:
/// a reservation not given back only makes the run stop earlier.
pub async fn settle(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
    target: &Target,
    planned: u64,
    succeeded: u64,
) {
    let unused = planned.saturating_sub(succeeded);
    if unused > 0 {
        match store.give_back(&budget_key(run_end), unused).await {
            Ok(true) => {
                tracing::info!(target = %target, given_back = unused, "changes that did not happen were given back to the run's blast-radius budget")
            }
            Ok(false) => {
                tracing::error!(target = %target, unused, "the run's budget holds fewer changes than this target reserved; nothing given back")
            }
            Err(e) => {
                tracing::error!(target = %target, error = %format!("{e:#}"), "could not give back the changes that did not happen; the run may stop short")
            }
        }
    }
    if let Err(e) = store
        .put_state(&reserved_key(run_end, target), "0", RUN_KEEP)
        .await
    {
        tracing::error!(target = %target, error = %format!("{e:#}"), "could not settle the target's reservation; a redelivery uses it again");
    }
}

/// Records, before its work items are queued, which targets a fanned-out
/// run expects, and lists the run among the runs whose digest is due.
pub async fn open_run(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
    targets: &[Target],
) -> anyhow::Result<()> {
    let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
    store
        .put_state(
            &run_targets_key(run_end),
            &serde_json::to_string(&names)?,
            RUN_KEEP,
        )
        .await?;
    store
        .add_members(&open_runs_key(), &[run_end.to_rfc3339()], OPEN_RUNS_KEEP)
        .await?;
    Ok(())
}

/// The targets a fanned-out run expects (`None`: no fan-out recorded this
/// run, e.g. work items queued by hand, or in dry-run).
pub async fn expected(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
) -> anyhow::Result<Option<BTreeSet<String>>> {
    let Some(record) = store.get(&run_targets_key(run_end)).await? else {
        return Ok(None);
    };
    let text = record.result.unwrap_or_default();
    let names: Vec<String> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("the run's target list {text:?} does not parse ({e}); it is rewritten by the next fan-out")
    })?;
    Ok(Some(names.into_iter().collect()))
}

/// Records each target's result under the run (a redelivery overwrites it
/// with the newer one), then adds the targets to the run's reported set;
/// returns the reported set as it was before (see `IdempotencyStore::add_members`).
pub async fn record_results(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
    reports: &[TargetReport],
) -> anyhow::Result<BTreeSet<String>> {
    for r in reports {
        store
            .put_state(
                &run_result_key(run_end, &r.target.to_string()),
                &serde_json::to_string(r)?,
                RUN_KEEP,
            )
            .await?;
    }
    let names: Vec<String> = reports.iter().map(|r| r.target.to_string()).collect();
    store
        .add_members(&run_reported_key(run_end), &names, RUN_KEEP)
        .await
}

/// The targets whose result the run recorded.
pub async fn reported(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
) -> anyhow::Result<BTreeSet<String>> {
    store.members(&run_reported_key(run_end)).await
}

/// The recorded results of `targets` (a result that cannot be read is
/// left out and named in the second list).
pub async fn results(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
    targets: &BTreeSet<String>,
) -> (Vec<TargetReport>, Vec<String>) {
    let keys: Vec<String> = targets.iter().map(|t| run_result_key(run_end, t)).collect();
    let read: Vec<anyhow::Result<TargetReport>> = match store.get_many(&keys).await {
        Ok(records) => records
            .into_iter()
            .map(|record| {
                let text = record.and_then(|r| r.result).unwrap_or_default();
                serde_json::from_str::<TargetReport>(&text)
                    .map_err(|e| anyhow::anyhow!("result {text:?} does not parse: {e}"))
            })
            .collect(),
        Err(e) => targets
            .iter()
            .map(|_| Err(anyhow::anyhow!("{e:#}")))
            .collect(),
    };
    let mut reports = Vec::new();
    let mut unreadable = Vec::new();
    for (t, r) in targets.iter().zip(read) {
        match r {
            Ok(report) => reports.push(report),
            Err(e) => {
                tracing::error!(target = %t, error = %format!("{e:#}"), "could not read the target's recorded result; the digest names it as unreadable");
                unreadable.push(t.clone());
            }
        }
    }
    (reports, unreadable)
}

/// The window ends of the fanned-out runs whose digest is still due.
pub async fn open_runs(store: &dyn IdempotencyStore) -> anyhow::Result<Vec<DateTime<Utc>>> {
    Ok(store
        .members(&open_runs_key())
        .await?
        .iter()
        .filter_map(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc))
        .collect())
}

/// The run's digest went out: it is no longer due.
pub async fn close_run(store: &dyn IdempotencyStore, run_end: DateTime<Utc>) -> anyhow::Result<()> {
    store
        .remove_members(&open_runs_key(), &[run_end.to_rfc3339()])
        .await
}

/// Records the target's failed stops and starts for the following runs
/// (and drops the retries that succeeded, gave up or were overtaken by hand).
pub async fn record_retries(
    store: &dyn IdempotencyStore,
    target: &Target,
    plan: &Plan,
    done: &[Done],
    old: Option<&Retries>,
    window: Window,
) {
    let empty = Retries::new();
    let old = old.unwrap_or(&empty);
    let failed: Vec<&str> = done
        .iter()
        .filter(|d| d.outcome == Outcome::Failed)
        .map(|d| d.arn.as_str())
        .collect();
    let next = next_retries(plan, &failed, old, window);
    if &next == old {
        return;
    }
    if let Err(e) = save_retries(store, target, &next).await {
        tracing::error!(target = %target, error = %format!("{e:#}"), "could not record the failed transitions; the following runs do not retry them");
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_failed_change_gives_its_reservation_back() {
        let store = MemoryStore::default();
        let end = Utc::now();
        let (a, b) = (target("1"), target("2"));
        assert_eq!(
            reserve(&store, end, &a, 2, 3).await.unwrap(),
            Reservation::Granted
        );
        // One of a's two stops failed: its unit goes back to the run.
        settle(&store, end, &a, 2, 1).await;
        assert_eq!(
            reserve(&store, end, &b, 2, 3).await.unwrap(),
            Reservation::Granted,
            "1 used + 2 fits in 3"
        );
        // a's redelivery retries the failed stop: the budget is full now.
        assert_eq!(
            reserve(&store, end, &a, 1, 3).await.unwrap(),
            Reservation::Refused
        );
        assert!(
            !store.give_back(&budget_key(end), 4).await.unwrap(),
            "never below zero"
        );
    }

    use super::*;
    use steward_shared::testing::MemoryStore;

    fn target(a: &str) -> Target {
        Target {
            account: a.into(),
            region: "us-east-1".into(),
        }
    }

    #[tokio::test]
    async fn the_run_budget_holds_across_invocations_and_redeliveries() {
        let store = MemoryStore::default();
        let end = Utc::now();
        let (a, b, c) = (target("1"), target("2"), target("3"));
        assert_eq!(
            reserve(&store, end, &a, 2, 3).await.unwrap(),
            Reservation::Granted
        );
        assert_eq!(
            reserve(&store, end, &b, 2, 3).await.unwrap(),
            Reservation::Refused
        );
        assert_eq!(
            reserve(&store, end, &c, 1, 3).await.unwrap(),
            Reservation::Granted
        );
        assert_eq!(
            reserve(&store, end, &a, 2, 3).await.unwrap(),
            Reservation::AlreadyReserved,
            "a redelivered work item does not reserve twice"
        );
        settle(&store, end, &a, 2, 2).await;
        assert_eq!(
            reserve(&store, end, &b, 1, 3).await.unwrap(),
            Reservation::Refused,
            "a's two changes happened: they stay counted"
        );
        let report = |t: &Target| TargetReport::failed(t.clone(), "x".into());
        assert!(open_runs(&store).await.unwrap().is_empty());
        open_run(&store, end, &[a.clone(), b.clone()])
            .await
            .unwrap();
        assert_eq!(open_runs(&store).await.unwrap().len(), 1);
        let before = record_results(&store, end, &[report(&a)]).await.unwrap();
        assert!(before.is_empty());
        let before = record_results(&store, end, &[report(&a)]).await.unwrap();
        assert!(
            before.contains(&a.to_string()),
            "a redelivered work item is known as reported"
        );
        assert_eq!(expected(&store, end).await.unwrap().unwrap().len(), 2);
        let (results, unreadable) =
            results(&store, end, &reported(&store, end).await.unwrap()).await;
        assert_eq!((results.len(), unreadable.len()), (1, 0));
        close_run(&store, end).await.unwrap();
        assert!(open_runs(&store).await.unwrap().is_empty());
    }
}
