//! The budget alerter's pure decisions: budget periods, which threshold an
//! alert is about and how severe it is, what the daily check flags, whether
//! dev is stopped and the exact work-queue message for it, and the arithmetic
//! of breakdowns (top lines, movers, untagged share). `today`/`now` are
//! passed in; no SDK type and no clock here.

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, Utc};
use steward_shared::policy::{Budgets, Policy};
use steward_shared::Severity;

use crate::events::BudgetAlert;
use crate::model::{
    AlertKind, BudgetFacts, ConfiguredAlert, CostLine, Mover, Period, Threshold, TimeUnit,
};

/// The tag value Cost Explorer reports for spend without the tag.
pub const UNTAGGED: &str = "";

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MIN)
}

fn add_months(d: NaiveDate, months: u32) -> NaiveDate {
    let total = d.year() * 12 + d.month0() as i32 + months as i32;
    first_of_month(total.div_euclid(12), total.rem_euclid(12) as u32 + 1)
}

/// The calendar month containing `today`.
pub fn month_of(today: NaiveDate) -> Period {
    let start = first_of_month(today.year(), today.month());
    Period {
        start,
        end: add_months(start, 1),
    }
}

/// The budget period containing `today` (end exclusive: the first day of the next period).
pub fn period_of(unit: TimeUnit, today: NaiveDate) -> Period {
    match unit {
        TimeUnit::Daily => Period {
            start: today,
            end: today + Duration::days(1),
        },
        TimeUnit::Monthly => month_of(today),
        TimeUnit::Quarterly => {
            let start = first_of_month(today.year(), today.month0() / 3 * 3 + 1);
            Period {
                start,
                end: add_months(start, 3),
            }
        }
        TimeUnit::Annually => {
            let start = first_of_month(today.year(), 1);
            Period {
                start,
                end: add_months(start, 12),
            }
        }
    }
}

/// Month to date (today included) and the same days of the previous month.
pub fn month_to_date(today: NaiveDate) -> (Period, Period) {
    let month = month_of(today);
    let days = (today - month.start).num_days() + 1;
    let last_month = month.start - Duration::days(1);
    let previous_start = first_of_month(last_month.year(), last_month.month());
    let previous_end = (previous_start + Duration::days(days)).min(month.start);
    (
        Period {
            start: month.start,
            end: today + Duration::days(1),
        },
        Period {
            start: previous_start,
            end: previous_end,
        },
    )
}

/// The weekly review's week (the seven days before the run's day) and the week before it.
pub fn review_weeks(run_day: NaiveDate) -> (Period, Period) {
    let this = Period {
        start: run_day - Duration::days(7),
        end: run_day,
    };
    let previous = Period {
        start: run_day - Duration::days(14),
        end: run_day - Duration::days(7),
    };
    (this, previous)
}

/// How far `amount` is over `threshold`, in percent of the threshold (0 when not over).
pub fn over_percent(amount: f64, threshold: f64) -> f64 {
    if threshold <= 0.0 {
        return if amount > 0.0 { f64::INFINITY } else { 0.0 };
    }
    ((amount - threshold) / threshold * 100.0).max(0.0)
}

/// A budget alert's severity from the policy's bands; forecasts are capped.
pub fn severity_for(
    kind: AlertKind,
    amount: Option<f64>,
    threshold: Option<f64>,
    policy: &Budgets,
) -> Severity {
    let over = match (amount, threshold) {
        (Some(a), Some(t)) => over_percent(a, t),
        _ => 0.0,
    };
    let band = policy
        .bands
        .iter()
        .filter(|b| f64::from(b.over_percent) <= over)
        .map(|b| b.severity)
        .next_back()
        .unwrap_or(Severity::Medium);
    match kind {
        AlertKind::Actual => band,
        AlertKind::Forecasted => band.min(policy.forecast_max_severity),
    }
}

/// An anomaly's severity from its total impact.
pub fn anomaly_severity(impact: Option<f64>, policy: &Budgets) -> Severity {
    let impact = impact.unwrap_or(0.0);
    policy
        .anomaly_bands
        .iter()
        .filter(|b| f64::from(b.min_impact) <= impact)
        .map(|b| b.severity)
        .next_back()
        .unwrap_or(Severity::Low)
}

/// Where the figures of an alert come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Read back with `DescribeBudget`/`DescribeNotificationsForBudget`.
    Budgets,
    /// Only the notification's text (the budget could not be read).
    MessageText,
    /// The daily check over `DescribeBudgets`.
    DailyCheck,
}

/// One alert to send: about one budget, threshold and period.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDecision {
    pub account: String,
    pub budget: String,
    pub kind: AlertKind,
    /// The threshold's amount, when known.
    pub threshold_amount: Option<f64>,
    /// How the threshold reads (`80% of 100.00 USD`).
    pub threshold_label: String,
    /// The actual or forecasted amount compared.
    pub amount: Option<f64>,
    pub limit: Option<f64>,
    pub unit: String,
    pub period: Period,
    pub severity: Severity,
    pub source: Source,
    /// Whether the budget has a notification for this threshold in AWS Budgets.
    pub configured: bool,
    /// At most one message per budget, threshold and period.
    pub dedupe_key: String,
}

/// The de-duplication key of a budget alert: budget, kind, threshold (cents) and period.
pub fn dedupe_key(
    account: &str,
    budget: &str,
    kind: AlertKind,
    threshold: Option<f64>,
    period: Period,
) -> String {
    let threshold = threshold
        .map(|t| format!("{}", (t * 100.0).round() as i64))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "budget#{account}#{budget}#{}#{threshold}#{}",
        kind.as_str(),
        period.start
    )
}

fn money(amount: f64, unit: &str) -> String {
    format!("{amount:.2} {unit}")
}

fn label(threshold: Threshold, limit: Option<f64>, unit: &str) -> String {
    match (threshold, limit) {
        (Threshold::Percent(p), Some(l)) => format!("{p}% of {}", money(l, unit)),
        (Threshold::Percent(p), None) => format!("{p}% of the budgeted amount"),
        (Threshold::Absolute(a), _) => money(a, unit),
    }
}

/// Decides what an AWS Budgets notification means, preferring the figures
/// read back from AWS Budgets over the message's text.
pub fn decide_budget_alert(
    alert: &BudgetAlert,
    facts: Option<&BudgetFacts>,
    configured: &[ConfiguredAlert],
    policy: &Budgets,
    today: NaiveDate,
) -> AlertDecision {
    let limit = facts.and_then(|f| f.limit).or(alert.budgeted_amount);
    let unit = facts
        .map(|f| f.unit.clone())
        .unwrap_or_else(|| "USD".into());
    let read_back = facts.and_then(|f| match alert.kind {
        AlertKind::Actual => f.actual,
        AlertKind::Forecasted => f.forecast,
    });
    let amount = read_back.or(alert.amount);
    // The configured notification whose amount is the message's threshold.
    let matching = configured.iter().find(|c| {
        c.kind == alert.kind
            && match (c.threshold.amount(limit), alert.threshold_amount) {
                (Some(a), Some(t)) => (a - t).abs() <= 0.005 * t.abs().max(1.0),
                _ => false,
            }
    });
    let (threshold_amount, threshold_label) = match (matching, alert.threshold_amount) {
        (Some(c), _) => (c.threshold.amount(limit), label(c.threshold, limit, &unit)),
        (None, Some(t)) => (Some(t), money(t, &unit)),
        (None, None) => (limit, "the budgeted amount".to_string()),
    };
    let period = period_of(
        facts.map(|f| f.time_unit).unwrap_or(TimeUnit::Monthly),
        today,
    );
    AlertDecision {
        account: alert.account.clone(),
        budget: alert.budget_name.clone(),
        kind: alert.kind,
        threshold_amount,
        threshold_label,
        amount,
        limit,
        unit,
        period,
        severity: severity_for(alert.kind, amount, threshold_amount, policy),
        source: if facts.is_some() {
            Source::Budgets
        } else {
            Source::MessageText
        },
        configured: matching.is_some() || facts.is_none(),
        dedupe_key: dedupe_key(
            &alert.account,
            &alert.budget_name,
            alert.kind,
            threshold_amount,
            period,
        ),
    }
}

/// The daily check of one budget against the policy's thresholds: the
/// highest threshold actual spend has crossed, and the highest threshold
/// above it that the forecast crosses.
pub fn daily_check(
    facts: &BudgetFacts,
    configured: &[ConfiguredAlert],
    policy: &Budgets,
    today: NaiveDate,
) -> Vec<AlertDecision> {
    let Some(limit) = facts.limit.filter(|l| *l > 0.0) else {
        return Vec::new();
    };
    let mut thresholds: Vec<u32> = policy.thresholds.clone();
    thresholds.sort_unstable();
    thresholds.dedup();
    let crossed = |amount: Option<f64>| -> Option<u32> {
        let amount = amount?;
        thresholds
            .iter()
            .copied()
            .rfind(|t| amount >= limit * f64::from(*t) / 100.0)
    };
    let period = period_of(facts.time_unit, today);
    let decision = |kind: AlertKind, percent: u32, amount: Option<f64>| {
        let threshold = Threshold::Percent(f64::from(percent));
        let threshold_amount = threshold.amount(Some(limit));
        AlertDecision {
            account: facts.account.clone(),
            budget: facts.name.clone(),
            kind,
            threshold_amount,
            threshold_label: label(threshold, Some(limit), &facts.unit),
            amount,
            limit: Some(limit),
            unit: facts.unit.clone(),
            period,
            severity: severity_for(kind, amount, threshold_amount, policy),
            source: Source::DailyCheck,
            configured: configured.iter().any(|c| {
                c.kind == kind
                    && c.threshold
                        .amount(Some(limit))
                        .zip(threshold_amount)
                        .is_some_and(|(a, b)| (a - b).abs() < 0.005)
            }),
            dedupe_key: dedupe_key(&facts.account, &facts.name, kind, threshold_amount, period),
        }
    };
    let mut out = Vec::new();
    let actual = crossed(facts.actual);
    if let Some(t) = actual {
        out.push(decision(AlertKind::Actual, t, facts.actual));
    }
    if let Some(t) = crossed(facts.forecast) {
        if actual.is_none_or(|a| t > a) {
            out.push(decision(AlertKind::Forecasted, t, facts.forecast));
        }
    }
    out
}

/// Why dev is, or is not, stopped for an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum StopDecision {
    /// `budgets.stop_dev_on_breach` is off.
    Off,
    /// Not an ACTUAL breach, or AWS Budgets does not confirm it; the reason.
    NotConfirmed(String),
    /// The account is not mapped to `dev`, or not governed; the reason.
    NotDev(String),
    /// The stop was decided but cannot be requested (no work queue); the reason.
    Blocked(String),
    /// One work-queue message per region.
    Stop(Vec<StopRequest>),
}

/// One `budget-stop` job for the off-hours scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRequest {
    pub account: String,
    pub region: String,
    pub budget: String,
    pub period: Period,
    pub time: DateTime<Utc>,
}

impl StopRequest {
    /// The exact work-queue body the scheduler reads (SPEC section 4).
    pub fn body(&self) -> String {
        let s = |v: &str| serde_json::Value::String(v.to_string()).to_string();
        format!(
            "{{\"job\": \"budget-stop\", \"account\": {}, \"region\": {}, \"budget\": {}, \"period_start\": \"{}\", \"period_end\": \"{}\", \"time\": \"{}\"}}",
            s(&self.account),
            s(&self.region),
            s(&self.budget),
            self.period.start.format("%Y-%m-%d"),
            self.period.end.format("%Y-%m-%d"),
            self.time.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }

    /// The at-most-once key of this stop request.
    pub fn once_key(&self) -> String {
        format!(
            "budget-stop#{}#{}#{}#{}",
            self.account, self.budget, self.period.start, self.region
        )
    }
}

/// Decides the optional dev stop: only with the switch on, only for an
/// ACTUAL alert whose breach of the budgeted amount AWS Budgets confirms,
/// only for a governed account mapped to `dev`, once per target region.
pub fn dev_stop(
    decision: &AlertDecision,
    facts: Option<&BudgetFacts>,
    policy: &Policy,
    governed: bool,
    regions: &[String],
    now: DateTime<Utc>,
) -> StopDecision {
    if !policy.budgets.stop_dev_on_breach {
        return StopDecision::Off;
    }
    if decision.kind != AlertKind::Actual {
        return StopDecision::NotConfirmed("a forecast is not a breach".into());
    }
    let Some(facts) = facts else {
        return StopDecision::NotConfirmed(
            "the budget could not be read back with DescribeBudget, so the breach is not confirmed"
                .into(),
        );
    };
    match (facts.actual, facts.limit) {
        (Some(actual), Some(limit)) if actual >= limit => {}
        (actual, limit) => {
            return StopDecision::NotConfirmed(format!(
            "DescribeBudget reports actual spend {} against the budgeted {}: not over the budget",
            actual
                .map(|a| money(a, &facts.unit))
                .unwrap_or_else(|| "unknown".into()),
            limit
                .map(|l| money(l, &facts.unit))
                .unwrap_or_else(|| "unknown".into()),
        ))
        }
    }
    if !governed {
        return StopDecision::NotDev(format!(
            "account {} is not governed by steward ([targets] accounts)",
            decision.account
        ));
    }
    match policy.environment_of_account(&decision.account) {
        Some("dev") => {}
        other => {
            return StopDecision::NotDev(format!(
                "account {} is mapped to {} in tagging.account_environments, not dev",
                decision.account,
                other
                    .map(|e| format!("`{e}`"))
                    .unwrap_or_else(|| "nothing".into())
            ))
        }
    }
    StopDecision::Stop(
        regions
            .iter()
            .map(|region| StopRequest {
                account: decision.account.clone(),
                region: region.clone(),
                budget: decision.budget.clone(),
                period: decision.period,
                time: now,
            })
            .collect(),
    )
}

/// The largest lines first, at most `n`.
pub fn top(lines: &[CostLine], n: usize) -> Vec<CostLine> {
    let mut sorted = lines.to_vec();
    sorted.sort_by(|a, b| b.amount.total_cmp(&a.amount).then(a.key.cmp(&b.key)));
    sorted.truncate(n);
    sorted
}

/// The keys whose cost moved most between `before` and `now`, largest change first.
pub fn movers(before: &[CostLine], now: &[CostLine], n: usize) -> Vec<Mover> {
    let mut keys: Vec<&str> = before.iter().chain(now).map(|l| l.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let sum = |lines: &[CostLine], key: &str| -> f64 {
        lines
            .iter()
            .filter(|l| l.key == key)
            .map(|l| l.amount)
            .sum::<f64>()
            + 0.0 // an empty float sum is -0.0, which prints as "-0.00"
    };
    let mut out: Vec<Mover> = keys
        .into_iter()
        .map(|k| Mover {
            key: k.to_string(),
            before: sum(before, k),
            now: sum(now, k),
        })
        .filter(|m| m.change().abs() >= 0.01)
        .collect();
    out.sort_by(|a, b| {
        b.change()
            .abs()
            .total_cmp(&a.change().abs())
            .then(a.key.cmp(&b.key))
    });
    out.truncate(n);
    out
}

/// The share (0..=1) of spend whose tag is missing, from a tag grouping.
pub fn untagged_share(lines: &[CostLine]) -> Option<f64> {
    let total: f64 = lines.iter().map(|l| l.amount).sum();
    if total <= 0.0 {
        return None;
    }
    let untagged: f64 = lines
        .iter()
        .filter(|l| l.key == UNTAGGED)
        .map(|l| l.amount)
        .sum();
    Some(untagged / total)
}

/// Sum of lines.
pub fn total(lines: &[CostLine]) -> f64 {
    lines.iter().map(|l| l.amount).sum::<f64>() + 0.0
}

/// True when steward governs the account (its own, or `[targets] accounts`).
pub fn governed(account: &str, own_account: &str, policy: &Policy) -> bool {
    account == own_account || policy.targets.accounts.iter().any(|a| a == account)
}

/// The accounts the daily check walks: the function's own and the targets.
pub fn accounts(own_account: &str, policy: &Policy) -> Vec<String> {
    let mut all = vec![own_account.to_string()];
    all.extend(policy.targets.accounts.iter().cloned());
    all.sort();
    all.dedup();
    all
}

/// The regions a dev stop covers: the targets', else the function's own.
pub fn regions(own_region: &str, policy: &Policy) -> Vec<String> {
    if policy.targets.regions.is_empty() {
        vec![own_region.to_string()]
    } else {
        policy.targets.regions.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_shared::policy::Policy;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn facts(actual: f64, forecast: f64) -> BudgetFacts {
        BudgetFacts {
            account: "123456789012".into(),
            name: "dev-monthly".into(),
            budget_type: "COST".into(),
            limit: Some(100.0),
            unit: "USD".into(),
            time_unit: TimeUnit::Monthly,
            actual: Some(actual),
            forecast: Some(forecast),
        }
    }

    #[test]
    fn periods_end_on_the_first_day_of_the_next() {
        let p = period_of(TimeUnit::Monthly, d("2026-12-15"));
        assert_eq!((p.start, p.end), (d("2026-12-01"), d("2027-01-01")));
        let q = period_of(TimeUnit::Quarterly, d("2026-11-30"));
        assert_eq!((q.start, q.end), (d("2026-10-01"), d("2027-01-01")));
        let y = period_of(TimeUnit::Annually, d("2026-02-28"));
        assert_eq!((y.start, y.end), (d("2026-01-01"), d("2027-01-01")));
        let (mtd, prev) = month_to_date(d("2026-03-31"));
        assert_eq!((mtd.start, mtd.end), (d("2026-03-01"), d("2026-04-01")));
        assert_eq!((prev.start, prev.end), (d("2026-02-01"), d("2026-03-01")));
        let (mtd, prev) = month_to_date(d("2026-01-05"));
        assert_eq!(
            (mtd.start, prev.start, prev.end),
            (d("2026-01-01"), d("2025-12-01"), d("2025-12-06"))
        );
    }

    #[test]
    fn severity_bands_and_forecast_cap() {
        let p = Policy::default().budgets;
        assert_eq!(
            severity_for(AlertKind::Actual, Some(85.0), Some(80.0), &p),
            Severity::Medium
        );
        assert_eq!(
            severity_for(AlertKind::Actual, Some(112.5), Some(80.0), &p),
            Severity::High
        );
        assert_eq!(
            severity_for(AlertKind::Actual, Some(200.0), Some(80.0), &p),
            Severity::Critical
        );
        assert_eq!(
            severity_for(AlertKind::Forecasted, Some(200.0), Some(80.0), &p),
            Severity::Medium
        );
        assert_eq!(anomaly_severity(Some(151.0), &p), Severity::Medium);
        assert_eq!(anomaly_severity(Some(5000.0), &p), Severity::High);
        assert_eq!(anomaly_severity(None, &p), Severity::Low);
    }

    #[test]
    fn daily_check_flags_highest_crossings() {
        let p = Policy::default().budgets;
        let today = d("2026-12-10");
        assert!(daily_check(&facts(10.0, 50.0), &[], &p, today).is_empty());
        let only_forecast = daily_check(&facts(40.0, 130.0), &[], &p, today);
        assert_eq!(only_forecast.len(), 1);
        assert_eq!(only_forecast[0].kind, AlertKind::Forecasted);
        assert_eq!(only_forecast[0].threshold_amount, Some(100.0));
        assert!(!only_forecast[0].configured);
        let both = daily_check(&facts(85.0, 130.0), &[], &p, today);
        assert_eq!(both.len(), 2);
        // The same budget, threshold and period always has the same key.
        assert_eq!(both[1].dedupe_key, only_forecast[0].dedupe_key);
    }

    #[test]
    fn sns_and_daily_check_share_the_key() {
        let p = Policy::default().budgets;
        let alert = BudgetAlert {
            message_id: "m".into(),
            time: "2026-12-10T00:00:00Z".parse().unwrap(),
            account: "123456789012".into(),
            budget_name: "dev-monthly".into(),
            budget_type: None,
            kind: AlertKind::Actual,
            threshold_amount: Some(80.0),
            budgeted_amount: Some(100.0),
            amount: Some(85.0),
        };
        let configured = [ConfiguredAlert {
            kind: AlertKind::Actual,
            threshold: Threshold::Percent(80.0),
        }];
        let f = facts(85.0, 90.0);
        let a = decide_budget_alert(&alert, Some(&f), &configured, &p, d("2026-12-10"));
        assert_eq!(a.threshold_label, "80% of 100.00 USD");
        let daily = daily_check(&f, &configured, &p, d("2026-12-10"));
        assert_eq!(daily[0].dedupe_key, a.dedupe_key);
        assert!(daily[0].configured);
    }

    #[test]
    fn dev_stop_rules_and_exact_body() {
        let mut policy = Policy::default();
        let f = facts(120.0, 150.0);
        let now: DateTime<Utc> = "2026-12-10T10:00:00Z".parse().unwrap();
        let decision = daily_check(&f, &[], &policy.budgets, now.date_naive())[0].clone();
        let regions = vec!["us-east-1".to_string(), "eu-west-1".to_string()];
        assert_eq!(
            dev_stop(&decision, Some(&f), &policy, true, &regions, now),
            StopDecision::Off
        );
        policy.budgets.stop_dev_on_breach = true;
        assert!(matches!(
            dev_stop(&decision, Some(&f), &policy, true, &regions, now),
            StopDecision::NotDev(_)
        ));
        policy
            .tagging
            .account_environments
            .insert("123456789012".into(), "dev".into());
        assert!(matches!(
            dev_stop(&decision, None, &policy, true, &regions, now),
            StopDecision::NotConfirmed(_)
        ));
        assert!(matches!(
            dev_stop(&decision, Some(&f), &policy, false, &regions, now),
            StopDecision::NotDev(_)
        ));
        let under = facts(90.0, 150.0);
        assert!(matches!(
            dev_stop(&decision, Some(&under), &policy, true, &regions, now),
            StopDecision::NotConfirmed(_)
        ));
        let StopDecision::Stop(requests) =
            dev_stop(&decision, Some(&f), &policy, true, &regions, now)
        else {
            panic!("no stop")
        };
        assert_eq!(requests.len(), 2);
        assert_eq!(
            requests[0].body(),
            r#"{"job": "budget-stop", "account": "123456789012", "region": "us-east-1", "budget": "dev-monthly", "period_start": "2026-12-01", "period_end": "2027-01-01", "time": "2026-12-10T10:00:00Z"}"#
        );
    }

    #[test]
    fn movers_and_untagged() {
        let line = |k: &str, a: f64| CostLine {
            key: k.into(),
            amount: a,
        };
        let m = movers(
            &[line("EC2", 10.0), line("S3", 5.0)],
            &[line("EC2", 40.0), line("RDS", 3.0)],
            5,
        );
        assert_eq!(m[0].key, "EC2");
        assert_eq!(m[1].key, "S3");
        assert_eq!(
            untagged_share(&[line("", 25.0), line("team-a", 75.0)]),
            Some(0.25)
        );
        assert_eq!(untagged_share(&[]), None);
    }
}
