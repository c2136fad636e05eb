//! Property tests of the GuardDuty responder's parsers (issue 9, section 2):
//! the EventBridge `GuardDuty Finding` event (and the finding's `detail`
//! shape, which `GetFindings` answers are turned into) and the scheduled
//! `findings-sweep` job. No input may panic them: arbitrary text and JSON,
//! the real fixtures of `events/` with any field removed or retyped, extreme
//! numbers, times and strings either parse or give a `BadEvent` naming the
//! problem. What parses keeps its invariants: a 12-digit account, a severity
//! from 0 to 10, an instance target that is an instance id; and reading a
//! parsed finding (target, tags, partition, times, sample flag) never
//! panics. `PROPTEST_CASES` sets the number of cases (`make fuzz`);
//! `make test` runs a few dozen.

use chrono::{DateTime, Utc};
use guardduty_responder::events::{parse, parse_detail, BadEvent, Finding, FindingEvent, Target};
use guardduty_responder::JOBS;
use proptest::prelude::*;
use serde_json::{json, Value};
use steward_shared::fuzz::{named_fixtures, parser_config, single_edits};
use steward_shared::trigger::parse_scheduled;

fn fixtures() -> Vec<Value> {
    named_fixtures(&["guardduty-"])
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

fn check_finding(f: &Finding) {
    assert!(
        f.account_id.len() == 12 && f.account_id.bytes().all(|b| b.is_ascii_digit()),
        "account {:?}",
        f.account_id
    );
    assert!(f.severity.is_finite() && (0.0..=10.0).contains(&f.severity));
    assert!(!f.id.is_empty() && !f.finding_type.is_empty() && !f.region.is_empty());
    if let Target::Instance { instance_id } = f.target() {
        assert!(instance_id.starts_with("i-"), "{instance_id:?}");
    }
    let _ = (f.resource_tags(), f.partition(), f.count(), f.is_sample());
    let _ = (f.first_seen(), f.last_seen(), f.console_url());
}

/// Parses `payload` as a finding event and as a scheduled job, and checks
/// what every answer must hold.
fn check(payload: &Value) -> Result<FindingEvent, BadEvent> {
    match parse_scheduled(payload, JOBS, now()) {
        Ok(Some(run)) => assert_eq!(run.job, JOBS.default),
        Ok(None) => {}
        Err(e) => assert!(!e.problem().is_empty()),
    }
    let result = parse(payload);
    match &result {
        Ok(event) => {
            assert!(!event.event_id.is_empty());
            check_finding(&event.finding);
        }
        Err(e) => assert!(!e.problem().trim().is_empty()),
    }
    if let Some(detail) = payload.get("detail") {
        if let Ok(f) = parse_detail(detail) {
            check_finding(&f);
        }
    }
    result
}

steward_shared::parser_properties!(check, fixtures());

proptest! {
    #![proptest_config(parser_config())]

    /// Any severity GuardDuty can send (0 to 10) parses back; outside that, a `BadEvent`.
    #[test]
    fn a_severity_is_kept_or_refused(severity in prop_oneof![0.0f64..=10.0, any::<f64>()]) {
        prop_assume!(severity.is_finite());
        let mut event = named_fixtures(&["guardduty-ec2-backdoor.json"])[0].1.clone();
        event["detail"]["severity"] = json!(severity);
        match check(&event) {
            Ok(e) => prop_assert_eq!(e.finding.severity, severity),
            Err(e) => {
                prop_assert!(!(0.0..=10.0).contains(&severity));
                prop_assert!(e.problem().contains("severity"), "{}", e);
            }
        }
    }

    /// The finding's account: kept when it is 12 digits, a `BadEvent` otherwise.
    #[test]
    fn an_account_is_kept_or_refused(account in prop_oneof!["[0-9]{12}", "\\PC{0,14}"]) {
        let mut event = named_fixtures(&["guardduty-iam-user-tor.json"])[0].1.clone();
        event["detail"]["accountId"] = json!(account);
        let is_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        match check(&event) {
            Ok(e) => prop_assert_eq!(e.finding.account_id, account),
            Err(e) => prop_assert!(!is_account, "{}", e),
        }
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
    assert!(edits > 1000, "{edits} edits");
}
