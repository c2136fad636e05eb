//! Lambda entry point of the tag enforcer: builds the clients once, then hands
//! every event to the library.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;
use steward_shared::{failure, observability, Steward};
use tag_enforcer::handler::{AwsApis, TagEnforcer};
use tag_enforcer::FUNCTION_NAME;

#[tokio::main]
async fn main() -> Result<(), Error> {
    observability::init_logging();
    let steward = Arc::new(Steward::from_env(FUNCTION_NAME).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "start-up failed");
        e
    })?);
    let enforcer = Arc::new(TagEnforcer::new(
        steward.clone(),
        AwsApis::new(steward.aws.clone()),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let enforcer = enforcer.clone();
        async move {
            enforcer
                .invoke(event.payload, &event.context.request_id)
                .await
                .map_err(|e| -> Diagnostic { failure::diagnostic(&e) })
        }
    }))
    .await
}
