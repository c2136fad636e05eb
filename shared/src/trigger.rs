//! The scheduled triggers every function accepts (SPEC section 4), parsed in
//! one place:
//!
//! - an EventBridge `Scheduled Event` from a scheduled rule (its `id` and
//!   `time` are used);
//! - the EventBridge Scheduler input `{"scheduledTime": "<aws.scheduler.scheduled-time>",
//!   "scheduleArn": "<aws.scheduler.schedule-arn>"}`;
//! - either of these with a `"job"` field added (rules use an input transformer);
//! - a bare `{"job": NAME}`, which runs at the clock's time.
//!
//! With no `job` the function's default job runs; an unknown job is bad input.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::failure::BadEvent;

/// One scheduled run: its id (idempotency and digests), its time and its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledRun {
    pub id: String,
    pub time: DateTime<Utc>,
    /// The job named in the payload, checked against the function's jobs.
    pub job: String,
}

/// A function's scheduled jobs: the default first.
#[derive(Debug, Clone, Copy)]
pub struct Jobs {
    pub default: &'static str,
    pub others: &'static [&'static str],
}

impl Jobs {
    fn check(&self, job: Option<&str>) -> Result<String, BadEvent> {
        match job {
            None => Ok(self.default.to_string()),
            Some(j) if j == self.default || self.others.contains(&j) => Ok(j.to_string()),
            Some(j) => {
                let mut known = vec![self.default];
                known.extend_from_slice(self.others);
                Err(BadEvent::new(format!(
                    "unknown job {j:?}; this function runs {}",
                    known.join(", ")
                )))
            }
        }
    }
}

/// True when the payload has one of the scheduled shapes (it may still be malformed).
pub fn is_scheduled(payload: &Value) -> bool {
    payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        || payload.get("scheduledTime").is_some()
        || is_bare_job(payload)
}

fn is_bare_job(payload: &Value) -> bool {
    payload
        .as_object()
        .is_some_and(|o| o.contains_key("job") && o.keys().all(|k| k == "job"))
}

fn parse_time(value: &str, field: &str) -> Result<DateTime<Utc>, BadEvent> {
    if value.contains("<aws.scheduler") {
        return Err(BadEvent::new(format!(
            "{field} is the unexpanded template {value:?}: set the schedule's input to {{\"scheduledTime\": \"<aws.scheduler.scheduled-time>\"}} with the template as a JSON string"
        )));
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| BadEvent::new(format!("{field}={value:?} is not an RFC 3339 time: {e}")))
}

fn string_field<'a>(payload: &'a Value, key: &str) -> Result<Option<&'a str>, BadEvent> {
    match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(BadEvent::new(format!(
            "`{key}` must be a string, not {other}"
        ))),
    }
}

/// Parses a scheduled trigger; `now` is used for a bare `{"job": ...}`.
/// Returns `Ok(None)` when the payload is not a scheduled shape at all.
pub fn parse_scheduled(
    payload: &Value,
    jobs: Jobs,
    now: DateTime<Utc>,
) -> Result<Option<ScheduledRun>, BadEvent> {
    if !is_scheduled(payload) {
        return Ok(None);
    }
    let job = jobs.check(string_field(payload, "job")?)?;
    if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        let id = string_field(payload, "id")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| BadEvent::new("scheduled event without an `id`"))?;
        let time = string_field(payload, "time")?
            .ok_or_else(|| BadEvent::new("scheduled event without a `time`"))?;
        return Ok(Some(ScheduledRun {
            id: id.to_string(),
            time: parse_time(time, "time")?,
            job,
        }));
    }
    if payload.get("scheduledTime").is_some() {
        let time = string_field(payload, "scheduledTime")?
            .ok_or_else(|| BadEvent::new("`scheduledTime` is empty"))?;
        let time = parse_time(time, "scheduledTime")?;
        let id = match string_field(payload, "scheduleArn")? {
            Some(arn) => format!("{arn}@{}", time.to_rfc3339()),
            None => format!("scheduler@{}", time.to_rfc3339()),
        };
        return Ok(Some(ScheduledRun { id, time, job }));
    }
    Ok(Some(ScheduledRun {
        id: format!("{job}@{}", now.to_rfc3339()),
        time: now,
        job,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JOBS: Jobs = Jobs {
        default: "sweep",
        others: &["dr-drill"],
    };

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn scheduled_rule_with_and_without_job() {
        let rule = json!({"id": "abc", "detail-type": "Scheduled Event", "source": "aws.events",
                          "time": "2026-12-01T09:00:00Z", "detail": {}});
        let run = parse_scheduled(&rule, JOBS, now()).unwrap().unwrap();
        assert_eq!(run.id, "abc");
        assert_eq!(run.job, "sweep");
        assert_eq!(run.time.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        let mut with_job = rule.clone();
        with_job["job"] = json!("dr-drill");
        assert_eq!(
            parse_scheduled(&with_job, JOBS, now())
                .unwrap()
                .unwrap()
                .job,
            "dr-drill"
        );
    }

    #[test]
    fn scheduler_payload_and_bare_job() {
        let p = json!({"scheduledTime": "2026-12-01T09:15:00Z", "scheduleArn": "arn:aws:scheduler:us-east-1:1:schedule/default/s"});
        let run = parse_scheduled(&p, JOBS, now()).unwrap().unwrap();
        assert!(run.id.starts_with("arn:aws:scheduler"));
        assert_eq!(run.job, "sweep");
        let bare = parse_scheduled(&json!({"job": "dr-drill"}), JOBS, now())
            .unwrap()
            .unwrap();
        assert_eq!(bare.time, now());
        assert_eq!(bare.job, "dr-drill");
    }

    #[test]
    fn errors_name_the_problem() {
        let unknown = parse_scheduled(&json!({"job": "nope"}), JOBS, now()).unwrap_err();
        assert!(unknown.to_string().contains("unknown job \"nope\""));
        let template = json!({"scheduledTime": "<aws.scheduler.scheduled-time>"});
        assert!(parse_scheduled(&template, JOBS, now())
            .unwrap_err()
            .to_string()
            .contains("unexpanded template"));
        let bad_type = json!({"scheduledTime": 5});
        assert!(parse_scheduled(&bad_type, JOBS, now()).is_err());
        assert_eq!(
            parse_scheduled(&json!({"detail-type": "Other"}), JOBS, now()).unwrap(),
            None
        );
    }
}
