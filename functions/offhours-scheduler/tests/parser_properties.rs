//! Property tests of the off-hours scheduler's parsers (issue 9, section 2):
//! the scheduled triggers, SQS batches of work items and `budget-stop` jobs,
//! and the RDS "started after seven days" events. No input may panic them:
//! arbitrary text and JSON, the real fixtures of `events/` with any field
//! removed or retyped, extreme numbers, times and strings (inside the work
//! item bodies too) either parse or give a `BadEvent` (a work item: an error
//! naming the field). What parses keeps its invariants: a 12-digit account,
//! a region name, a time a run can act at, a budget period that ends after
//! it starts. `PROPTEST_CASES` sets the number of cases (`make fuzz`);
//! `make test` runs a few dozen.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use offhours_scheduler::events::{parse, Trigger, WorkItem};
use proptest::prelude::*;
use serde_json::{json, Value};
use steward_shared::failure::{error_type, BAD_EVENT};
use steward_shared::fuzz::{
    event_inputs, extreme_values, mutated_named_fixture, mutated_within, named_fixtures,
    parser_config, single_edits, single_edits_within, string_from,
};

const PREFIXES: &[&str] = &["scheduler-", "rds-event-015"];

fn fixtures() -> Vec<Value> {
    let mut all: Vec<Value> = named_fixtures(PREFIXES)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    all.push(budget_stop_batch());
    all
}

/// The fixture batch with a `budget-stop` job as its first body.
fn budget_stop_batch() -> Value {
    let mut batch = named_fixtures(&["scheduler-sqs-work-batch.json"])[0]
        .1
        .clone();
    batch["Records"][0]["body"] = json!(budget_stop_body(
        "123456789012",
        "eu-west-1",
        "2026-11-20T19:00:00Z",
        "team-dev-monthly",
        "2026-11-01",
        "2026-11-30"
    ));
    batch
}

fn budget_stop_body(
    account: &str,
    region: &str,
    time: &str,
    budget: &str,
    start: &str,
    end: &str,
) -> String {
    json!({
        "job": "budget-stop",
        "account": account,
        "region": region,
        "time": time,
        "budget": budget,
        "period_start": start,
        "period_end": end,
    })
    .to_string()
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn check_time(t: DateTime<Utc>) {
    assert!((1970..=9000).contains(&t.year()), "time {t}");
}

fn check_item(item: &WorkItem) {
    assert!(is_account(&item.account), "account {:?}", item.account);
    assert!(!item.region.is_empty() && item.region.len() <= 32);
    check_time(item.time);
    if let Some(stop) = &item.budget_stop {
        assert!(!stop.budget.is_empty() && stop.budget.trim() == stop.budget);
        assert!(stop.period_start <= stop.period_end);
    }
}

/// Parses `payload` and checks what every answer must hold.
fn check(payload: &Value) {
    match parse(payload) {
        Ok(Trigger::Scheduled { id, time }) => {
            assert!(!id.is_empty());
            check_time(time);
        }
        Ok(Trigger::Work(records)) => {
            for r in &records {
                match &r.item {
                    Ok(item) => check_item(item),
                    Err(e) => assert!(e.starts_with("bad work item"), "{e}"),
                }
            }
        }
        Ok(Trigger::RdsRestart(r)) => {
            assert!(is_account(&r.account), "account {:?}", r.account);
            assert!(!r.region.is_empty() && !r.identifier.is_empty());
        }
        Ok(Trigger::Ignored { .. }) => {}
        Err(e) => assert_eq!(error_type(&e), BAD_EVENT, "{e:#}"),
    }
}

fn check_body(body: &str) {
    match WorkItem::parse(body) {
        Ok(item) => check_item(&item),
        Err(e) => assert!(e.starts_with("bad work item"), "{e}"),
    }
}

fn work_bodies() -> Vec<Value> {
    fixtures()
        .iter()
        .filter_map(|f| f.get("Records")?.as_array().cloned())
        .flatten()
        .collect()
}

proptest! {
    #![proptest_config(parser_config())]

    #[test]
    fn any_text_is_parsed_or_refused(text in "\\PC{0,300}") {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            check(&v);
        }
        check(&Value::String(text.clone()));
        check_body(&text);
    }

    #[test]
    fn any_bytes_are_parsed_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            check(&v);
        }
        check_body(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn any_json_is_parsed_or_refused(payload in event_inputs()) {
        check(&payload);
    }

    #[test]
    fn mutated_fixtures_are_parsed_or_refused(payload in mutated_named_fixture(fixtures())) {
        check(&payload);
    }

    /// Work item and budget-stop bodies with fields removed, retyped or extreme.
    #[test]
    fn mutated_work_items_are_parsed_or_refused(
        record in mutated_within(work_bodies(), "/body"),
    ) {
        check(&json!({"Records": [record]}));
    }

    /// Any time in a work item: accepted only within the years a run can act at.
    #[test]
    fn any_work_item_time_is_checked(
        time in prop_oneof![
            string_from(Vec::new()),
            any::<i64>().prop_map(|s| DateTime::from_timestamp(s % 8_210_298_412_800, 0)
                .map(|t| t.to_rfc3339()).unwrap_or_default()),
            prop::sample::select(extreme_values())
                .prop_map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())),
        ],
    ) {
        let body = json!({"account": "123456789012", "region": "us-east-1", "time": time}).to_string();
        check_body(&body);
    }

    /// A well-formed budget-stop job parses back to what was sent.
    #[test]
    fn a_budget_stop_job_round_trips(
        account in "[0-9]{12}",
        region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
        secs in 0i64..8_000_000_000,
        budget in "[^\\p{Cc}]{1,100}",
        start_days in 0i32..2_000_000,
        length in 0i32..400,
    ) {
        let (Some(time), Some(start)) = (
            DateTime::from_timestamp(secs, 0),
            NaiveDate::from_num_days_from_ce_opt(start_days),
        ) else {
            return Ok(());
        };
        let Some(end) = start.checked_add_days(chrono::Days::new(length as u64)) else {
            return Ok(());
        };
        let body = budget_stop_body(
            &account, &region, &time.to_rfc3339(), &budget,
            &start.format("%Y-%m-%d").to_string(), &end.format("%Y-%m-%d").to_string(),
        );
        match WorkItem::parse(&body) {
            Ok(item) => {
                check_item(&item);
                prop_assert_eq!(&item.account, &account);
                prop_assert_eq!(&item.region, &region);
                prop_assert_eq!(item.time, time);
                let stop = item.budget_stop.expect("a budget-stop job");
                prop_assert_eq!(stop.budget.as_str(), budget.trim());
                prop_assert_eq!((stop.period_start, stop.period_end), (start, end));
            }
            Err(e) => {
                // Refused only for an all-blank budget name or a year outside
                // chrono's `%Y` range of four digits.
                prop_assert!(
                    budget.trim().is_empty() || start.year() > 9999 || end.year() > 9999,
                    "{}", e
                );
            }
        }
    }
}

/// Every fixture (and each work item body) with each field removed, and each
/// value replaced by a value of every other JSON type, a huge string and an
/// empty one.
#[test]
fn every_single_edit_of_every_fixture_is_parsed_or_refused() {
    let mut edits = 0;
    for fixture in fixtures() {
        let mut all = single_edits(&fixture);
        for i in 0..2 {
            all.extend(single_edits_within(&fixture, &format!("/Records/{i}/body")));
        }
        for (what, edited) in all {
            let outcome = std::panic::catch_unwind(|| check(&edited));
            assert!(outcome.is_ok(), "{what} panicked");
            edits += 1;
        }
    }
    assert!(edits > 500, "{edits} edits");
}

/// Found by `every_single_edit_of_every_fixture_is_parsed_or_refused`: an
/// RDS restart event with an empty `account` parsed (so did any other text,
/// and a blank `region` or `SourceIdentifier`), and the scheduler went on to
/// look for the database in no account.
#[test]
fn an_rds_restart_without_a_real_account_region_or_database_is_a_bad_event() {
    let fixture = named_fixtures(&["rds-event-0154-instance-restarted.json"])[0]
        .1
        .clone();
    for (pointer, value) in [
        ("/account", ""),
        ("/account", "null"),
        ("/account", "12345678901"),
        ("/region", ""),
        ("/region", " "),
        ("/detail/SourceIdentifier", ""),
    ] {
        let mut event = fixture.clone();
        if let Some(slot) = event.pointer_mut(pointer) {
            *slot = json!(value);
        }
        let err = parse(&event).expect_err(pointer);
        assert_eq!(error_type(&err), BAD_EVENT, "{err:#}");
        check(&event);
    }
}
