//! The seven-day restart (RDS-EVENT-0154 / RDS-EVENT-0153): RDS started a
//! database that had been stopped for seven days. When the database is in
//! scope and in its off time, wait (bounded) until it is available and stop
//! it again; if it is still starting, tag it `steward:restart-pending` so the
//! next run stops it. One notification per event.

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
use crate::resources::{
    aurora::AuroraClusters, rds::RdsInstances, ScheduledResource, StopItem, Target,
};
use crate::schedule;

/// How often the RDS restart handler checks whether the database is available.
const RESTART_POLL: Duration = Duration::from_secs(15);

/// Handles one seven-day restart event.
pub async fn handle(
    steward: &Steward,
    event: RdsRestart,
    policy: &Policy,
    metrics: &mut Metrics,
) -> anyhow::Result<Value> {
    let config = steward
        .aws
        .config_for(&event.account, &event.region, &event.event_id)
        .await?;
    let target = Target {
        account: event.account.clone(),
        region: event.region.clone(),
    };
    let adapter: Arc<dyn ScheduledResource> = if event.cluster {
        Arc::new(AuroraClusters::new(&config))
    } else {
        Arc::new(RdsInstances::new(&config))
    };
    let found = adapter
        .list()
        .await?
        .into_iter()
        .find(|r| r.id == event.identifier);
    let Some(resource) = found else {
        tracing::warn!(identifier = %event.identifier, "the database no longer exists; nothing to do");
        return Ok(
            json!({"event_id": event.event_id, "ignored": format!("{} not found", event.identifier)}),
        );
    };
    metrics.resources_evaluated += 1;
    let holidays = schedule::parse_holidays(&policy.offhours);
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
        power = if event.cluster {
            AuroraClusters::new(&config)
                .power(&event.identifier)
                .await?
        } else {
            RdsInstances::new(&config).power(&event.identifier).await?
        };
    }
    let kind = if event.cluster {
        Kind::AuroraCluster
    } else {
        Kind::RdsInstance
    };
    let (outcome, severity, detail) = match &power {
        Power::Running if steward.mode().may_change() => {
            let result = adapter.stop(&[StopItem { resource: &resource, hibernate: false }]).await;
            match result.first().map(|r| r.result.clone()) {
                Some(Ok(())) => {
                    metrics.actions_taken += 1;
                    ("stopped", Severity::Info, "it was in its off time, so it was stopped again".to_string())
                }
                Some(Err(e)) => {
                    metrics.actions_failed += 1;
                    ("failed", Severity::Medium, format!("stopping it again failed: {e}"))
                }
                None => ("failed", Severity::Medium, "no result from the stop call".to_string()),
            }
        }
        Power::Running => ("would be stopped", Severity::Info, "it is in its off time; this run changes nothing".into()),
        Power::Stopped => ("already stopped", Severity::Info, "it is already stopped".into()),
        Power::Busy(state) if steward.mode().may_change() => {
            match crate::resources::rds::mark_restart_pending(&config, &resource.arn, event.time).await {
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
                        format!("it is still {state} and marking it for the next run failed: {e:#}; stop it by hand"),
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
