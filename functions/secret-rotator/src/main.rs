//! Lambda entry point of the secret rotator: caps the log level of the
//! database client, SDK and HTTP crates (they log statements and bodies that
//! carry secrets at DEBUG and TRACE), builds the clients once, then hands
//! every rotation step to the library.

use secret_rotator::{AwsApis, SecretRotator, FUNCTION_NAME, LOG_CAPPED_TARGETS};
use steward_shared::{entry, observability};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Installed before `entry::serve`, whose own call then does nothing.
    observability::init_logging_capped(LOG_CAPPED_TARGETS);
    entry::serve(FUNCTION_NAME, |steward| {
        let apis = AwsApis::new(steward.aws.clone());
        SecretRotator::new(steward, apis)
    })
    .await
}
