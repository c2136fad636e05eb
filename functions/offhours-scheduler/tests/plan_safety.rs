//! Property test of the planner's safety invariants over random fleets,
//! tags, policies and instants: a resource outside the allowed environments
//! (or without a readable env tag) is never in a plan, and an exempt
//! resource is never stopped or started (only reported as skipped).

use chrono::{DateTime, TimeZone, Utc};
use offhours_scheduler::model::{Kind, Power, Resource};
use offhours_scheduler::plan::{plan, Decision, Window};
use proptest::prelude::*;
use steward_shared::policy::ScheduleMode;
use steward_shared::tags::TagMap;
use steward_shared::{safety, Policy};

const ENVS: [Option<&str>; 7] = [
    Some("dev"),
    Some("prod"),
    Some("staging"),
    Some(""),
    Some(" "),
    Some("Dev"),
    None,
];
const SCHEDULES: [Option<&str>; 9] = [
    None,
    Some("off"),
    Some("on"),
    Some(""),
    Some("off=(M-F,18);on=(M-F,8);tz=pt"),
    Some("off=[(M-F,21),(U,18)];on=(M-F,6)"),
    Some("off=(S-M,2)"),
    Some("off=(X,99"),
    Some("on=(M-F,7:30);tz=Europe/Berlin"),
];

fn resource() -> impl Strategy<Value = Resource> {
    (
        0..6usize,
        0..ENVS.len(),
        0..SCHEDULES.len(),
        any::<bool>(),
        0..3usize,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(kind, env, schedule, exempt, power, owned, blocked, hibernation)| {
                let mut tags = TagMap::new();
                if let Some(e) = ENVS[env] {
                    tags.insert("env".into(), e.into());
                }
                if let Some(s) = SCHEDULES[schedule] {
                    tags.insert(
                        if schedule % 2 == 0 {
                            "steward:offhours"
                        } else {
                            "maid_offhours"
                        }
                        .into(),
                        s.into(),
                    );
                }
                if exempt {
                    tags.insert("steward:exempt".into(), "true".into());
                }
                let power = match power {
                    0 => Power::Running,
                    1 => Power::Stopped,
                    _ => Power::Busy("starting".into()),
                };
                let kind = Kind::ALL[kind];
                let mut r = Resource::new(
                    kind,
                    format!("r-{kind}"),
                    format!("arn:{kind}"),
                    tags,
                    power,
                );
                r.owner_skip = owned.then(|| "owned".to_string());
                r.start_blocker = blocked.then(|| "blocked".to_string());
                r.hibernation_configured = hibernation;
                r
            },
        )
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        proptest::sample::subsequence(vec!["dev", "staging", "prod"], 0..=3),
        any::<bool>(),
        any::<bool>(),
        1u32..=120,
    )
        .prop_map(|(envs, opt_in, hibernate, interval)| {
            let mut p = Policy::default();
            p.offhours.environments = envs.into_iter().map(String::from).collect();
            p.offhours.mode = if opt_in {
                ScheduleMode::OptIn
            } else {
                ScheduleMode::OptOut
            };
            p.offhours.hibernate = hibernate;
            p.offhours.interval_minutes = interval;
            p.offhours.holidays = vec!["2026-12-25".parse().unwrap()];
            p
        })
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    (0i64..366 * 24 * 60)
        .prop_map(move |minutes| Utc.timestamp_opt(start + minutes * 60, 0).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn nothing_outside_allowed_envs_or_exempt_is_ever_changed(
        fleet in proptest::collection::vec(resource(), 0..40),
        policy in policy(),
        at in instant(),
    ) {
        let fleet: Vec<Resource> = fleet
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.id = format!("{}-{i}", r.id);
                r.arn = format!("{}-{i}", r.arn);
                r
            })
            .collect();
        let p = plan(fleet, &policy, Window::ending_at(at, &policy));
        for item in &p.items {
            prop_assert!(
                safety::env_allows_cost_action(&item.resource.tags, &policy.offhours.environments),
                "out-of-scope resource in the plan: {:?}", item
            );
            if safety::is_exempt(&item.resource.tags) || item.resource.owner_skip.is_some() {
                prop_assert!(matches!(item.decision, Decision::Skip { .. }), "exempt or owned resource changed: {:?}", item);
            }
            if let Decision::Stop { hibernate: true } = item.decision {
                let allowed = policy.offhours.hibernate && item.resource.hibernation_configured && item.resource.kind == Kind::Ec2Instance;
                prop_assert!(allowed, "hibernation without policy or support: {:?}", item);
            }
            match item.decision {
                Decision::Stop { .. } => prop_assert_eq!(&item.resource.power, &Power::Running),
                Decision::Start => prop_assert_eq!(&item.resource.power, &Power::Stopped),
                Decision::Skip { .. } => {}
            }
        }
        for m in &p.malformed {
            let changed = p.items.iter().any(|i| i.resource.arn == m.arn && !matches!(i.decision, Decision::Skip { .. }));
            prop_assert!(!changed, "a resource with a malformed tag was changed: {}", m.arn);
        }
    }
}
