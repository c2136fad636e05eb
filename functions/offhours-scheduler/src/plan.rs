//! The pure planner: given the resources of a run, the policy and the run's
//! window, decide what to stop, what to start and what to leave alone (with
//! the reason). No AWS call happens here; the function, `steward plan` and
//! the property tests all use this code.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use steward_shared::{safety, Policy};

use crate::model::{Kind, Power, Resource, RESTART_PENDING};
use crate::schedule::{self, Action, Resolution};

/// The interval a run acts on: transitions in (start, end].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// The window of a run at `at`: (at - interval, at].
    pub fn ending_at(at: DateTime<Utc>, policy: &Policy) -> Window {
        Window {
            start: at - Duration::minutes(policy.offhours.interval_minutes as i64),
            end: at,
        }
    }
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    }
}

/// Plans one run over `resources`: only transitions inside `window` are acted
/// on, so a resource started by hand during its off time stays up until its
/// next off transition.
pub fn plan(resources: Vec<Resource>, policy: &Policy, window: Window) -> Plan {
    let holidays = schedule::parse_holidays(&policy.offhours);
    let mut plan = Plan {
        evaluated: resources.len(),
        ..Plan::default()
    };
    if !policy.offhours.enabled {
        return plan;
    }
    for resource in resources {
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
        let mut action = schedule.action(window.start, window.end, &holidays);
        if action == Action::None
            && restart_pending(&resource, window.end)
            && schedule.is_off_at(window.end, &holidays)
        {
            // RDS started it after seven days and it was not available in time to be stopped again.
            action = Action::Stop;
        }
        if let Some(decision) = decide(&resource, action, policy) {
            plan.items.push(Planned { resource, decision });
        } else if action != Action::None {
            plan.already += 1;
        }
    }
    plan
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
/// an owner, and in its off time.
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
    if let Some(reason) = &resource.owner_skip {
        return Err(reason.clone());
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
