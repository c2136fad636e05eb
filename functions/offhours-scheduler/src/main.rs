//! Lambda entry point of the off-hours scheduler: builds the clients once,
//! then hands every event to the library.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use offhours_scheduler::handler::Scheduler;
use offhours_scheduler::FUNCTION_NAME;
use serde_json::Value;
use steward_shared::{observability, Steward};

#[tokio::main]
async fn main() -> Result<(), Error> {
    observability::init_logging();
    let steward = Arc::new(Steward::from_env(FUNCTION_NAME).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "start-up failed");
        e
    })?);
    let scheduler = Arc::new(Scheduler::from_steward(steward));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let scheduler = scheduler.clone();
        async move {
            scheduler
                .invoke(event.payload, &event.context.request_id)
                .await
                .map_err(|e| Error::from(format!("{e:#}")))
        }
    }))
    .await
}
