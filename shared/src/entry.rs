//! The invocation kit: one Lambda entry point for every function. `serve`
//! installs JSON logs, builds the per-process context once from the
//! environment (a failure stops the start with the reason; the own account
//! is looked up from STS in the background and awaited before the first
//! invocation, so the start does not wait for the network), then runs the
//! Runtime API loop. Each invocation gets a span carrying the request and
//! event ids, its own metrics, one error log line when it fails, the EMF
//! metrics line at its end and a typed diagnostic for Lambda. A function
//! implements one method, [`Handler::handle`], and writes none of this.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

use crate::observability::Metrics;
use crate::{failure, observability, Steward};

/// What one invocation carries besides its payload: the request id and the
/// counters published as the EMF line at its end.
#[derive(Debug, Default)]
pub struct Invocation {
    pub request_id: String,
    pub metrics: Metrics,
}

impl Invocation {
    pub fn new(request_id: &str) -> Invocation {
        Invocation {
            request_id: request_id.to_string(),
            metrics: Metrics::default(),
        }
    }

    /// Puts the event id on every later log line of this invocation.
    pub fn set_event_id(&self, event_id: &str) {
        tracing::Span::current().record("event_id", event_id);
    }
}

/// A function's logic: one invocation in, its response or error out.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, payload: Value, invocation: &mut Invocation) -> anyhow::Result<Value>;
}

/// Runs one invocation the way the Runtime API loop does: span, metrics,
/// error log and EMF line. Tests call it to exercise a handler in-process.
pub async fn invoke<H: Handler + ?Sized>(
    handler: &H,
    function_name: &str,
    payload: Value,
    request_id: &str,
) -> anyhow::Result<Value> {
    let span = tracing::info_span!(
        "invocation",
        request_id,
        function = function_name,
        event_id = tracing::field::Empty
    );
    async {
        let mut invocation = Invocation::new(request_id);
        let result = handler.handle(payload, &mut invocation).await;
        if let Err(e) = &result {
            tracing::error!(
                error = %format!("{e:#}"),
                error_type = failure::error_type(e),
                "invocation failed"
            );
        }
        invocation.metrics.emit(function_name);
        result
    }
    .instrument(span)
    .await
}

/// Runs a function: `build` makes its handler from the context, once.
pub async fn serve<H, B>(function_name: &'static str, build: B) -> Result<(), Error>
where
    H: Handler,
    B: FnOnce(Arc<Steward>) -> H,
{
    observability::init_logging();
    let steward = Arc::new(Steward::from_env(function_name).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "start-up failed");
        e
    })?);
    let aws = steward.aws.clone();
    let handler = Arc::new(build(steward));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        let aws = aws.clone();
        async move {
            // Started in the background at start-up; every handler may read it.
            if let Err(e) = aws.resolve_account().await {
                tracing::error!(error = %format!("{e:#}"), request_id = %event.context.request_id, "invocation failed");
                return Err(failure::diagnostic(&e));
            }
            invoke(
                handler.as_ref(),
                function_name,
                event.payload,
                &event.context.request_id,
            )
            .await
            .map_err(|e| -> Diagnostic { failure::diagnostic(&e) })
        }
    }))
    .await
}
