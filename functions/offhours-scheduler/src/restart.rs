//! The seven-day restart (RDS-EVENT-0154 / RDS-EVENT-0153): RDS started a
//! database that had been stopped for seven days. When the database is in
//! scope and in its off time, wait (bounded) until it is available and stop
//! it again; if it is still starting, tag it `steward:restart-pending` so the
//! next run stops it. One notification per event. The database is read,
//! stopped and marked through the `Fleet` port, like every other run.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use steward_shared::notify::{Category, Notification, Severity};
use steward_shared::observability::Metrics;
use steward_shared::{Policy, Steward};

use crate::events::RdsRestart;
use crate::model::{Kind, Power, RESTART_PENDING};
use crate::plan;
use crate::report;
use crate::resources::{ScheduledResource, StopItem, Target};
use crate::run::Fleet;
use crate::schedule;

/// How often the RDS restart handler checks whether the database is available.
const RESTART_POLL: Duration = Duration::from_secs(15);

/// Handles one seven-day restart event.
pub async fn handle(
    steward: &Steward,
    fleet: &impl Fleet,
    event: RdsRestart,
    policy: &Policy,
    metrics: &mut Metrics,
) -> anyhow::Result<Value> {
    let target = Target {
        account: event.account.clone(),
        region: event.region.clone(),
    };
    let kind = if event.cluster {
        Kind::AuroraCluster
    } else {
        Kind::RdsInstance
    };
    let adapter: Arc<dyn ScheduledResource> = fleet
        .adapters(&target, &event.event_id)
        .await?
        .into_iter()
        .find(|a| a.kind() == kind)
        .ok_or_else(|| anyhow::anyhow!("no {kind} adapter for {target}"))?;
    let found = find(adapter.as_ref(), &event.identifier).await?;
    let Some(resource) = found else {
        tracing::warn!(identifier = %event.identifier, "the database no longer exists; nothing to do");
        return Ok(
            json!({"event_id": event.event_id, "ignored": format!("{} not found", event.identifier)}),
        );
    };
    metrics.resources_evaluated += 1;
    let holidays = schedule::holiday_dates(&policy.offhours);
    if let Err(why) = plan::restop_after_restart(&resource, policy, event.time, &holidays) {
        tracing::info!(resource = %resource.arn, why = %why, "restarted by RDS after seven days; left running");
        return Ok(json!({"event_id": event.event_id, "left_running": why}));
    }
    // RDS is still starting when the event arrives: wait, within a bound, until it is available.
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(policy.offhours.restart_wait_seconds as u64);
    let mut power = resource.power.clone();
    loop {
        if !matches!(power, Power::Busy(_)) {
            break;
        }
        if tokio::time::Instant::now() + RESTART_POLL > deadline {
            break;
        }
        tokio::time::sleep(RESTART_POLL).await;
        power = match find(adapter.as_ref(), &event.identifier).await? {
            Some(now) => now.power,
            None => anyhow::bail!("{} disappeared while it was starting", event.identifier),
        };
    }
    let (outcome, severity, detail) = match &power {
        Power::Running if steward.mode().may_change() => {
            let result = adapter
                .stop(&[StopItem {
                    resource: &resource,
                    hibernate: false,
                }])
                .await;
            match result.first().map(|r| r.result.clone()) {
                Some(Ok(())) => {
                    metrics.actions_taken += 1;
                    (
                        "stopped",
                        Severity::Info,
                        "it was in its off time, so it was stopped again".to_string(),
                    )
                }
                Some(Err(e)) => {
                    metrics.actions_failed += 1;
                    (
                        "failed",
                        Severity::Medium,
                        format!("stopping it again failed: {e}"),
                    )
                }
                None => (
                    "failed",
                    Severity::Medium,
                    "no result from the stop call".to_string(),
                ),
            }
        }
        Power::Running => (
            "would be stopped",
            Severity::Info,
            "it is in its off time; this run changes nothing".into(),
        ),
        Power::Stopped => (
            "already stopped",
            Severity::Info,
            "it is already stopped".into(),
        ),
        Power::Busy(state) if steward.mode().may_change() => {
            match adapter.tag(&resource, RESTART_PENDING, &event.time.to_rfc3339()).await {
                Ok(()) => (
                    "left for the next run",
                    Severity::Info,
                    format!(
                        "it is still {state} after {} s ([offhours] restart_wait_seconds); it is tagged {RESTART_PENDING} and the next run stops it",
                        policy.offhours.restart_wait_seconds
                    ),
                ),
                Err(e) => {
                    metrics.actions_failed += 1;
                    (
                        "failed",
                        Severity::Medium,
                        format!("it is still {state} and marking it for the next run failed: {e}; stop it by hand"),
                    )
                }
            }
        }
        Power::Busy(state) => (
            "would be left for the next run",
            Severity::Info,
            format!("it is still {state}; this run changes nothing"),
        ),
    };
    tracing::info!(resource = %resource.arn, outcome, "seven-day restart handled");
    let mut n = Notification::new(
        severity,
        Category::Offhours,
        "restart-undone",
        format!(
            "{kind} {} restarted by RDS after 7 days: {outcome}",
            resource.id
        ),
    );
    n.details.push(format!(
        "RDS started {} because it had been stopped for seven days; {detail}.",
        resource.id
    ));
    n.account = target.account.clone();
    n.region = target.region.clone();
    n.environment = resource.tags.get(steward_shared::tags::ENV).cloned();
    n.related_resources.push(resource.arn.clone());
    n.thread_id = resource.arn.clone();
    n.dedupe_key = event.event_id.clone();
    let sent = report::send(steward, &n, policy, metrics).await?;
    Ok(
        json!({"event_id": event.event_id, "resource": resource.arn, "outcome": outcome, "notification": sent}),
    )
}

/// The database `identifier` as its adapter lists it now.
async fn find(
    adapter: &dyn ScheduledResource,
    identifier: &str,
) -> anyhow::Result<Option<crate::model::Resource>> {
    Ok(adapter
        .list()
        .await?
        .into_iter()
        .find(|r| r.id == identifier))
}
