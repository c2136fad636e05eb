//! Property tests of the compliance notifier's parser (issue 9, section 2):
//! the EventBridge `Config Rules Compliance Change` event and the scheduled
//! `digest` job. No input may panic it: arbitrary text and JSON, the real
//! fixtures of `events/` with any field removed or retyped, extreme numbers,
//! times and strings either parse or give a `BadEvent` naming the problem.
//! What parses keeps its invariants: a 12-digit account, a region, a rule
//! and a resource; and a change with any resource id or compliance state
//! parses those back. `PROPTEST_CASES` sets the number of cases
//! (`make fuzz`); `make test` runs a few dozen.

use chrono::{DateTime, Utc};
use compliance_notifier::events::{parse, Trigger, JOBS};
use compliance_notifier::ComplianceState;
use proptest::prelude::*;
use serde_json::{json, Value};
use steward_shared::failure::BadEvent;
use steward_shared::fuzz::{named_fixtures, parser_config, single_edits};

const STATES: [&str; 4] = [
    "COMPLIANT",
    "NON_COMPLIANT",
    "NOT_APPLICABLE",
    "INSUFFICIENT_DATA",
];

fn fixtures() -> Vec<Value> {
    named_fixtures(&["config-compliance-change"])
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

/// Parses `payload` and checks what every answer must hold.
fn check(payload: &Value) -> Result<Trigger, BadEvent> {
    let result = parse(payload, now());
    match &result {
        Ok(Trigger::Digest(run)) => assert_eq!(run.job, JOBS.default),
        Ok(Trigger::Change(c)) => {
            assert!(
                c.account.len() == 12 && c.account.bytes().all(|b| b.is_ascii_digit()),
                "account {:?}",
                c.account
            );
            for (name, value) in [
                ("region", &c.region),
                ("rule", &c.rule),
                ("resource type", &c.resource_type),
                ("resource id", &c.resource_id),
                ("recorded", &c.recorded),
            ] {
                assert!(!value.trim().is_empty(), "{name} is blank");
            }
            assert!(!c.dedupe_key().is_empty() && !c.resource_label().is_empty());
        }
        Err(e) => assert!(!e.problem().trim().is_empty()),
    }
    result
}

steward_shared::parser_properties!(check, fixtures());

proptest! {
    #![proptest_config(parser_config())]

    /// A change with any resource id and any pair of states parses them back.
    #[test]
    fn a_change_round_trips(
        resource_id in "\\PC{1,200}",
        new in prop::sample::select(STATES.to_vec()),
        old in proptest::option::of(prop::sample::select(STATES.to_vec())),
    ) {
        prop_assume!(!resource_id.trim().is_empty());
        let mut event = fixtures()[0].clone();
        event["detail"]["resourceId"] = json!(resource_id);
        event["detail"]["newEvaluationResult"]["complianceType"] = json!(new);
        match old {
            Some(old) => event["detail"]["oldEvaluationResult"]["complianceType"] = json!(old),
            None => {
                if let Some(detail) = event["detail"].as_object_mut() {
                    detail.remove("oldEvaluationResult");
                }
            }
        }
        let Ok(Trigger::Change(c)) = check(&event) else {
            return Err(TestCaseError::fail("the event no longer parses"));
        };
        prop_assert_eq!(&c.resource_id, &resource_id);
        prop_assert_eq!(Some(c.new_state), ComplianceState::parse(new));
        prop_assert_eq!(c.old_state, old.and_then(ComplianceState::parse));
    }
}

/// Every fixture with each field removed, and each value replaced by a value
/// of every other JSON type, a huge string and an empty one.
#[test]
fn every_single_edit_of_every_fixture_is_parsed_or_refused() {
    let mut edits = 0;
    for fixture in fixtures() {
        assert!(check(&fixture).is_ok(), "the fixture parses as it is");
        for (what, edited) in single_edits(&fixture) {
            let outcome = std::panic::catch_unwind(|| check(&edited).map(|_| ()));
            assert!(outcome.is_ok(), "{what} panicked");
            edits += 1;
        }
    }
    assert!(edits > 500, "{edits} edits");
}
