//! Property tests of the tag enforcer's event parser (issue 9, section 2):
//! CloudTrail create and tagging calls with every `userIdentity` shape, and
//! AWS Config rule invocations (change, oversized, scheduled). No input may
//! panic it: arbitrary text and JSON, the real fixtures of `events/` with any
//! field removed or retyped, extreme numbers, times and strings (inside the
//! `invokingEvent` JSON too) either parse or give a `BadEvent` naming the
//! problem. What parses keeps its invariants: a 12-digit account, a region,
//! non-empty resource ids, a creator with a name. `PROPTEST_CASES` sets the
//! number of cases (`make fuzz`); `make test` runs a few dozen.

use proptest::prelude::*;
use serde_json::{json, Value};
use steward_shared::fuzz::{
    arbitrary_json, mutated_within, named_fixtures, parser_config, single_edits,
    single_edits_within, vocabulary,
};
use tag_enforcer::events::{parse, BadEvent, Trigger};
use tag_enforcer::resource_types as types;
use tag_enforcer::{caller_name, creator, ConfigInvocation, Identity};

/// The fixtures this function is invoked with.
const PREFIXES: &[&str] = &[
    "cloudtrail-",
    "config-change",
    "config-oversized",
    "config-scheduled",
];

fn fixtures() -> Vec<Value> {
    named_fixtures(PREFIXES)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn config_fixtures() -> Vec<Value> {
    named_fixtures(&["config-change", "config-oversized", "config-scheduled"])
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses `payload` and checks what every answer must hold.
fn check(payload: &Value) -> Result<Trigger, BadEvent> {
    let result = parse(payload, &types());
    match &result {
        Ok(Trigger::CreateCall(call)) => {
            assert!(is_account(&call.account), "account {:?}", call.account);
            assert!(!call.region.is_empty());
            assert!(!call.event_name.is_empty());
            assert!(call.resources.iter().all(|r| !r.id.is_empty()));
            if call.error_code.is_some() {
                assert!(call.resources.is_empty(), "a failed call created nothing");
            }
            check_identity(&call.identity);
        }
        Ok(Trigger::TagCall(call)) => {
            assert!(is_account(&call.account), "account {:?}", call.account);
            assert!(!call.region.is_empty());
            assert!(call.changes.iter().all(|(r, _)| !r.id.is_empty()));
            check_identity(&call.identity);
        }
        Ok(Trigger::Config(event)) => {
            assert!(is_account(&event.account), "account {:?}", event.account);
            assert!(!event.region.is_empty());
            assert!(!event.result_token.is_empty());
            assert!(!event.rule_name.is_empty());
            if let ConfigInvocation::Change(item) = &event.invocation {
                assert!(!item.resource_id.is_empty() && !item.resource_type.is_empty());
            }
        }
        Err(e) => assert!(!e.problem().trim().is_empty(), "an error names the problem"),
    }
    result
}

fn check_identity(identity: &Identity) {
    if let Some(c) = creator(identity) {
        assert!(!c.by.is_empty(), "a creator has a name: {identity:?}");
    }
    assert!(!caller_name(identity).is_empty());
}

steward_shared::parser_properties!(check, fixtures());

proptest! {
    #![proptest_config(parser_config())]

    #[test]
    fn mutated_invoking_events_are_parsed_or_refused(
        payload in mutated_within(config_fixtures(), "/invokingEvent"),
    ) {
        let _ = check(&payload);
    }

    /// `userIdentity` of any shape never fails an event.
    #[test]
    fn any_user_identity_is_read(identity in {
        let (keys, strings) = vocabulary(&fixtures());
        arbitrary_json(keys, strings)
    }) {
        let mut event = named_fixtures(&["cloudtrail-run-instances.json"])[0].1.clone();
        event["detail"]["userIdentity"] = identity;
        prop_assert!(matches!(check(&event), Ok(Trigger::CreateCall(_))));
    }

    /// An IAM user with any name is recorded by that name.
    #[test]
    fn an_iam_user_is_recorded_by_name(name in "[\\w+=,.@-]{1,64}") {
        let mut event = named_fixtures(&["cloudtrail-identity-iam-user-console.json"])[0].1.clone();
        event["detail"]["userIdentity"]["userName"] = json!(name);
        let Ok(Trigger::CreateCall(call)) = check(&event) else {
            return Err(TestCaseError::fail("the event no longer parses"));
        };
        prop_assert_eq!(creator(&call.identity).map(|c| c.by), Some(name));
    }

    /// A web identity (any role, any session) is recorded as `ROLE/SESSION`.
    #[test]
    fn a_web_identity_is_recorded_as_role_and_session(
        role in "[A-Za-z0-9+=,.@_-]{1,64}",
        session in "[A-Za-z0-9+=,.@_-]{2,64}",
    ) {
        prop_assume!(!role.starts_with("AWSServiceRole") && !session.starts_with("i-"));
        let mut event = named_fixtures(&["cloudtrail-identity-github-oidc.json"])[0].1.clone();
        event["detail"]["userIdentity"]["arn"] =
            json!(format!("arn:aws:sts::123456789012:assumed-role/{role}/{session}"));
        let Ok(Trigger::CreateCall(call)) = check(&event) else {
            return Err(TestCaseError::fail("the event no longer parses"));
        };
        prop_assert_eq!(creator(&call.identity).map(|c| c.by), Some(format!("{role}/{session}")));
    }

    /// Any event time that parses is the time CloudTrail wrote, to the second.
    #[test]
    fn a_tagging_call_keeps_its_time(secs in -62_135_596_800i64..253_402_300_799) {
        let Some(at) = chrono::DateTime::from_timestamp(secs, 0) else {
            return Ok(());
        };
        let mut event = named_fixtures(&["cloudtrail-tag-ec2-create-tags.json"])[0].1.clone();
        event["detail"]["eventTime"] = json!(at.to_rfc3339());
        let Ok(Trigger::TagCall(call)) = check(&event) else {
            return Err(TestCaseError::fail("the event no longer parses"));
        };
        prop_assert_eq!(call.event_time, at);
    }
}

/// Every fixture with each field removed, and each value replaced by a value
/// of every other JSON type, a huge string and an empty one.
#[test]
fn every_single_edit_of_every_fixture_is_parsed_or_refused() {
    let mut edits = 0;
    for (name, fixture) in named_fixtures(PREFIXES) {
        assert!(check(&fixture).is_ok(), "{name} parses as it is");
        let mut all = single_edits(&fixture);
        all.extend(single_edits_within(&fixture, "/invokingEvent"));
        for (what, edited) in all {
            let outcome = std::panic::catch_unwind(|| check(&edited).map(|_| ()));
            assert!(outcome.is_ok(), "{name} with {what} panicked");
            edits += 1;
        }
    }
    assert!(edits > 1000, "{edits} edits");
}

/// Found by `mutated_fixtures_are_parsed_or_refused`: any non-empty string
/// was taken as the account of a CloudTrail event or a Config invocation
/// (`"null"`, `"0"`, JSON text), and the tag enforcer went on to assume a
/// role in it and name it to the security team.
#[test]
fn an_account_that_is_not_twelve_digits_is_a_bad_event() {
    for account in [
        "null",
        "0",
        "12345678901",
        "1234567890123",
        "12345678901x",
        "１２３４５６７８９０１２",
    ] {
        let mut event = named_fixtures(&["cloudtrail-create-secret.json"])[0]
            .1
            .clone();
        event["account"] = json!(account);
        let err = check(&event).expect_err(account);
        assert!(err.problem().contains("12-digit account id"), "{err}");
        let mut config = named_fixtures(&["config-change-ec2-instance.json"])[0]
            .1
            .clone();
        config["accountId"] = json!(account);
        let err = check(&config).expect_err(account);
        assert!(err.problem().contains("12-digit account id"), "{err}");
    }
}
