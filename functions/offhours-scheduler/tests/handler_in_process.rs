//! The scheduler's handler in process: a fake fleet (EC2 instances and RDS
//! databases held in memory) behind the `Fleet` port, the in-memory publisher and idempotency
//! store of `steward_shared::testing`, and scheduled events for Friday
//! evening and Monday morning. No emulator: the plan, the run and the digest
//! are exercised exactly as the binary runs them, the SDK aside.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use offhours_scheduler::model::{ItemResult, Kind, Power, Resource};
use offhours_scheduler::{Fleet, ScheduledResource, Scheduler, StopItem, Target};
use serde_json::{json, Value};
use steward_shared::safety::RunMode;
use steward_shared::testing::{self, TestSteward};
use steward_shared::Policy;

/// Resources of one kind held in memory: what the adapter lists, stops,
/// starts and tags.
struct MemoryInstances {
    kind: Kind,
    items: Mutex<Vec<Resource>>,
    calls: Mutex<Vec<String>>,
    /// Ids whose stop fails (throttled).
    failing: Mutex<Vec<String>>,
}

impl Default for MemoryInstances {
    fn default() -> Self {
        MemoryInstances::of(Kind::Ec2Instance)
    }
}

impl MemoryInstances {
    fn of(kind: Kind) -> MemoryInstances {
        MemoryInstances {
            kind,
            items: Mutex::default(),
            calls: Mutex::default(),
            failing: Mutex::default(),
        }
    }

    fn power(&self, id: &str) -> Power {
        let items = self.items.lock().unwrap();
        items.iter().find(|r| r.id == id).unwrap().power.clone()
    }

    fn set(&self, id: &str, power: Power) {
        let mut items = self.items.lock().unwrap();
        items.iter_mut().find(|r| r.id == id).unwrap().power = power;
    }
}

#[async_trait::async_trait]
impl ScheduledResource for MemoryInstances {
    fn kind(&self) -> Kind {
        self.kind
    }

    async fn list(&self) -> anyhow::Result<Vec<Resource>> {
        Ok(self.items.lock().unwrap().clone())
    }

    async fn stop(&self, batch: &[StopItem<'_>]) -> Vec<ItemResult> {
        batch
            .iter()
            .map(|item| {
                self.calls
                    .lock()
                    .unwrap()
                    .push(format!("stop {}", item.resource.id));
                if self.failing.lock().unwrap().contains(&item.resource.id) {
                    return ItemResult::failed(
                        &item.resource.id,
                        "StopInstances failed: RequestLimitExceeded: throttled",
                    );
                }
                self.set(&item.resource.id, Power::Stopped);
                ItemResult::ok(&item.resource.id)
            })
            .collect()
    }

    async fn start(&self, batch: &[&Resource]) -> Vec<ItemResult> {
        batch
            .iter()
            .map(|r| {
                self.calls.lock().unwrap().push(format!("start {}", r.id));
                self.set(&r.id, Power::Running);
                ItemResult::ok(&r.id)
            })
            .collect()
    }

    async fn tag(&self, resource: &Resource, key: &str, value: &str) -> Result<(), String> {
        let mut items = self.items.lock().unwrap();
        let item = items.iter_mut().find(|r| r.id == resource.id).unwrap();
        item.tags.insert(key.to_string(), value.to_string());
        Ok(())
    }
}

/// The fleet of every target: the memory adapters.
#[derive(Clone)]
struct MemoryFleet(Vec<Arc<MemoryInstances>>);

#[async_trait::async_trait]
impl Fleet for MemoryFleet {
    async fn adapters(
        &self,
        _target: &Target,
        _session: &str,
    ) -> anyhow::Result<Vec<Arc<dyn ScheduledResource>>> {
        Ok(self
            .0
            .iter()
            .map(|a| a.clone() as Arc<dyn ScheduledResource>)
            .collect())
    }
}

fn instance(id: &str, env: &str) -> Resource {
    let tags: HashMap<String, String> = testing::tags(&[("env", env), ("project", "shop")]);
    Resource::new(
        Kind::Ec2Instance,
        id,
        format!("arn:aws:ec2:us-east-1:123456789012:instance/{id}"),
        tags.into_iter().collect(),
        Power::Running,
    )
}

fn scheduled(time: &str) -> Value {
    json!({
        "version": "0", "id": format!("run-{time}"), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": time,
        "region": "us-east-1", "resources": [], "detail": {}
    })
}

fn setup(mode: RunMode) -> (TestSteward, Arc<MemoryInstances>, Scheduler<MemoryFleet>) {
    let t = testing::steward("offhours-scheduler", Policy::default(), mode);
    let fleet = Arc::new(MemoryInstances::default());
    *fleet.items.lock().unwrap() = vec![
        instance("i-dev-1", "dev"),
        instance("i-dev-2", "dev"),
        instance("i-prod", "prod"),
    ];
    let scheduler = Scheduler::new(t.steward.clone(), MemoryFleet(vec![fleet.clone()]), None);
    (t, fleet, scheduler)
}

#[tokio::test]
async fn friday_evening_stops_dev_only_and_monday_morning_starts_it_with_one_digest_each() {
    let (t, fleet, scheduler) = setup(RunMode::Live);
    // Friday 2026-11-20 19:00 UTC: the default schedule's stop.
    let out = scheduler
        .invoke(scheduled("2026-11-20T19:00:00Z"), "r-1")
        .await
        .unwrap();
    assert_eq!(fleet.power("i-dev-1"), Power::Stopped, "{out:#}");
    assert_eq!(fleet.power("i-dev-2"), Power::Stopped);
    assert_eq!(fleet.power("i-prod"), Power::Running);
    assert_eq!(t.publisher.count(), 1, "{:?}", t.publisher.subjects());

    // The same event again (EventBridge's at-least-once delivery) changes nothing.
    scheduler
        .invoke(scheduled("2026-11-20T19:00:00Z"), "r-2")
        .await
        .unwrap();
    let stops = fleet
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("stop"))
        .count();
    assert_eq!(stops, 2);

    // Monday 2026-11-23 07:00 UTC: the start.
    scheduler
        .invoke(scheduled("2026-11-23T07:00:00Z"), "r-3")
        .await
        .unwrap();
    assert_eq!(fleet.power("i-dev-1"), Power::Running);
    assert_eq!(fleet.power("i-dev-2"), Power::Running);
    assert_eq!(t.publisher.count(), 2, "{:?}", t.publisher.subjects());
}

#[tokio::test]
async fn dry_run_plans_and_reports_but_changes_nothing() {
    let (t, fleet, scheduler) = setup(RunMode::DryRun);
    scheduler
        .invoke(scheduled("2026-11-20T19:00:00Z"), "r-1")
        .await
        .unwrap();
    assert!(fleet.calls.lock().unwrap().is_empty());
    assert_eq!(fleet.power("i-dev-1"), Power::Running);
    assert_eq!(t.publisher.count(), 1, "{:?}", t.publisher.subjects());
}

#[tokio::test]
async fn a_database_rds_restarted_in_its_off_time_is_stopped_again_through_the_fleet() {
    let t = testing::steward("offhours-scheduler", Policy::default(), RunMode::Live);
    let databases = Arc::new(MemoryInstances::of(Kind::RdsInstance));
    let arn = "arn:aws:rds:us-east-1:123456789012:db:dev-postgres";
    let tags: HashMap<String, String> = testing::tags(&[("env", "dev")]);
    *databases.items.lock().unwrap() = vec![Resource::new(
        Kind::RdsInstance,
        "dev-postgres",
        arn,
        tags.into_iter().collect(),
        Power::Running,
    )];
    let fleet = MemoryFleet(vec![
        Arc::new(MemoryInstances::default()),
        databases.clone(),
    ]);
    let scheduler = Scheduler::new(t.steward.clone(), fleet, None);
    // Sunday 03:12 UTC: inside the default schedule's off time.
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/rds-event-0154-instance-restarted.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let out = scheduler.invoke(event, "r-1").await.unwrap();
    assert_eq!(out["outcome"], "stopped", "{out:#}");
    assert_eq!(databases.power("dev-postgres"), Power::Stopped);
    assert_eq!(t.publisher.count(), 1, "{:?}", t.publisher.subjects());
}

/// The fan-out tests' set-up: a live steward whose work items may be 90
/// minutes old, the last run time at five past the hour, and a fleet of one
/// dev instance tagged to stop at that run (and start twelve hours later).
fn fan_out_setup() -> (
    TestSteward,
    chrono::DateTime<chrono::Utc>,
    Arc<MemoryInstances>,
) {
    use chrono::{Duration, Timelike, Utc};
    let mut policy = Policy::default();
    policy.offhours.max_work_item_age_minutes = 90;
    let t = testing::steward("offhours-scheduler", policy, RunMode::Live);
    let now = Utc::now();
    let mut run_at = now
        .with_minute(5)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap();
    if run_at > now {
        run_at -= Duration::hours(1);
    }
    let fleet = Arc::new(MemoryInstances::default());
    let mut dev = instance("i-dev", "dev");
    dev.tags.insert(
        "steward:offhours".into(),
        format!(
            "off=(M-U,{});on=(M-U,{});tz=utc",
            run_at.hour(),
            (run_at.hour() + 12) % 24
        ),
    );
    *fleet.items.lock().unwrap() = vec![dev];
    (t, run_at, fleet)
}

/// The hub account's target in `region`.
fn hub_target(region: &str) -> Target {
    Target {
        account: "123456789012".into(),
        region: region.into(),
    }
}

/// A work item of a fanned-out run for `target` at `time`, as an SQS batch.
fn work(message_id: &str, target: &Target, time: &str) -> Value {
    let body = json!({"account": target.account, "region": target.region, "time": time});
    json!({"Records": [{
        "messageId": message_id, "body": body.to_string(),
        "eventSource": "aws:sqs", "awsRegion": "us-east-1"
    }]})
}

/// Issue 10: a fanned-out run's batches record their results in the
/// in-memory store and the last one sends the run's one digest; a run with
/// a target that never reports gets its digest from the first scheduled
/// run past `max_work_item_age_minutes`, naming the target.
#[tokio::test]
async fn a_fanned_out_run_sends_one_digest_or_an_overdue_one_naming_the_missing_target() {
    use chrono::Duration;
    let (t, run_at, fleet) = fan_out_setup();
    let scheduler = Scheduler::new(t.steward.clone(), MemoryFleet(vec![fleet.clone()]), None);
    let (east, west) = (hub_target("us-east-1"), hub_target("us-west-2"));
    let store = t.store.as_ref();

    // Both targets report: one digest, after the second.
    offhours_scheduler::open_run(store, run_at, &[east.clone(), west.clone()])
        .await
        .unwrap();
    let time = run_at.to_rfc3339();
    let out = scheduler
        .invoke(work("m-1", &east, &time), "r-1")
        .await
        .unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert_eq!(t.publisher.count(), 0, "{:?}", t.publisher.subjects());
    scheduler
        .invoke(work("m-2", &west, &time), "r-2")
        .await
        .unwrap();
    assert_eq!(t.publisher.count(), 1, "{:?}", t.publisher.subjects());
    assert!(
        t.publisher.subjects()[0].contains("1 stopped"),
        "{:?}",
        t.publisher.subjects()
    );
    scheduler
        .invoke(work("m-1", &east, &time), "r-3")
        .await
        .unwrap();
    assert_eq!(
        t.publisher.count(),
        1,
        "a redelivery sends no second digest"
    );

    // A later run whose second target never reports.
    let later = run_at + Duration::minutes(15);
    offhours_scheduler::open_run(store, later, &[east.clone(), west.clone()])
        .await
        .unwrap();
    scheduler
        .invoke(work("m-3", &east, &later.to_rfc3339()), "r-4")
        .await
        .unwrap();
    assert_eq!(t.publisher.count(), 1);
    // Before the deadline nothing; past it, the overdue digest names the target.
    scheduler
        .invoke(
            scheduled(&(later + Duration::minutes(60)).to_rfc3339()),
            "r-5",
        )
        .await
        .unwrap();
    assert_eq!(t.publisher.count(), 1, "{:?}", t.publisher.subjects());
    scheduler
        .invoke(
            scheduled(&(later + Duration::minutes(120)).to_rfc3339()),
            "r-6",
        )
        .await
        .unwrap();
    let subjects = t.publisher.subjects();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects[1].contains("1 target(s) never reported"),
        "{subjects:?}"
    );
    assert!(offhours_scheduler::open_runs(store)
        .await
        .unwrap()
        .is_empty());
}

/// Issue 10: a failed target counts as reported (the run's digest says it
/// failed); its redelivery that then stops the instance reports that late,
/// once, and a further redelivery with nothing left to do sends nothing.
#[tokio::test]
async fn a_failed_targets_later_success_is_reported_once_after_the_runs_digest() {
    let (t, run_at, fleet) = fan_out_setup();
    fleet.failing.lock().unwrap().push("i-dev".into());
    let scheduler = Scheduler::new(t.steward.clone(), MemoryFleet(vec![fleet.clone()]), None);
    let east = hub_target("us-east-1");
    offhours_scheduler::open_run(t.store.as_ref(), run_at, std::slice::from_ref(&east))
        .await
        .unwrap();
    let time = run_at.to_rfc3339();
    let out = scheduler
        .invoke(work("m-1", &east, &time), "r-1")
        .await
        .unwrap();
    assert_eq!(
        out["batchItemFailures"],
        json!([{"itemIdentifier": "m-1"}]),
        "{out:#}"
    );
    let subjects = t.publisher.subjects();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(subjects[0].contains("1 failed"), "{subjects:?}");

    fleet.failing.lock().unwrap().clear();
    let out = scheduler
        .invoke(work("m-1", &east, &time), "r-2")
        .await
        .unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "{out:#}");
    assert_eq!(fleet.power("i-dev"), Power::Stopped);
    let subjects = t.publisher.subjects();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects[1].contains("1 stopped"), "{subjects:?}");

    scheduler
        .invoke(work("m-1", &east, &time), "r-3")
        .await
        .unwrap();
    assert_eq!(t.publisher.count(), 2, "{:?}", t.publisher.subjects());
}

/// A resource type whose first listing fails (AWS throttling it past the
/// SDK's retries), then lists nothing.
struct ListFailsOnce(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl ScheduledResource for ListFailsOnce {
    fn kind(&self) -> Kind {
        Kind::EcsService
    }

    async fn list(&self) -> anyhow::Result<Vec<Resource>> {
        if self.0.swap(false, std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("ListClusters: ThrottlingException: Rate exceeded");
        }
        Ok(Vec::new())
    }

    async fn stop(&self, _batch: &[StopItem<'_>]) -> Vec<ItemResult> {
        Vec::new()
    }

    async fn start(&self, _batch: &[&Resource]) -> Vec<ItemResult> {
        Vec::new()
    }

    async fn tag(&self, _resource: &Resource, _key: &str, _value: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Issue 11 (found under injected faults): the first run of a target failed
/// listing, so it stopped nothing; the next run catches its window up.
#[tokio::test]
async fn a_first_run_that_failed_is_caught_up_by_the_next_run() {
    let t = testing::steward("offhours-scheduler", Policy::default(), RunMode::Live);
    let instances = Arc::new(MemoryInstances::default());
    *instances.items.lock().unwrap() = vec![instance("i-dev-1", "dev"), instance("i-prod", "prod")];
    let flaky = Arc::new(ListFailsOnce(std::sync::atomic::AtomicBool::new(true)));
    struct Both(Arc<MemoryInstances>, Arc<ListFailsOnce>);
    #[async_trait::async_trait]
    impl Fleet for Both {
        async fn adapters(
            &self,
            _target: &Target,
            _session: &str,
        ) -> anyhow::Result<Vec<Arc<dyn ScheduledResource>>> {
            Ok(vec![
                self.0.clone() as Arc<dyn ScheduledResource>,
                self.1.clone() as Arc<dyn ScheduledResource>,
            ])
        }
    }
    let scheduler = Scheduler::new(t.steward.clone(), Both(instances.clone(), flaky), None);
    let out = scheduler
        .invoke(scheduled("2026-11-20T19:05:00Z"), "r-1")
        .await
        .unwrap();
    assert_eq!(instances.power("i-dev-1"), Power::Running, "{out:#}");
    let out = scheduler
        .invoke(scheduled("2026-11-20T19:20:00Z"), "r-2")
        .await
        .unwrap();
    assert_eq!(instances.power("i-dev-1"), Power::Stopped, "{out:#}");
    assert_eq!(instances.power("i-prod"), Power::Running);
}
