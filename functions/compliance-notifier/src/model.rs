//! The domain types shared by the plan, the adapters and the report: a
//! compliance state, one compliance change, what is known of a resource's
//! tags, and the counts a digest is built from.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

/// An AWS Config compliance type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComplianceState {
    Compliant,
    NonCompliant,
    NotApplicable,
    InsufficientData,
}

impl ComplianceState {
    /// Parses Config's spelling (`NON_COMPLIANT`, ...).
    pub fn parse(s: &str) -> Option<ComplianceState> {
        match s {
            "COMPLIANT" => Some(ComplianceState::Compliant),
            "NON_COMPLIANT" => Some(ComplianceState::NonCompliant),
            "NOT_APPLICABLE" => Some(ComplianceState::NotApplicable),
            "INSUFFICIENT_DATA" => Some(ComplianceState::InsufficientData),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ComplianceState::Compliant => "COMPLIANT",
            ComplianceState::NonCompliant => "NON_COMPLIANT",
            ComplianceState::NotApplicable => "NOT_APPLICABLE",
            ComplianceState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for ComplianceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `Config Rules Compliance Change` event, as steward uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceChange {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub rule: String,
    pub rule_arn: Option<String>,
    pub resource_type: String,
    pub resource_id: String,
    pub new_state: ComplianceState,
    /// Absent on a resource's first evaluation.
    pub old_state: Option<ComplianceState>,
    /// `newEvaluationResult.resultRecordedTime` as sent (part of the de-duplication key).
    pub recorded: String,
    pub annotation: Option<String>,
}

impl ComplianceChange {
    /// The resource as `TYPE ID`.
    pub fn resource_label(&self) -> String {
        format!("{} {}", self.resource_type, self.resource_id)
    }

    /// The rule and resource this change is about, in one account and region.
    pub fn subject_key(&self) -> String {
        format!(
            "{}#{}#{}#{}#{}",
            self.account, self.region, self.rule, self.resource_type, self.resource_id
        )
    }

    /// De-duplicates redeliveries of this change: account, region, rule,
    /// resource, new state and the time Config recorded the result.
    pub fn dedupe_key(&self) -> String {
        format!(
            "change#{}#{}#{}",
            self.subject_key(),
            self.new_state,
            self.recorded
        )
    }
}

/// What is known of a resource's tags: a failed lookup never loses the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceTags {
    Known(BTreeMap<String, String>),
    /// Why the tags are unknown.
    Unknown(String),
}

/// One non-compliant (account, region, rule) line of a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCount {
    pub account: String,
    pub region: String,
    pub rule: String,
    pub resources: Vec<String>,
}

impl RuleCount {
    /// The key under which the count is remembered for tomorrow's digest.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.account, self.region, self.rule)
    }
}

/// A target (account, region) whose compliance could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFailure {
    pub account: String,
    pub region: String,
    pub error: String,
}

/// What a digest run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestFacts {
    pub run_id: String,
    pub day: chrono::NaiveDate,
    pub time: DateTime<Utc>,
    pub targets: Vec<(String, String)>,
    pub counts: Vec<RuleCount>,
    pub failures: Vec<TargetFailure>,
    /// Yesterday's counts per `RuleCount::key`, when remembered.
    pub yesterday: Option<BTreeMap<String, u64>>,
}
