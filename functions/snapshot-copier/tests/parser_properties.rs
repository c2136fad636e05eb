//! Property tests of the snapshot copier's parsers (issue 9, section 2): the
//! RDS snapshot and cluster snapshot events, the scheduled `sweep` and
//! `dr-drill` jobs, SQS batches from the copy queue and each waiting copy in
//! them. No input may panic them: arbitrary text and JSON, the real fixtures
//! of `events/` with any field removed or retyped, extreme numbers, times and
//! strings (inside the queue bodies too) either parse or give a `BadEvent`
//! naming the problem. What parses keeps its invariants: a 12-digit account,
//! a snapshot of the kind its event id says, in the event's own account and
//! region. `PROPTEST_CASES` sets the number of cases (`make fuzz`);
//! `make test` runs a few dozen.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};
use snapshot_copier::events::{parse, parse_waiting, Trigger, JOBS};
use snapshot_copier::model::{Kind, WaitingCopy};
use snapshot_copier::plan::parse_snapshot_arn;
use steward_shared::failure::BadEvent;
use steward_shared::fuzz::{
    event_inputs, mutated_named_fixture, mutated_within, named_fixtures, parser_config,
    single_edits, single_edits_within,
};

const PREFIXES: &[&str] = &[
    "rds-snapshot-event",
    "rds-cluster-snapshot-event",
    "snapshot-copier-",
];

fn fixtures() -> Vec<Value> {
    named_fixtures(PREFIXES)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn check_waiting(body: &str) -> Result<WaitingCopy, BadEvent> {
    let result = parse_waiting(body);
    match &result {
        Ok(copy) => {
            assert!(is_account(&copy.account), "account {:?}", copy.account);
            assert!(!copy.region.is_empty() && !copy.snapshot_id.is_empty());
        }
        Err(e) => assert!(!e.problem().trim().is_empty()),
    }
    result
}

/// Parses `payload` (and every queue body in it) and checks what every
/// answer must hold.
fn check(payload: &Value) -> Result<Trigger, BadEvent> {
    let result = parse(payload, now());
    match &result {
        Ok(Trigger::Snapshot(s)) => {
            assert!(is_account(&s.account), "account {:?}", s.account);
            assert!(!s.region.is_empty() && !s.snapshot_id.is_empty());
            assert!(s.code.starts_with("RDS-EVENT-"));
            let cluster_code = matches!(s.code.as_str(), "RDS-EVENT-0169" | "RDS-EVENT-0075");
            assert_eq!(s.kind == Kind::Cluster, cluster_code, "{}", s.code);
        }
        Ok(Trigger::Scheduled(run)) => {
            assert!(run.job == JOBS.default || JOBS.others.contains(&run.job.as_str()));
        }
        Ok(Trigger::Queue(records)) => {
            for r in records {
                let _ = check_waiting(&r.body);
            }
        }
        Ok(Trigger::Drill { run, database }) => {
            assert_eq!(run.job, "dr-drill");
            assert!(!database.trim().is_empty() && database.len() <= 200);
        }
        Ok(Trigger::Ignored { .. }) => {}
        Err(e) => assert!(!e.problem().trim().is_empty()),
    }
    result
}

proptest! {
    #![proptest_config(parser_config())]

    #[test]
    fn any_text_is_parsed_or_refused(text in "\\PC{0,300}") {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            let _ = check(&v);
        }
        let _ = check(&Value::String(text.clone()));
        let _ = check_waiting(&text);
        if let Some(arn) = parse_snapshot_arn(&text) {
            prop_assert!(is_account(&arn.account) && !arn.id.is_empty());
        }
    }

    #[test]
    fn any_bytes_are_parsed_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            let _ = check(&v);
        }
        let _ = check_waiting(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn any_json_is_parsed_or_refused(payload in event_inputs()) {
        let _ = check(&payload);
    }

    #[test]
    fn mutated_fixtures_are_parsed_or_refused(payload in mutated_named_fixture(fixtures())) {
        let _ = check(&payload);
    }

    /// Waiting copies with fields removed, retyped or extreme.
    #[test]
    fn mutated_queue_bodies_are_parsed_or_refused(
        payload in mutated_within(named_fixtures(&["snapshot-copier-copy-queue"])
            .into_iter().map(|(_, v)| v).collect(), "/Records/0/body"),
    ) {
        let _ = check(&payload);
    }

    /// A waiting copy the copier queued parses back to itself.
    #[test]
    fn a_waiting_copy_round_trips(
        account in "[0-9]{12}",
        region in "\\PC{1,20}",
        cluster in any::<bool>(),
        snapshot_id in "\\PC{1,80}",
    ) {
        let copy = WaitingCopy {
            account,
            region,
            kind: if cluster { Kind::Cluster } else { Kind::Instance },
            snapshot_id,
        };
        let body = serde_json::to_string(&copy).expect("a copy serializes");
        prop_assert_eq!(check_waiting(&body).expect("a queued copy parses"), copy);
    }

    /// Any snapshot name in a well-formed event comes back as the snapshot to copy.
    #[test]
    fn a_snapshot_event_names_its_snapshot(
        name in "(rds:)?[a-zA-Z][a-zA-Z0-9-]{0,62}",
        cluster in any::<bool>(),
    ) {
        let (file, resource) = if cluster {
            ("rds-cluster-snapshot-event-0075-manual.json", "cluster-snapshot")
        } else {
            ("rds-snapshot-event-0042-manual.json", "snapshot")
        };
        let mut event = named_fixtures(&[file])[0].1.clone();
        event["detail"]["SourceArn"] =
            json!(format!("arn:aws:rds:us-east-1:123456789012:{resource}:{name}"));
        event["detail"]["SourceIdentifier"] = json!(name);
        match check(&event) {
            Ok(Trigger::Snapshot(s)) => {
                prop_assert_eq!(s.snapshot_id, name);
                prop_assert_eq!(s.kind == Kind::Cluster, cluster);
            }
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
    }
}

/// Every fixture (and the queue body) with each field removed, and each
/// value replaced by a value of every other JSON type, a huge string and an
/// empty one.
#[test]
fn every_single_edit_of_every_fixture_is_parsed_or_refused() {
    let mut edits = 0;
    for fixture in fixtures() {
        assert!(check(&fixture).is_ok(), "the fixture parses as it is");
        let mut all = single_edits(&fixture);
        all.extend(single_edits_within(&fixture, "/Records/0/body"));
        for (what, edited) in all {
            let outcome = std::panic::catch_unwind(|| check(&edited).map(|_| ()));
            assert!(outcome.is_ok(), "{what} panicked");
            edits += 1;
        }
    }
    assert!(edits > 500, "{edits} edits");
}
