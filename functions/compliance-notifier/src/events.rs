//! Typed input: the EventBridge `Config Rules Compliance Change` event
//! (parsed leniently: unknown fields never fail it, a missing required field
//! is a `BadEvent` naming it) and the scheduled `digest` job.

use chrono::{DateTime, Utc};
use serde_json::Value;
use steward_shared::failure::BadEvent;
use steward_shared::trigger::{self, Jobs, ScheduledRun};

use crate::model::{ComplianceChange, ComplianceState};

/// The scheduled jobs: `digest` is the default.
pub const JOBS: Jobs = Jobs {
    default: "digest",
    others: &[],
};

/// The EventBridge detail type of a compliance change.
pub const DETAIL_TYPE: &str = "Config Rules Compliance Change";

/// One invocation's trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Change(Box<ComplianceChange>),
    Digest(ScheduledRun),
}

/// Parses a payload; anything else than the two shapes is a `BadEvent`.
pub fn parse(payload: &Value, now: DateTime<Utc>) -> Result<Trigger, BadEvent> {
    if let Some(run) = trigger::parse_scheduled(payload, JOBS, now)? {
        return Ok(Trigger::Digest(run));
    }
    if !payload.is_object() {
        return Err(BadEvent::new(format!(
            "expected a JSON object (an EventBridge `{DETAIL_TYPE}` event or a scheduled trigger), got {}",
            kind_of(payload)
        )));
    }
    match payload.get("detail-type").and_then(Value::as_str) {
        Some(DETAIL_TYPE) => parse_change(payload).map(|c| Trigger::Change(Box::new(c))),
        Some(other) => Err(BadEvent::new(format!(
            "unsupported detail-type {other:?}; this function handles `{DETAIL_TYPE}` events and the scheduled job `digest`"
        ))),
        None => Err(BadEvent::new(format!(
            "no `detail-type`: not an EventBridge `{DETAIL_TYPE}` event nor a scheduled trigger"
        ))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string at a path, `None` when absent, null or empty; a wrong type is bad input.
fn text(v: &Value, path: &[&str]) -> Result<Option<String>, BadEvent> {
    let mut at = v;
    for key in path {
        match at.get(*key) {
            Some(next) => at = next,
            None => return Ok(None),
        }
    }
    match at {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(BadEvent::new(format!(
            "`{}` must be a string, not {}",
            path.join("."),
            kind_of(other)
        ))),
    }
}

fn required(v: &Value, path: &[&str]) -> Result<String, BadEvent> {
    text(v, path)?.ok_or_else(|| {
        BadEvent::new(format!(
            "`{}` is missing from the `{DETAIL_TYPE}` event",
            path.join(".")
        ))
    })
}

fn state(v: &Value, path: &[&str]) -> Result<Option<ComplianceState>, BadEvent> {
    match text(v, path)? {
        None => Ok(None),
        Some(s) => ComplianceState::parse(&s).map(Some).ok_or_else(|| {
            BadEvent::new(format!(
                "`{}` is {s:?}, not one of COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE, INSUFFICIENT_DATA",
                path.join(".")
            ))
        }),
    }
}

fn parse_change(payload: &Value) -> Result<ComplianceChange, BadEvent> {
    let source = text(payload, &["source"])?;
    if source.as_deref() != Some("aws.config") {
        // Only AWS can publish `aws.*` sources on an event bus; anything else is not vouched for.
        return Err(BadEvent::new(format!(
            "`source` is {}, not \"aws.config\": only AWS Config's own events are trusted",
            source.map_or("missing".to_string(), |s| format!("{s:?}"))
        )));
    }
    let event_id = required(payload, &["id"])?;
    let detail = payload
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| {
            BadEvent::new(format!(
                "`detail` is missing from the `{DETAIL_TYPE}` event"
            ))
        })?;
    let account = match text(detail, &["awsAccountId"])? {
        Some(a) => a,
        None => required(payload, &["account"])?,
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadEvent::new(format!(
            "`detail.awsAccountId` {account:?} is not a 12-digit account id"
        )));
    }
    let region = match text(detail, &["awsRegion"])? {
        Some(r) => r,
        None => required(payload, &["region"])?,
    };
    let qualifier = |field: &'static str| -> Vec<&'static str> {
        vec![
            "newEvaluationResult",
            "evaluationResultIdentifier",
            "evaluationResultQualifier",
            field,
        ]
    };
    let rule = match text(detail, &["configRuleName"])? {
        Some(r) => r,
        None => text(detail, &qualifier("configRuleName"))?
            .ok_or_else(|| BadEvent::new("`detail.configRuleName` is missing from the event"))?,
    };
    let resource_type = match text(detail, &["resourceType"])? {
        Some(r) => r,
        None => text(detail, &qualifier("resourceType"))?
            .ok_or_else(|| BadEvent::new("`detail.resourceType` is missing from the event"))?,
    };
    let resource_id = match text(detail, &["resourceId"])? {
        Some(r) => r,
        None => text(detail, &qualifier("resourceId"))?
            .ok_or_else(|| BadEvent::new("`detail.resourceId` is missing from the event"))?,
    };
    if detail
        .get("newEvaluationResult")
        .is_none_or(|n| !n.is_object())
    {
        return Err(BadEvent::new(
            "`detail.newEvaluationResult` is missing from the event",
        ));
    }
    let new_state =
        state(detail, &["newEvaluationResult", "complianceType"])?.ok_or_else(|| {
            BadEvent::new("`detail.newEvaluationResult.complianceType` is missing from the event")
        })?;
    let old_state = state(detail, &["oldEvaluationResult", "complianceType"])?;
    let recorded = match text(detail, &["newEvaluationResult", "resultRecordedTime"])? {
        Some(t) => t,
        None => text(payload, &["time"])?.ok_or_else(|| {
            BadEvent::new("`detail.newEvaluationResult.resultRecordedTime` is missing (and the event has no `time`)")
        })?,
    };
    Ok(ComplianceChange {
        event_id,
        account,
        region,
        rule,
        rule_arn: text(detail, &["configRuleARN"])?,
        resource_type,
        resource_id,
        new_state,
        old_state,
        recorded,
        annotation: text(detail, &["newEvaluationResult", "annotation"])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_fixtures_parse() {
        let Trigger::Change(c) = parse(&fixture("config-compliance-change.json"), now()).unwrap()
        else {
            panic!("not a change")
        };
        assert_eq!(c.new_state, ComplianceState::NonCompliant);
        assert_eq!(c.old_state, Some(ComplianceState::Compliant));
        assert_eq!(c.account, "123456789012");
        assert_eq!(c.resource_type, "AWS::S3::Bucket");
        assert!(c.annotation.is_some());
        let Trigger::Change(r) =
            parse(&fixture("config-compliance-change-recovered.json"), now()).unwrap()
        else {
            panic!("not a change")
        };
        assert_eq!(r.new_state, ComplianceState::Compliant);
        assert_eq!(r.old_state, Some(ComplianceState::NonCompliant));
        assert_ne!(c.dedupe_key(), r.dedupe_key());
    }

    #[test]
    fn the_digest_is_the_default_job() {
        let run = parse(&json!({"job": "digest"}), now()).unwrap();
        assert!(matches!(run, Trigger::Digest(r) if r.job == "digest"));
        assert!(parse(&json!({"job": "sweep"}), now()).is_err());
    }

    #[test]
    fn unknown_fields_pass_and_missing_ones_are_named() {
        let mut e = fixture("config-compliance-change.json");
        e["detail"]["somethingNew"] = json!({"x": 1});
        assert!(parse(&e, now()).is_ok());
        let mut missing = fixture("config-compliance-change.json");
        missing["detail"]
            .as_object_mut()
            .unwrap()
            .remove("newEvaluationResult");
        let err = parse(&missing, now()).unwrap_err();
        assert!(err.to_string().contains("newEvaluationResult"), "{err}");
        let mut wrong = fixture("config-compliance-change.json");
        wrong["detail"]["newEvaluationResult"]["complianceType"] = json!("BROKEN");
        assert!(parse(&wrong, now())
            .unwrap_err()
            .to_string()
            .contains("BROKEN"));
        let mut forged = fixture("config-compliance-change.json");
        forged["source"] = json!("my.app");
        assert!(parse(&forged, now())
            .unwrap_err()
            .to_string()
            .contains("aws.config"));
        for junk in [
            json!(null),
            json!([1]),
            json!("x"),
            json!({"detail-type": 5}),
        ] {
            assert!(parse(&junk, now()).is_err(), "{junk}");
        }
    }
}
