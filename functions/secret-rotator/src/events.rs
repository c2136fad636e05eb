//! The rotation invocation Secrets Manager sends: `Step`, `SecretId`,
//! `ClientRequestToken` and, for rotation through an assumed role,
//! `RotationToken` (absent from the published Rust event type, so modelled
//! here). Malformed input is an error that names the problem.

use std::fmt;

use serde_json::Value;

/// One of the four rotation steps, in the order Secrets Manager runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

    /// The name Secrets Manager uses (`createSecret`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "createSecret",
            Step::Set => "setSecret",
            Step::Test => "testSecret",
            Step::Finish => "finishSecret",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.as_str() == s)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed rotation invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationEvent {
    pub step: Step,
    /// The secret's ARN (Secrets Manager sends the ARN) or name.
    pub secret_id: String,
    /// The version being created; the same for the four steps of one rotation.
    pub token: String,
    /// Proof of origin that Secrets Manager checks when the function writes
    /// through an assumed role (cross-account rotation).
    pub rotation_token: Option<String>,
}

/// The account and region of a Secrets Manager ARN (`None` for a plain name,
/// or when the ARN's account is not 12 digits or its region is empty).
pub fn account_region_of(secret_id: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = secret_id.splitn(7, ':').collect();
    let [arn, _partition, service, region, account, _resource, ..] = parts.as_slice() else {
        return None;
    };
    let is_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (*arn == "arn" && *service == "secretsmanager" && !region.is_empty() && is_account)
        .then(|| (account.to_string(), region.to_string()))
}

/// Parses an invocation payload; errors start with `bad event:`.
pub fn parse(payload: &Value) -> anyhow::Result<RotationEvent> {
    let object = payload.as_object().ok_or_else(|| {
        steward_shared::bad_event(
            "expected a JSON object with Step, SecretId and ClientRequestToken",
        )
    })?;
    let text = |key: &str| -> anyhow::Result<String> {
        match object.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(Value::String(_)) => Err(steward_shared::bad_event(format!("{key} is empty"))),
            Some(other) => Err(steward_shared::bad_event(format!(
                "{key} must be a string, got {other}"
            ))),
            None => Err(steward_shared::bad_event(format!(
                "{key} is missing; this function expects Secrets Manager rotation events \
                 (Step, SecretId, ClientRequestToken)"
            ))),
        }
    };
    let step_name = text("Step")?;
    let step = Step::parse(&step_name).ok_or_else(|| {
        steward_shared::bad_event(format!(
            "unknown Step {step_name:?}; expected createSecret, setSecret, testSecret or finishSecret"
        ))
    })?;
    let secret_id = text("SecretId")?;
    let token = text("ClientRequestToken")?;
    if token.len() < 32 || token.len() > 64 {
        return Err(steward_shared::bad_event(format!(
            "ClientRequestToken must be 32 to 64 characters, got {}",
            token.len()
        )));
    }
    let rotation_token = match object.get("RotationToken") {
        None | Some(Value::Null) => None,
        Some(_) => Some(text("RotationToken")?),
    };
    Ok(RotationEvent {
        step,
        secret_id,
        token,
        rotation_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOKEN: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    #[test]
    fn parses_the_four_steps() {
        for step in Step::ALL {
            let e = parse(&json!({"Step": step.as_str(), "SecretId": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:app-AbCdEf", "ClientRequestToken": TOKEN})).unwrap();
            assert_eq!(e.step, step);
            assert_eq!(e.rotation_token, None);
            assert_eq!(
                account_region_of(&e.secret_id),
                Some(("111111111111".into(), "eu-west-1".into()))
            );
        }
    }

    #[test]
    fn parses_the_sample_events() {
        let samples = [
            (
                Step::Create,
                include_str!("../../../events/secretsmanager-create-secret.json"),
            ),
            (
                Step::Set,
                include_str!("../../../events/secretsmanager-set-secret.json"),
            ),
            (
                Step::Test,
                include_str!("../../../events/secretsmanager-test-secret.json"),
            ),
            (
                Step::Finish,
                include_str!("../../../events/secretsmanager-finish-secret.json"),
            ),
        ];
        for (step, text) in samples {
            let e = parse(&serde_json::from_str(text).unwrap()).unwrap();
            assert_eq!(e.step, step);
            assert!(e.rotation_token.is_some());
            assert_eq!(
                account_region_of(&e.secret_id),
                Some(("123456789012".into(), "us-east-1".into()))
            );
        }
    }

    #[test]
    fn keeps_the_rotation_token() {
        let e = parse(&json!({"Step": "setSecret", "SecretId": "app", "ClientRequestToken": TOKEN, "RotationToken": "rt-1"})).unwrap();
        assert_eq!(e.rotation_token.as_deref(), Some("rt-1"));
        assert_eq!(account_region_of(&e.secret_id), None);
    }

    #[test]
    fn rejects_unknown_steps_and_missing_fields() {
        let err =
            parse(&json!({"Step": "dropSecret", "SecretId": "app", "ClientRequestToken": TOKEN}))
                .unwrap_err();
        assert!(
            err.to_string().contains("unknown Step \"dropSecret\""),
            "{err}"
        );
        let err = parse(&json!({"Step": "setSecret", "ClientRequestToken": TOKEN})).unwrap_err();
        assert!(err.to_string().contains("SecretId is missing"), "{err}");
        let err =
            parse(&json!({"Step": "setSecret", "SecretId": "app", "ClientRequestToken": "short"}))
                .unwrap_err();
        assert!(
            err.to_string().starts_with("bad event: ClientRequestToken"),
            "{err}"
        );
        assert!(parse(&json!([1, 2]))
            .unwrap_err()
            .to_string()
            .starts_with("bad event"));
        assert!(parse(&json!({"Step": 3, "SecretId": "a", "ClientRequestToken": TOKEN})).is_err());
    }
}
