//! SQS batches from an event-source mapping, with partial batch failures:
//! the handler processes each record and reports the ids of the ones that
//! failed (`batchItemFailures`), so only those are delivered again. The
//! mapping must have `ReportBatchItemFailures` enabled (the templates do).

use serde_json::{json, Value};

use crate::failure::BadEvent;

/// One SQS record: what a handler needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsRecord {
    pub message_id: String,
    pub body: String,
    /// `attributes.ApproximateReceiveCount` (1 on the first delivery).
    pub receive_count: u32,
    /// `attributes.SentTimestamp`, epoch milliseconds, when present.
    pub sent_timestamp_ms: Option<i64>,
    /// The queue's ARN (`eventSourceARN`).
    pub source_arn: String,
}

/// True when the payload is an SQS batch (`Records` of `aws:sqs`).
pub fn is_sqs_batch(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

fn field<'a>(record: &'a Value, i: usize, key: &str) -> Result<&'a str, BadEvent> {
    record
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| BadEvent::new(format!("Records[{i}] has no string `{key}`")))
}

/// Parses an SQS batch; every record must be an SQS record with an id and a body.
pub fn parse_batch(payload: &Value) -> Result<Vec<SqsRecord>, BadEvent> {
    let records = payload
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| BadEvent::new("`Records` is not an array"))?;
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if r.get("eventSource").and_then(Value::as_str) != Some("aws:sqs") {
                return Err(BadEvent::new(format!(
                    "Records[{i}] is not an SQS record (eventSource aws:sqs)"
                )));
            }
            let attributes = r.get("attributes");
            let attribute = |name: &str| {
                attributes
                    .and_then(|a| a.get(name))
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse::<i64>().ok())
            };
            Ok(SqsRecord {
                message_id: field(r, i, "messageId")?.to_string(),
                body: field(r, i, "body")?.to_string(),
                receive_count: attribute("ApproximateReceiveCount")
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(1),
                sent_timestamp_ms: attribute("SentTimestamp"),
                source_arn: r
                    .get("eventSourceARN")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })
        })
        .collect()
}

/// The outcome of a batch: the records that failed, reported back to Lambda.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub failed: Vec<(String, String)>,
    pub succeeded: usize,
}

impl BatchOutcome {
    pub fn ok(&mut self) {
        self.succeeded += 1;
    }

    pub fn fail(&mut self, message_id: &str, reason: impl Into<String>) {
        self.failed.push((message_id.to_string(), reason.into()));
    }

    /// The response Lambda's event-source mapping reads (`batchItemFailures`),
    /// with the reasons alongside for the logs and tests.
    pub fn response(&self) -> Value {
        json!({
            "batchItemFailures": self.failed.iter().map(|(id, _)| json!({"itemIdentifier": id})).collect::<Vec<_>>(),
            "failures": self.failed.iter().map(|(id, why)| json!({"messageId": id, "reason": why})).collect::<Vec<_>>(),
            "succeeded": self.succeeded,
        })
    }
}

/// Runs `each` over every record, collecting failures instead of failing the batch.
pub async fn for_each_record<F, Fut>(records: &[SqsRecord], mut each: F) -> BatchOutcome
where
    F: FnMut(&SqsRecord) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut outcome = BatchOutcome::default();
    for record in records {
        match each(record).await {
            Ok(()) => outcome.ok(),
            Err(e) => {
                tracing::error!(message_id = %record.message_id, error = %format!("{e:#}"), "work item failed; it will be delivered again");
                outcome.fail(&record.message_id, format!("{e:#}"));
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_reports_failures() {
        let payload = json!({"Records": [
            {"messageId": "m1", "body": "{}", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
             "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000"}},
            {"messageId": "m2", "body": "x", "eventSource": "aws:sqs"}
        ]});
        assert!(is_sqs_batch(&payload));
        let records = parse_batch(&payload).unwrap();
        assert_eq!(records[0].receive_count, 3);
        assert_eq!(records[0].sent_timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(records[1].receive_count, 1);
        let mut outcome = BatchOutcome::default();
        outcome.ok();
        outcome.fail("m2", "bad body");
        assert_eq!(
            outcome.response()["batchItemFailures"],
            json!([{"itemIdentifier": "m2"}])
        );
    }

    #[test]
    fn a_record_without_a_body_is_bad_input() {
        let payload = json!({"Records": [{"messageId": "m1", "eventSource": "aws:sqs"}]});
        assert!(parse_batch(&payload)
            .unwrap_err()
            .to_string()
            .contains("body"));
        let payload =
            json!({"Records": [{"messageId": "m1", "body": "", "eventSource": "aws:sns"}]});
        assert!(parse_batch(&payload).is_err());
    }
}
