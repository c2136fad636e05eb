//! Typed input of the copier, parsed leniently (unknown fields never fail;
//! a missing required field is a `BadEvent` naming it):
//!
//! - EventBridge `RDS DB Snapshot Event` (`RDS-EVENT-0091` automated,
//!   `RDS-EVENT-0042` manual) and `RDS DB Cluster Snapshot Event`
//!   (`RDS-EVENT-0169` automated, `RDS-EVENT-0075` manual); other event ids
//!   are recognised and ignored;
//! - the scheduled jobs `sweep` (default) and `dr-drill` (which may name a
//!   `database`: `{"job": "dr-drill", "database": DB}`);
//! - an SQS batch from `STEWARD_COPY_QUEUE` (copies waiting for capacity).
//!
//! An event only names a snapshot: the handler reads the snapshot itself
//! from RDS before deciding anything.

use chrono::{DateTime, Utc};
use serde_json::Value;
use steward_shared::failure::BadEvent;
use steward_shared::sqs::{self, SqsRecord};
use steward_shared::trigger::{self, Jobs, ScheduledRun};

use crate::model::{Kind, WaitingCopy};
use crate::plan;

/// The copier's scheduled jobs.
pub const JOBS: Jobs = Jobs {
    default: "sweep",
    others: &["dr-drill"],
};

/// Snapshot event ids that start a copy, with their kind.
const COPY_EVENTS: [(&str, Kind); 4] = [
    ("RDS-EVENT-0091", Kind::Instance),
    ("RDS-EVENT-0042", Kind::Instance),
    ("RDS-EVENT-0169", Kind::Cluster),
    ("RDS-EVENT-0075", Kind::Cluster),
];

/// One invocation's input.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A snapshot was created: copy it.
    Snapshot(SnapshotEvent),
    Scheduled(ScheduledRun),
    /// `{"job": "dr-drill", "database": DB}` (any scheduled shape with a
    /// `database` added): drill that database.
    Drill {
        run: ScheduledRun,
        database: String,
    },
    /// Copies waiting for capacity.
    Queue(Vec<SqsRecord>),
    /// A well-formed event the copier does not act on.
    Ignored {
        id: String,
        why: String,
    },
}

/// A snapshot-created event: where the snapshot is and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEvent {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub kind: Kind,
    pub snapshot_id: String,
    /// `RDS-EVENT-0091`, ...
    pub code: String,
}

fn text<'a>(value: &'a Value, key: &str, within: &str) -> Result<&'a str, BadEvent> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| BadEvent::new(format!("{within} has no string `{key}`")))
}

/// A `dr-drill` job naming its database: the scheduled shape without the
/// `database` field, which must be a short non-empty string.
fn parse_drill_request(
    payload: &Value,
    database: &Value,
    now: DateTime<Utc>,
) -> Result<Trigger, BadEvent> {
    let database = database
        .as_str()
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.len() <= 200)
        .ok_or_else(|| {
            BadEvent::new("`database` must be a non-empty string (DB or ACCOUNT/REGION/DB)")
        })?;
    let mut rest = payload.clone();
    if let Some(map) = rest.as_object_mut() {
        map.remove("database");
    }
    match trigger::parse_scheduled(&rest, JOBS, now)? {
        Some(run) if run.job == "dr-drill" => Ok(Trigger::Drill {
            run,
            database: database.to_string(),
        }),
        _ => Err(BadEvent::new(
            "`database` is only accepted with the scheduled job `dr-drill`: {\"job\": \"dr-drill\", \"database\": DB}",
        )),
    }
}

/// Parses one invocation payload.
pub fn parse(payload: &Value, now: DateTime<Utc>) -> Result<Trigger, BadEvent> {
    if !payload.is_object() {
        return Err(BadEvent::new(
            "the payload is not a JSON object: expected an RDS snapshot event, a scheduled event or an SQS batch",
        ));
    }
    if let Some(database) = payload.get("database") {
        return parse_drill_request(payload, database, now);
    }
    if let Some(run) = trigger::parse_scheduled(payload, JOBS, now)? {
        return Ok(Trigger::Scheduled(run));
    }
    if payload.get("Records").is_some() {
        return Ok(Trigger::Queue(sqs::parse_batch(payload)?));
    }
    let detail_type = payload.get("detail-type").and_then(Value::as_str);
    let kind = match detail_type {
        Some("RDS DB Snapshot Event") => Kind::Instance,
        Some("RDS DB Cluster Snapshot Event") => Kind::Cluster,
        Some(other) => {
            return Err(BadEvent::new(format!(
                "detail-type {other:?} is not an event the snapshot copier handles (RDS DB Snapshot Event, RDS DB Cluster Snapshot Event)"
            )))
        }
        None => {
            return Err(BadEvent::new(
                "no `detail-type`: expected an RDS snapshot event, a scheduled event or an SQS batch",
            ))
        }
    };
    parse_snapshot_event(payload, kind).map(|event| match event {
        Ok(event) => Trigger::Snapshot(event),
        Err((id, why)) => Trigger::Ignored { id, why },
    })
}

type Parsed = Result<SnapshotEvent, (String, String)>;

fn parse_snapshot_event(payload: &Value, kind: Kind) -> Result<Parsed, BadEvent> {
    let event_id = text(payload, "id", "the event")?.to_string();
    if text(payload, "source", "the event")? != "aws.rds" {
        return Err(BadEvent::new(
            "an RDS snapshot event must come from source aws.rds",
        ));
    }
    let account = text(payload, "account", "the event")?.to_string();
    let region = text(payload, "region", "the event")?.to_string();
    let detail = payload
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| BadEvent::new("the event has no `detail` object"))?;
    let code = text(detail, "EventID", "detail")?.to_string();
    let Some((_, expected)) = COPY_EVENTS.iter().find(|(c, _)| *c == code) else {
        return Ok(Err((
            event_id,
            format!("{code} is not a snapshot-created event; nothing to copy"),
        )));
    };
    if *expected != kind {
        return Err(BadEvent::new(format!(
            "{code} is a {expected} snapshot event but arrived as a {kind} snapshot event"
        )));
    }
    let source_arn = text(detail, "SourceArn", "detail")?;
    let arn = plan::parse_snapshot_arn(source_arn).ok_or_else(|| {
        BadEvent::new(format!(
            "detail.SourceArn={source_arn:?} is not an RDS snapshot ARN"
        ))
    })?;
    if arn.kind != kind || arn.account != account || arn.region != region {
        return Err(BadEvent::new(format!(
            "detail.SourceArn={source_arn:?} does not name a {kind} snapshot in the event's account {account} and region {region}"
        )));
    }
    if let Some(id) = detail.get("SourceIdentifier").and_then(Value::as_str) {
        if !id.eq_ignore_ascii_case(&arn.id) {
            return Err(BadEvent::new(format!(
                "detail.SourceIdentifier={id:?} does not match detail.SourceArn"
            )));
        }
    }
    Ok(Ok(SnapshotEvent {
        event_id,
        account,
        region,
        kind,
        snapshot_id: arn.id,
        code,
    }))
}

/// Parses the body of a copy-queue message.
pub fn parse_waiting(body: &str) -> Result<WaitingCopy, BadEvent> {
    let copy: WaitingCopy = serde_json::from_str(body).map_err(|e| {
        BadEvent::new(format!(
            "copy-queue message is not a waiting copy ({{account, region, kind, snapshot_id}}): {e}"
        ))
    })?;
    if copy.account.len() != 12 || !copy.account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadEvent::new(format!(
            "copy-queue message: account {:?} is not a 12-digit id",
            copy.account
        )));
    }
    if copy.region.is_empty() || copy.snapshot_id.is_empty() {
        return Err(BadEvent::new(
            "copy-queue message: region and snapshot_id must not be empty",
        ));
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn the_four_fixtures_parse() {
        for (name, kind, code) in [
            (
                "rds-snapshot-event-0091-automated.json",
                Kind::Instance,
                "RDS-EVENT-0091",
            ),
            (
                "rds-snapshot-event-0042-manual.json",
                Kind::Instance,
                "RDS-EVENT-0042",
            ),
            (
                "rds-cluster-snapshot-event-0169-automated.json",
                Kind::Cluster,
                "RDS-EVENT-0169",
            ),
            (
                "rds-cluster-snapshot-event-0075-manual.json",
                Kind::Cluster,
                "RDS-EVENT-0075",
            ),
        ] {
            match parse(&fixture(name), now()).unwrap() {
                Trigger::Snapshot(e) => {
                    assert_eq!((e.kind, e.code.as_str()), (kind, code), "{name}");
                    assert!(!e.snapshot_id.is_empty());
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(
            matches!(parse(&fixture("snapshot-copier-sweep.json"), now()).unwrap(), Trigger::Scheduled(r) if r.job == "sweep")
        );
        match parse(&fixture("snapshot-copier-copy-queue.json"), now()).unwrap() {
            Trigger::Queue(records) => {
                parse_waiting(&records[0].body).unwrap();
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_drill_job_may_name_its_database() {
        match parse(&fixture("snapshot-copier-dr-drill.json"), now()).unwrap() {
            Trigger::Drill { run, database } => {
                assert_eq!(
                    (run.job.as_str(), database.as_str()),
                    ("dr-drill", "prod-orders")
                );
            }
            other => panic!("{other:?}"),
        }
        match parse(
            &json!({"job": "dr-drill", "database": "prod-orders"}),
            now(),
        )
        .unwrap()
        {
            Trigger::Drill { database, .. } => assert_eq!(database, "prod-orders"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&json!({"job": "dr-drill"}), now()).unwrap(),
            Trigger::Scheduled(r) if r.job == "dr-drill"
        ));
        for (bad, problem) in [
            (
                json!({"job": "sweep", "database": "prod-orders"}),
                "only accepted",
            ),
            (json!({"database": "prod-orders"}), "only accepted"),
            (
                json!({"job": "dr-drill", "database": ""}),
                "non-empty string",
            ),
            (
                json!({"job": "dr-drill", "database": 7}),
                "non-empty string",
            ),
        ] {
            let e = parse(&bad, now()).unwrap_err();
            assert!(e.problem().contains(problem), "{bad}: {}", e.problem());
        }
    }

    #[test]
    fn other_event_ids_are_ignored() {
        let mut e = fixture("rds-snapshot-event-0091-automated.json");
        e["detail"]["EventID"] = json!("RDS-EVENT-0040");
        assert!(matches!(parse(&e, now()).unwrap(), Trigger::Ignored { .. }));
    }

    #[test]
    fn malformed_events_name_the_problem() {
        let good = fixture("rds-snapshot-event-0091-automated.json");
        let cases: Vec<(Value, &str)> = vec![
            (json!([1, 2]), "not a JSON object"),
            (
                json!({"detail-type": "EC2 Instance State-change Notification"}),
                "not an event",
            ),
            (
                {
                    let mut e = good.clone();
                    e["detail"].as_object_mut().unwrap().remove("SourceArn");
                    e
                },
                "SourceArn",
            ),
            (
                {
                    let mut e = good.clone();
                    e["account"] = json!("999999999999");
                    e
                },
                "does not name",
            ),
            (
                {
                    let mut e = good.clone();
                    e["source"] = json!("attacker");
                    e
                },
                "aws.rds",
            ),
            (
                {
                    let mut e = good.clone();
                    e["detail"]["EventID"] = json!("RDS-EVENT-0169");
                    e
                },
                "cluster snapshot event",
            ),
            (
                {
                    let mut e = good.clone();
                    e["detail"]["SourceArn"] = json!("arn:aws:rds:us-east-1:123456789012:db:x");
                    e
                },
                "not an RDS snapshot ARN",
            ),
            (json!({"job": "nope"}), "unknown job"),
        ];
        for (payload, needle) in cases {
            let err = parse(&payload, now()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        assert!(parse_waiting("{}").is_err());
        assert!(parse_waiting(
            r#"{"account":"1","region":"r","kind":"instance","snapshot_id":"x"}"#
        )
        .is_err());
    }
}
