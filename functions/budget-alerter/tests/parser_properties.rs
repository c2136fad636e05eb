//! Property tests of the budget alerter's parsers (issue 9, section 2): the
//! AWS Budgets plain-text notification over SNS, the Cost Anomaly Detection
//! alert over SNS (JSON in the message) and EventBridge, and the scheduled
//! `daily-check` and `weekly-review` jobs. No input may panic them:
//! arbitrary text and JSON, the real fixtures of `events/` with any field
//! removed or retyped, their message text with lines dropped, repeated or
//! rewritten, and extreme numbers, times and strings either parse or give a
//! `BadEvent` naming the problem. What parses keeps its invariants: a
//! 12-digit account, a valid budget name, finite amounts, an anomaly id that
//! is an id; and a Budgets message with any budget name, account or amount
//! parses those back. `PROPTEST_CASES` sets the number of cases
//! (`make fuzz`); `make test` runs a few dozen.

use budget_alerter::events::{
    is_budget_name, parse, parse_amount, parse_budget_text, BudgetAlert, Message, Trigger, JOBS,
};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};
use steward_shared::failure::BadEvent;
use steward_shared::fuzz::{
    event_inputs, extreme_values, mutated_named_fixture, mutated_within, named_fixtures,
    parser_config, single_edits, single_edits_within, string_from,
};

const PREFIXES: &[&str] = &["budget-", "anomaly-"];
const MESSAGE: &str = "/Records/0/Sns/Message";

fn fixtures() -> Vec<Value> {
    named_fixtures(PREFIXES)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn budget_fixture() -> Value {
    named_fixtures(&["budget-sns-actual.json"])[0].1.clone()
}

fn budget_text() -> String {
    budget_fixture()
        .pointer(MESSAGE)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn finite(v: Option<f64>) -> bool {
    v.is_none_or(f64::is_finite)
}

fn check_budget(b: &BudgetAlert) {
    assert!(is_account(&b.account), "account {:?}", b.account);
    assert!(is_budget_name(&b.budget_name), "{:?}", b.budget_name);
    assert!(finite(b.amount) && finite(b.threshold_amount) && finite(b.budgeted_amount));
}

/// Parses `payload` and checks what every answer must hold.
fn check(payload: &Value) -> Result<Trigger, BadEvent> {
    let result = parse(payload, now());
    match &result {
        Ok(Trigger::Scheduled(run)) => {
            assert!(run.job == JOBS.default || JOBS.others.contains(&run.job.as_str()));
        }
        Ok(Trigger::Messages(messages)) => {
            assert!(!messages.is_empty());
            for m in messages {
                match m {
                    Message::Budget(b) => check_budget(b),
                    Message::Anomaly(a) => {
                        assert!(is_account(&a.account), "account {:?}", a.account);
                        assert!(!a.anomaly_id.is_empty() && a.anomaly_id.len() <= 256);
                        assert!(!a.anomaly_id.chars().any(char::is_control));
                        assert!(a.monitor_arn.starts_with("arn:"));
                        assert!(finite(a.total_impact) && finite(a.actual_spend));
                        assert!(finite(a.expected_spend) && finite(a.impact_percentage));
                        for cause in &a.root_causes {
                            assert!(!cause.describe().is_empty());
                        }
                    }
                }
            }
        }
        Err(e) => assert!(!e.problem().trim().is_empty()),
    }
    result
}

fn check_text(text: &str) -> Result<BudgetAlert, BadEvent> {
    let result = parse_budget_text(text, "m-1".into(), now());
    match &result {
        Ok(b) => check_budget(b),
        Err(e) => assert!(!e.problem().trim().is_empty()),
    }
    result
}

/// One change to the lines of a Budgets message.
#[derive(Debug, Clone)]
enum LineEdit {
    Drop(prop::sample::Index),
    Repeat(prop::sample::Index),
    /// Replace what follows the line's first `:` (or the whole line).
    Rewrite(prop::sample::Index, String),
    Insert(prop::sample::Index, String),
}

fn odd_string() -> BoxedStrategy<String> {
    let extremes: Vec<String> = extreme_values()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    prop_oneof![
        3 => string_from(vec![
            "AWS Account 123456789012".into(),
            "AWS Account 1234".into(),
            "Budget Name: other".into(),
            "Alert Type: FORECASTED".into(),
            "FORECASTED Amount: $1e309".into(),
            "$-0.00".into(),
            "> $1,2,3.4.5".into(),
            "NaN".into(),
            "inf".into(),
        ]),
        1 => prop::sample::select(extremes),
    ]
    .boxed()
}

/// The fixture's Budgets message with one to four line edits.
fn mutated_budget_text() -> BoxedStrategy<String> {
    let edit = prop_oneof![
        any::<prop::sample::Index>().prop_map(LineEdit::Drop),
        any::<prop::sample::Index>().prop_map(LineEdit::Repeat),
        (any::<prop::sample::Index>(), odd_string()).prop_map(|(i, s)| LineEdit::Rewrite(i, s)),
        (any::<prop::sample::Index>(), odd_string()).prop_map(|(i, s)| LineEdit::Insert(i, s)),
    ];
    prop::collection::vec(edit, 1..5)
        .prop_map(|edits| {
            let mut lines: Vec<String> = budget_text().lines().map(str::to_string).collect();
            for edit in edits {
                if lines.is_empty() {
                    lines.push(String::new());
                }
                match edit {
                    LineEdit::Drop(i) => {
                        lines.remove(i.index(lines.len()));
                    }
                    LineEdit::Repeat(i) => {
                        let line = i.get(&lines).clone();
                        lines.insert(i.index(lines.len()), line);
                    }
                    LineEdit::Rewrite(i, s) => {
                        let line = i.get_mut(&mut lines);
                        *line = match line.split_once(':') {
                            Some((key, _)) => format!("{key}: {s}"),
                            None => s,
                        };
                    }
                    LineEdit::Insert(i, s) => lines.insert(i.index(lines.len() + 1), s),
                }
            }
            lines.join("\n")
        })
        .boxed()
}

/// The fixture's Budgets message with `line` (`Budget Name`, ...) set to `value`.
fn with_line(prefix: &str, value: &str) -> String {
    budget_text()
        .lines()
        .map(|l| {
            if l.starts_with(prefix) {
                format!("{prefix}{value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

proptest! {
    #![proptest_config(parser_config())]

    #[test]
    fn any_text_is_parsed_or_refused(text in "\\PC{0,300}") {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            let _ = check(&v);
        }
        let _ = check(&Value::String(text.clone()));
        let _ = check_text(&text);
        let _ = check_text(&format!("AWS Budget Notification\n{text}"));
        prop_assert!(finite(parse_amount(&text)));
    }

    #[test]
    fn any_bytes_are_parsed_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            let _ = check(&v);
        }
        let _ = check_text(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn any_json_is_parsed_or_refused(payload in event_inputs()) {
        let _ = check(&payload);
    }

    #[test]
    fn mutated_fixtures_are_parsed_or_refused(payload in mutated_named_fixture(fixtures())) {
        let _ = check(&payload);
    }

    /// Cost Anomaly Detection JSON in an SNS message, with fields removed, retyped or extreme.
    #[test]
    fn mutated_anomaly_messages_are_parsed_or_refused(
        payload in mutated_within(named_fixtures(&["anomaly-sns"])
            .into_iter().map(|(_, v)| v).collect(), MESSAGE),
    ) {
        let _ = check(&payload);
    }

    /// Budgets messages with lines dropped, repeated, rewritten or added.
    #[test]
    fn mutated_budget_messages_are_parsed_or_refused(text in mutated_budget_text()) {
        let _ = check_text(&text);
        let mut payload = budget_fixture();
        payload["Records"][0]["Sns"]["Message"] = json!(text);
        let _ = check(&payload);
    }

    /// A Budgets message with any valid budget name parses that name back.
    #[test]
    fn a_budget_name_round_trips(name in "[^:\\\\\\p{Cc}]{1,100}") {
        prop_assume!(name.trim() == name);
        let b = check_text(&with_line("Budget Name: ", &name)).expect("a valid name parses");
        prop_assert_eq!(b.budget_name, name);
    }

    /// The `AWS Account` line: kept when it is 12 digits, a `BadEvent` otherwise.
    #[test]
    fn an_account_is_kept_or_refused(account in prop_oneof!["[0-9]{12}", "\\PC{0,14}"]) {
        let is_account = is_account(account.trim());
        match check_text(&with_line("AWS Account ", &account)) {
            Ok(b) => prop_assert_eq!(b.account, account.trim()),
            Err(e) => prop_assert!(!is_account, "{}", e),
        }
    }

    /// Any amount the message states is the amount parsed.
    #[test]
    fn an_amount_round_trips(cents in 0u64..100_000_000_000_000) {
        let amount = format!("{}.{:02}", cents / 100, cents % 100);
        let b = check_text(&with_line("ACTUAL Amount: ", &format!("${amount}")))
            .expect("an amount parses");
        prop_assert_eq!(b.amount, amount.parse::<f64>().ok());
    }
}

/// Every fixture (and the anomaly JSON in its SNS message) with each field
/// removed, and each value replaced by a value of every other JSON type, a
/// huge string and an empty one; and the Budgets message without each line.
#[test]
fn every_single_edit_of_every_fixture_is_parsed_or_refused() {
    let mut edits = 0;
    for fixture in fixtures() {
        assert!(check(&fixture).is_ok(), "the fixture parses as it is");
        let mut all = single_edits(&fixture);
        all.extend(single_edits_within(&fixture, MESSAGE));
        for (what, edited) in all {
            let outcome = std::panic::catch_unwind(|| check(&edited).map(|_| ()));
            assert!(outcome.is_ok(), "{what} panicked");
            edits += 1;
        }
    }
    let text = budget_text();
    let lines: Vec<&str> = text.lines().collect();
    for skip in 0..lines.len() {
        let without: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        let outcome = std::panic::catch_unwind(|| check_text(&without.join("\n")).map(|_| ()));
        assert!(outcome.is_ok(), "the message without line {skip} panicked");
        edits += 1;
    }
    assert!(edits > 500, "{edits} edits");
}
