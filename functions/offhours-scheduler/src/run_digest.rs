//! The one digest of a fanned-out run (issue 10). The fan-out records the
//! run's targets before it queues their work items; each batch records its
//! targets' results under the run (`run_state`), and the batch that records
//! the last expected target sends the run's digest, built from every
//! recorded result and de-duplicated on the run. A run whose work items did
//! not all complete (dead-lettered, lost) is not silenced: the first
//! scheduled run after `[offhours] max_work_item_age_minutes` (when no work
//! item of it can still be acted on) sends its digest, naming the targets
//! that never reported. Work items with no recorded fan-out (queued by hand,
//! dry-run, the kill switch) and results that arrive after the run's digest
//! went out get a digest of their own batch, de-duplicated on what it says.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use steward_shared::idempotency::IdempotencyStore;
use steward_shared::observability::Metrics;
use steward_shared::{Policy, Steward};

use crate::plan::Window;
use crate::run::TargetReport;
use crate::{digest, report, run_state, schedule};

/// The de-duplication key of a run's digest (the same for a run handled in
/// one invocation and a fanned-out one).
pub fn run_key(run_end: DateTime<Utc>) -> String {
    format!("run#{}", run_end.to_rfc3339())
}

/// The store a run may write to (none in dry-run or under the kill switch).
fn live_store(steward: &Steward) -> Option<&dyn IdempotencyStore> {
    steward
        .idempotency
        .as_deref()
        .filter(|_| steward.mode().may_change())
}

/// Whether the default schedule has a transition in `window` (malformed tags
/// are repeated only in such runs).
pub fn default_transition(policy: &Policy, window: Window) -> bool {
    schedule::parse("", &policy.offhours)
        .map(|s| {
            s.action(
                window.start,
                window.end,
                &schedule::holiday_dates(&policy.offhours),
            ) != schedule::Action::None
        })
        .unwrap_or(true)
}

/// Before a run fans out: records the targets whose results its one digest
/// waits for (nothing in dry-run or under the kill switch, whose batches
/// send their own digests). An error means nothing may be queued.
pub async fn open_run(
    steward: &Steward,
    run_end: DateTime<Utc>,
    targets: &[crate::resources::Target],
) -> anyhow::Result<()> {
    let Some(store) = live_store(steward) else {
        return Ok(());
    };
    run_state::open_run(store, run_end, targets).await.map_err(|e| {
        anyhow::anyhow!("could not record the run's targets before fanning out ({e:#}); nothing was queued, the scheduled run is retried")
    })
}

/// After a batch of a fanned-out run: records its results and sends the
/// run's digest when this batch completes the run; `pending` while targets
/// are still to report.
pub async fn after_batch(
    steward: &Steward,
    reports: &[TargetReport],
    window: Window,
    policy: &Policy,
    run_id: &str,
    metrics: &mut Metrics,
) -> anyhow::Result<&'static str> {
    let Some(store) = live_store(steward) else {
        return batch_digest(steward, reports, window, policy, run_id, false, metrics).await;
    };
    let Some(expected) = run_state::expected(store, window.end).await? else {
        tracing::info!("no fan-out recorded for this run (work items queued by hand or by an earlier version); this batch sends its own digest");
        return batch_digest(steward, reports, window, policy, run_id, false, metrics).await;
    };
    let before = run_state::record_results(store, window.end, reports).await?;
    let mut after = before;
    after.extend(reports.iter().map(|r| r.target.to_string()));
    if !expected.is_subset(&after) {
        tracing::info!(
            reported = expected.intersection(&after).count(),
            expected = expected.len(),
            "results recorded; the run's digest waits for its remaining targets"
        );
        return Ok("pending");
    }
    let open = run_state::open_runs(store).await?;
    if !open.contains(&window.end) {
        tracing::info!(
            "the run's digest went out already; these results are reported on their own"
        );
        return batch_digest(steward, reports, window, policy, run_id, true, metrics).await;
    }
    send_run(steward, store, window.end, &expected, policy, metrics).await
}

/// Sends the digest of every earlier fanned-out run still due whose work
/// items can no longer be acted on (`run end + max_work_item_age_minutes`
/// before `now`, the current run's time). Failures are logged: the run
/// stays due and the next scheduled run tries again. Returns how many
/// digests it handled.
pub async fn send_overdue(
    steward: &Steward,
    policy: &Policy,
    now: DateTime<Utc>,
    metrics: &mut Metrics,
) -> usize {
    let Some(store) = live_store(steward) else {
        return 0;
    };
    let runs = match run_state::open_runs(store).await {
        Ok(runs) => runs,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "could not read the fanned-out runs whose digest is due; overdue digests wait for the next run");
            return 0;
        }
    };
    let age = Duration::minutes(i64::from(policy.offhours.max_work_item_age_minutes));
    let mut handled = 0;
    for end in runs {
        if end.checked_add_signed(age).is_none_or(|due| due >= now) {
            continue;
        }
        let result = match run_state::expected(store, end).await {
            Ok(Some(expected)) => send_run(steward, store, end, &expected, policy, metrics).await,
            Ok(None) => {
                tracing::error!(run_end = %end.to_rfc3339(), "the run's records expired before its digest; it is dropped from the due runs");
                run_state::close_run(store, end).await.map(|_| "none")
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(sent) => {
                tracing::info!(run_end = %end.to_rfc3339(), notification = sent, "overdue digest of an earlier run handled");
                handled += 1;
            }
            Err(e) => {
                tracing::error!(run_end = %end.to_rfc3339(), error = %format!("{e:#}"), "could not send the overdue digest of an earlier run; the next run tries again")
            }
        }
    }
    handled
}

/// Builds the run's digest from every recorded result (naming the expected
/// targets that never reported), sends it once per run, and closes the run.
async fn send_run(
    steward: &Steward,
    store: &dyn IdempotencyStore,
    run_end: DateTime<Utc>,
    expected: &BTreeSet<String>,
    policy: &Policy,
    metrics: &mut Metrics,
) -> anyhow::Result<&'static str> {
    let reported = run_state::reported(store, run_end).await?;
    let (reports, unreadable) = run_state::results(store, run_end, &reported).await;
    let missing: Vec<String> = expected.difference(&reported).cloned().collect();
    let refs: Vec<&TargetReport> = reports.iter().collect();
    let window = Window::ending_at(run_end, policy);
    let sent = if missing.is_empty()
        && unreadable.is_empty()
        && !digest::worth_sending(&refs, default_transition(policy, window))
    {
        tracing::info!("nothing to report this run; no digest");
        "none"
    } else {
        let run_id = format!("offhours-run-{}", run_end.to_rfc3339());
        let mut n = digest::build(&refs, window, policy, &run_id, &run_key(run_end));
        digest::never_reported(&mut n, &missing, &unreadable, policy);
        report::send(steward, &n, policy, metrics).await?
    };
    run_state::close_run(store, run_end).await?;
    Ok(sent)
}

/// The digest of one batch's targets alone: work items with no recorded
/// fan-out, or results that came after the run's digest (`late`). It is
/// de-duplicated on what it reports, so the same result delivered again is
/// not sent twice while a different one (a retried stop that now worked) is.
async fn batch_digest(
    steward: &Steward,
    reports: &[TargetReport],
    window: Window,
    policy: &Policy,
    run_id: &str,
    late: bool,
    metrics: &mut Metrics,
) -> anyhow::Result<&'static str> {
    let refs: Vec<&TargetReport> = reports.iter().collect();
    if !digest::worth_sending(&refs, default_transition(policy, window)) {
        tracing::info!("nothing to report for this batch; no digest");
        return Ok("none");
    }
    let key = format!("{}#batch#{}", run_key(window.end), fingerprint(reports));
    let mut n = digest::build(&refs, window, policy, run_id, &key);
    if late {
        n.details.insert(0, "These targets reported after the run's digest went out (a work item delivered again): this is what they did since.".into());
    }
    report::send(steward, &n, policy, metrics).await
}

/// A stable digest of what `reports` say (targets, outcomes, errors), for
/// the de-duplication key of a batch's own digest.
fn fingerprint(reports: &[TargetReport]) -> String {
    // FNV-1a, 64 bits: stable across builds, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |text: &str| {
        for b in text.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for r in reports {
        feed(&r.target.to_string());
        feed(r.error.as_deref().unwrap_or(""));
        feed(r.held_back.as_deref().unwrap_or(""));
        for d in &r.done {
            feed(d.outcome.as_str());
            feed(&d.arn);
            feed(d.reason.as_deref().unwrap_or(""));
        }
        for m in &r.malformed {
            feed(&m.arn);
        }
        for c in &r.env_changes {
            feed(&c.to_string());
        }
        for a in r.retried.iter().chain(&r.gave_up) {
            feed(a);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Target;

    #[test]
    fn the_fingerprint_follows_what_the_batch_says() {
        let target = Target {
            account: "111111111111".into(),
            region: "us-east-1".into(),
        };
        let a = TargetReport::failed(target.clone(), "throttled".into());
        let b = TargetReport::failed(target, "throttled again".into());
        assert_eq!(
            fingerprint(std::slice::from_ref(&a)),
            fingerprint(std::slice::from_ref(&a))
        );
        assert_ne!(fingerprint(&[a]), fingerprint(&[b]));
    }
}
