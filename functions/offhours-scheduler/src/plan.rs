//! The pure planner: given the resources of a run, the policy and the run's
//! window, decide what to stop, what to start and what to leave alone (with
//! the reason). No AWS call happens here; the function, `steward plan` and
//! the property tests all use this code.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use steward_shared::{safety, Policy};

use crate::model::{Kind, Power, Resource, BUDGET_HOLD, RESTART_PENDING};
use crate::schedule::{self, Action, Resolution};

/// The interval a run acts on: transitions in (start, end].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// The window of a run at `at`: (at - interval, at]. Never panics: a
    /// start before the earliest representable instant is clamped to it (the
    /// handler refuses such times first, see [`Window::checked_ending_at`]).
    pub fn ending_at(at: DateTime<Utc>, policy: &Policy) -> Window {
        Window {
            start: at
                .checked_sub_signed(Duration::minutes(policy.offhours.interval_minutes as i64))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            end: at,
        }
    }

    /// The window of a run at `at`, or why `at` is not a time a run can act
    /// at (years outside 1970..=9000: the schedule looks days back and ahead).
    pub fn checked_ending_at(at: DateTime<Utc>, policy: &Policy) -> Result<Window, String> {
        check_time(at)?;
        Ok(Window::ending_at(at, policy))
    }
}

/// Refuses instants whose date arithmetic (days back and ahead, time zones)
/// could leave chrono's range: only years 1970 to 9000 are run times.
pub fn check_time(at: DateTime<Utc>) -> Result<(), String> {
    use chrono::Datelike;
    if (1970..=9000).contains(&at.year()) {
        Ok(())
    } else {
        Err(format!(
            "time {at:?} is outside the years 1970 to 9000 a run can act at"
        ))
    }
}

/// Whether a work item for a run at `time` may still be acted on at `now`:
/// items older than `[offhours] max_work_item_age_minutes` (or as far in the
/// future) are stale and dropped, never replayed.
pub fn fresh_work_item(
    time: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<(), String> {
    let max = i64::from(policy.offhours.max_work_item_age_minutes);
    let age = now.signed_duration_since(time).num_minutes();
    if age > max {
        Err(format!(
            "{age} minutes old, more than [offhours] max_work_item_age_minutes = {max}"
        ))
    } else if -age > max {
        Err(format!("{} minutes in the future", -age))
    } else {
        Ok(())
    }
}

/// Skip reasons that start with this are the account floor (SPEC section 5).
pub const ACCOUNT_FLOOR: &str = "account floor";

/// Why the account forbids cost actions, if it does: the account is a floor.
/// In an account that `tagging.account_environments` maps to `prod` or
/// `staging`, nothing is stopped or scaled to zero whatever its `env` tag
/// says, unless `[offhours] allow_mixed_accounts = true`.
pub fn account_floor(policy: &Policy, account: &str) -> Option<String> {
    if policy.offhours.allow_mixed_accounts {
        return None;
    }
    let env = policy.environment_of_account(account)?;
    matches!(env.trim().to_ascii_lowercase().as_str(), "prod" | "staging").then(|| {
        format!(
            "{ACCOUNT_FLOOR}: account {account} is mapped to {env} in [tagging] account_environments (set [offhours] allow_mixed_accounts = true to allow it)"
        )
    })
}

/// The account field of an ARN (`arn:partition:service:region:account:...`).
pub fn account_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The longest hold a `steward:budget-hold` tag is honoured for: an annual
/// budget period and a little. A tag further out (written by hand or by
/// someone who wants a resource kept down) is ignored, not trusted.
pub const MAX_HOLD_DAYS: i64 = 400;

/// The end of the budget period a resource is held for (`steward:budget-hold`,
/// the period's exclusive end: the first day of the next period), when the
/// hold is still on at `at`: the off-hours start leaves it stopped.
pub fn budget_hold(resource: &Resource, at: DateTime<Utc>) -> Option<NaiveDate> {
    let value = resource.tags.get(BUDGET_HOLD)?;
    let end = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").ok()?;
    let today = at.date_naive();
    (today < end && (end - today).num_days() <= MAX_HOLD_DAYS).then_some(end)
}

/// What a `budget-stop` job does to one in-scope resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum HoldDecision {
    /// Running: tag the hold first, then stop (or scale to zero).
    StopAndHold { hibernate: bool },
    /// Already stopped without this period's hold: tag it, so the morning
    /// start leaves it stopped.
    Hold,
    /// Stopped and held for this period already (a redelivered job).
    AlreadyHeld,
    /// Must not or cannot be stopped.
    Skip { reason: String },
}

/// One resource with its budget-stop decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldPlanned {
    pub resource: Resource,
    #[serde(flatten)]
    pub decision: HoldDecision,
}

/// The plan of one `budget-stop` job (one account and region).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HoldPlan {
    pub items: Vec<HoldPlanned>,
    pub evaluated: usize,
}

impl HoldPlan {
    /// Resources this job would change (stop, or tag as held).
    pub fn changes(&self) -> usize {
        self.items
            .iter()
            .filter(|p| {
                matches!(
                    p.decision,
                    HoldDecision::StopAndHold { .. } | HoldDecision::Hold
                )
            })
            .count()
    }
}

/// Plans a `budget-stop` job: every resource of `account` whose `env` is in
/// `offhours.environments` is stopped and held until `hold_until` (the
/// budget period's exclusive end), whatever its schedule says, with the
/// scheduler's invariants: `steward:exempt`, the account floor, resources
/// left to an owner and resources between states are skipped with the
/// reason; nothing outside the allowed environments is ever in the plan. A
/// period that has ended by `today` holds nothing.
pub fn plan_budget_stop(
    resources: Vec<Resource>,
    policy: &Policy,
    account: &str,
    hold_until: NaiveDate,
    today: NaiveDate,
) -> HoldPlan {
    let mut plan = HoldPlan {
        evaluated: resources.len(),
        ..HoldPlan::default()
    };
    let floor = account_floor(policy, account);
    let hold = hold_until.format("%Y-%m-%d").to_string();
    for resource in resources {
        if !safety::env_allows_cost_action(&resource.tags, &policy.offhours.environments) {
            continue;
        }
        let skip = |reason: String| HoldDecision::Skip { reason };
        let decision = if hold_until <= today {
            skip(format!(
                "the budget period ended on {hold_until}; nothing to hold"
            ))
        } else if (hold_until - today).num_days() > MAX_HOLD_DAYS {
            skip(format!(
                "the budget period ends on {hold_until}, more than {MAX_HOLD_DAYS} days ahead"
            ))
        } else if safety::is_exempt(&resource.tags) {
            skip("steward:exempt=true".into())
        } else if let Some(reason) = &floor {
            skip(reason.clone())
        } else if let Some(reason) = &resource.owner_skip {
            skip(reason.clone())
        } else {
            match &resource.power {
                Power::Busy(state) => skip(format!("is {state}; left alone by this job")),
                Power::Running => HoldDecision::StopAndHold {
                    hibernate: resource.kind == Kind::Ec2Instance
                        && policy.offhours.hibernate
                        && resource.hibernation_configured,
                },
                Power::Stopped
                    if resource.tags.get(BUDGET_HOLD).map(|v| v.trim()) == Some(hold.as_str()) =>
                {
                    HoldDecision::AlreadyHeld
                }
                Power::Stopped => HoldDecision::Hold,
            }
        };
        plan.items.push(HoldPlanned { resource, decision });
    }
    plan
}

/// What the run does to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    Stop {
        hibernate: bool,
    },
    Start,
    /// The schedule asks for a change but the resource must not or cannot get it.
    Skip {
        reason: String,
    },
}

/// One resource with its decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub resource: Resource,
    #[serde(flatten)]
    pub decision: Decision,
}

/// A `steward:offhours`/`maid_offhours` tag that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Malformed {
    pub arn: String,
    pub tag: String,
    pub value: String,
    pub error: String,
}

/// The plan of a run (or of one target).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Stops, starts and skips, in listing order.
    pub items: Vec<Planned>,
    pub malformed: Vec<Malformed>,
    /// Resources evaluated.
    pub evaluated: usize,
    /// Resources already in the state the schedule asks for.
    pub already: usize,
    /// The `env` tag of every listed resource by ARN (`""`: none), compared
    /// with the previous run's to report changed tags.
    #[serde(skip)]
    pub seen_env: std::collections::BTreeMap<String, String>,
    /// ARNs whose failed transition from an earlier run this plan retries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retried: Vec<String>,
    /// ARNs whose failed transition passed `[offhours] catch_up_minutes`: given up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gave_up: Vec<String>,
    /// The window this target was planned on, when set by the run (widened
    /// back over missed runs by [`catch_up_window`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

impl Plan {
    /// The number of resources this plan would change.
    pub fn changes(&self) -> usize {
        self.items
            .iter()
            .filter(|p| !matches!(p.decision, Decision::Skip { .. }))
            .count()
    }

    pub fn merge(&mut self, other: Plan) {
        self.items.extend(other.items);
        self.malformed.extend(other.malformed);
        self.evaluated += other.evaluated;
        self.already += other.already;
        self.seen_env.extend(other.seen_env);
        self.retried.extend(other.retried);
        self.gave_up.extend(other.gave_up);
    }
}

/// Plans one run over `resources`: only transitions inside `window` are acted
/// on, so a resource started by hand during its off time stays up until its
/// next off transition.
pub fn plan(resources: Vec<Resource>, policy: &Policy, window: Window) -> Plan {
    plan_in(resources, policy, window, None)
}

/// [`plan`] for the resources of one account (`None`: each resource's
/// account is read from its ARN). The account floor applies to stops.
pub fn plan_in(
    resources: Vec<Resource>,
    policy: &Policy,
    window: Window,
    account: Option<&str>,
) -> Plan {
    plan_with_retries(resources, policy, window, account, &Retries::new())
}

/// Which way a failed transition went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryAction {
    Stop,
    Start,
}

/// A stop or start steward attempted and that failed (throttling, a 5xx):
/// later runs retry it until it succeeds or `[offhours] catch_up_minutes`
/// after the transition, as long as the resource is still in the state it
/// was in when the action failed (otherwise someone changed it by hand, and
/// it is left alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PendingRetry {
    pub action: RetryAction,
    /// The window end of the run whose transition failed first.
    pub since: DateTime<Utc>,
}

/// The pending retries of one target, by ARN.
pub type Retries = std::collections::BTreeMap<String, PendingRetry>;

/// What a target carries from its earlier runs into this one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Carried {
    /// Failed stops and starts still to retry.
    pub retries: Retries,
    /// The window end of the target's previous run (`None`: never ran, or unknown).
    pub covered_until: Option<DateTime<Utc>>,
}

/// The window a target's run acts on: the run's window, widened back to the
/// end of the target's previous run when runs were missed in between (the
/// scheduler was down, a schedule was skipped), but never further back than
/// `[offhours] catch_up_minutes` before the window's end. With no previous
/// run on record the run's own window is used: a first run never replays
/// the past.
pub fn catch_up_window(
    window: Window,
    covered_until: Option<DateTime<Utc>>,
    policy: &Policy,
) -> Window {
    let Some(last) = covered_until else {
        return window;
    };
    let earliest = window
        .end
        .checked_sub_signed(Duration::minutes(i64::from(
            policy.offhours.catch_up_minutes,
        )))
        .unwrap_or(window.start);
    let start = last.max(earliest);
    if start < window.start {
        Window {
            start,
            end: window.end,
        }
    } else {
        window
    }
}

/// Whether a pending retry is still within the catch-up limit at `at`.
pub fn within_catch_up(retry: &PendingRetry, at: DateTime<Utc>, policy: &Policy) -> bool {
    retry.since <= at
        && at.signed_duration_since(retry.since)
            <= Duration::minutes(i64::from(policy.offhours.catch_up_minutes))
}

/// The pending retries after a run: every stop or start of this plan that
/// failed (`failed` holds their ARNs), keeping the time of the first failure.
/// Retries that succeeded, gave up, or whose resource was changed by hand
/// are dropped.
pub fn next_retries(plan: &Plan, failed: &[&str], old: &Retries, window: Window) -> Retries {
    plan.items
        .iter()
        .filter(|p| failed.contains(&p.resource.arn.as_str()))
        .filter_map(|p| {
            let action = match p.decision {
                Decision::Stop { .. } => RetryAction::Stop,
                Decision::Start => RetryAction::Start,
                Decision::Skip { .. } => return None,
            };
            let since = old
                .get(&p.resource.arn)
                .filter(|r| r.action == action)
                .map(|r| r.since)
                .unwrap_or(window.end);
            Some((p.resource.arn.clone(), PendingRetry { action, since }))
        })
        .collect()
}

/// [`plan_in`] with the target's pending retries: a resource with no
/// transition in the window whose earlier stop or start failed gets it again
/// while within the catch-up limit and still in the state it failed in
/// (running for a stop, stopped for a start), with every invariant applied
/// again (env, exempt, owners, account floor, budget hold).
pub fn plan_with_retries(
    resources: Vec<Resource>,
    policy: &Policy,
    window: Window,
    account: Option<&str>,
    retries: &Retries,
) -> Plan {
    let holidays = schedule::holiday_dates(&policy.offhours);
    let mut plan = Plan {
        evaluated: resources.len(),
        ..Plan::default()
    };
    if !policy.offhours.enabled {
        return plan;
    }
    for resource in resources {
        plan.seen_env.insert(
            resource.arn.clone(),
            resource
                .tags
                .get(steward_shared::tags::ENV)
                .cloned()
                .unwrap_or_default(),
        );
        // Safety first: a resource outside the allowed environments (or with
        // no readable env tag) is never part of a plan.
        if !safety::env_allows_cost_action(&resource.tags, &policy.offhours.environments) {
            continue;
        }
        let schedule = match schedule::resolve(&resource.tags, &policy.offhours) {
            Resolution::Scheduled(s) => s,
            Resolution::OptedOut | Resolution::NotScheduled => continue,
            Resolution::Malformed { tag, value, error } => {
                plan.malformed.push(Malformed {
                    arn: resource.arn.clone(),
                    tag,
                    value,
                    error: error.to_string(),
                });
                continue;
            }
        };
        let transition = schedule.last_transition(window.start, window.end, &holidays);
        let mut action = transition.map_or(Action::None, |(action, _)| action);
        if action == Action::None
            && restart_pending(&resource, window.end)
            && schedule.is_off_at(window.end, &holidays)
        {
            // RDS started it after seven days and it was not available in time to be stopped again.
            action = Action::Stop;
        }
        if action == Action::None {
            if let Some(retry) = retries.get(&resource.arn) {
                let still = matches!(
                    (retry.action, &resource.power),
                    (RetryAction::Stop, Power::Running) | (RetryAction::Start, Power::Stopped)
                );
                let by_hand = changed_by_hand(&resource, retry.since, window.end).is_some();
                if !within_catch_up(retry, window.end, policy) {
                    plan.gave_up.push(resource.arn.clone());
                } else if still && !by_hand {
                    plan.retried.push(resource.arn.clone());
                    action = match retry.action {
                        RetryAction::Stop => Action::Stop,
                        RetryAction::Start => Action::Start,
                    };
                }
            }
        }
        if let Some(mut decision) = decide(&resource, action, policy) {
            if let Some(reason) = transition
                .filter(|_| !matches!(decision, Decision::Skip { .. }))
                .and_then(|(_, at)| changed_by_hand(&resource, at, window.end))
            {
                decision = Decision::Skip { reason };
            }
            let account = account.or_else(|| account_of_arn(&resource.arn));
            match decision {
                Decision::Stop { .. } => {
                    if let Some(reason) = account.and_then(|a| account_floor(policy, a)) {
                        decision = Decision::Skip { reason };
                    }
                }
                Decision::Start => {
                    if let Some(end) = budget_hold(&resource, window.end) {
                        decision = Decision::Skip {
                            reason: format!(
                                "{BUDGET_HOLD}={end}: held stopped until its budget period ends"
                            ),
                        };
                    }
                }
                Decision::Skip { .. } => {}
            }
            plan.items.push(Planned { resource, decision });
        } else if action != Action::None {
            plan.already += 1;
        }
    }
    plan
}

/// Why a resource is left alone although its schedule has a transition at
/// `transition` in the window ending at `window_end`: AWS reports it was
/// started or changed by a user after that transition (and by the window's
/// end), so someone changed it by hand since, and it stays as it is until
/// its next transition. This matters most when a run catches up the window
/// of a missed run: an instance started by hand after the missed 19:00 stop
/// stays up. Only resources whose service reports such a time are covered
/// (EC2; see `Resource::changed_at`).
pub fn changed_by_hand(
    resource: &Resource,
    transition: DateTime<Utc>,
    window_end: DateTime<Utc>,
) -> Option<String> {
    let at = resource.changed_at?;
    (at > transition && at <= window_end).then(|| {
        format!(
            "changed by hand at {} (AWS's record), after the transition at {}; left as it is until its next transition",
            at.to_rfc3339(),
            transition.to_rfc3339()
        )
    })
}

/// Whether a database carries a recent (under a day old) seven-day restart marker.
pub fn restart_pending(resource: &Resource, at: DateTime<Utc>) -> bool {
    matches!(resource.kind, Kind::RdsInstance | Kind::AuroraCluster)
        && resource
            .tags
            .get(RESTART_PENDING)
            .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
            .is_some_and(|t| at - t.with_timezone(&Utc) <= Duration::days(1) && t <= at)
}

/// The decision for one in-scope resource given the schedule's action in the
/// window; `None` when there is nothing to do or say.
pub fn decide(resource: &Resource, action: Action, policy: &Policy) -> Option<Decision> {
    let wanted = match action {
        Action::None => return None,
        a => a,
    };
    let needed = match (&resource.power, wanted) {
        (Power::Running, Action::Stop) | (Power::Stopped, Action::Start) => true,
        (Power::Busy(state), _) => {
            return Some(Decision::Skip {
                reason: format!("is {state}; left alone this run"),
            })
        }
        _ => false,
    };
    if !needed {
        return None;
    }
    if safety::is_exempt(&resource.tags) {
        return Some(Decision::Skip {
            reason: "steward:exempt=true".into(),
        });
    }
    if let Some(reason) = &resource.owner_skip {
        return Some(Decision::Skip {
            reason: reason.clone(),
        });
    }
    match wanted {
        Action::Stop => Some(Decision::Stop {
            hibernate: resource.kind == Kind::Ec2Instance
                && policy.offhours.hibernate
                && resource.hibernation_configured,
        }),
        _ => match &resource.start_blocker {
            Some(reason) => Some(Decision::Skip {
                reason: reason.clone(),
            }),
            None => Some(Decision::Start),
        },
    }
}

/// Whether an RDS instance or cluster that AWS started after seven days
/// stopped should be stopped again at `at`: in scope, not exempt, not left to
/// an owner, and in its off time or held for its budget period.
pub fn restop_after_restart(
    resource: &Resource,
    policy: &Policy,
    at: DateTime<Utc>,
    holidays: &[NaiveDate],
) -> Result<(), String> {
    if !policy.offhours.enabled {
        return Err("[offhours] enabled = false".into());
    }
    if !safety::env_allows_cost_action(&resource.tags, &policy.offhours.environments) {
        return Err(format!(
            "its env tag is not one of [offhours] environments ({})",
            policy.offhours.environments.join(", ")
        ));
    }
    if safety::is_exempt(&resource.tags) {
        return Err("steward:exempt=true".into());
    }
    if let Some(reason) = account_of_arn(&resource.arn).and_then(|a| account_floor(policy, a)) {
        return Err(reason);
    }
    if let Some(reason) = &resource.owner_skip {
        return Err(reason.clone());
    }
    if budget_hold(resource, at).is_some() {
        // Held stopped for its budget period: stopped again whatever the hour.
        return Ok(());
    }
    match schedule::resolve(&resource.tags, &policy.offhours) {
        Resolution::Scheduled(s) if s.is_off_at(at, holidays) => Ok(()),
        Resolution::Scheduled(_) => Err("it is in its on time".into()),
        Resolution::OptedOut => Err("it opted out of the schedule".into()),
        Resolution::NotScheduled => Err("it has no schedule tag and the policy is opt-in".into()),
        Resolution::Malformed { tag, value, error } => {
            Err(format!("{tag}={value:?} does not parse: {error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use steward_shared::tags::TagMap;

    fn tags(pairs: &[(&str, &str)]) -> TagMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ec2(id: &str, pairs: &[(&str, &str)], power: Power) -> Resource {
        Resource::new(
            Kind::Ec2Instance,
            id,
            format!("arn:aws:ec2:us-east-1:123456789012:instance/{id}"),
            tags(pairs),
            power,
        )
    }

    /// Friday 2026-11-20 19:05 UTC: the default schedule's off transition at 19:00 is in the window.
    fn friday_evening() -> Window {
        Window::ending_at(
            Utc.with_ymd_and_hms(2026, 11, 20, 19, 5, 0).unwrap(),
            &Policy::default(),
        )
    }

    fn decisions(plan: &Plan) -> Vec<(String, Decision)> {
        plan.items
            .iter()
            .map(|p| (p.resource.id.clone(), p.decision.clone()))
            .collect()
    }

    #[test]
    fn friday_evening_stops_running_dev_only() {
        let resources = vec![
            ec2("dev", &[("env", "dev")], Power::Running),
            ec2("prod", &[("env", "prod")], Power::Running),
            ec2("untagged", &[], Power::Running),
            ec2(
                "optout",
                &[("env", "dev"), ("steward:offhours", "off")],
                Power::Running,
            ),
            ec2(
                "exempt",
                &[("env", "dev"), ("steward:exempt", "true")],
                Power::Running,
            ),
            ec2("stopped", &[("env", "dev")], Power::Stopped),
            ec2(
                "bad",
                &[("env", "dev"), ("steward:offhours", "off=(X,99")],
                Power::Running,
            ),
        ];
        let plan = plan(resources, &Policy::default(), friday_evening());
        assert_eq!(
            decisions(&plan),
            vec![
                ("dev".to_string(), Decision::Stop { hibernate: false }),
                (
                    "exempt".to_string(),
                    Decision::Skip {
                        reason: "steward:exempt=true".into()
                    }
                ),
            ]
        );
        assert_eq!(plan.changes(), 1);
        assert_eq!(plan.already, 1);
        assert_eq!(plan.malformed.len(), 1);
        assert_eq!(plan.malformed[0].tag, "steward:offhours");
    }

    #[test]
    fn account_floor_skips_stops_unless_mixed_accounts_are_allowed() {
        let mut policy = Policy::default();
        policy
            .tagging
            .account_environments
            .insert("123456789012".into(), "prod".into());
        let p = plan(
            vec![ec2("dev", &[("env", "dev")], Power::Running)],
            &policy,
            friday_evening(),
        );
        match &p.items[0].decision {
            Decision::Skip { reason } => assert!(reason.starts_with(ACCOUNT_FLOOR), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.changes(), 0);
        policy.offhours.allow_mixed_accounts = true;
        let p = plan(
            vec![ec2("dev", &[("env", "dev")], Power::Running)],
            &policy,
            friday_evening(),
        );
        assert_eq!(p.changes(), 1);
    }

    #[test]
    fn stale_and_extreme_work_items_are_refused_without_panic() {
        let policy = Policy::default();
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 19, 5, 0).unwrap();
        assert!(fresh_work_item(now - Duration::minutes(59), now, &policy).is_ok());
        assert!(fresh_work_item(now - Duration::minutes(61), now, &policy).is_err());
        assert!(fresh_work_item(now + Duration::days(3), now, &policy).is_err());
        assert!(fresh_work_item(DateTime::<Utc>::MIN_UTC, now, &policy).is_err());
        assert!(fresh_work_item(DateTime::<Utc>::MAX_UTC, now, &policy).is_err());
        assert!(check_time(DateTime::<Utc>::MAX_UTC).is_err());
        assert!(Window::checked_ending_at(DateTime::<Utc>::MIN_UTC, &policy).is_err());
        let _ = Window::ending_at(DateTime::<Utc>::MIN_UTC, &policy);
    }

    #[test]
    fn hibernation_only_when_policy_and_instance_allow_it() {
        let mut capable = ec2("h", &[("env", "dev")], Power::Running);
        capable.hibernation_configured = true;
        let plain = ec2("p", &[("env", "dev")], Power::Running);
        let mut policy = Policy::default();
        policy.offhours.hibernate = true;
        let p = plan(vec![capable.clone(), plain], &policy, friday_evening());
        assert_eq!(
            decisions(&p),
            vec![
                ("h".into(), Decision::Stop { hibernate: true }),
                ("p".into(), Decision::Stop { hibernate: false })
            ]
        );
        let p = plan(vec![capable], &Policy::default(), friday_evening());
        assert_eq!(
            decisions(&p),
            vec![("h".into(), Decision::Stop { hibernate: false })]
        );
    }

    #[test]
    fn owner_skips_and_start_blockers_carry_their_reason() {
        let mut replica = Resource::new(
            Kind::RdsInstance,
            "db",
            "arn:db",
            tags(&[("env", "dev")]),
            Power::Running,
        );
        replica.owner_skip = Some("is a read replica of main".into());
        let p = plan(vec![replica], &Policy::default(), friday_evening());
        assert_eq!(
            decisions(&p),
            vec![(
                "db".into(),
                Decision::Skip {
                    reason: "is a read replica of main".into()
                }
            )]
        );

        let monday = Window::ending_at(
            Utc.with_ymd_and_hms(2026, 11, 23, 7, 10, 0).unwrap(),
            &Policy::default(),
        );
        let mut asg = Resource::new(
            Kind::AutoScalingGroup,
            "g",
            "arn:g",
            tags(&[("env", "dev")]),
            Power::Stopped,
        );
        asg.start_blocker = Some("no saved capacity".into());
        let ok = Resource::new(
            Kind::AutoScalingGroup,
            "h",
            "arn:h",
            tags(&[("env", "dev")]),
            Power::Stopped,
        );
        let p = plan(vec![asg, ok], &Policy::default(), monday);
        assert_eq!(
            decisions(&p),
            vec![
                (
                    "g".into(),
                    Decision::Skip {
                        reason: "no saved capacity".into()
                    }
                ),
                ("h".into(), Decision::Start)
            ]
        );
    }

    #[test]
    fn outside_transitions_nothing_happens_and_hand_started_stays_up() {
        // Saturday noon: the instance was started by hand; no transition in the window.
        let saturday = Window::ending_at(
            Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap(),
            &Policy::default(),
        );
        let p = plan(
            vec![ec2("dev", &[("env", "dev")], Power::Running)],
            &Policy::default(),
            saturday,
        );
        assert!(p.items.is_empty());
        // A late run (14 minutes after 19:00) still acts.
        let late = Window::ending_at(
            Utc.with_ymd_and_hms(2026, 11, 20, 19, 14, 0).unwrap(),
            &Policy::default(),
        );
        let p = plan(
            vec![ec2("dev", &[("env", "dev")], Power::Running)],
            &Policy::default(),
            late,
        );
        assert_eq!(p.changes(), 1);
    }

    #[test]
    fn opt_in_mode_needs_a_tag() {
        let mut policy = Policy::default();
        policy.offhours.mode = steward_shared::policy::ScheduleMode::OptIn;
        let p = plan(
            vec![
                ec2("untagged-schedule", &[("env", "dev")], Power::Running),
                ec2(
                    "tagged",
                    &[("env", "dev"), ("steward:offhours", "on")],
                    Power::Running,
                ),
            ],
            &policy,
            friday_evening(),
        );
        assert_eq!(
            decisions(&p),
            vec![("tagged".into(), Decision::Stop { hibernate: false })]
        );
    }

    #[test]
    fn a_pending_restart_is_stopped_by_the_next_run_in_off_time() {
        let mut db = Resource::new(
            Kind::RdsInstance,
            "db",
            "arn:db",
            tags(&[("env", "dev")]),
            Power::Running,
        );
        db.tags
            .insert(RESTART_PENDING.into(), "2026-11-22T03:12:41Z".into());
        let sunday = Window::ending_at(
            Utc.with_ymd_and_hms(2026, 11, 22, 3, 30, 0).unwrap(),
            &Policy::default(),
        );
        let p = plan(vec![db.clone()], &Policy::default(), sunday);
        assert_eq!(
            decisions(&p),
            vec![("db".into(), Decision::Stop { hibernate: false })]
        );
        // Two days later the marker is stale; without it a running database in off time stays up.
        let later = Window::ending_at(
            Utc.with_ymd_and_hms(2026, 11, 24, 3, 30, 0).unwrap(),
            &Policy::default(),
        );
        assert!(plan(vec![db.clone()], &Policy::default(), later)
            .items
            .is_empty());
        db.tags.remove(RESTART_PENDING);
        assert!(plan(vec![db], &Policy::default(), sunday).items.is_empty());
    }

    #[test]
    fn budget_stop_stops_and_holds_in_scope_resources_only() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let today = d("2026-12-01");
        let until = d("2027-01-01");
        let mut held = ec2("held", &[("env", "dev")], Power::Stopped);
        held.tags.insert(BUDGET_HOLD.into(), "2027-01-01".into());
        let mut in_asg = ec2("asg-member", &[("env", "dev")], Power::Running);
        in_asg.owner_skip = Some("belongs to Auto Scaling group g".into());
        let resources = vec![
            ec2(
                "dev",
                &[("env", "dev"), ("steward:offhours", "off")],
                Power::Running,
            ),
            ec2("stopped", &[("env", "dev")], Power::Stopped),
            held,
            ec2("prod", &[("env", "prod")], Power::Running),
            ec2("untagged", &[], Power::Running),
            ec2(
                "exempt",
                &[("env", "dev"), ("steward:exempt", "true")],
                Power::Running,
            ),
            ec2("busy", &[("env", "dev")], Power::Busy("pending".into())),
            in_asg,
        ];
        let policy = Policy::default();
        let p = plan_budget_stop(resources.clone(), &policy, "123456789012", until, today);
        let got: Vec<(String, HoldDecision)> = p
            .items
            .iter()
            .map(|i| (i.resource.id.clone(), i.decision.clone()))
            .collect();
        assert_eq!(
            got[0],
            ("dev".into(), HoldDecision::StopAndHold { hibernate: false })
        );
        assert_eq!(got[1], ("stopped".into(), HoldDecision::Hold));
        assert_eq!(got[2], ("held".into(), HoldDecision::AlreadyHeld));
        assert_eq!(
            got.len(),
            6,
            "prod and untagged are never in the plan: {got:?}"
        );
        assert!(
            matches!(&got[3].1, HoldDecision::Skip { reason } if reason == "steward:exempt=true")
        );
        assert!(matches!(&got[4].1, HoldDecision::Skip { reason } if reason.contains("pending")));
        assert!(
            matches!(&got[5].1, HoldDecision::Skip { reason } if reason.contains("Auto Scaling"))
        );
        assert_eq!(p.changes(), 2);
        // The account floor holds for budget stops too.
        let mut floor = Policy::default();
        floor
            .tagging
            .account_environments
            .insert("123456789012".into(), "prod".into());
        let p = plan_budget_stop(resources.clone(), &floor, "123456789012", until, today);
        assert_eq!(p.changes(), 0);
        // An ended or absurd period holds nothing.
        assert_eq!(
            plan_budget_stop(resources.clone(), &policy, "1", today, today).changes(),
            0
        );
        assert_eq!(
            plan_budget_stop(resources, &policy, "1", d("2099-01-01"), today).changes(),
            0
        );
    }

    #[test]
    fn a_budget_hold_keeps_the_morning_start_away_until_the_period_ends() {
        let monday = Window::ending_at(
            Utc.with_ymd_and_hms(2026, 11, 23, 7, 10, 0).unwrap(),
            &Policy::default(),
        );
        let mut db = ec2("held", &[("env", "dev")], Power::Stopped);
        db.tags.insert(BUDGET_HOLD.into(), "2026-12-01".into());
        let p = plan(vec![db.clone()], &Policy::default(), monday);
        assert!(
            matches!(&p.items[0].decision, Decision::Skip { reason } if reason.contains(BUDGET_HOLD))
        );
        // The end is exclusive: on the first day of the next period the start goes ahead.
        db.tags.insert(BUDGET_HOLD.into(), "2026-11-23".into());
        assert_eq!(
            plan(vec![db.clone()], &Policy::default(), monday).changes(),
            1
        );
        // A hold years ahead is not trusted.
        db.tags.insert(BUDGET_HOLD.into(), "2099-01-01".into());
        assert_eq!(plan(vec![db], &Policy::default(), monday).changes(), 1);
    }

    #[test]
    fn a_caught_up_transition_leaves_a_resource_changed_by_hand_after_it() {
        let policy = Policy::default();
        let utc = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        // The 19:00 run was missed: the 19:15 run catches up from 18:45.
        let window = catch_up_window(
            Window::ending_at(utc(20, 19, 15), &policy),
            Some(utc(20, 18, 45)),
            &policy,
        );
        assert_eq!(window.start, utc(20, 18, 45));
        let mut by_hand = ec2("by-hand", &[("env", "dev")], Power::Running);
        by_hand.changed_at = Some(utc(20, 19, 7));
        let mut this_morning = ec2("this-morning", &[("env", "dev")], Power::Running);
        this_morning.changed_at = Some(utc(20, 7, 0));
        let mut after_the_run = ec2("after-the-run", &[("env", "dev")], Power::Running);
        after_the_run.changed_at = Some(utc(21, 9, 0));
        let no_evidence = ec2("no-evidence", &[("env", "dev")], Power::Running);
        let p = plan(
            vec![by_hand, this_morning, after_the_run, no_evidence],
            &policy,
            window,
        );
        let decision = |id: &str| {
            p.items
                .iter()
                .find(|i| i.resource.id == id)
                .map(|i| i.decision.clone())
                .unwrap()
        };
        match decision("by-hand") {
            Decision::Skip { reason } => assert!(
                reason.contains("changed by hand at 2026-11-20T19:07:00+00:00"),
                "{reason}"
            ),
            other => panic!("started by hand after the missed stop: {other:?}"),
        }
        assert!(matches!(decision("this-morning"), Decision::Stop { .. }));
        assert!(
            matches!(decision("after-the-run"), Decision::Stop { .. }),
            "a change after the window's end is no evidence about it"
        );
        assert!(
            matches!(decision("no-evidence"), Decision::Stop { .. }),
            "without AWS's evidence the transition applies"
        );
        // Monday's missed 07:00 start: an instance stopped by hand at 07:05 stays stopped.
        let monday = catch_up_window(
            Window::ending_at(utc(23, 7, 15), &policy),
            Some(utc(23, 6, 45)),
            &policy,
        );
        let mut stopped_by_hand = ec2("stopped-by-hand", &[("env", "dev")], Power::Stopped);
        stopped_by_hand.changed_at = Some(utc(23, 7, 5));
        let mut stopped_friday = ec2("stopped-friday", &[("env", "dev")], Power::Stopped);
        stopped_friday.changed_at = Some(utc(20, 19, 5));
        let p = plan(vec![stopped_by_hand, stopped_friday], &policy, monday);
        assert!(
            matches!(p.items[0].decision, Decision::Skip { .. }),
            "{p:?}"
        );
        assert_eq!(p.items[1].decision, Decision::Start);
        // A failed stop is not retried once the instance was started by hand after it.
        let seven = Window::ending_at(utc(20, 19, 0), &policy);
        let mut retried = ec2("r", &[("env", "dev")], Power::Running);
        let first = plan(vec![retried.clone()], &policy, seven);
        let retries = next_retries(&first, &[retried.arn.as_str()], &Retries::new(), seven);
        retried.changed_at = Some(utc(20, 19, 10));
        let next = plan_with_retries(
            vec![retried],
            &policy,
            Window::ending_at(utc(20, 19, 15), &policy),
            None,
            &retries,
        );
        assert_eq!(next.changes(), 0);
        assert!(next.retried.is_empty());
    }

    #[test]
    fn a_failed_stop_is_retried_within_the_catch_up_limit_unless_changed_by_hand() {
        let policy = Policy::default();
        let seven = Window::ending_at(
            Utc.with_ymd_and_hms(2026, 11, 20, 19, 0, 0).unwrap(),
            &policy,
        );
        let a = ec2("a", &[("env", "dev")], Power::Running);
        let first = plan(vec![a.clone()], &policy, seven);
        let retries = next_retries(&first, &[a.arn.as_str()], &Retries::new(), seven);
        assert_eq!(retries[&a.arn].action, RetryAction::Stop);
        assert_eq!(retries[&a.arn].since, seven.end);
        let at = |h: u32, m: u32| {
            Window::ending_at(
                Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0).unwrap(),
                &policy,
            )
        };
        let retried = plan_with_retries(vec![a.clone()], &policy, at(19, 15), None, &retries);
        assert_eq!(retried.changes(), 1);
        assert_eq!(retried.retried, vec![a.arn.clone()]);
        // The first failure's time is kept across failing retries.
        let again = next_retries(&retried, &[a.arn.as_str()], &retries, at(19, 15));
        assert_eq!(again[&a.arn].since, seven.end);
        // Stopped by hand meanwhile: nothing to retry.
        let stopped = ec2("a", &[("env", "dev")], Power::Stopped);
        assert_eq!(
            plan_with_retries(vec![stopped], &policy, at(19, 15), None, &retries).changes(),
            0
        );
        // Past the catch-up limit (120 minutes): given up.
        let late = plan_with_retries(vec![a.clone()], &policy, at(21, 15), None, &retries);
        assert_eq!(late.changes(), 0);
        assert_eq!(late.gave_up, vec![a.arn.clone()]);
        // Exempt since: the invariants apply to retries too.
        let exempt = ec2(
            "a",
            &[("env", "dev"), ("steward:exempt", "true")],
            Power::Running,
        );
        assert_eq!(
            plan_with_retries(vec![exempt], &policy, at(19, 15), None, &retries).changes(),
            0
        );
    }

    #[test]
    fn a_missed_window_is_caught_up_within_the_limit_only() {
        let policy = Policy::default();
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0).unwrap();
        let w = Window::ending_at(at(19, 30), &policy);
        // The 19:15 run was missed: the 19:30 run covers (19:00, 19:30].
        let widened = catch_up_window(w, Some(at(19, 0)), &policy);
        assert_eq!(widened.start, at(19, 0));
        let dev = ec2("dev", &[("env", "dev")], Power::Running);
        assert_eq!(plan(vec![dev.clone()], &policy, w).changes(), 0);
        assert_eq!(
            plan(vec![dev], &policy, Window::ending_at(at(19, 30), &policy)).changes(),
            0
        );
        let back = catch_up_window(w, Some(at(18, 45)), &policy);
        assert_eq!(back.start, at(18, 45));
        assert_eq!(
            plan(
                vec![ec2("d", &[("env", "dev")], Power::Running)],
                &policy,
                back
            )
            .changes(),
            1,
            "the 19:00 transition of the missed run is caught up"
        );
        // Never more than catch_up_minutes (120) back, never for a first run,
        // never narrower than the run's own window.
        assert_eq!(
            catch_up_window(w, Some(at(9, 0)), &policy).start,
            at(17, 30)
        );
        assert_eq!(catch_up_window(w, None, &policy), w);
        assert_eq!(catch_up_window(w, Some(at(19, 20)), &policy), w);
    }

    #[test]
    fn seven_day_restart_is_undone_only_in_off_time() {
        let policy = Policy::default();
        let db = Resource::new(
            Kind::RdsInstance,
            "db",
            "arn:db",
            tags(&[("env", "dev")]),
            Power::Running,
        );
        let sunday = Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap();
        assert_eq!(restop_after_restart(&db, &policy, sunday, &[]), Ok(()));
        let tuesday_noon = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        assert!(restop_after_restart(&db, &policy, tuesday_noon, &[]).is_err());
        // Held for its budget period: stopped again even in its on time.
        let mut held = db.clone();
        held.tags.insert(BUDGET_HOLD.into(), "2026-12-01".into());
        assert_eq!(
            restop_after_restart(&held, &policy, tuesday_noon, &[]),
            Ok(())
        );
        let prod = Resource::new(
            Kind::RdsInstance,
            "p",
            "arn:p",
            tags(&[("env", "prod")]),
            Power::Running,
        );
        assert!(restop_after_restart(&prod, &policy, sunday, &[])
            .unwrap_err()
            .contains("environments"));
    }
}
