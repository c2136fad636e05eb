//! The copy-queue adapter: parks a copy that waits for capacity in
//! `STEWARD_COPY_QUEUE` with a delay; the queue's event-source mapping
//! brings it back to the copier.

use async_trait::async_trait;
use steward_shared::sdk;

use crate::model::WaitingCopy;

/// The IAM actions this adapter calls (the event-source mapping also needs
/// `sqs:ReceiveMessage`, `sqs:DeleteMessage` and `sqs:GetQueueAttributes`).
pub const PERMISSIONS: &[&str] = &["sqs:SendMessage"];

/// How long a parked copy waits before it is tried again (SQS's maximum delay).
pub const WAIT_SECONDS: i32 = 900;

#[async_trait]
pub trait CopyQueue: Send + Sync {
    async fn park(&self, copy: &WaitingCopy) -> anyhow::Result<()>;
}

/// [`CopyQueue`] on SQS.
pub struct SqsCopyQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

#[async_trait]
impl CopyQueue for SqsCopyQueue {
    async fn park(&self, copy: &WaitingCopy) -> anyhow::Result<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(serde_json::to_string(copy)?)
            .delay_seconds(WAIT_SECONDS)
            .send()
            .await
            .map_err(|e| sdk::sdk_error("SendMessage", e))?;
        Ok(())
    }
}
