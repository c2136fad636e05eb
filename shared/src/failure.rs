//! How a failed invocation is reported to the Lambda Runtime API: an error
//! type that alarms and dead-letter consumers can group on (`BadEvent` for
//! input steward cannot act on, `StewardError` for everything else) and the
//! full error chain as the message.

use lambda_runtime::Diagnostic;

/// The error type of a failure whose message starts with `bad event:`.
pub const BAD_EVENT: &str = "BadEvent";
/// The error type of every other failure.
pub const STEWARD_ERROR: &str = "StewardError";

/// Turns an error into the diagnostic Lambda records for the invocation.
pub fn diagnostic(error: &anyhow::Error) -> Diagnostic {
    let message = format!("{error:#}");
    let error_type = if message.starts_with("bad event:") {
        BAD_EVENT
    } else {
        STEWARD_ERROR
    };
    Diagnostic {
        error_type: error_type.to_string(),
        error_message: message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_events_are_typed() {
        assert_eq!(
            diagnostic(&anyhow::anyhow!("bad event: missing `id`")).error_type,
            BAD_EVENT
        );
        let d = diagnostic(&anyhow::anyhow!("ec2 down").context("tagging failed"));
        assert_eq!(d.error_type, STEWARD_ERROR);
        assert_eq!(d.error_message, "tagging failed: ec2 down");
    }
}
