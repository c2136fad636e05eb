//! One run over its targets: list every resource type in every target
//! (concurrently, with the policy's bound), plan with the pure planner, and
//! apply the plan through the adapters. A failing target is reported and
//! the others proceed.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use steward_shared::Policy;

use crate::model::Kind;
use crate::plan::{self, Decision, Malformed, Plan, Window};
use crate::resources::{self, ScheduledResource, StopItem, Target};

/// Builds the adapters of one target (the real one assumes the member role).
#[async_trait::async_trait]
pub trait Fleet: Send + Sync {
    async fn adapters(
        &self,
        target: &Target,
        session: &str,
    ) -> anyhow::Result<Vec<Arc<dyn ScheduledResource>>>;
}

/// The SDK adapters reached through the shared AWS context.
pub struct AwsFleet {
    pub aws: steward_shared::aws::AwsContext,
}

#[async_trait::async_trait]
impl Fleet for AwsFleet {
    async fn adapters(
        &self,
        target: &Target,
        session: &str,
    ) -> anyhow::Result<Vec<Arc<dyn ScheduledResource>>> {
        let config = self
            .aws
            .config_for(&target.account, &target.region, session)
            .await?;
        Ok(resources::registry(&config, target))
    }
}

/// The plan of one target, or why it could not be planned.
pub struct TargetPlan {
    pub target: Target,
    pub result: anyhow::Result<(Plan, Vec<Arc<dyn ScheduledResource>>)>,
}

/// Lists and plans every target, at most `policy.offhours.concurrency` at a time.
pub async fn plan_targets(
    fleet: &dyn Fleet,
    targets: &[Target],
    policy: &Policy,
    window: Window,
    session: &str,
    carried: &BTreeMap<Target, plan::Carried>,
) -> Vec<TargetPlan> {
    let empty = &plan::Carried::default();
    let bound = policy.offhours.concurrency.max(1) as usize;
    let mut plans: Vec<TargetPlan> = stream::iter(targets.iter().cloned())
        .map(|target| async move {
            let result = async {
                let adapters = fleet.adapters(&target, session).await?;
                let listed = futures::future::join_all(adapters.iter().map(|a| a.list())).await;
                let mut resources = Vec::new();
                for (adapter, list) in adapters.iter().zip(listed) {
                    resources.extend(
                        list.map_err(|e| anyhow::anyhow!("listing {}: {e:#}", adapter.kind()))?,
                    );
                }
                let carried = carried.get(&target).unwrap_or(empty);
                let window = plan::catch_up_window(window, carried.covered_until, policy);
                let mut plan = plan::plan_with_retries(
                    resources,
                    policy,
                    window,
                    Some(&target.account),
                    &carried.retries,
                );
                plan.window = Some(window);
                Ok((plan, adapters))
            }
            .await;
            TargetPlan { target, result }
        })
        .buffer_unordered(bound)
        .collect()
        .await;
    plans.sort_by(|a, b| a.target.cmp(&b.target));
    plans
}

/// What a run did to one resource (serialized as the words the digest and
/// the response use: `stopped`, `would be started`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Stopped,
    Hibernated,
    Started,
    /// The run changes nothing (dry-run, kill switch): what it would do.
    WouldStop,
    WouldHibernate,
    WouldStart,
    Skipped,
    Failed,
}

impl Outcome {
    /// The outcome of a successful stop (`hibernated`), start or neither.
    fn of(verb: Verb, change: bool) -> Outcome {
        match (verb, change) {
            (Verb::Stop, true) => Outcome::Stopped,
            (Verb::Hibernate, true) => Outcome::Hibernated,
            (Verb::Start, true) => Outcome::Started,
            (Verb::Stop, false) => Outcome::WouldStop,
            (Verb::Hibernate, false) => Outcome::WouldHibernate,
            (Verb::Start, false) => Outcome::WouldStart,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Stopped => "stopped",
            Outcome::Hibernated => "hibernated",
            Outcome::Started => "started",
            Outcome::WouldStop => "would be stopped",
            Outcome::WouldHibernate => "would be hibernated",
            Outcome::WouldStart => "would be started",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }

    /// A stop or hibernation, done or planned.
    pub fn is_stop(self) -> bool {
        matches!(
            self,
            Outcome::Stopped | Outcome::Hibernated | Outcome::WouldStop | Outcome::WouldHibernate
        )
    }

    /// A start, done or planned.
    pub fn is_start(self) -> bool {
        matches!(self, Outcome::Started | Outcome::WouldStart)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const ALL: [Outcome; 8] = [
            Outcome::Stopped,
            Outcome::Hibernated,
            Outcome::Started,
            Outcome::WouldStop,
            Outcome::WouldHibernate,
            Outcome::WouldStart,
            Outcome::Skipped,
            Outcome::Failed,
        ];
        let text = String::deserialize(d)?;
        ALL.into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome {text:?}")))
    }
}

/// The action behind a successful outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Stop,
    Hibernate,
    Start,
}

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub kind: Kind,
    pub id: String,
    pub arn: String,
    pub outcome: Outcome,
    /// The skip reason or the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The outcome of one target.
/// Also what a fanned-out run records per target for its one digest
/// (`run_state::record_results`), read back with `Deserialize`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TargetReport {
    pub target: Target,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub done: Vec<Done>,
    #[serde(default)]
    pub malformed: Vec<Malformed>,
    #[serde(default)]
    pub evaluated: usize,
    /// Resources whose `env` tag changed since the previous run of this target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_changes: Vec<crate::env_watch::EnvChange>,
    /// Why the run's blast-radius budget held this target back (nothing changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back: Option<String>,
    /// Set when runs were missed: this target's window started here, at
    /// the end of its previous run (within `[offhours] catch_up_minutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught_up_from: Option<chrono::DateTime<chrono::Utc>>,
    /// ARNs whose failed transition from an earlier run was retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried: Vec<String>,
    /// ARNs whose failed transition passed the catch-up limit (given up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gave_up: Vec<String>,
}

impl TargetReport {
    /// The report of a target that could not be planned.
    pub fn failed(target: Target, error: String) -> TargetReport {
        TargetReport {
            target,
            error: Some(error),
            done: vec![],
            malformed: vec![],
            evaluated: 0,
            env_changes: vec![],
            held_back: None,
            caught_up_from: None,
            retried: vec![],
            gave_up: vec![],
        }
    }

    /// Whether anything in this target failed (the target or one resource).
    pub fn has_failures(&self) -> bool {
        self.error.is_some() || self.done.iter().any(|d| d.outcome == Outcome::Failed)
    }

    /// The resources whose outcome passes `which`.
    pub fn count(&self, which: impl Fn(Outcome) -> bool) -> usize {
        self.done.iter().filter(|d| which(d.outcome)).count()
    }
}

/// Applies a target's plan (or, when `change` is false, reports what it
/// would do). Stops and starts are batched per resource type.
pub async fn apply(
    plan: &Plan,
    adapters: &[Arc<dyn ScheduledResource>],
    change: bool,
) -> Vec<Done> {
    let mut done = Vec::new();
    let mut by_kind: BTreeMap<Kind, (Vec<StopItem<'_>>, Vec<&crate::model::Resource>)> =
        BTreeMap::new();
    for p in &plan.items {
        let r = &p.resource;
        match &p.decision {
            Decision::Skip { reason } => done.push(Done {
                kind: r.kind,
                id: r.id.clone(),
                arn: r.arn.clone(),
                outcome: Outcome::Skipped,
                reason: Some(reason.clone()),
            }),
            Decision::Stop { hibernate } => by_kind.entry(r.kind).or_default().0.push(StopItem {
                resource: r,
                hibernate: *hibernate,
            }),
            Decision::Start => by_kind.entry(r.kind).or_default().1.push(r),
        }
    }
    for (kind, (stops, starts)) in by_kind {
        let Some(adapter) = adapters.iter().find(|a| a.kind() == kind) else {
            continue;
        };
        let hibernating: std::collections::HashSet<&str> = stops
            .iter()
            .filter(|s| s.hibernate)
            .map(|s| s.resource.id.as_str())
            .collect();
        let arn_of = |id: &str| {
            plan.items
                .iter()
                .find(|p| p.resource.kind == kind && p.resource.id == id)
                .map(|p| p.resource.arn.clone())
                .unwrap_or_default()
        };
        let stop_results = if change && !stops.is_empty() {
            adapter.stop(&stops).await
        } else {
            stops
                .iter()
                .map(|s| crate::model::ItemResult::ok(&s.resource.id))
                .collect()
        };
        for r in stop_results {
            let verb = if hibernating.contains(r.id.as_str()) {
                Verb::Hibernate
            } else {
                Verb::Stop
            };
            done.push(outcome(kind, &r, arn_of(&r.id), verb, change));
        }
        let start_results = if change && !starts.is_empty() {
            adapter.start(&starts).await
        } else {
            starts
                .iter()
                .map(|s| crate::model::ItemResult::ok(&s.id))
                .collect()
        };
        for r in start_results {
            done.push(outcome(kind, &r, arn_of(&r.id), Verb::Start, change));
        }
    }
    done
}

fn outcome(
    kind: Kind,
    r: &crate::model::ItemResult,
    arn: String,
    verb: Verb,
    change: bool,
) -> Done {
    match &r.result {
        Ok(()) => Done {
            kind,
            id: r.id.clone(),
            arn,
            outcome: Outcome::of(verb, change),
            reason: None,
        },
        Err(e) => Done {
            kind,
            id: r.id.clone(),
            arn,
            outcome: Outcome::Failed,
            reason: Some(e.clone()),
        },
    }
}
