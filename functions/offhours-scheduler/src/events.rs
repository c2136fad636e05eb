//! The scheduler's triggers, parsed into typed models: the EventBridge
//! scheduled rule, the EventBridge Scheduler payload, an SQS batch of work
//! items from the fan-out queue, and the RDS "started after seven days
//! stopped" events. Scheduled triggers and SQS batches go through the
//! shared parsers (`steward_shared::trigger`, `steward_shared::sqs`); work
//! items are parsed strictly here. Errors are `BadEvent`s naming the problem.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use steward_shared::{sqs, trigger};

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

/// The body of one work-queue message: a target and the run's window end
/// (`{"account", "region", "time"}`), or a `budget-stop` job from the budget
/// alerter (the same fields plus `"job": "budget-stop"`, `budget`,
/// `period_start` and `period_end`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkItem {
    pub account: String,
    pub region: String,
    /// The window end of the run that fanned out, or the time the budget
    /// alerter sent the stop (RFC 3339).
    pub time: DateTime<Utc>,
    /// Set for a `budget-stop` job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_stop: Option<BudgetStop>,
}

/// A `budget-stop` job: stop the account's in-scope resources in the region
/// and hold them stopped until the budget period ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStop {
    pub budget: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
}

/// The job name of a budget stop on the work queue (SPEC section 4).
pub const BUDGET_STOP: &str = "budget-stop";

impl WorkItem {
    pub fn target(&self) -> Target {
        Target {
            account: self.account.clone(),
            region: self.region.clone(),
        }
    }

    /// Parses a work-queue message body strictly; the error names the field.
    pub fn parse(body: &str) -> Result<WorkItem, String> {
        let v: Value = serde_json::from_str(body).map_err(|e| {
            format!("bad work item {body:?}: {e}; expected {{\"account\", \"region\", \"time\"}}")
        })?;
        let field = |key: &str| -> Result<&str, String> {
            v.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("bad work item {body:?}: missing string field `{key}`; expected {{\"account\", \"region\", \"time\"}}"))
        };
        let account = field("account")?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "bad work item: account {account:?} is not 12 digits"
            ));
        }
        let region = field("region")?;
        if region.is_empty()
            || region.len() > 32
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "bad work item: region {region:?} is not a region name"
            ));
        }
        let time_text = field("time")?;
        let time = DateTime::parse_from_rfc3339(time_text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                format!("bad work item: time {time_text:?} is not an RFC 3339 time: {e}")
            })?;
        crate::plan::check_time(time).map_err(|e| format!("bad work item: {e}"))?;
        let budget_stop = match v.get("job") {
            None | Some(Value::Null) => None,
            Some(Value::String(j)) if j == "run" => None,
            Some(Value::String(j)) if j == BUDGET_STOP => {
                let date = |key: &str| -> Result<NaiveDate, String> {
                    let text = field(key)?;
                    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| {
                        format!("bad work item: {key} {text:?} is not YYYY-MM-DD: {e}")
                    })
                };
                let budget = field("budget")?.trim();
                if budget.is_empty() {
                    return Err("bad work item: `budget` is empty".into());
                }
                let period_start = date("period_start")?;
                let period_end = date("period_end")?;
                if period_end < period_start {
                    return Err(format!(
                        "bad work item: period_end {period_end} is before period_start {period_start}"
                    ));
                }
                Some(BudgetStop {
                    budget: budget.to_string(),
                    period_start,
                    period_end,
                })
            }
            Some(other) => {
                return Err(format!(
                    "bad work item: job {other} is not \"run\" or \"{BUDGET_STOP}\""
                ))
            }
        };
        Ok(WorkItem {
            account: account.to_string(),
            region: region.to_string(),
            time,
            budget_stop,
        })
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

fn bad(what: impl std::fmt::Display) -> anyhow::Error {
    steward_shared::bad_event(what)
}

fn time(value: &str, field: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| bad(format!("{field}={value:?} is not an RFC 3339 time: {e}")))
}

fn str_field<'a>(v: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| bad(format!("missing string field `{key}`")))
}

/// `value` when it is a 12-digit account id.
fn account_id(value: &str) -> anyhow::Result<String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_string())
    } else {
        let shown: String = value.chars().take(40).collect();
        Err(bad(format!(
            "account {shown:?} is not a 12-digit account id"
        )))
    }
}

/// The scheduler's scheduled jobs (SPEC section 4). `budget-stop` only
/// arrives through the work queue, where it carries its account and budget.
const JOBS: trigger::Jobs = trigger::Jobs {
    default: "run",
    others: &[BUDGET_STOP],
};

/// Parses an invocation payload.
pub fn parse(payload: &Value) -> anyhow::Result<Trigger> {
    if !payload.is_object() {
        return Err(bad("the payload is not a JSON object"));
    }
    if payload.get("Records").is_some() {
        let records = sqs::parse_batch(payload)?;
        return Ok(Trigger::Work(
            records
                .into_iter()
                .map(|r| WorkRecord {
                    item: WorkItem::parse(&r.body),
                    message_id: r.message_id,
                })
                .collect(),
        ));
    }
    if let Some(run) = trigger::parse_scheduled(payload, JOBS, Utc::now())? {
        if run.job == BUDGET_STOP {
            return Err(bad("a budget-stop job comes through STEWARD_WORK_QUEUE with its account, region, budget and period, not as a scheduled trigger"));
        }
        crate::plan::check_time(run.time).map_err(bad)?;
        return Ok(Trigger::Scheduled {
            id: run.id,
            time: run.time,
        });
    }
    let detail_type = payload
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("neither an EventBridge event (detail-type), a Scheduler payload (scheduledTime) nor an SQS batch (Records)"))?;
    let id = str_field(payload, "id")?.to_string();
    match detail_type {
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
                account: account_id(str_field(payload, "account")?)?,
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
