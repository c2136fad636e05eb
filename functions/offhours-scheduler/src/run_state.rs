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
//! - which targets a run's digest reported (`...#digested#END#TARGET`), so a
//!   work item redelivered in another batch sends no second digest.
//!
//! Nothing here is written in dry-run or under the kill switch.

use std::time::Duration;

use chrono::{DateTime, Utc};
use steward_shared::idempotency::{keys, IdempotencyStore};

use crate::plan::{next_retries, Carried, Plan, Retries, Window};
use crate::resources::Target;
use crate::run::{Done, Outcome};
use crate::FUNCTION_NAME;

/// How long pending retries are kept without a run (the catch-up limit is
/// checked on each entry; this only bounds the record).
const RETRY_KEEP: Duration = Duration::from_secs(7 * 86_400);
/// How long a run's budget and digest markers are kept.
const RUN_KEEP: Duration = Duration::from_secs(2 * 86_400);

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

fn digested_key(run_end: DateTime<Utc>, target: &Target) -> String {
    keys::state(
        FUNCTION_NAME,
        &format!("digested#{}#{target}", run_end.to_rfc3339()),
    )
}

/// The pending retries of a target (empty when none are recorded).
pub async fn load_retries(
    store: &dyn IdempotencyStore,
    target: &Target,
) -> anyhow::Result<Retries> {
    let Some(record) = store.get(&retry_key(target)).await? else {
        return Ok(Retries::new());
    };
    Ok(record
        .result
        .and_then(|r| serde_json::from_str::<Retries>(&r).ok())
        .unwrap_or_default())
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

/// What a target carries from earlier runs: its pending retries and the
/// window end of its previous run. A record that cannot be read counts as
/// absent (logged): no retry and no catch-up, never a wider window.
pub async fn load_carried(store: &dyn IdempotencyStore, target: &Target) -> Carried {
    let retries = load_retries(store, target).await.unwrap_or_else(|e| {
        tracing::error!(target = %target, error = %format!("{e:#}"), "could not read the pending retries; failed transitions of earlier runs are not retried this run");
        Retries::new()
    });
    let covered_until = match store.get(&covered_key(target)).await {
        Ok(record) => record
            .and_then(|r| r.result)
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&Utc)),
        Err(e) => {
            tracing::error!(target = %target, error = %format!("{e:#}"), "could not read the previous run's window; missed windows are not caught up this run");
            None
        }
    };
    Carried {
        retries,
        covered_until,
    }
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

/// Reserves `changes` of the run's `limit` for `target`, atomically.
pub async fn reserve(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
    target: &Target,
    changes: u64,
    limit: u64,
) -> anyhow::Result<Reservation> {
    let marker = reserved_key(run_end, target);
    if store.get(&marker).await?.is_some() {
        return Ok(Reservation::AlreadyReserved);
    }
    if changes == 0 {
        return Ok(Reservation::Granted);
    }
    if !store
        .reserve(&budget_key(run_end), changes, limit, RUN_KEEP)
        .await?
    {
        return Ok(Reservation::Refused);
    }
    store
        .put_state(&marker, &changes.to_string(), RUN_KEEP)
        .await?;
    Ok(Reservation::Granted)
}

/// Whether the run's digest reported `target` already.
pub async fn digested(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
    target: &Target,
) -> anyhow::Result<bool> {
    Ok(store.get(&digested_key(run_end, target)).await?.is_some())
}

/// Records that the run's digest reported `target`.
pub async fn mark_digested(
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
    target: &Target,
) -> anyhow::Result<()> {
    store
        .put_state(&digested_key(run_end, target), "reported", RUN_KEEP)
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
        assert!(!digested(&store, end, &a).await.unwrap());
        mark_digested(&store, end, &a).await.unwrap();
        assert!(digested(&store, end, &a).await.unwrap());
    }
}
