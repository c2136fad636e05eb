//! Best-effort enrichment from Cost Explorer, through the run's cache: the
//! month-to-date breakdown of an account (by service, by the `cost_center`
//! and `env` tags, movers against the same days of the previous month, the
//! forecast to month end, the untagged share) and the weekly review's
//! figures. A failed or throttled request leaves its part empty and names it
//! in `missing`; it never fails the alert.
//!
//! Requests per message (distinct questions; the cache answers repeats in the
//! same run): a budget alert 5 (`GetCostAndUsage` by service, by
//! `cost_center`, by `env`, by service for the previous month's same days;
//! `GetCostForecast`), so a daily check pays 5 per account with a crossing;
//! an anomaly 1 (`GetAnomalies`); the weekly review 7 (this week by account,
//! service, `project`, `env`, `cost_center`; last week by service;
//! `GetCostForecast`).

use chrono::{Duration, NaiveDate};
use steward_shared::tags;

use crate::costexplorer::RunCache;
use crate::model::{Breakdown, CostQuery, ForecastQuery, GroupBy, Period, WeeklyFigures};
use crate::plan;

fn query(account: Option<&str>, period: Period, group: GroupBy) -> CostQuery {
    CostQuery {
        account: account.map(str::to_string),
        start: period.start,
        end: period.end,
        group,
    }
}

/// The month-to-date breakdown of one account.
pub async fn breakdown(
    cache: &RunCache<'_>,
    account: &str,
    today: NaiveDate,
    items: usize,
) -> Breakdown {
    let (mtd, previous) = plan::month_to_date(today);
    let mut b = Breakdown::default();
    let month = plan::month_of(today);
    match cache
        .cost(&query(Some(account), mtd, GroupBy::Service))
        .await
    {
        Ok(lines) => b.by_service = Some(plan::top(&lines, items)),
        Err(e) => b.missing.push(format!("cost by service: {e}")),
    }
    match cache
        .cost(&query(
            Some(account),
            mtd,
            GroupBy::Tag(tags::COST_CENTER.into()),
        ))
        .await
    {
        Ok(lines) => {
            b.untagged_share = plan::untagged_share(&lines);
            b.by_cost_center = Some(plan::top(&lines, items));
        }
        Err(e) => b
            .missing
            .push(format!("cost by cost_center and the untagged share: {e}")),
    }
    match cache
        .cost(&query(Some(account), mtd, GroupBy::Tag(tags::ENV.into())))
        .await
    {
        Ok(lines) => b.by_env = Some(plan::top(&lines, items)),
        Err(e) => b.missing.push(format!("cost by env: {e}")),
    }
    match (
        b.by_service.is_some(),
        cache
            .cost(&query(Some(account), previous, GroupBy::Service))
            .await,
    ) {
        (true, Ok(before)) => {
            let now = cache
                .cost(&query(Some(account), mtd, GroupBy::Service))
                .await
                .unwrap_or_default();
            b.movers = Some(plan::movers(&before, &now, items.min(5)));
        }
        (_, Err(e)) => b
            .missing
            .push(format!("top movers against last month: {e}")),
        (false, Ok(_)) => b
            .missing
            .push("top movers against last month: this month's cost by service is missing".into()),
    }
    let forecast = ForecastQuery {
        account: Some(account.to_string()),
        start: today,
        end: month.end.max(today + Duration::days(1)),
    };
    match cache.forecast(&forecast).await {
        Ok(f) => b.forecast = Some(f),
        Err(e) => b.missing.push(format!("forecast to month end: {e}")),
    }
    b
}

/// The weekly review's figures for the week before `run_day`.
pub async fn weekly(cache: &RunCache<'_>, run_day: NaiveDate, items: usize) -> WeeklyFigures {
    let (week, previous) = plan::review_weeks(run_day);
    let mut w = WeeklyFigures {
        week: Some(week),
        ..Default::default()
    };
    match cache.cost(&query(None, week, GroupBy::LinkedAccount)).await {
        Ok(lines) => {
            w.total = Some(plan::total(&lines));
            w.by_account = Some(plan::top(&lines, items));
        }
        Err(e) => w.missing.push(format!("cost by account: {e}")),
    }
    let this_by_service = cache.cost(&query(None, week, GroupBy::Service)).await;
    match &this_by_service {
        Ok(lines) => w.by_service = Some(plan::top(lines, items)),
        Err(e) => w.missing.push(format!("cost by service: {e}")),
    }
    for (key, slot) in [
        (tags::PROJECT, &mut w.by_project),
        (tags::ENV, &mut w.by_env),
    ] {
        match cache
            .cost(&query(None, week, GroupBy::Tag(key.into())))
            .await
        {
            Ok(lines) => *slot = Some(plan::top(&lines, items)),
            Err(e) => w.missing.push(format!("cost by {key}: {e}")),
        }
    }
    match cache
        .cost(&query(None, week, GroupBy::Tag(tags::COST_CENTER.into())))
        .await
    {
        Ok(lines) => {
            w.untagged_share = plan::untagged_share(&lines);
            w.by_cost_center = Some(plan::top(&lines, items));
        }
        Err(e) => w
            .missing
            .push(format!("cost by cost_center and the untagged share: {e}")),
    }
    match (
        this_by_service,
        cache.cost(&query(None, previous, GroupBy::Service)).await,
    ) {
        (Ok(now), Ok(before)) => {
            w.previous_total = Some(plan::total(&before));
            w.movers = Some(plan::movers(&before, &now, items.min(5)));
        }
        (_, Err(e)) => w.missing.push(format!("week over week: {e}")),
        (Err(_), Ok(before)) => w.previous_total = Some(plan::total(&before)),
    }
    let month = plan::month_of(run_day);
    let forecast = ForecastQuery {
        account: None,
        start: run_day,
        end: month.end.max(run_day + Duration::days(1)),
    };
    match cache.forecast(&forecast).await {
        Ok(f) => w.forecast = Some(f),
        Err(e) => w.missing.push(format!("forecast to month end: {e}")),
    }
    w
}
