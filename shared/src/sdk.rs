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
