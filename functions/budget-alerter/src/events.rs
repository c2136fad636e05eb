//! Typed input of the budget alerter. Every trigger shape is parsed here,
//! leniently (unknown and extra fields never fail) but strictly where it
//! matters: the account and the budget name of an AWS Budgets message, and
//! the id of an anomaly. Errors are [`BadEvent`]s naming the problem.
//!
//! Shapes:
//! - SNS (Lambda's `Records[].Sns`) carrying the AWS Budgets plain-text
//!   notification (`AWS Budget Notification <date>`, `AWS Account <id>`,
//!   `Budget Name:`, `Alert Type:`, ...);
//! - SNS carrying a Cost Anomaly Detection JSON alert (`anomalyId`, ...);
//! - EventBridge `aws.ce` `Anomaly Detected`;
//! - the scheduled jobs `daily-check` (default) and `weekly-review`.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use steward_shared::trigger::{self, Jobs, ScheduledRun};
use steward_shared::BadEvent;

use crate::model::AlertKind;

/// The scheduled jobs of this function (SPEC section 4).
pub const JOBS: Jobs = Jobs {
    default: "daily-check",
    others: &["weekly-review"],
};

/// One invocation's input.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Messages delivered by SNS or EventBridge (normally exactly one).
    Messages(Vec<Message>),
    Scheduled(ScheduledRun),
}

/// One alert message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Budget(BudgetAlert),
    Anomaly(AnomalyAlert),
}

/// An AWS Budgets notification as its plain text says it.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetAlert {
    /// The SNS message id (logs).
    pub message_id: String,
    /// When SNS accepted the message.
    pub time: DateTime<Utc>,
    /// The acting account: the message's `AWS Account` line.
    pub account: String,
    pub budget_name: String,
    pub budget_type: Option<String>,
    pub kind: AlertKind,
    /// `Alert Threshold: > $80.00` (percentage thresholds appear as amounts).
    pub threshold_amount: Option<f64>,
    pub budgeted_amount: Option<f64>,
    /// The `ACTUAL Amount` or `FORECASTED Amount` line.
    pub amount: Option<f64>,
}

/// Where an anomaly alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalySource {
    Sns,
    EventBridge,
}

/// A Cost Anomaly Detection alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyAlert {
    pub source: AnomalySource,
    pub time: DateTime<Utc>,
    pub anomaly_id: String,
    pub account: String,
    pub monitor_arn: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub total_impact: Option<f64>,
    pub actual_spend: Option<f64>,
    pub expected_spend: Option<f64>,
    pub impact_percentage: Option<f64>,
    pub root_causes: Vec<RootCause>,
    pub details_link: Option<String>,
}

/// One root cause of an anomaly.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RootCause {
    pub service: Option<String>,
    pub region: Option<String>,
    pub linked_account: Option<String>,
    pub usage_type: Option<String>,
}

impl RootCause {
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("service", &self.service),
            ("account", &self.linked_account),
            ("region", &self.region),
            ("usage type", &self.usage_type),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
        .collect();
        if parts.is_empty() {
            "not stated".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Parses one invocation payload; `now` is used for a bare `{"job": ...}`.
pub fn parse(payload: &Value, now: DateTime<Utc>) -> Result<Trigger, BadEvent> {
    if let Some(run) = trigger::parse_scheduled(payload, JOBS, now)? {
        return Ok(Trigger::Scheduled(run));
    }
    if let Some(records) = payload.get("Records") {
        let records = records
            .as_array()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| BadEvent::new("`Records` is not a non-empty list of SNS records"))?;
        let messages = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                parse_sns_record(r)
                    .map_err(|e| BadEvent::new(format!("SNS record {i}: {}", e.problem())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Trigger::Messages(messages));
    }
    if payload.get("source").and_then(Value::as_str) == Some("aws.ce") {
        return parse_eventbridge_anomaly(payload)
            .map(|a| Trigger::Messages(vec![Message::Anomaly(a)]));
    }
    Err(BadEvent::new(
        "unknown event shape: expected an SNS delivery (AWS Budgets or Cost Anomaly Detection), an EventBridge aws.ce `Anomaly Detected` event or a scheduled trigger",
    ))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn parse_time(v: &Value, key: &str) -> Result<DateTime<Utc>, BadEvent> {
    let raw = str_field(v, key).ok_or_else(|| BadEvent::new(format!("missing `{key}`")))?;
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| BadEvent::new(format!("`{key}`={raw:?} is not an RFC 3339 time: {e}")))
}

fn parse_sns_record(record: &Value) -> Result<Message, BadEvent> {
    let sns = record
        .get("Sns")
        .ok_or_else(|| BadEvent::new("not an SNS record (no `Sns`)"))?;
    let message_id = str_field(sns, "MessageId").unwrap_or_default().to_string();
    let time = parse_time(sns, "Timestamp")?;
    let text = sns
        .get("Message")
        .and_then(Value::as_str)
        .ok_or_else(|| BadEvent::new("SNS record without a `Message` string"))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let json: Value = serde_json::from_str(trimmed).map_err(|e| {
            BadEvent::new(format!(
                "SNS message looks like JSON but does not parse: {e}"
            ))
        })?;
        if json.get("anomalyId").is_some() {
            return parse_anomaly(&json, AnomalySource::Sns, time).map(Message::Anomaly);
        }
        return Err(BadEvent::new(
            "SNS JSON message is not a Cost Anomaly Detection alert (no `anomalyId`)",
        ));
    }
    if trimmed.starts_with("AWS Budget Notification") {
        return parse_budget_text(text, message_id, time).map(Message::Budget);
    }
    Err(BadEvent::new(
        "SNS message is neither an AWS Budgets notification (`AWS Budget Notification ...`) nor a Cost Anomaly Detection alert",
    ))
}

/// Parses an amount such as `$1,234.56`, `1234.56 USD` or `> $80.00`.
pub fn parse_amount(raw: &str) -> Option<f64> {
    let cleaned: String = raw
        .trim()
        .trim_start_matches(['>', '<', '=', ' '])
        .replace(['$', ','], "")
        .replace("USD", "");
    let value: f64 = cleaned.trim().parse().ok()?;
    value.is_finite().then_some(value)
}

/// True for a 12-digit account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// True for a name AWS Budgets accepts: 1 to 100 characters, no `:` or `\`, no control characters.
pub fn is_budget_name(s: &str) -> bool {
    let n = s.chars().count();
    (1..=100).contains(&n) && !s.chars().any(|c| c == ':' || c == '\\' || c.is_control())
}

/// Parses the AWS Budgets plain-text notification.
pub fn parse_budget_text(
    text: &str,
    message_id: String,
    time: DateTime<Utc>,
) -> Result<BudgetAlert, BadEvent> {
    let mut account = None;
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("AWS Account ") {
            if account.is_some() {
                return Err(BadEvent::new(
                    "AWS Budgets message names more than one `AWS Account`",
                ));
            }
            let id = rest.trim();
            if !is_account_id(id) {
                return Err(BadEvent::new(format!(
                    "AWS Budgets message: `AWS Account {id}` is not a 12-digit account id"
                )));
            }
            account = Some(id.to_string());
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    let account = account
        .ok_or_else(|| BadEvent::new("AWS Budgets message without an `AWS Account <id>` line"))?;
    let field = |name: &str| -> Result<Option<&str>, BadEvent> {
        let mut found = fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = found.next();
        if found.next().is_some() {
            return Err(BadEvent::new(format!(
                "AWS Budgets message has `{name}:` twice"
            )));
        }
        Ok(first)
    };
    let budget_name = field("Budget Name")?
        .ok_or_else(|| BadEvent::new("AWS Budgets message without a `Budget Name:` line"))?
        .to_string();
    if !is_budget_name(&budget_name) {
        return Err(BadEvent::new(format!(
            "AWS Budgets message: budget name {budget_name:?} is not a valid budget name (1-100 characters, no `:` or `\\`)"
        )));
    }
    let kind = match field("Alert Type")? {
        Some(v) if v.eq_ignore_ascii_case("ACTUAL") => AlertKind::Actual,
        Some(v) if v.eq_ignore_ascii_case("FORECASTED") => AlertKind::Forecasted,
        Some(v) => {
            return Err(BadEvent::new(format!(
                "AWS Budgets message: `Alert Type: {v}` is neither ACTUAL nor FORECASTED"
            )))
        }
        None => {
            return Err(BadEvent::new(
                "AWS Budgets message without an `Alert Type:` line",
            ))
        }
    };
    let amount_line = match kind {
        AlertKind::Actual => "ACTUAL Amount",
        AlertKind::Forecasted => "FORECASTED Amount",
    };
    Ok(BudgetAlert {
        message_id,
        time,
        account,
        budget_name,
        budget_type: field("Budget Type")?.map(str::to_string),
        kind,
        threshold_amount: field("Alert Threshold")?.and_then(parse_amount),
        budgeted_amount: field("Budgeted Amount")?.and_then(parse_amount),
        amount: field(amount_line)?.and_then(parse_amount),
    })
}

fn number(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

fn date(v: &Value, key: &str) -> Option<NaiveDate> {
    let raw = str_field(v, key)?;
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.date_naive())
        .ok()
        .or_else(|| NaiveDate::parse_from_str(raw.get(..10)?, "%Y-%m-%d").ok())
}

/// Parses the anomaly document (the SNS JSON message or the EventBridge `detail`).
pub fn parse_anomaly(
    v: &Value,
    source: AnomalySource,
    time: DateTime<Utc>,
) -> Result<AnomalyAlert, BadEvent> {
    let anomaly_id = str_field(v, "anomalyId")
        .ok_or_else(|| BadEvent::new("anomaly alert without an `anomalyId` string"))?;
    if anomaly_id.len() > 256 || anomaly_id.chars().any(|c| c.is_control() || c == '#') {
        return Err(BadEvent::new(format!(
            "anomaly alert: `anomalyId` {anomaly_id:?} is not an id"
        )));
    }
    let account = str_field(v, "accountId")
        .ok_or_else(|| BadEvent::new("anomaly alert without an `accountId`"))?;
    if !is_account_id(account) {
        return Err(BadEvent::new(format!(
            "anomaly alert: `accountId` {account:?} is not a 12-digit account id"
        )));
    }
    let monitor_arn = str_field(v, "monitorArn")
        .filter(|a| a.starts_with("arn:"))
        .ok_or_else(|| BadEvent::new("anomaly alert without a `monitorArn` ARN"))?;
    let impact = v.get("impact").cloned().unwrap_or(Value::Null);
    let root_causes = v
        .get("rootCauses")
        .and_then(Value::as_array)
        .map(|causes| {
            causes
                .iter()
                .map(|c| RootCause {
                    service: str_field(c, "service").map(str::to_string),
                    region: str_field(c, "region").map(str::to_string),
                    linked_account: str_field(c, "linkedAccount").map(str::to_string),
                    usage_type: str_field(c, "usageType").map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(AnomalyAlert {
        source,
        time,
        anomaly_id: anomaly_id.to_string(),
        account: account.to_string(),
        monitor_arn: monitor_arn.to_string(),
        start_date: date(v, "anomalyStartDate"),
        end_date: date(v, "anomalyEndDate"),
        total_impact: number(&impact, "totalImpact").or_else(|| number(&impact, "maxImpact")),
        actual_spend: number(&impact, "totalActualSpend"),
        expected_spend: number(&impact, "totalExpectedSpend"),
        impact_percentage: number(&impact, "totalImpactPercentage"),
        root_causes,
        details_link: str_field(v, "anomalyDetailsLink").map(str::to_string),
    })
}

fn parse_eventbridge_anomaly(payload: &Value) -> Result<AnomalyAlert, BadEvent> {
    let detail_type = str_field(payload, "detail-type").unwrap_or_default();
    if detail_type != "Anomaly Detected" {
        return Err(BadEvent::new(format!(
            "aws.ce event of type {detail_type:?}: only `Anomaly Detected` is handled"
        )));
    }
    let time = parse_time(payload, "time")?;
    let detail = payload
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| BadEvent::new("`Anomaly Detected` event without a `detail` object"))?;
    parse_anomaly(detail, AnomalySource::EventBridge, time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn budgets_fixture_parses_strictly() {
        let Trigger::Messages(m) = parse(&fixture("budget-sns-actual.json"), now()).unwrap() else {
            panic!("not messages")
        };
        let Message::Budget(b) = &m[0] else {
            panic!("not a budget alert")
        };
        assert_eq!(b.account, "123456789012");
        assert_eq!(b.budget_name, "dev-monthly");
        assert_eq!(b.kind, AlertKind::Actual);
        assert_eq!(b.threshold_amount, Some(80.0));
        assert_eq!(b.budgeted_amount, Some(100.0));
        assert_eq!(b.amount, Some(112.5));
    }

    #[test]
    fn anomaly_fixtures_parse_to_the_same_anomaly() {
        let Trigger::Messages(a) = parse(&fixture("anomaly-sns.json"), now()).unwrap() else {
            panic!()
        };
        let Trigger::Messages(b) = parse(&fixture("anomaly-eventbridge.json"), now()).unwrap()
        else {
            panic!()
        };
        let (Message::Anomaly(a), Message::Anomaly(b)) = (&a[0], &b[0]) else {
            panic!()
        };
        assert_eq!(a.anomaly_id, b.anomaly_id);
        assert_eq!(a.total_impact, Some(151.0));
        assert_eq!(b.source, AnomalySource::EventBridge);
        assert!(!a.root_causes.is_empty());
    }

    #[test]
    fn malformed_budget_text_names_the_problem() {
        let bad = "AWS Budget Notification December 01, 2026\nAWS Account 12345\nBudget Name: x\nAlert Type: ACTUAL\n";
        let e = parse_budget_text(bad, String::new(), now()).unwrap_err();
        assert!(e.problem().contains("12-digit"), "{e}");
        let no_name = "AWS Budget Notification\nAWS Account 123456789012\nAlert Type: ACTUAL\n";
        assert!(parse_budget_text(no_name, String::new(), now())
            .unwrap_err()
            .problem()
            .contains("Budget Name"));
        let bad_name =
            "AWS Budget Notification\nAWS Account 123456789012\nBudget Name: a\\b\nAlert Type: ACTUAL\n";
        assert!(parse_budget_text(bad_name, String::new(), now()).is_err());
        let kind =
            "AWS Budget Notification\nAWS Account 123456789012\nBudget Name: a\nAlert Type: MAYBE\n";
        assert!(parse_budget_text(kind, String::new(), now()).is_err());
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("$1,234.50"), Some(1234.5));
        assert_eq!(parse_amount("> $80.00"), Some(80.0));
        assert_eq!(parse_amount("12 USD"), Some(12.0));
        assert_eq!(parse_amount("lots"), None);
        assert_eq!(parse_amount("NaN"), None);
    }

    #[test]
    fn no_input_panics() {
        for v in [
            serde_json::json!(null),
            serde_json::json!({"Records": []}),
            serde_json::json!({"Records": [{"Sns": {"Message": 5}}]}),
            serde_json::json!({"Records": [{"Sns": {"Timestamp": "2026-12-01T00:00:00Z", "Message": "{\"anomalyId\": 3}"}}]}),
            serde_json::json!({"source": "aws.ce", "detail-type": "Anomaly Detected", "time": "2026-12-01T00:00:00Z", "detail": {"anomalyId": "x"}}),
            serde_json::json!({"job": "nope"}),
        ] {
            assert!(parse(&v, now()).is_err(), "{v}");
        }
    }
}
