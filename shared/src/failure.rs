//! How a failed invocation is reported to the Lambda Runtime API. Failures
//! are classified by type, never by message text:
//!
//! - [`BadEvent`]: input steward cannot act on (malformed JSON, an unknown
//!   shape, a missing field). Nothing was changed; retrying will not help, so
//!   alarms and dead-letter consumers group these apart.
//! - [`RetryLater`]: another attempt holds a live claim on the same work.
//!   Nothing is reported as done; the retry (Lambda's asynchronous retry, the
//!   next SQS delivery) takes the claim over once it lapses.
//! - everything else: `StewardError`, with the full error chain as the message.

use std::fmt;

use lambda_runtime::Diagnostic;

/// The error type of a failure caused by the input.
pub const BAD_EVENT: &str = "BadEvent";
/// The error type of a failure whose work another attempt holds.
pub const RETRY_LATER: &str = "RetryLater";
/// The error type of every other failure.
pub const STEWARD_ERROR: &str = "StewardError";

/// Input steward cannot act on; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent(pub String);

impl BadEvent {
    pub fn new(problem: impl fmt::Display) -> BadEvent {
        BadEvent(problem.to_string())
    }

    /// The problem without the `bad event:` prefix.
    pub fn problem(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad event: {}", self.0)
    }
}

impl std::error::Error for BadEvent {}

/// Shorthand for a [`BadEvent`] as an `anyhow::Error`.
pub fn bad_event(problem: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(BadEvent::new(problem))
}

/// Work another attempt is doing now: the invocation fails so it is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryLater {
    pub key: String,
    /// Epoch seconds when the other attempt's lease lapses unless renewed.
    pub until: i64,
}

impl fmt::Display for RetryLater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let until = chrono::DateTime::from_timestamp(self.until, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| self.until.to_string());
        write!(
            f,
            "another attempt is doing this work now (claim {} held until {until}); nothing was reported as done, retry later",
            self.key
        )
    }
}

impl std::error::Error for RetryLater {}

/// The error type name of an error chain.
pub fn error_type(error: &anyhow::Error) -> &'static str {
    if error.chain().any(|e| e.is::<BadEvent>()) {
        BAD_EVENT
    } else if error.chain().any(|e| e.is::<RetryLater>()) {
        RETRY_LATER
    } else {
        STEWARD_ERROR
    }
}

/// True when the error (anywhere in its chain) is a [`BadEvent`].
pub fn is_bad_event(error: &anyhow::Error) -> bool {
    error_type(error) == BAD_EVENT
}

/// Turns an error into the diagnostic Lambda records for the invocation.
pub fn diagnostic(error: &anyhow::Error) -> Diagnostic {
    Diagnostic {
        error_type: error_type(error).to_string(),
        error_message: format!("{error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_events_are_typed_not_matched_by_text() {
        let d = diagnostic(&bad_event("missing `id`"));
        assert_eq!(d.error_type, BAD_EVENT);
        assert_eq!(d.error_message, "bad event: missing `id`");
        // Context on top keeps the type.
        let wrapped = bad_event("missing `id`").context("CloudTrail event");
        assert_eq!(diagnostic(&wrapped).error_type, BAD_EVENT);
        // A message that merely looks like one is not one.
        let lookalike = anyhow::anyhow!("bad event: but really an AWS failure");
        assert_eq!(diagnostic(&lookalike).error_type, STEWARD_ERROR);
    }

    #[test]
    fn other_failures_carry_the_chain() {
        let d = diagnostic(&anyhow::anyhow!("ec2 down").context("tagging failed"));
        assert_eq!(d.error_type, STEWARD_ERROR);
        assert_eq!(d.error_message, "tagging failed: ec2 down");
    }

    #[test]
    fn retry_later_is_its_own_type() {
        let e = anyhow::Error::new(RetryLater {
            key: "notify#x".into(),
            until: 0,
        });
        assert_eq!(diagnostic(&e).error_type, RETRY_LATER);
        assert!(diagnostic(&e).error_message.contains("retry later"));
    }
}
