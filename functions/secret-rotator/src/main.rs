//! Lambda entry point of the secret rotator: builds the clients once, then
//! hands every rotation step to the library.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use secret_rotator::handler::{AwsApis, SecretRotator};
use secret_rotator::FUNCTION_NAME;
use serde_json::Value;
use steward_shared::{failure, observability, Steward};

#[tokio::main]
async fn main() -> Result<(), Error> {
    observability::init_logging();
    let steward = Arc::new(Steward::from_env(FUNCTION_NAME).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "start-up failed");
        e
    })?);
    let rotator = Arc::new(SecretRotator::new(
        steward.clone(),
        AwsApis::new(steward.aws.clone()),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let rotator = rotator.clone();
        async move {
            rotator
                .invoke(event.payload, &event.context.request_id)
                .await
                .map_err(|e| -> Diagnostic { failure::diagnostic(&e) })
        }
    }))
    .await
}
