//! The one digest a run sends: what was stopped, started, skipped (with the
//! reason), what failed, which targets failed, and which schedule tags do
//! not parse. INFO unless something failed (MEDIUM); account and region say
//! `multiple` when the run covered several.

use steward_shared::notify::{Category, Notification, Severity, MULTIPLE};
use steward_shared::Policy;

use crate::plan::{Window, ACCOUNT_FLOOR};
use crate::run::{Outcome, TargetReport};

/// Related resources listed in the chat JSON (the rest are counted).
const MAX_RELATED: usize = 50;

/// Whether a run has anything worth a message: a change, a skip, a failure,
/// or malformed tags in a run where the default schedule has a transition.
pub fn worth_sending(reports: &[&TargetReport], default_transition: bool) -> bool {
    reports.iter().any(|r| {
        r.error.is_some()
            || r.held_back.is_some()
            || !r.gave_up.is_empty()
            || !r.done.is_empty()
            || !r.env_changes.is_empty()
            || (default_transition && !r.malformed.is_empty())
    })
}

/// Builds the digest of a run.
pub fn build(
    reports: &[&TargetReport],
    window: Window,
    policy: &Policy,
    run_id: &str,
    dedupe_key: &str,
) -> Notification {
    let count = |which: fn(Outcome) -> bool| reports.iter().map(|r| r.count(which)).sum::<usize>();
    let stopped = count(Outcome::is_stop);
    let started = count(Outcome::is_start);
    let skipped = count(|o| o == Outcome::Skipped);
    let failed = count(|o| o == Outcome::Failed);
    let failed_targets: Vec<&TargetReport> = reports
        .iter()
        .copied()
        .filter(|r| r.error.is_some())
        .collect();
    let held_back: Vec<&TargetReport> = reports
        .iter()
        .copied()
        .filter(|r| r.held_back.is_some())
        .collect();
    let retried: usize = reports.iter().map(|r| r.retried.len()).sum();
    let gave_up: usize = reports.iter().map(|r| r.gave_up.len()).sum();
    let malformed: usize = reports.iter().map(|r| r.malformed.len()).sum();
    let floor = reports
        .iter()
        .flat_map(|r| &r.done)
        .filter(|d| {
            d.reason
                .as_deref()
                .is_some_and(|x| x.starts_with(ACCOUNT_FLOOR))
        })
        .count();
    let env_changes: usize = reports.iter().map(|r| r.env_changes.len()).sum();
    let severity =
        if failed > 0 || !failed_targets.is_empty() || !held_back.is_empty() || gave_up > 0 {
            Severity::Medium
        } else {
            Severity::Info
        };
    let mut summary = format!("{stopped} stopped, {started} started");
    if skipped > 0 {
        summary.push_str(&format!(", {skipped} skipped"));
    }
    if failed > 0 {
        summary.push_str(&format!(", {failed} failed"));
    }
    if !failed_targets.is_empty() {
        summary.push_str(&format!(", {} target(s) failed", failed_targets.len()));
    }
    if !held_back.is_empty() {
        summary.push_str(&format!(", {} target(s) held back", held_back.len()));
    }
    let mut n = Notification::new(
        severity,
        Category::Offhours,
        "digest",
        format!("off-hours run: {summary}"),
    );
    n.details.push(format!(
        "Window ({}, {}] across {} target(s); {} resource(s) evaluated.",
        window.start.to_rfc3339(),
        window.end.to_rfc3339(),
        reports.len(),
        reports.iter().map(|r| r.evaluated).sum::<usize>()
    ));
    if malformed > 0 {
        n.details.push(format!(
            "{malformed} resource(s) have a schedule tag that does not parse and were left alone."
        ));
    }
    if floor > 0 {
        n.details.push(format!(
            "{floor} resource(s) were not stopped because their account is mapped to prod or staging in [tagging] account_environments, whatever their env tag says (the account is a floor)."
        ));
    }
    if env_changes > 0 {
        n.details.push(format!(
            "{env_changes} resource(s) changed their env tag since the previous run."
        ));
    }
    for r in reports {
        if let Some(from) = r.caught_up_from {
            n.details.push(format!(
                "Runs were missed for {}: this run acted on the transitions since {} (the end of its previous run, at most [offhours] catch_up_minutes = {} back).",
                r.target,
                from.to_rfc3339(),
                policy.offhours.catch_up_minutes
            ));
        }
    }
    if retried > 0 {
        n.details.push(format!(
            "{retried} stop(s) or start(s) that failed in an earlier run were retried (within [offhours] catch_up_minutes = {}).",
            policy.offhours.catch_up_minutes
        ));
    }
    if gave_up > 0 {
        n.details.push(format!(
            "{gave_up} failed stop(s) or start(s) passed [offhours] catch_up_minutes = {} and are no longer retried.",
            policy.offhours.catch_up_minutes
        ));
    }
    for r in &held_back {
        n.items.push(format!(
            "target {} held back by the run's blast radius: {}",
            r.target,
            r.held_back.as_deref().unwrap_or_default()
        ));
    }
    for r in reports {
        for arn in &r.gave_up {
            n.items.push(format!(
                "given up (catch-up limit passed): {arn} in {}",
                r.target
            ));
        }
    }
    for r in &failed_targets {
        n.items.push(format!(
            "target {} failed: {}",
            r.target,
            r.error.as_deref().unwrap_or_default()
        ));
    }
    for r in reports {
        for d in &r.done {
            let reason = d
                .reason
                .as_deref()
                .map(|x| format!(": {x}"))
                .unwrap_or_default();
            n.items.push(format!(
                "{} {} {} in {}{reason}",
                d.outcome, d.kind, d.id, r.target
            ));
        }
        for c in &r.env_changes {
            n.items.push(format!("{c} in {}", r.target));
        }
        for m in &r.malformed {
            n.items.push(format!(
                "malformed {}={:?} on {}: {}",
                m.tag, m.value, m.arn, m.error
            ));
        }
    }
    if failed > 0 || !failed_targets.is_empty() {
        n.next_steps.push(format!("Check the failures above: failed stops and starts are retried by the following runs for [offhours] catch_up_minutes = {} after their transition while the resource stays as it was (a resource changed by hand is left alone), and a failed target's work item is delivered again; stop/start are safe to repeat.", policy.offhours.catch_up_minutes));
    }
    if gave_up > 0 {
        n.next_steps.push("Resources given up on are still in the state they failed in: stop or start them by hand if it matters.".into());
    }
    if !held_back.is_empty() {
        n.next_steps.push("Held-back targets changed nothing: see the run's blast-radius alert for how to finish the run.".into());
    }
    if skipped > 0 {
        n.next_steps.push("Skipped resources were left alone for the reason shown; tag them steward:offhours=off to silence them.".into());
    }
    if floor > 0 {
        n.next_steps.push("A resource tagged for off-hours in a prod or staging account is a mistake or a dodge: fix its env tag, or set [offhours] allow_mixed_accounts = true if the account really is mixed.".into());
    }
    if env_changes > 0 {
        n.next_steps.push("Check who changed the env tags listed above (CloudTrail CreateTags and friends); a production resource retagged env=dev is stopped at its next off transition.".into());
    }
    if malformed > 0 {
        n.next_steps.push("Fix the steward:offhours tags named above (grammar: off=(M-F,19);on=(M-F,7);tz=utc); `steward schedule explain --tag VALUE` shows how a value parses.".into());
    }
    let single = reports.len() == 1;
    n.account = if single {
        reports[0].target.account.clone()
    } else {
        MULTIPLE.into()
    };
    n.region = if single {
        reports[0].target.region.clone()
    } else {
        MULTIPLE.into()
    };
    if policy.offhours.environments.len() == 1 {
        n.environment = Some(policy.offhours.environments[0].clone());
    }
    n.related_resources = reports
        .iter()
        .flat_map(|r| {
            r.done
                .iter()
                .filter(|d| d.outcome != Outcome::Skipped)
                .map(|d| d.arn.clone())
        })
        .filter(|a| !a.is_empty())
        .take(MAX_RELATED)
        .collect();
    n.thread_id = run_id.to_string();
    n.dedupe_key = dedupe_key.to_string();
    n.fact("window_start", window.start.to_rfc3339())
        .fact("window_end", window.end.to_rfc3339())
        .fact("stopped", stopped.to_string())
        .fact("started", started.to_string())
        .fact("skipped", skipped.to_string())
        .fact("failed", failed.to_string())
        .fact("failed_targets", failed_targets.len().to_string())
        .fact("malformed_tags", malformed.to_string())
        .fact("account_floor_skips", floor.to_string())
        .fact("env_changes", env_changes.to_string())
        .fact("targets", reports.len().to_string())
        .fact("held_back_targets", held_back.len().to_string())
        .fact("retried", retried.to_string())
        .fact("gave_up", gave_up.to_string())
}

/// Names, in a fanned-out run's digest, the expected targets that never
/// reported (their work item was dead-lettered or lost) and those whose
/// recorded result could not be read: MEDIUM, counted in the subject.
pub fn never_reported(
    n: &mut Notification,
    missing: &[String],
    unreadable: &[String],
    policy: &Policy,
) {
    if missing.is_empty() && unreadable.is_empty() {
        return;
    }
    n.severity = n.severity.max(Severity::Medium);
    if !missing.is_empty() {
        n.summary
            .push_str(&format!(", {} target(s) never reported", missing.len()));
        n.details.push(format!(
            "{} target(s) of this fanned-out run never reported within [offhours] max_work_item_age_minutes = {}: their work item was not completed (dead-lettered or lost), so what happened there is not in this digest.",
            missing.len(),
            policy.offhours.max_work_item_age_minutes
        ));
        for t in missing {
            n.items.push(format!(
                "target {t} never reported: its work item was not completed"
            ));
        }
        n.next_steps.push("For targets that never reported: check the work queue's dead-letter queue and the function's errors, then look at those accounts (`steward plan` shows what the schedule wants); their failed or missed transitions are not retried by later runs.".into());
    }
    if !unreadable.is_empty() {
        n.details.push(format!(
            "{} target(s) reported a result that could not be read back: {}.",
            unreadable.len(),
            unreadable.join(", ")
        ));
    }
    n.facts
        .insert("never_reported".into(), missing.len().to_string());
    n.facts
        .insert("unreadable_results".into(), unreadable.len().to_string());
}
