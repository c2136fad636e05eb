//! The scheduler's triggers, parsed into typed models: the EventBridge
//! scheduled rule, the EventBridge Scheduler payload, an SQS batch of work
//! items from the fan-out queue, and the RDS "started after seven days
//! stopped" events. Errors start with "bad event:" and name the problem.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resources::Target;

/// RDS event id: a DB instance started after seven days stopped.
pub const RDS_INSTANCE_RESTARTED: &str = "RDS-EVENT-0154";
/// RDS event id: a DB cluster started after seven days stopped.
pub const RDS_CLUSTER_RESTARTED: &str = "RDS-EVENT-0153";

/// One invocation's trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A scheduled run: EventBridge rule (`id` is the event id) or Scheduler payload.
    Scheduled { id: String, time: DateTime<Utc> },
    /// An SQS batch from the work queue.
    Work(Vec<WorkRecord>),
    /// RDS started a stopped instance or cluster after seven days.
    RdsRestart(RdsRestart),
    /// A well-formed event the scheduler does not act on (another RDS event id).
    Ignored { id: String, why: String },
}

/// The body of one work-queue message: a target and the run's window end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    pub account: String,
    pub region: String,
    /// The window end of the run that fanned out (RFC 3339).
    pub time: DateTime<Utc>,
}

impl WorkItem {
    pub fn target(&self) -> Target {
        Target {
            account: self.account.clone(),
            region: self.region.clone(),
        }
    }
}

/// One SQS record: its message id and the parsed body (or why it does not parse).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkRecord {
    pub message_id: String,
    pub item: Result<WorkItem, String>,
}

/// An RDS-EVENT-0154 or RDS-EVENT-0153 event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsRestart {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub time: DateTime<Utc>,
    pub cluster: bool,
    pub identifier: String,
}

/// The EventBridge Scheduler input this function expects:
/// `{"scheduledTime": "<aws.scheduler.scheduled-time>"}` (optionally with `"scheduleArn"`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchedulerPayload {
    scheduled_time: String,
    #[serde(default)]
    schedule_arn: Option<String>,
}

fn bad(what: impl std::fmt::Display) -> anyhow::Error {
    steward_shared::bad_event(what)
}

fn time(value: &str, field: &str) -> anyhow::Result<DateTime<Utc>> {
    if value.contains("<aws.scheduler") {
        return Err(bad(format!(
            "{field} is the unexpanded template {value:?}: set the schedule's input to {{\"scheduledTime\": \"<aws.scheduler.scheduled-time>\"}} with the template as a JSON string"
        )));
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| bad(format!("{field}={value:?} is not an RFC 3339 time: {e}")))
}

fn str_field<'a>(v: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("missing string field `{key}`")))
}

/// Parses an invocation payload.
pub fn parse(payload: &Value) -> anyhow::Result<Trigger> {
    if !payload.is_object() {
        return Err(bad("the payload is not a JSON object"));
    }
    if let Some(records) = payload.get("Records") {
        let records = records
            .as_array()
            .ok_or_else(|| bad("`Records` is not an array"))?;
        let mut out = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if r.get("eventSource").and_then(Value::as_str) != Some("aws:sqs") {
                return Err(bad(format!(
                    "Records[{i}] is not an SQS record (eventSource aws:sqs)"
                )));
            }
            let message_id = str_field(r, "messageId")?.to_string();
            let item = str_field(r, "body").map_err(|e| e.to_string()).and_then(|body| {
                serde_json::from_str::<WorkItem>(body)
                    .map_err(|e| format!("bad work item {body:?}: {e}; expected {{\"account\", \"region\", \"time\"}}"))
            });
            out.push(WorkRecord { message_id, item });
        }
        return Ok(Trigger::Work(out));
    }
    if payload.get("scheduledTime").is_some() {
        let p: SchedulerPayload = serde_json::from_value(payload.clone())
            .map_err(|e| bad(format!("EventBridge Scheduler payload: {e}")))?;
        let t = time(&p.scheduled_time, "scheduledTime")?;
        let id = match p.schedule_arn {
            Some(arn) => format!("{arn}@{}", t.to_rfc3339()),
            None => format!("scheduler@{}", t.to_rfc3339()),
        };
        return Ok(Trigger::Scheduled { id, time: t });
    }
    let detail_type = payload
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("neither an EventBridge event (detail-type), a Scheduler payload (scheduledTime) nor an SQS batch (Records)"))?;
    let id = str_field(payload, "id")?.to_string();
    match detail_type {
        "Scheduled Event" => Ok(Trigger::Scheduled {
            time: time(str_field(payload, "time")?, "time")?,
            id,
        }),
        "RDS DB Instance Event" | "RDS DB Cluster Event" => {
            let detail = payload
                .get("detail")
                .ok_or_else(|| bad("missing `detail`"))?;
            let event_id = str_field(detail, "EventID")?;
            let cluster = detail_type == "RDS DB Cluster Event";
            let expected = if cluster {
                RDS_CLUSTER_RESTARTED
            } else {
                RDS_INSTANCE_RESTARTED
            };
            if event_id != expected {
                return Ok(Trigger::Ignored {
                    id,
                    why: format!("{detail_type} {event_id} is not {expected}"),
                });
            }
            Ok(Trigger::RdsRestart(RdsRestart {
                event_id: id,
                account: str_field(payload, "account")?.to_string(),
                region: str_field(payload, "region")?.to_string(),
                time: time(str_field(payload, "time")?, "time")?,
                cluster,
                identifier: str_field(detail, "SourceIdentifier")?.to_string(),
            }))
        }
        other => Err(bad(format!(
            "detail-type {other:?} is not handled by the off-hours scheduler"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn parses_every_fixture() {
        match parse(&fixture("scheduler-eventbridge-rule.json")).unwrap() {
            Trigger::Scheduled { time, .. } => {
                assert_eq!(time.to_rfc3339(), "2026-11-20T19:00:00+00:00")
            }
            other => panic!("{other:?}"),
        }
        match parse(&fixture("scheduler-eventbridge-scheduler.json")).unwrap() {
            Trigger::Scheduled { time, id } => {
                assert_eq!(time.to_rfc3339(), "2026-11-23T07:00:00+00:00");
                assert!(id.contains("schedule/"));
            }
            other => panic!("{other:?}"),
        }
        match parse(&fixture("scheduler-sqs-work-batch.json")).unwrap() {
            Trigger::Work(records) => {
                assert_eq!(records.len(), 2);
                assert_eq!(records[0].item.as_ref().unwrap().account, "123456789012");
            }
            other => panic!("{other:?}"),
        }
        match parse(&fixture("rds-event-0154-instance-restarted.json")).unwrap() {
            Trigger::RdsRestart(r) => assert!(!r.cluster && r.identifier == "dev-postgres"),
            other => panic!("{other:?}"),
        }
        match parse(&fixture("rds-event-0153-cluster-restarted.json")).unwrap() {
            Trigger::RdsRestart(r) => assert!(r.cluster && r.identifier == "dev-aurora"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_input_names_the_problem() {
        assert!(parse(&json!([]))
            .unwrap_err()
            .to_string()
            .starts_with("bad event:"));
        let e = parse(&json!({"scheduledTime": "<aws.scheduler.scheduled-time>"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unexpanded template"), "{e}");
        let e = parse(&json!({"detail-type": "Scheduled Event", "id": "x", "time": "yesterday"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("RFC 3339"), "{e}");
        let e = parse(&json!({"detail-type": "Object Created", "id": "x"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not handled"), "{e}");
        let w = parse(
            &json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": "nope"}]}),
        )
        .unwrap();
        match w {
            Trigger::Work(r) => assert!(r[0].item.as_ref().unwrap_err().contains("bad work item")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_rds_events_are_ignored() {
        let mut e = fixture("rds-event-0154-instance-restarted.json");
        e["detail"]["EventID"] = json!("RDS-EVENT-0088");
        assert!(matches!(parse(&e).unwrap(), Trigger::Ignored { .. }));
    }
}
