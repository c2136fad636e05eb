//! SQS adapter: the off-hours scheduler's work queue (`STEWARD_WORK_QUEUE`),
//! which receives one `budget-stop` job per (account, region).

use steward_shared::sdk;

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
