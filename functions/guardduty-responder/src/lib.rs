//! guardduty-responder (work in progress).

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "guardduty-responder";
