//! Lambda entry point of the GuardDuty responder: builds the clients once,
//! then hands every finding to the library.

use std::sync::Arc;

use guardduty_responder::handler::{AwsApis, DynamoHistory, History, NoHistory, Responder};
use guardduty_responder::FUNCTION_NAME;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steward_shared::{observability, Steward};

#[tokio::main]
async fn main() -> Result<(), Error> {
    observability::init_logging();
    let steward = Arc::new(Steward::from_env(FUNCTION_NAME).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "start-up failed");
        e
    })?);
    let history: Arc<dyn History> = match &steward.settings.idempotency_table {
        Some(table) => Arc::new(DynamoHistory::new(steward.aws.base(), table.clone())),
        None => Arc::new(NoHistory),
    };
    let responder = Arc::new(Responder::new(
        steward.clone(),
        AwsApis::new(steward.aws.clone()),
        history,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let responder = responder.clone();
        async move {
            responder
                .invoke(event.payload, &event.context.request_id)
                .await
                .map_err(|e| Error::from(format!("{e:#}")))
        }
    }))
    .await
}
