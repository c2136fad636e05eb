//! The per-process context a function builds once at start: settings from the
//! environment, AWS configuration, the policy, the notification sink and the
//! idempotency store. Handlers borrow it for every event.

use std::sync::Arc;
use std::time::Duration;

use crate::aws::AwsContext;
use crate::entry::Invocation;
use crate::failure::RetryLater;
use crate::idempotency::{self, keys, Claim, DynamoStore, IdempotencyStore, Lease};
use crate::notify::{self, LogOnlyPublisher, Notification, Publish, RenderContext, SnsPublisher};
use crate::policy::Policy;
use crate::policy_store::{PolicyStore, ReloadAlerts};
use crate::safety::RunMode;
use crate::settings::Settings;

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
    /// Published now (the message id when the sink gives one).
    Sent(Option<String>),
    /// Already sent for this key (duplicate delivery).
    Duplicate,
    /// Below the policy's `notifications.min_severity`: logged only.
    BelowThreshold,
}

impl NotifyOutcome {
    /// True when the message was published by this call.
    pub fn is_sent(&self) -> bool {
        matches!(self, NotifyOutcome::Sent(_))
    }

    /// `sent`, `duplicate` or `below-threshold`, for a handler's response.
    pub fn as_str(&self) -> &'static str {
        match self {
            NotifyOutcome::Sent(_) => "sent",
            NotifyOutcome::Duplicate => "duplicate",
            NotifyOutcome::BelowThreshold => "below-threshold",
        }
    }
}

impl Steward {
    /// Builds the context from the environment; errors say what to fix.
    pub async fn from_env(function_name: &str) -> anyhow::Result<Steward> {
        let settings = Settings::from_env(function_name).map_err(anyhow::Error::msg)?;
        let aws = AwsContext::start(function_name, settings.member_role.clone()).await?;
        Steward::with_aws(settings, aws).await
    }

    /// Builds the context from parsed settings and an AWS context.
    pub async fn with_aws(settings: Settings, aws: AwsContext) -> anyhow::Result<Steward> {
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
        let policy = PolicyStore::load_for(settings.policy_source.clone(), aws.base())
            .await?
            .alerting(ReloadAlerts {
                publisher: publisher.clone(),
                function_name: settings.function_name.clone(),
                mode: settings.mode,
                account: aws.own_account_handle(),
                region: aws.own_region().to_string(),
            });
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
        tracing::info!(mode = %settings.mode, region = aws.own_region(), "steward started");
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
        let threshold = policy.notifications.min_severity;
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
        let key = keys::notification(&self.settings.function_name, &notification.dedupe_key);
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
            Once::AlreadyDone(_) => {
                tracing::info!(subject = %rendered.subject, "notification already sent for this event; not sending again");
                Ok(NotifyOutcome::Duplicate)
            }
        }
    }

    /// Publishes a notification and counts it in the invocation's metrics.
    pub async fn notify_counted(
        &self,
        notification: &Notification,
        policy: &Policy,
        invocation: &mut Invocation,
    ) -> anyhow::Result<NotifyOutcome> {
        let outcome = self.notify(notification, policy).await?;
        if outcome.is_sent() {
            invocation.metrics.notifications_sent += 1;
        }
        Ok(outcome)
    }

    /// True when a notification with this de-duplication key was sent and is still remembered.
    pub async fn already_notified(&self, dedupe_key: &str) -> anyhow::Result<bool> {
        let Some(store) = self.idempotency.as_ref() else {
            return Ok(false);
        };
        let key = keys::notification(&self.settings.function_name, dedupe_key);
        Ok(store.get(&key).await?.is_some_and(|r| r.done))
    }

    /// Runs `work` at most once per `key` (while the record is kept): claims
    /// the key with a short lease renewed while `work` runs, records the
    /// result when it succeeds, and releases the claim when it fails so a
    /// retry does the work. A live claim held by another attempt is a
    /// [`RetryLater`] error, never "done". Without a store (or in dry-run and
    /// kill-switch mode) it simply runs.
    pub async fn once<F, Fut>(&self, key: &str, keep: Duration, work: F) -> anyhow::Result<Once>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<String>>,
    {
        let Some(store) = self.store() else {
            return Ok(Once::Ran(work().await?));
        };
        let lease = match store.claim(key, idempotency::LEASE).await? {
            Claim::Done(result) => return Ok(Once::AlreadyDone(result)),
            Claim::HeldByOther { until } => {
                return Err(anyhow::Error::new(RetryLater {
                    key: key.to_string(),
                    until,
                }))
            }
            Claim::Acquired(lease) => lease,
        };
        match with_renewal(store.as_ref(), &lease, work()).await {
            Ok(result) => {
                // The work is done: a throttled record must not make a retry do it again.
                persistently(|| store.complete(&lease, keep, Some(&result))).await?;
                Ok(Once::Ran(result))
            }
            Err(e) => {
                if let Err(release) = persistently(|| store.release(&lease)).await {
                    tracing::error!(error = %release, key, "could not release the idempotency claim; a retry takes it over when its lease lapses");
                }
                Err(e)
            }
        }
    }
}

/// Pauses before the extra tries of a claim's record or release.
const RECORD_PAUSES: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Tries a claim's record (or release) again after the SDK's own retries
/// gave up (a throttled or unavailable table): lost, it would leave the
/// claim held until its lease lapses and, for a record, make a retry do the
/// finished work again (issue 11, found under injected faults).
async fn persistently<F, Fut>(write: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut result = write().await;
    for pause in RECORD_PAUSES {
        let Err(e) = &result else { break };
        tracing::warn!(error = %format!("{e:#}"), "writing the idempotency record failed; trying again");
        tokio::time::sleep(pause).await;
        result = write().await;
    }
    result
}

/// Runs `work` while renewing `lease` every [`idempotency::RENEW_EVERY`]; a
/// renewal that finds the claim taken over stops the work with an error.
async fn with_renewal<Fut>(
    store: &dyn IdempotencyStore,
    lease: &Lease,
    work: Fut,
) -> anyhow::Result<String>
where
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    tokio::pin!(work);
    let mut ticker = tokio::time::interval(idempotency::RENEW_EVERY);
    ticker.tick().await;
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = ticker.tick() => {
                if let Err(e) = store.renew(lease, idempotency::LEASE).await {
                    tracing::error!(error = %format!("{e:#}"), key = %lease.key, "lease renewal failed");
                    if e.to_string().contains("taken over") {
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// The outcome of `Steward::once`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Once {
    /// This attempt did the work; its result.
    Ran(String),
    /// An earlier attempt did it (its recorded result).
    AlreadyDone(Option<String>),
}
