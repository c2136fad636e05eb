//! SQS adapter: the off-hours scheduler's work queue (`STEWARD_WORK_QUEUE`),
//! which receives one `budget-stop` job per (account, region), each sent at
//! most once.

use std::time::Duration;

use steward_shared::entry::Invocation;
use steward_shared::{sdk, Once, Steward};

use crate::plan::StopRequest;
use crate::report;

/// The IAM actions this adapter calls.
pub const PERMISSIONS: &[&str] = &["sqs:SendMessage"];

/// The port: send one message body to the work queue.
#[async_trait::async_trait]
pub trait WorkQueue: Send + Sync {
    async fn send(&self, body: &str) -> anyhow::Result<String>;
}

/// The work queue through the SDK.
pub struct SqsWorkQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

#[async_trait::async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn send(&self, body: &str) -> anyhow::Result<String> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sdk::sdk_error("SendMessage", e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}

/// Sends each `budget-stop` job at most once (live mode only).
pub async fn request_stops(
    steward: &Steward,
    queue: &dyn WorkQueue,
    requests: &[StopRequest],
    inv: &mut Invocation,
) -> anyhow::Result<()> {
    if !steward.mode().may_change() {
        tracing::info!(mode = %steward.mode(), jobs = ?report::stop_summary(requests), "would ask the scheduler to stop dev; changing nothing");
        return Ok(());
    }
    for request in requests {
        let keep = Duration::from_secs(
            ((request.period.end - request.period.start)
                .num_days()
                .max(1) as u64
                + 1)
                * 86_400,
        );
        let body = request.body();
        let outcome = steward
            .once(&request.once_key(), keep, || async {
                queue.send(&body).await
            })
            .await;
        match outcome {
            Ok(Once::Ran(id)) => {
                inv.metrics.actions_taken += 1;
                tracing::info!(message_id = %id, body = %body, "budget-stop job sent to the work queue");
            }
            Ok(Once::AlreadyDone(_)) => {
                tracing::info!(body = %body, "budget-stop job was already sent")
            }
            Err(e) => {
                inv.metrics.actions_failed += 1;
                return Err(e.context(
                    "could not send the budget-stop job to STEWARD_WORK_QUEUE; nothing was reported, the retry sends it",
                ));
            }
        }
    }
    Ok(())
}
