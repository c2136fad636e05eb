//! Lambda entry point of the secret rotator: builds the clients once, then
//! hands every rotation step to the library.

use secret_rotator::handler::{AwsApis, SecretRotator};
use secret_rotator::FUNCTION_NAME;
use steward_shared::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::serve(FUNCTION_NAME, |steward| {
        let apis = AwsApis::new(steward.aws.clone());
        SecretRotator::new(steward, apis)
    })
    .await
}
