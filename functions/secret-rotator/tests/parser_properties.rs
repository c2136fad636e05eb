//! Property tests of the secret rotator's event parser (issue 9, section 2):
//! the rotation invocation Secrets Manager sends (`Step`, `SecretId`,
//! `ClientRequestToken`, `RotationToken`). No input may panic it: arbitrary
//! text and JSON, the real fixtures of `events/` with any field removed or
//! retyped, extreme numbers and huge or odd strings either parse or give a
//! `BadEvent` naming the problem. What parses keeps its invariants: a known
//! step, a token of 32 to 64 characters, a secret id without surrounding
//! blanks, and an ARN's account is 12 digits. `PROPTEST_CASES` sets the
//! number of cases (`make fuzz`); `make test` runs a few dozen.

use proptest::prelude::*;
use secret_rotator::events::{account_region_of, parse, RotationEvent, Step};
use serde_json::{json, Value};
use steward_shared::failure::{error_type, BAD_EVENT};
use steward_shared::fuzz::{
    event_inputs, mutated_named_fixture, named_fixtures, parser_config, single_edits,
};

fn fixtures() -> Vec<Value> {
    named_fixtures(&["secretsmanager-"])
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn check_secret_id(secret_id: &str) {
    if let Some((account, region)) = account_region_of(secret_id) {
        assert!(is_account(&account), "account {account:?} of {secret_id:?}");
        assert!(!region.is_empty(), "region of {secret_id:?}");
    }
}

/// Parses `payload` and checks what every answer must hold.
fn check(payload: &Value) -> Option<RotationEvent> {
    match parse(payload) {
        Ok(e) => {
            assert_eq!(Step::parse(e.step.as_str()), Some(e.step));
            assert!((32..=64).contains(&e.token.len()), "token {:?}", e.token);
            assert!(!e.secret_id.is_empty() && e.secret_id.trim() == e.secret_id);
            assert!(e.rotation_token.as_deref().is_none_or(|t| !t.is_empty()));
            check_secret_id(&e.secret_id);
            Some(e)
        }
        Err(err) => {
            assert_eq!(error_type(&err), BAD_EVENT, "{err:#}");
            None
        }
    }
}

proptest! {
    #![proptest_config(parser_config())]

    #[test]
    fn any_text_is_parsed_or_refused(text in "\\PC{0,300}") {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            check(&v);
        }
        check(&Value::String(text.clone()));
        check_secret_id(&text);
    }

    #[test]
    fn any_bytes_are_parsed_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            check(&v);
        }
    }

    #[test]
    fn any_json_is_parsed_or_refused(payload in event_inputs()) {
        check(&payload);
    }

    #[test]
    fn mutated_fixtures_are_parsed_or_refused(payload in mutated_named_fixture(fixtures())) {
        check(&payload);
    }

    /// Any secret ARN's parts come back from the ARN (when the account is an account).
    #[test]
    fn a_secret_arn_names_its_account_and_region(
        region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
        account in prop_oneof!["[0-9]{12}", "[^:]{0,14}"],
        name in "[\\w/+=.@-]{1,64}",
    ) {
        let arn = format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf");
        let parts = account_region_of(&arn);
        if is_account(&account) {
            prop_assert_eq!(parts, Some((account, region)));
        } else {
            prop_assert_eq!(parts, None);
        }
    }

    /// A well-formed invocation parses back to what was sent.
    #[test]
    fn a_rotation_event_round_trips(
        step in prop::sample::select(Step::ALL.to_vec()),
        secret in "[\\w/+=.@:-]{1,200}",
        token in "[0-9a-f-]{32,64}",
        rotation in proptest::option::of("[\\w-]{1,64}"),
    ) {
        let mut payload = json!({"Step": step.as_str(), "SecretId": secret, "ClientRequestToken": token});
        if let Some(r) = &rotation {
            payload["RotationToken"] = json!(r);
        }
        let event = check(&payload).expect("a well-formed event parses");
        prop_assert_eq!(event.step, step);
        prop_assert_eq!(event.secret_id, secret);
        prop_assert_eq!(event.token, token);
        prop_assert_eq!(event.rotation_token, rotation);
    }
}

/// Every fixture with each field removed, and each value replaced by a value
/// of every other JSON type, a huge string and an empty one.
#[test]
fn every_single_edit_of_every_fixture_is_parsed_or_refused() {
    let mut edits = 0;
    for fixture in fixtures() {
        assert!(check(&fixture).is_some(), "the fixture parses as it is");
        for (what, edited) in single_edits(&fixture) {
            let outcome = std::panic::catch_unwind(|| check(&edited));
            assert!(outcome.is_ok(), "{what} panicked");
            edits += 1;
        }
    }
    assert!(edits > 100, "{edits} edits");
}

#[test]
fn an_arn_with_an_account_that_is_not_an_account_names_none() {
    // Found by `a_secret_arn_names_its_account_and_region`: the account part
    // of any `arn:...:secretsmanager:...` string was taken as the account
    // (empty, letters) and named in the notification.
    assert_eq!(
        account_region_of("arn:aws:secretsmanager:us-east-1::secret:x"),
        None
    );
    assert_eq!(
        account_region_of("arn:aws:secretsmanager:us-east-1:me:secret:x"),
        None
    );
    assert_eq!(
        account_region_of("arn:aws:secretsmanager::123456789012:secret:x"),
        None
    );
}
