//! Reads the policy from where `STEWARD_POLICY` says (built-in defaults, a
//! file, or an SSM parameter) at start, and again once it is five minutes old.
//! A policy that fails to load at start stops the function with the reason; a
//! later reload that fails keeps the last good policy, logs why and, when the
//! store was given a [`ReloadAlerts`] sink, alerts HIGH once per failure
//! streak (again only after a reload succeeded in between).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::notify::{self, Category, Notification, Publish, RenderContext, Severity};
use crate::policy::Policy;
use crate::safety::RunMode;
use crate::settings::PolicySource;

/// How long a loaded policy is used before it is read again.
pub const POLICY_MAX_AGE: Duration = Duration::from_secs(300);

/// The current policy of a process.
pub struct PolicyStore {
    source: PolicySource,
    ssm: Option<aws_sdk_ssm::Client>,
    max_age: Duration,
    alerts: Option<ReloadAlerts>,
    current: Mutex<Current>,
}

/// The policy in use and the state of its reloads.
struct Current {
    policy: Arc<Policy>,
    read_at: Instant,
    /// A reload failed and the team was alerted; no further alert until a
    /// reload succeeds.
    alerted: bool,
}

/// Where a failed reload is announced: the function's notification sink.
pub struct ReloadAlerts {
    pub publisher: Arc<dyn Publish>,
    pub function_name: String,
    pub mode: RunMode,
    pub account: crate::aws::OwnAccount,
    pub region: String,
}

impl ReloadAlerts {
    /// The HIGH notification for a reload that failed while `kept` stays in use.
    pub fn notification(&self, source: &PolicySource, error: &str, kept: &Policy) -> Notification {
        let mut n = Notification::new(
            Severity::High,
            category_of(&self.function_name),
            "policy-reload-failed",
            format!(
                "{}: the policy could not be re-read; still using version {}",
                self.function_name, kept.version
            ),
        );
        n.details = vec![
            format!("Source: {}", describe(source)),
            format!("Problem: {error}"),
            format!(
                "The function keeps the last good policy (version {}) and tries again every {} minutes; this alert is sent once until a reload succeeds.",
                kept.version,
                POLICY_MAX_AGE.as_secs() / 60
            ),
        ];
        n.next_steps = vec![
            "Fix the policy (check it with `steward validate FILE`) or the access to its source; the next reload picks it up.".into(),
        ];
        n.account = self.account.get().to_string();
        n.region = self.region.clone();
        n.thread_id = format!("{}/policy", self.function_name);
        n.dedupe_key = format!("policy-reload-failed/{}", kept.version);
        n.fact("policySource", describe(source))
            .fact("keptPolicyVersion", kept.version.clone())
    }
}

/// The category of a function's own notifications (a policy alert is filed
/// with the function it stops from changing).
pub fn category_of(function_name: &str) -> Category {
    match function_name {
        "tag-enforcer" => Category::Tagging,
        "offhours-scheduler" => Category::Offhours,
        "secret-rotator" => Category::Rotation,
        "guardduty-responder" => Category::Guardduty,
        "snapshot-copier" => Category::Snapshot,
        "budget-alerter" => Category::Budget,
        _ => Category::Compliance,
    }
}

/// `STEWARD_POLICY` as an operator writes it.
pub fn describe(source: &PolicySource) -> String {
    match source {
        PolicySource::BuiltIn => "built-in defaults (STEWARD_POLICY unset)".into(),
        PolicySource::File(path) => format!("STEWARD_POLICY={path}"),
        PolicySource::Ssm(name) => format!("STEWARD_POLICY=ssm:{name}"),
    }
}

impl PolicyStore {
    /// Loads the policy once; errors name the source and the problem.
    pub async fn load(
        source: PolicySource,
        ssm: Option<aws_sdk_ssm::Client>,
    ) -> anyhow::Result<PolicyStore> {
        let policy = read(&source, ssm.as_ref()).await?;
        Ok(PolicyStore::with_policy(source, ssm, policy))
    }

    /// Loads the policy `source` names, with an SSM client built from `base`
    /// only when the source is a parameter: what every function and the CLI
    /// call, so all of them read `STEWARD_POLICY` the same way.
    pub async fn load_for(
        source: PolicySource,
        base: &aws_config::SdkConfig,
    ) -> anyhow::Result<PolicyStore> {
        let ssm = matches!(source, PolicySource::Ssm(_)).then(|| aws_sdk_ssm::Client::new(base));
        PolicyStore::load(source, ssm).await
    }

    /// A store holding a fixed policy (tests and the CLI).
    pub fn fixed(policy: Policy) -> PolicyStore {
        PolicyStore::with_policy(PolicySource::BuiltIn, None, policy)
    }

    fn with_policy(
        source: PolicySource,
        ssm: Option<aws_sdk_ssm::Client>,
        policy: Policy,
    ) -> PolicyStore {
        PolicyStore {
            source,
            ssm,
            max_age: POLICY_MAX_AGE,
            alerts: None,
            current: Mutex::new(Current {
                policy: Arc::new(policy),
                read_at: Instant::now(),
                alerted: false,
            }),
        }
    }

    /// Announces a failed reload through `alerts` (HIGH, once per streak).
    pub fn alerting(mut self, alerts: ReloadAlerts) -> PolicyStore {
        self.alerts = Some(alerts);
        self
    }

    /// Re-reads the policy once it is older than `max_age` instead of five
    /// minutes (tests).
    pub fn reloading_after(mut self, max_age: Duration) -> PolicyStore {
        self.max_age = max_age;
        self
    }

    /// Where the policy is read from.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// The policy to use now, re-read when it is older than five minutes. A
    /// failed re-read keeps the last good policy.
    pub async fn current(&self) -> Arc<Policy> {
        let mut current = self.current.lock().await;
        if self.source != PolicySource::BuiltIn && current.read_at.elapsed() >= self.max_age {
            match read(&self.source, self.ssm.as_ref()).await {
                Ok(policy) => {
                    if policy.version != current.policy.version {
                        tracing::info!(policy_version = %policy.version, "policy changed; using the new version");
                    }
                    if current.alerted {
                        tracing::info!(policy_version = %policy.version, "the policy reads again after failed reloads");
                    }
                    *current = Current {
                        policy: Arc::new(policy),
                        read_at: Instant::now(),
                        alerted: false,
                    };
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    tracing::error!(error = %error, policy_version = %current.policy.version, "re-reading the policy failed; keeping the last good policy");
                    current.read_at = Instant::now();
                    if !current.alerted {
                        current.alerted = self.alert(&error, &current.policy).await;
                    }
                }
            }
        }
        current.policy.clone()
    }

    /// Publishes the reload alert; true when it was published (or there is
    /// no sink to publish to, so retrying would not help).
    async fn alert(&self, error: &str, kept: &Policy) -> bool {
        let Some(alerts) = &self.alerts else {
            return true;
        };
        let notification = alerts.notification(&self.source, error, kept);
        let ctx = RenderContext {
            mode: alerts.mode,
            policy_version: kept.version.clone(),
            function_name: alerts.function_name.clone(),
            max_items: kept.notifications.max_items as usize,
        };
        let rendered = notify::render(&notification, &ctx);
        if notification.severity < kept.notifications.min_severity {
            tracing::info!(subject = %rendered.subject, "notification below notifications.min_severity; logged only");
            return true;
        }
        match alerts.publisher.publish(&rendered).await {
            Ok(_) => {
                tracing::info!(subject = %rendered.subject, event_type = %notification.event_type(), "notification sent");
                true
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the policy reload alert could not be published; trying again at the next reload");
                false
            }
        }
    }
}

async fn read(source: &PolicySource, ssm: Option<&aws_sdk_ssm::Client>) -> anyhow::Result<Policy> {
    match source {
        PolicySource::BuiltIn => Ok(Policy::default()),
        PolicySource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("STEWARD_POLICY file {path} could not be read: {e}")
            })?;
            Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("STEWARD_POLICY file {path}: {e}"))
        }
        PolicySource::Ssm(name) => {
            let ssm =
                ssm.ok_or_else(|| anyhow::anyhow!("no SSM client for STEWARD_POLICY=ssm:{name}"))?;
            let output = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "STEWARD_POLICY parameter {name} could not be read: {}",
                        aws_sdk_ssm::error::DisplayErrorContext(&e)
                    )
                })?;
            let text = output
                .parameter()
                .and_then(|p| p.value())
                .ok_or_else(|| anyhow::anyhow!("STEWARD_POLICY parameter {name} has no value"))?;
            Policy::from_toml(text)
                .map_err(|e| anyhow::anyhow!("STEWARD_POLICY parameter {name}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryPublisher;

    fn alerts(publisher: &Arc<MemoryPublisher>) -> ReloadAlerts {
        ReloadAlerts {
            publisher: publisher.clone(),
            function_name: "tag-enforcer".into(),
            mode: RunMode::Live,
            account: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    #[tokio::test]
    async fn a_failed_reload_keeps_the_last_good_policy_and_alerts_high_once() {
        let path = std::env::temp_dir().join(format!("steward-reload-{}.toml", std::process::id()));
        std::fs::write(&path, "[limits]\nmax_changes_per_run = 7\n").unwrap();
        let publisher = Arc::new(MemoryPublisher::default());
        let store = PolicyStore::load(PolicySource::File(path.display().to_string()), None)
            .await
            .unwrap()
            .alerting(alerts(&publisher))
            .reloading_after(Duration::ZERO);
        let good = store.current().await;
        assert_eq!(good.limits.max_changes_per_run, 7);

        // A key that panicked the locator before, then a broken document.
        std::fs::write(&path, "[tagging.account_environments]\n\"x[\" = \"dev\"\n").unwrap();
        assert_eq!(store.current().await.version, good.version);
        std::fs::write(&path, "[limits\n").unwrap();
        assert_eq!(store.current().await.version, good.version);
        assert_eq!(store.current().await.limits.max_changes_per_run, 7);
        let sent = publisher.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "one alert per failure streak");
        assert!(
            sent[0].subject.starts_with("[steward] HIGH tagging:"),
            "{}",
            sent[0].subject
        );
        assert_eq!(sent[0].attributes["severity"], "HIGH");
        assert!(sent[0].text.contains("x["), "{}", sent[0].text);
        assert!(sent[0].text.contains(&good.version), "{}", sent[0].text);

        // Recovery, then a new failure: a new alert.
        std::fs::write(&path, "[limits]\nmax_changes_per_run = 8\n").unwrap();
        assert_eq!(store.current().await.limits.max_changes_per_run, 8);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(store.current().await.limits.max_changes_per_run, 8);
        assert_eq!(publisher.count(), 2);
    }

    #[tokio::test]
    async fn an_alert_that_could_not_be_sent_is_tried_again_at_the_next_reload() {
        let path = std::env::temp_dir().join(format!("steward-unsent-{}.toml", std::process::id()));
        std::fs::write(&path, "").unwrap();
        let publisher = Arc::new(MemoryPublisher::default());
        *publisher.fail.lock().unwrap() = true;
        let store = PolicyStore::load(PolicySource::File(path.display().to_string()), None)
            .await
            .unwrap()
            .alerting(alerts(&publisher))
            .reloading_after(Duration::ZERO);
        std::fs::write(&path, "nonsense").unwrap();
        store.current().await;
        assert_eq!(publisher.count(), 0);
        *publisher.fail.lock().unwrap() = false;
        store.current().await;
        store.current().await;
        std::fs::remove_file(&path).ok();
        assert_eq!(publisher.count(), 1);
    }
}
