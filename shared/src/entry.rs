//! The common Lambda entry point: JSON logs, the per-process context built
//! once from the environment (a failure stops the start with the reason), then
//! the Runtime API loop handing every event to the function's handler and
//! reporting failures with a typed diagnostic.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;

use crate::{failure, observability, Steward};

/// A function's handler: one invocation in, its response or error out.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, payload: Value, request_id: &str) -> anyhow::Result<Value>;
}

/// Runs a function: `build` makes its handler from the context, once.
pub async fn serve<H, B>(function_name: &str, build: B) -> Result<(), Error>
where
    H: Handler,
    B: FnOnce(Arc<Steward>) -> H,
{
    observability::init_logging();
    let steward = Arc::new(Steward::from_env(function_name).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "start-up failed");
        e
    })?);
    let handler = Arc::new(build(steward));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            handler
                .handle(event.payload, &event.context.request_id)
                .await
                .map_err(|e| -> Diagnostic { failure::diagnostic(&e) })
        }
    }))
    .await
}
