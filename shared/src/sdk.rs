//! One way to turn an AWS SDK error into a message that says what failed and
//! what to check, and to read its error code (throttling, not-found, ...).

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// `"{operation} failed: {the SDK's whole error context}"`, as an `anyhow::Error`.
pub fn sdk_error<E, R>(operation: &str, error: SdkError<E, R>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    anyhow::anyhow!("{operation} failed: {}", DisplayErrorContext(&error))
}

/// The same message as a string (for per-item results).
pub fn describe<E, R>(operation: &str, error: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    format!("{operation} failed: {}", DisplayErrorContext(error))
}

/// The short form of [`sdk_error`] for what the security team reads (a
/// digest line, a per-resource result): `"{operation} failed: {code}:
/// {message}"` when the service answered with an error code, otherwise the
/// error and its sources joined by `": "` (a timeout, a network error),
/// without the raw response.
pub fn sdk_error_brief<E, R>(operation: &str, error: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    anyhow::anyhow!(describe_brief(operation, &error))
}

/// [`sdk_error_brief`] as a string (for per-item results).
pub fn describe_brief<E, R>(operation: &str, error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{operation} failed: {code}: {message}"),
        (Some(code), None) => format!("{operation} failed: {code}"),
        _ => {
            let mut text = format!("{operation} failed: {error}");
            let mut source = std::error::Error::source(error);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

/// The service's error code (`ThrottlingException`, `DBSnapshotNotFound`, ...), when it sent one.
pub fn error_code<E, R>(error: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Error codes AWS services use for throttling.
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// True when the error is a throttling response (worth retrying later).
pub fn is_throttling<E, R>(error: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    error_code(error).is_some_and(|code| THROTTLING_CODES.contains(&code))
}

/// True when the call never got a service answer (timeout, dispatch or response failure).
pub fn is_transient<E, R>(error: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(
        error,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) || is_throttling(error)
}

/// True when AWS gave no usable answer: throttled, a 5xx, a timeout or no
/// connection ([`is_transient`] plus server errors). Worth asking again
/// soon, unlike an answer that refuses or does not parse.
pub fn is_no_answer<E>(
    error: &SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> bool
where
    E: ProvideErrorMetadata,
{
    is_transient(error)
        || error
            .raw_response()
            .is_some_and(|r| r.status().is_server_error())
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    #[test]
    fn the_brief_form_names_the_operation_code_and_message_only() {
        let e = aws_sdk_sns::operation::publish::PublishError::generic(
            ErrorMetadata::builder()
                .code("RequestLimitExceeded")
                .message("Request limit exceeded.")
                .build(),
        );
        let raw = HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(503).unwrap(),
            SdkBody::empty(),
        );
        let error: SdkError<_, HttpResponse> = SdkError::service_error(e, raw);
        assert_eq!(
            describe_brief("StopInstances", &error),
            "StopInstances failed: RequestLimitExceeded: Request limit exceeded."
        );
        assert!(is_throttling(&error));
        let timeout: SdkError<aws_sdk_sns::operation::publish::PublishError, HttpResponse> =
            SdkError::timeout_error("read timed out");
        let text = sdk_error_brief("Publish", timeout).to_string();
        assert!(text.starts_with("Publish failed: "), "{text}");
        assert!(text.contains("read timed out"), "{text}");
        assert!(!text.contains("HttpResponse"), "{text}");
    }
}
