//! Property tests of the shared parsers: the policy (and its key-and-line
//! locator), the scheduled-trigger and SQS-batch parsers, and the schedule tag
//! grammar. None may panic on any input; event parsers fail with `BadEvent`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;
use crate::policy::Policy;
use crate::trigger::{self, Jobs};

const EXAMPLE: &str = include_str!("../../../infra/policy.example.toml");

const JOBS: Jobs = Jobs {
    default: "run",
    others: &["budget-stop"],
};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

/// The example policy with byte ranges deleted, duplicated or replaced.
fn mutated_example() -> impl Strategy<Value = String> {
    let edit = (any::<prop::sample::Index>(), 0usize..40, "\\PC{0,6}");
    prop::collection::vec(edit, 1..6).prop_map(|edits| {
        let mut text = EXAMPLE.to_string();
        for (at, len, insert) in edits {
            let mut start = at.index(text.len().max(1)).min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.replace_range(start..end, &insert);
        }
        text
    })
}

fn check_policy(text: &str) {
    if let Err(errors) = Policy::from_toml(text) {
        assert!(!errors.0.is_empty(), "an error names at least one problem");
        for e in &errors.0 {
            assert!(!e.key.is_empty(), "every problem names a key: {e}");
        }
        let _ = errors.to_string();
    }
}

proptest! {
    #[test]
    fn policy_parser_never_panics_on_any_text(text in "\\PC{0,200}") {
        check_policy(&text);
    }

    #[test]
    fn policy_parser_never_panics_on_tomlish_text(text in tomlish_text()) {
        check_policy(&text);
    }

    #[test]
    fn policy_parser_never_panics_on_a_mutated_example(text in mutated_example()) {
        check_policy(&text);
    }

    /// Any account key, however quoted, is reported at its own line.
    #[test]
    fn account_keys_are_located_whatever_they_contain(key in "\\PC{0,12}", env in "\\PC{0,6}") {
        let text = format!(
            "[tagging.account_environments]\n{} = {}\n",
            toml_edit::Key::new(key.clone()),
            toml_edit::Value::from(env.clone()),
        );
        match Policy::from_toml(&text) {
            Ok(policy) => prop_assert_eq!(policy.environment_of_account(&key), Some(env.as_str())),
            Err(errors) => {
                for e in &errors.0 {
                    prop_assert_eq!(e.line, Some(2), "{}", e);
                }
            }
        }
    }

    /// Any list value is located at its element's line.
    #[test]
    fn list_values_are_located(values in prop::collection::vec("\\PC{0,8}", 1..4)) {
        let list: Vec<String> = values.iter().map(|v| toml_edit::Value::from(v.clone()).to_string()).collect();
        let text = format!("[targets]\naccounts = [\n{}\n]\n", list.join(",\n"));
        if let Err(errors) = Policy::from_toml(&text) {
            for e in &errors.0 {
                prop_assert!(e.line.is_some_and(|l| l >= 2), "{}", e);
            }
        }
    }

    #[test]
    fn scheduled_trigger_parser_never_panics(payload in event_inputs()) {
        let _ = trigger::parse_scheduled(&payload, JOBS, now());
    }

    #[test]
    fn sqs_batch_parser_never_panics(payload in event_inputs()) {
        let _ = crate::sqs::parse_batch(&payload);
    }

    #[test]
    fn schedule_tags_never_panic(value in string_from(Vec::new()), at in any::<i64>()) {
        let tags = HashMap::from([(crate::schedule::TAG.to_string(), value)]);
        let policy = Policy::default();
        if let crate::schedule::Resolution::Scheduled(s) = crate::schedule::resolve(&tags, &policy.offhours) {
            if let Some(at) = DateTime::from_timestamp(at % 400_000_000_000, 0) {
                let _ = s.is_off_at(at, &[]);
            }
        }
    }
}

#[test]
fn a_key_with_an_open_bracket_is_an_error_at_its_line() {
    // Panicked in the key-and-line locator before: `x[` was read as an index.
    let err = Policy::from_toml("[tagging.account_environments]\n\"x[\" = \"dev\"\n").unwrap_err();
    assert_eq!(err.0[0].key, "tagging.account_environments.x[");
    assert_eq!(err.0[0].line, Some(2), "{err}");
}

#[test]
fn keys_with_dots_and_brackets_are_located() {
    let text = "[tagging.account_environments]\n\"123456789012\" = \"dev\"\n\"1.2[3]\" = \"dev\"\n\"[\" = \"dev\"\n\"\" = \"dev\"\n";
    let err = Policy::from_toml(text).unwrap_err();
    let located: Vec<_> = err.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert!(
        located.contains(&("tagging.account_environments.1.2[3]", Some(3))),
        "{located:?}"
    );
    assert!(
        located.contains(&("tagging.account_environments.[", Some(4))),
        "{located:?}"
    );
    assert!(
        located.contains(&("tagging.account_environments.", Some(5))),
        "{located:?}"
    );
}

#[test]
fn multibyte_text_near_an_error_does_not_panic() {
    for text in [
        "é = 1",
        "[offhours]\ntimezone = \"é😀\"\n",
        "😀",
        "[limits]\nmax_changes_per_run = \"é\"",
    ] {
        check_policy(text);
    }
}

#[test]
fn deeply_nested_documents_are_errors_not_crashes() {
    for depth in [100, 10_000] {
        check_policy(&format!("x = {}{}", "[".repeat(depth), "]".repeat(depth)));
        check_policy(&format!("x = {}", "{ a = ".repeat(depth)));
        check_policy(&"[".repeat(depth));
    }
}

#[test]
fn every_fixture_is_seen_by_the_strategies() {
    let fixtures = fixtures(&events_dir());
    assert!(fixtures.len() >= 20, "{} fixtures", fixtures.len());
    let (keys, strings) = vocabulary(&fixtures);
    assert!(keys.iter().any(|k| k == "detail-type"));
    assert!(strings.iter().any(|s| s == "Scheduled Event"));
}

#[test]
fn a_key_with_backticks_is_named_in_full() {
    // Found by `policy_parser_never_panics_on_tomlish_text`: the key was cut
    // at its first backtick and the problem named an empty key.
    let err = Policy::from_toml("\"a`b\" = 1\n").unwrap_err();
    assert_eq!(err.0[0].key, "a`b", "{err}");
    assert_eq!(err.0[0].line, Some(1), "{err}");
    let err = Policy::from_toml("\"\" = 1\n").unwrap_err();
    assert_eq!(err.0[0].key, "document", "{err}");
}
