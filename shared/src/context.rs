//! The per-process context a function builds once at start: settings from the
//! environment, AWS configuration, the policy, the notification sink and the
//! idempotency store. Handlers borrow it for every event.

use std::sync::Arc;
use std::time::Duration;

use crate::aws::AwsContext;
use crate::idempotency::{Claim, DynamoStore, IdempotencyStore};
use crate::notify::{
    self, LogOnlyPublisher, Notification, Publish, RenderContext, Severity, SnsPublisher,
};
use crate::policy::Policy;
use crate::policy_store::PolicyStore;
use crate::safety::RunMode;
use crate::settings::{PolicySource, Settings};

/// How long a claimed-but-unfinished record blocks duplicates (the Lambda maximum timeout).
pub const IN_PROGRESS_TTL: Duration = Duration::from_secs(15 * 60);

/// Everything a handler needs besides the event.
pub struct Steward {
    pub settings: Settings,
    pub aws: AwsContext,
    pub policy: PolicyStore,
    pub publisher: Arc<dyn Publish>,
    pub idempotency: Option<Arc<dyn IdempotencyStore>>,
}

/// What happened to a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyOutcome {
    Sent(Option<String>),
    /// Already sent for this key (duplicate delivery).
    Duplicate,
    /// Below the policy's `notifications.min_severity`.
    BelowThreshold,
}

impl Steward {
    /// Builds the context from the environment; errors say what to fix.
    pub async fn from_env(function_name: &str) -> anyhow::Result<Steward> {
        let settings = Settings::from_env(function_name).map_err(anyhow::Error::msg)?;
        let aws = AwsContext::load(function_name, settings.member_role.clone()).await?;
        Steward::with_aws(settings, aws).await
    }

    /// Builds the context from parsed settings and an AWS context.
    pub async fn with_aws(settings: Settings, aws: AwsContext) -> anyhow::Result<Steward> {
        let ssm = matches!(settings.policy_source, PolicySource::Ssm(_))
            .then(|| aws_sdk_ssm::Client::new(aws.base()));
        let policy = PolicyStore::load(settings.policy_source.clone(), ssm).await?;
        let publisher: Arc<dyn Publish> = match &settings.topic_arn {
            Some(arn) => Arc::new(SnsPublisher::new(
                aws_sdk_sns::Client::new(aws.base()),
                arn.clone(),
            )),
            None => {
                tracing::warn!(
                    "STEWARD_TOPIC_ARN is not set: notifications are written to the logs only"
                );
                Arc::new(LogOnlyPublisher)
            }
        };
        let idempotency: Option<Arc<dyn IdempotencyStore>> = match &settings.idempotency_table {
            Some(table) => Some(Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(aws.base()),
                table.clone(),
            ))),
            None => {
                tracing::warn!(
                    "STEWARD_IDEMPOTENCY_TABLE is not set: duplicate deliveries will send duplicate notifications"
                );
                None
            }
        };
        tracing::info!(mode = %settings.mode, account = aws.own_account(), region = aws.own_region(), "steward started");
        Ok(Steward {
            settings,
            aws,
            policy,
            publisher,
            idempotency,
        })
    }

    pub fn mode(&self) -> RunMode {
        self.settings.mode
    }

    pub fn function_name(&self) -> &str {
        &self.settings.function_name
    }

    /// The idempotency store, unless this run changes nothing (dry-run and the
    /// kill switch write no records).
    fn store(&self) -> Option<&Arc<dyn IdempotencyStore>> {
        if self.mode().may_change() {
            self.idempotency.as_ref()
        } else {
            None
        }
    }

    /// Renders and publishes a notification once per `dedupe_key`.
    pub async fn notify(
        &self,
        notification: &Notification,
        policy: &Policy,
    ) -> anyhow::Result<NotifyOutcome> {
        let threshold =
            Severity::parse(&policy.notifications.min_severity).unwrap_or(Severity::Info);
        let ctx = RenderContext {
            mode: self.mode(),
            policy_version: policy.version.clone(),
            function_name: self.settings.function_name.clone(),
            max_items: policy.notifications.max_items as usize,
        };
        let rendered = notify::render(notification, &ctx);
        if notification.severity < threshold {
            tracing::info!(subject = %rendered.subject, "notification below notifications.min_severity; logged only");
            return Ok(NotifyOutcome::BelowThreshold);
        }
        let key = format!(
            "notify#{}#{}",
            self.settings.function_name, notification.dedupe_key
        );
        let keep = Duration::from_secs(policy.notifications.dedupe_days as u64 * 86_400);
        let outcome = self
            .once(&key, keep, || async {
                let id = self.publisher.publish(&rendered).await?;
                Ok(id.unwrap_or_default())
            })
            .await?;
        match outcome {
            Once::Ran(id) => {
                tracing::info!(subject = %rendered.subject, message_id = %id, event_type = %notification.event_type(), "notification sent");
                Ok(NotifyOutcome::Sent(Some(id).filter(|i| !i.is_empty())))
            }
            Once::AlreadyDone(_) | Once::InProgress => {
                tracing::info!(subject = %rendered.subject, "notification already sent for this event; not sending again");
                Ok(NotifyOutcome::Duplicate)
            }
        }
    }

    /// Runs `work` at most once per `key` (while the record is kept): claims the
    /// key, runs, records the result; a failure releases the claim so a retry runs again.
    /// Without a store (or in dry-run and kill-switch mode) it simply runs.
    pub async fn once<F, Fut>(&self, key: &str, keep: Duration, work: F) -> anyhow::Result<Once>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<String>>,
    {
        let Some(store) = self.store() else {
            return Ok(Once::Ran(work().await?));
        };
        match store.claim(key, IN_PROGRESS_TTL).await? {
            Claim::Done(result) => return Ok(Once::AlreadyDone(result)),
            Claim::InProgress => return Ok(Once::InProgress),
            Claim::Acquired => {}
        }
        match work().await {
            Ok(result) => {
                store.complete(key, keep, Some(&result)).await?;
                Ok(Once::Ran(result))
            }
            Err(e) => {
                if let Err(release) = store.release(key).await {
                    tracing::error!(error = %release, key, "could not release the idempotency claim; a retry may wait for it to lapse");
                }
                Err(e)
            }
        }
    }
}

/// The outcome of `Steward::once`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Once {
    Ran(String),
    AlreadyDone(Option<String>),
    InProgress,
}
