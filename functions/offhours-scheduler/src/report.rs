//! What the team reads besides the run's digest (`digest.rs`): the
//! blast-radius alerts (one per run) and the one notification of a
//! `budget-stop` job, listing what was stopped, held (already stopped, now
//! tagged) and skipped, with the reason, what failed, and how to undo it.

use std::collections::BTreeMap;

use serde::Serialize;
use steward_shared::notify::{Category, Notification, Severity, MULTIPLE};
use steward_shared::observability::Metrics;
use steward_shared::safety::BlastRadiusExceeded;
use steward_shared::{Policy, Steward};

use crate::events::{BudgetStop, WorkItem};
use crate::model::{Kind, Resource, BUDGET_HOLD};
use crate::plan::Window;
use crate::resources::Target;
use crate::run::TargetPlan;

/// Publishes a notification once per its de-duplication key and counts it;
/// returns `sent`, `duplicate` or `below-threshold` for the response.
pub async fn send(
    steward: &Steward,
    n: &Notification,
    policy: &Policy,
    metrics: &mut Metrics,
) -> anyhow::Result<&'static str> {
    let outcome = steward.notify(n, policy).await?;
    if outcome.is_sent() {
        metrics.notifications_sent += 1;
    }
    Ok(outcome.as_str())
}

/// One MEDIUM message for the stale work items of a batch (dropped, not replayed).
pub fn stale_work(stale: &[String], policy: &Policy) -> Notification {
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
    n
}

/// Related resources listed in the chat JSON (the rest are counted).
const MAX_RELATED: usize = 50;

/// What a `budget-stop` job did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldOutcome {
    /// Tagged with the hold and stopped (or scaled to zero).
    Stopped,
    /// Already stopped; tagged with the hold.
    Held,
    /// Already stopped and held for this period.
    AlreadyHeld,
    Skipped,
    Failed,
}

/// One resource's outcome in a `budget-stop` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldDone {
    pub kind: Kind,
    pub id: String,
    pub arn: String,
    pub outcome: HoldOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl HoldDone {
    pub fn of(r: &Resource, outcome: HoldOutcome, reason: Option<String>) -> HoldDone {
        HoldDone {
            kind: r.kind,
            id: r.id.clone(),
            arn: r.arn.clone(),
            outcome,
            reason,
        }
    }
}

/// The thread of every message about one job.
pub fn thread_id(item: &WorkItem, job: &BudgetStop) -> String {
    format!(
        "budget-stop-{}-{}-{}-{}",
        item.account, item.region, job.budget, job.period_start
    )
}

/// The one notification of a `budget-stop` job (`steward.budget.dev-stop-result`):
/// INFO, MEDIUM when something failed (the job is then delivered again).
pub fn budget_stop(
    item: &WorkItem,
    job: &BudgetStop,
    done: &[HoldDone],
    change: bool,
    policy: &Policy,
) -> Notification {
    let count = |o: HoldOutcome| done.iter().filter(|d| d.outcome == o).count();
    let (stopped, held, already, skipped, failed) = (
        count(HoldOutcome::Stopped),
        count(HoldOutcome::Held),
        count(HoldOutcome::AlreadyHeld),
        count(HoldOutcome::Skipped),
        count(HoldOutcome::Failed),
    );
    let would = if change { "" } else { "would be " };
    let mut summary = format!(
        "budget stop {}/{}: {stopped} {would}stopped, {held} {would}held",
        item.account, item.region
    );
    if skipped > 0 {
        summary.push_str(&format!(", {skipped} skipped"));
    }
    if failed > 0 {
        summary.push_str(&format!(", {failed} failed"));
    }
    let severity = if failed > 0 {
        Severity::Medium
    } else {
        Severity::Info
    };
    let mut n = Notification::new(severity, Category::Budget, "dev-stop-result", summary);
    let end = job.period_end;
    n.details.push(format!(
        "Budget {} of account {} was breached (period {} to {end}, end exclusive). The off-hours scheduler stops its resources in {} whose env is in [offhours] environments ({}) and tags them {BUDGET_HOLD}={end}: the off-hours start leaves them stopped until {end}.",
        job.budget,
        item.account,
        job.period_start,
        item.region,
        policy.offhours.environments.join(", ")
    ));
    if already > 0 {
        n.details.push(format!(
            "{already} resource(s) were already stopped and held for this period."
        ));
    }
    for d in done {
        let what = match d.outcome {
            HoldOutcome::Stopped => format!("{would}stopped and held"),
            HoldOutcome::Held => format!("{would}held (already stopped)"),
            HoldOutcome::AlreadyHeld => "already held".to_string(),
            HoldOutcome::Skipped => "skipped".to_string(),
            HoldOutcome::Failed => "failed".to_string(),
        };
        let reason = d
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        n.items.push(format!("{what} {} {}{reason}", d.kind, d.id));
    }
    if failed > 0 {
        n.next_steps.push("The failures above are retried: the work item is delivered again, and resources already stopped and held are left as they are.".into());
    }
    n.next_steps.push(format!(
        "To undo: remove the tag {BUDGET_HOLD} from the resources listed and start them (raise the budget first, or the next breach stops them again)."
    ));
    if skipped > 0 {
        n.next_steps.push(
            "Skipped resources keep running for the reason shown; stop them by hand if the spend must end now."
                .into(),
        );
    }
    n.account = item.account.clone();
    n.region = item.region.clone();
    if policy.offhours.environments.len() == 1 {
        n.environment = policy.offhours.environments.first().cloned();
    }
    n.related_resources = done
        .iter()
        .filter(|d| matches!(d.outcome, HoldOutcome::Stopped | HoldOutcome::Held))
        .map(|d| d.arn.clone())
        .filter(|a| !a.is_empty())
        .take(MAX_RELATED)
        .collect();
    n.thread_id = thread_id(item, job);
    n.dedupe_key = if failed > 0 {
        let failed_ids: Vec<&str> = done
            .iter()
            .filter(|d| d.outcome == HoldOutcome::Failed)
            .map(|d| d.id.as_str())
            .collect();
        format!(
            "{}#failed#{}",
            crate::budget_stop::job_key(item, job),
            failed_ids.join(",")
        )
    } else {
        crate::budget_stop::job_key(item, job)
    };
    n.fact("budget", job.budget.clone())
        .fact("period_start", job.period_start.to_string())
        .fact("period_end", end.to_string())
        .fact("stopped", stopped.to_string())
        .fact("held", held.to_string())
        .fact("already_held", already.to_string())
        .fact("skipped", skipped.to_string())
        .fact("failed", failed.to_string())
}

/// The HIGH alert of a run handled in one invocation that would pass
/// `[limits] max_changes_per_run`: nothing was changed.
pub fn blast_radius(
    exceeded: &BlastRadiusExceeded,
    plans: &[TargetPlan],
    targets: &[Target],
    window: Window,
    run_id: &str,
) -> Notification {
    let mut n = Notification::new(
        Severity::High,
        Category::Offhours,
        "blast-radius",
        format!(
            "off-hours run would change {} resources; limit {}",
            exceeded.planned, exceeded.limit
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
        "If the change is intended, raise [limits] max_changes_per_run; the next run acts.".into(),
    );
    let single = targets.len() == 1;
    n.account = match targets.first() {
        Some(t) if single => t.account.clone(),
        _ => MULTIPLE.into(),
    };
    n.region = match targets.first() {
        Some(t) if single => t.region.clone(),
        _ => MULTIPLE.into(),
    };
    n.thread_id = run_id.to_string();
    n
}

/// The one HIGH alert of a fanned-out run whose blast-radius budget ran out:
/// the targets held back (nothing changed in them) and how to finish the run.
/// De-duplicated on the run, so later batches that are held back too send
/// nothing more (the run's digest lists them).
pub fn run_blast_radius(
    held_back: &BTreeMap<Target, String>,
    plans: &[TargetPlan],
    window: Window,
    limit: u32,
    run_id: &str,
) -> Notification {
    let planned: usize = plans
        .iter()
        .filter(|p| held_back.contains_key(&p.target))
        .filter_map(|p| p.result.as_ref().ok())
        .map(|(plan, _)| plan.changes())
        .sum();
    let mut n = Notification::new(
        Severity::High,
        Category::Offhours,
        "blast-radius",
        format!(
            "off-hours run {} reached its limit of {limit} changes; targets held back",
            window.end.format("%Y-%m-%d %H:%M")
        ),
    );
    n.details.push(format!(
        "The run's targets reserve their changes from one budget of [limits] max_changes_per_run = {limit}, in the order their work items are processed; a target whose changes do not fit changes nothing. The first target(s) held back would change {planned} resource(s); later held-back targets are listed in the run's digest."
    ));
    for (target, why) in held_back {
        n.items.push(format!("target {target} held back: {why}"));
    }
    for p in plans.iter().filter(|p| held_back.contains_key(&p.target)) {
        if let Ok((plan, _)) = &p.result {
            for item in &plan.items {
                n.items.push(format!(
                    "{:?} {} {} in {}",
                    item.decision, item.resource.kind, item.resource.id, p.target
                ));
            }
        }
    }
    n.next_steps.push(
        "Check why this run would change so many resources (new env tags, a changed default schedule)."
            .into(),
    );
    n.next_steps.push(format!(
        "To finish the run after checking: raise [limits] max_changes_per_run and send the held-back targets' work items again ({{\"account\", \"region\", \"time\": \"{}\"}}) within [offhours] max_work_item_age_minutes, or let the next transition act.",
        window.end.to_rfc3339()
    ));
    n.account = MULTIPLE.into();
    n.region = MULTIPLE.into();
    n.thread_id = run_id.to_string();
    n.dedupe_key = format!("run#{}#blast-radius", window.end.to_rfc3339());
    n.fact("maxChangesPerRun", limit.to_string())
        .fact("heldBackTargets", held_back.len().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn lists_what_was_stopped_held_and_skipped_and_how_to_undo() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let item = WorkItem {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            time: chrono::Utc::now(),
            budget_stop: None,
        };
        let job = BudgetStop {
            budget: "dev-monthly".into(),
            period_start: d("2026-12-01"),
            period_end: d("2027-01-01"),
        };
        let r = |id: &str| {
            Resource::new(
                Kind::Ec2Instance,
                id,
                format!("arn:{id}"),
                Default::default(),
                crate::model::Power::Running,
            )
        };
        let done = vec![
            HoldDone::of(&r("i-1"), HoldOutcome::Stopped, None),
            HoldDone::of(&r("i-2"), HoldOutcome::Held, None),
            HoldDone::of(
                &r("i-3"),
                HoldOutcome::Skipped,
                Some("steward:exempt=true".into()),
            ),
        ];
        let n = budget_stop(&item, &job, &done, true, &Policy::default());
        assert_eq!(n.event_type(), "steward.budget.dev-stop-result");
        assert_eq!(n.severity, Severity::Info);
        assert!(
            n.summary.contains("1 stopped, 1 held, 1 skipped"),
            "{}",
            n.summary
        );
        assert!(n
            .items
            .contains(&"stopped and held ec2-instance i-1".to_string()));
        assert!(n
            .items
            .contains(&"skipped ec2-instance i-3: steward:exempt=true".to_string()));
        assert!(n.next_steps.iter().any(|s| s.contains("To undo")));
        let dry = budget_stop(&item, &job, &done, false, &Policy::default());
        assert!(
            dry.summary.contains("1 would be stopped"),
            "{}",
            dry.summary
        );
    }
}
