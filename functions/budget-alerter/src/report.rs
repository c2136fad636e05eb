//! What the team reads: a budget alert with the breakdown, movers and
//! forecast (and the dev stop, when there is one), an anomaly alert, the
//! weekly review and the daily check's failures. Every missing part of the
//! enrichment is named, never silently dropped.

use steward_shared::notify::{Category, Notification, MULTIPLE};
use steward_shared::Severity;

use crate::events::AnomalyAlert;
use crate::model::{AlertKind, AnomalyFacts, Breakdown, CostLine, Mover, WeeklyFigures};
use crate::plan::{AlertDecision, Source, StopDecision, StopRequest};

fn money(amount: f64, unit: &str) -> String {
    format!("{amount:.2} {unit}")
}

fn opt_money(amount: Option<f64>, unit: &str) -> String {
    amount
        .map(|a| money(a, unit))
        .unwrap_or_else(|| "unknown".into())
}

fn lines(title: &str, lines: &[CostLine], unit: &str) -> String {
    let parts: Vec<String> = lines
        .iter()
        .map(|l| {
            let key = if l.key.is_empty() {
                "(untagged)"
            } else {
                l.key.as_str()
            };
            format!("{key} {}", money(l.amount, unit))
        })
        .collect();
    if parts.is_empty() {
        format!("{title}: no cost recorded")
    } else {
        format!("{title}: {}", parts.join("; "))
    }
}

fn movers(title: &str, movers: &[Mover], unit: &str) -> String {
    let parts: Vec<String> = movers
        .iter()
        .map(|m| {
            format!(
                "{} {:+.2} {unit} ({} -> {})",
                m.key,
                m.change(),
                money(m.before, unit),
                money(m.now, unit)
            )
        })
        .collect();
    if parts.is_empty() {
        format!("{title}: nothing moved")
    } else {
        format!("{title}: {}", parts.join("; "))
    }
}

fn missing(n: &mut Notification, parts: &[String]) {
    if parts.is_empty() {
        return;
    }
    n.details.push(format!(
        "Missing from this message (Cost Explorer lookups that failed; the alert is sent anyway): {}",
        parts.join(" | ")
    ));
    n.facts.insert("missing".into(), parts.join(" | "));
}

/// A budget alert: a breach (`breached`), a forecast (`forecast`), or a breach that stopped dev (`dev-stopped`).
pub fn budget_alert(
    d: &AlertDecision,
    breakdown: &Breakdown,
    stop: &StopDecision,
    environment: Option<&str>,
    own_region: &str,
) -> Notification {
    let what = match (d.kind, stop) {
        (_, StopDecision::Stop(_)) => "dev-stopped",
        (AlertKind::Actual, _) => "breached",
        (AlertKind::Forecasted, _) => "forecast",
    };
    let verb = match d.kind {
        AlertKind::Actual => "spent",
        AlertKind::Forecasted => "forecast to spend",
    };
    let mut n = Notification::new(
        d.severity,
        Category::Budget,
        what,
        format!(
            "budget {} in {}: {verb} {} of {} (threshold {})",
            d.budget,
            d.account,
            opt_money(d.amount, &d.unit),
            opt_money(d.limit, &d.unit),
            d.threshold_label
        ),
    );
    n.account = d.account.clone();
    n.region = own_region.to_string();
    n.environment = environment.map(str::to_string);
    n.thread_id = format!("arn:aws:budgets::{}:budget/{}", d.account, d.budget);
    n.related_resources.push(n.thread_id.clone());
    n.dedupe_key = d.dedupe_key.clone();
    n.details.push(format!(
        "Budget period {} to {} (exclusive). {} amount {} against the threshold {}; budgeted {}.",
        d.period.start,
        d.period.end,
        d.kind.as_str(),
        opt_money(d.amount, &d.unit),
        d.threshold_label,
        opt_money(d.limit, &d.unit)
    ));
    n.details.push(match d.source {
        Source::Budgets => "Figures read back from AWS Budgets (DescribeBudget).".into(),
        Source::MessageText => "AWS Budgets could not be read back; figures are the notification's own text.".into(),
        Source::DailyCheck if d.configured => "Found by steward's daily check; the budget has a notification for this threshold too.".into(),
        Source::DailyCheck => "Found by steward's daily check: this budget has NO notification for this threshold in AWS Budgets.".into(),
    });
    if let Some(s) = &breakdown.by_service {
        n.details
            .push(lines("Month to date by service", s, &d.unit));
    }
    if let Some(s) = &breakdown.by_cost_center {
        n.details
            .push(lines("By cost_center (who owns it)", s, &d.unit));
    }
    if let Some(s) = &breakdown.by_env {
        n.details.push(lines("By env", s, &d.unit));
    }
    if let Some(share) = breakdown.untagged_share {
        n.details.push(format!(
            "Untagged spend (no cost_center): {:.0}%",
            share * 100.0
        ));
        n.facts
            .insert("untaggedShare".into(), format!("{share:.4}"));
    }
    if let Some(m) = &breakdown.movers {
        n.details.push(movers(
            "Top movers against the same days last month",
            m,
            &d.unit,
        ));
    }
    if let Some(f) = breakdown.forecast {
        n.details.push(format!(
            "Cost Explorer forecast to month end: {}",
            money(f, &d.unit)
        ));
        n.facts
            .insert("forecastToMonthEnd".into(), format!("{f:.2}"));
    }
    missing(&mut n, &breakdown.missing);
    match stop {
        StopDecision::Stop(requests) => {
            let regions: Vec<&str> = requests.iter().map(|r| r.region.as_str()).collect();
            n.details.push(format!(
                "budgets.stop_dev_on_breach: the off-hours scheduler was asked to stop the dev resources of account {} in {} and tag them steward:budget-hold with the budget period ({} to {}); the morning start leaves them stopped until {}.",
                d.account,
                regions.join(", "),
                d.period.start,
                d.period.end,
                d.period.end
            ));
            n.next_steps.push(format!(
                "To undo: remove the tag steward:budget-hold from the stopped resources of account {} and start them (or raise the budget first so the next alert does not stop them again).",
                d.account
            ));
            n.facts.insert("devStop".into(), "requested".into());
            n.facts.insert("devStopRegions".into(), regions.join(","));
        }
        StopDecision::NotConfirmed(why)
        | StopDecision::NotDev(why)
        | StopDecision::Blocked(why) => {
            n.details
                .push(format!("Dev resources were not stopped: {why}."));
            n.facts.insert("devStop".into(), "not-stopped".into());
        }
        StopDecision::Off => {}
    }
    match d.kind {
        AlertKind::Actual => n.next_steps.push("Look at the largest services and movers above; the cost_center owners decide what to stop, resize or delete.".into()),
        AlertKind::Forecasted => n.next_steps.push("Nothing is spent yet: check the movers above before the forecast becomes actual spend.".into()),
    }
    if !d.configured {
        n.next_steps.push(format!(
            "Add a notification for this threshold to budget {} so AWS Budgets alerts in time too.",
            d.budget
        ));
    }
    n.facts.insert("budget".into(), d.budget.clone());
    n.facts.insert("alertType".into(), d.kind.as_str().into());
    n.facts
        .insert("amount".into(), opt_money(d.amount, &d.unit));
    n.facts
        .insert("budgeted".into(), opt_money(d.limit, &d.unit));
    n.facts
        .insert("threshold".into(), d.threshold_label.clone());
    n.facts
        .insert("periodStart".into(), d.period.start.to_string());
    n.facts.insert("periodEnd".into(), d.period.end.to_string());
    n
}

/// The requests of a dev stop, for logs.
pub fn stop_summary(requests: &[StopRequest]) -> Vec<String> {
    requests.iter().map(StopRequest::body).collect()
}

/// A Cost Anomaly Detection alert, with Cost Explorer's own figures when it confirms the anomaly.
pub fn anomaly(
    a: &AnomalyAlert,
    confirmed: Result<Option<&AnomalyFacts>, &str>,
    severity: Severity,
    environment: Option<&str>,
    own_region: &str,
) -> Notification {
    let facts = confirmed.ok().flatten();
    let impact = facts.and_then(|f| f.total_impact).or(a.total_impact);
    let actual = facts.and_then(|f| f.actual_spend).or(a.actual_spend);
    let expected = facts.and_then(|f| f.expected_spend).or(a.expected_spend);
    let first_cause = a
        .root_causes
        .first()
        .and_then(|c| c.service.clone())
        .unwrap_or_else(|| "unknown service".into());
    let mut n = Notification::new(
        severity,
        Category::Budget,
        "anomaly",
        format!(
            "cost anomaly in {}: {} over expected ({first_cause})",
            a.account,
            opt_money(impact, "USD")
        ),
    );
    n.account = a.account.clone();
    n.region = own_region.to_string();
    n.environment = environment.map(str::to_string);
    n.thread_id = a.monitor_arn.clone();
    n.related_resources.push(a.monitor_arn.clone());
    n.dedupe_key = format!("anomaly#{}", a.anomaly_id);
    n.details.push(format!(
        "Anomaly {} from {} to {}: actual {} against expected {} (impact {}{}).",
        a.anomaly_id,
        a.start_date
            .map(|d| d.to_string())
            .unwrap_or_else(|| "?".into()),
        a.end_date
            .map(|d| d.to_string())
            .unwrap_or_else(|| "ongoing".into()),
        opt_money(actual, "USD"),
        opt_money(expected, "USD"),
        opt_money(impact, "USD"),
        a.impact_percentage
            .map(|p| format!(", {p:.1}%"))
            .unwrap_or_default()
    ));
    let causes: Vec<String> = match facts {
        Some(f) if !f.root_causes.is_empty() => f.root_causes.clone(),
        _ => a.root_causes.iter().map(|c| c.describe()).collect(),
    };
    n.items = causes.iter().map(|c| format!("root cause: {c}")).collect();
    match confirmed {
        Ok(Some(_)) => n.details.push("Confirmed by Cost Explorer (GetAnomalies); figures are Cost Explorer's.".into()),
        Ok(None) => n.details.push("Cost Explorer (GetAnomalies) does not list this anomaly for its monitor; figures are the alert's own.".into()),
        Err(e) => missing(&mut n, &[format!("confirmation by GetAnomalies: {e}")]),
    }
    if let Some(link) = &a.details_link {
        n.details.push(format!("Details: {link}"));
    }
    n.next_steps.push("Check the root causes above with the owners of the service and account; mark the anomaly in Cost Anomaly Detection as expected or not.".into());
    n.facts.insert("anomalyId".into(), a.anomaly_id.clone());
    n.facts.insert("impact".into(), opt_money(impact, "USD"));
    n
}

/// The weekly cost review digest.
pub fn weekly_review(w: &WeeklyFigures, run_id: &str, items: usize) -> Notification {
    let unit = "USD";
    let severity = if w.missing.is_empty() {
        Severity::Info
    } else {
        Severity::Medium
    };
    let change = match (w.total, w.previous_total) {
        (Some(t), Some(p)) => format!(" ({:+.2} {unit} week over week)", t - p),
        _ => String::new(),
    };
    let (start, end) = w
        .week
        .map(|p| (p.start.to_string(), p.end.to_string()))
        .unwrap_or_default();
    let mut n = Notification::new(
        severity,
        Category::Budget,
        "weekly-review",
        format!(
            "weekly cost review {start} to {end}: {}{change}",
            opt_money(w.total, unit)
        ),
    );
    n.account = MULTIPLE.into();
    n.region = MULTIPLE.into();
    n.thread_id = run_id.to_string();
    n.dedupe_key = format!("weekly-review#{start}");
    for (title, part) in [
        ("By account", &w.by_account),
        ("By service", &w.by_service),
        ("By project", &w.by_project),
        ("By env", &w.by_env),
        ("By cost_center", &w.by_cost_center),
    ] {
        if let Some(l) = part {
            let shown: Vec<CostLine> = l.iter().take(items).cloned().collect();
            n.details.push(lines(title, &shown, unit));
        }
    }
    if let Some(m) = &w.movers {
        n.details
            .push(movers("Largest movers week over week", m, unit));
    }
    if let Some(share) = w.untagged_share {
        n.details.push(format!(
            "Untagged spend (no cost_center): {:.0}%",
            share * 100.0
        ));
    }
    if let Some(f) = w.forecast {
        n.details
            .push(format!("Forecast to month end: {}", money(f, unit)));
    }
    missing(&mut n, &w.missing);
    n.next_steps.push("Ask the owners of the largest movers whether the change is expected; tag untagged spend with cost_center.".into());
    n
}

/// The daily check's failure to read some accounts' budgets.
pub fn daily_check_failures(failures: &[String], run_id: &str) -> Notification {
    let mut n = Notification::new(
        Severity::Medium,
        Category::Budget,
        "daily-check",
        format!(
            "daily budget check could not read {} account(s)",
            failures.len()
        ),
    );
    n.account = MULTIPLE.into();
    n.region = MULTIPLE.into();
    n.thread_id = run_id.to_string();
    n.dedupe_key = format!("daily-check-failures#{run_id}");
    n.items = failures.to_vec();
    n.next_steps.push(
        "Check that the member role exists in those accounts and allows budgets:ViewBudget.".into(),
    );
    n
}
