//! One rotation step: parse the invocation, check the secret's versions
//! (Secrets Manager's protocol), run the step against Secrets Manager and
//! PostgreSQL, and report. Every failure is notified (category `rotation`,
//! severity `HIGH`, with the secret's name, the step and the reason, never a
//! value) and fails the invocation so Secrets Manager retries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use steward_shared::context::NotifyOutcome;
use steward_shared::notify::{Category, Notification, Severity};
use steward_shared::observability::Metrics;
use steward_shared::{Policy, Steward};

use crate::credentials::{DbCredentials, CLONE_SUFFIX};
use crate::database::{ConnectOptions, Database, Login, Postgres, Target};
use crate::decide::{self, Gate, SecretFacts, Strategy, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::events::{self, RotationEvent, Step};
use crate::secrets::{AwsSecrets, SecretsApi};
use crate::FUNCTION_NAME;

/// Builds the adapters (Secrets Manager per account and region; the database).
#[async_trait::async_trait]
pub trait Apis: Send + Sync {
    async fn secrets(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn SecretsApi>>;
    fn database(&self) -> Arc<dyn Database>;
}

/// The real adapters: the SDK through the shared AWS context, and PostgreSQL.
pub struct AwsApis {
    aws: steward_shared::aws::AwsContext,
    database: Arc<Postgres>,
}

impl AwsApis {
    pub fn new(aws: steward_shared::aws::AwsContext) -> AwsApis {
        AwsApis {
            aws,
            database: Arc::new(Postgres::new()),
        }
    }
}

#[async_trait::async_trait]
impl Apis for AwsApis {
    async fn secrets(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn SecretsApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsSecrets::new(&config)))
    }

    fn database(&self) -> Arc<dyn Database> {
        self.database.clone()
    }
}

/// What a step did, for the response and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StepReport {
    result: &'static str,
    strategy: Option<&'static str>,
    changed: bool,
}

impl StepReport {
    fn new(result: &'static str, strategy: Option<&Strategy>, changed: bool) -> StepReport {
        StepReport {
            result,
            strategy: strategy.map(Strategy::as_str),
            changed,
        }
    }
}

/// The step was not run because of dry-run or the kill switch (notified as such, not as a failure).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotRunInThisMode(String);

/// The rotation function, built once per process.
pub struct SecretRotator<A: Apis> {
    steward: Arc<Steward>,
    apis: A,
}

/// Where the secret lives and what it is called, for reports.
struct Subject {
    account: String,
    region: String,
    arn: String,
    name: String,
    /// The secret's `env` tag, when it has one.
    environment: Option<String>,
}

impl<A: Apis> SecretRotator<A> {
    pub fn new(steward: Arc<Steward>, apis: A) -> SecretRotator<A> {
        SecretRotator { steward, apis }
    }

    /// Handles one invocation; the span puts the request id, token, secret and step on every log line.
    pub async fn invoke(&self, payload: Value, request_id: &str) -> anyhow::Result<Value>
    where
        A: 'static,
    {
        steward_shared::entry::invoke(self, FUNCTION_NAME, payload, request_id).await
    }

    async fn process(&self, payload: Value, metrics: &mut Metrics) -> anyhow::Result<Value> {
        let policy = self.steward.policy.current().await;
        let event = match events::parse(&payload) {
            Ok(event) => event,
            Err(e) => {
                // Still tell the security team when the event names a secret.
                if let Some(secret_id) = payload.get("SecretId").and_then(Value::as_str) {
                    let step = payload
                        .get("Step")
                        .and_then(Value::as_str)
                        .unwrap_or("(none)")
                        .to_string();
                    let token = payload
                        .get("ClientRequestToken")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let subject = self.subject_from_id(secret_id);
                    self.notify_failure(
                        &subject,
                        &step,
                        &token,
                        None,
                        &format!("{e:#}"),
                        &policy,
                        metrics,
                    )
                    .await;
                }
                return Err(e);
            }
        };
        let span = tracing::Span::current();
        span.record("event_id", event.token.as_str());
        span.record("secret", event.secret_id.as_str());
        span.record("step", event.step.as_str());
        let mut subject = self.subject_from_id(&event.secret_id);
        let mut strategy_name = None;
        let result = self
            .run(&event, &policy, &mut subject, &mut strategy_name, metrics)
            .await;
        match result {
            Ok(report) => {
                tracing::info!(
                    result = report.result,
                    strategy = report.strategy,
                    changed = report.changed,
                    "rotation step done"
                );
                if report.changed {
                    metrics.actions_taken += 1;
                }
                Ok(json!({
                    "secret": subject.name,
                    "arn": subject.arn,
                    "step": event.step.as_str(),
                    "token": event.token,
                    "strategy": report.strategy,
                    "result": report.result,
                    "changed": report.changed,
                    "mode": self.steward.mode().as_str(),
                }))
            }
            Err(e) if e.downcast_ref::<NotRunInThisMode>().is_some() => {
                // Already reported as what this mode would have done.
                Err(e.context(format!("{} of secret {} not run", event.step, subject.name)))
            }
            Err(e) => {
                let reason = format!("{e:#}");
                self.notify_failure(
                    &subject,
                    event.step.as_str(),
                    &event.token,
                    strategy_name,
                    &reason,
                    &policy,
                    metrics,
                )
                .await;
                Err(e.context(format!("{} of secret {} failed", event.step, subject.name)))
            }
        }
    }

    fn subject_from_id(&self, secret_id: &str) -> Subject {
        let (account, region) = events::account_region_of(secret_id).unwrap_or_else(|| {
            (
                self.steward.aws.own_account().to_string(),
                self.steward.aws.own_region().to_string(),
            )
        });
        let name = secret_name(secret_id);
        Subject {
            account,
            region,
            arn: secret_id.to_string(),
            name,
            environment: None,
        }
    }

    fn subject_of(&self, facts: &SecretFacts) -> Subject {
        Subject {
            name: facts.name.clone(),
            environment: facts.environment.clone(),
            ..self.subject_from_id(&facts.arn)
        }
    }

    async fn run(
        &self,
        event: &RotationEvent,
        policy: &Policy,
        subject: &mut Subject,
        strategy_name: &mut Option<&'static str>,
        metrics: &mut Metrics,
    ) -> anyhow::Result<StepReport> {
        let secrets = self
            .apis
            .secrets(&subject.account, &subject.region, &event.token)
            .await?;
        let facts = secrets.describe(&event.secret_id).await?;
        subject.arn = facts.arn.clone();
        subject.name = facts.name.clone();
        subject.environment = facts.environment.clone();
        tracing::Span::current().record("secret", facts.name.as_str());
        let gate = decide::gate(&facts, &event.token).map_err(anyhow::Error::msg)?;
        if let Gate::AlreadyCurrent { stale_pending } = gate {
            tracing::info!(token = %event.token, "the token is already AWSCURRENT; nothing to do");
            if stale_pending && event.step == Step::Finish && self.steward.mode().may_change() {
                secrets.clear_pending(&facts.arn, &event.token).await?;
                return Ok(StepReport::new(
                    "already AWSCURRENT; cleared the leftover AWSPENDING label",
                    None,
                    true,
                ));
            }
            return Ok(StepReport::new(
                "already AWSCURRENT; nothing to do",
                None,
                false,
            ));
        }
        let current = self
            .read(secrets.as_ref(), &facts, None, AWSCURRENT)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "secret {} has no AWSCURRENT value; store the database credentials first",
                    facts.name
                )
            })?;
        let strategy = Strategy::of(&current);
        *strategy_name = Some(strategy.as_str());
        if !self.steward.mode().may_change() {
            return self
                .refuse_in_this_mode(event, &facts, &strategy, policy, metrics)
                .await;
        }
        match event.step {
            Step::Create => {
                self.create(secrets.as_ref(), event, &facts, &current, &strategy, policy)
                    .await
            }
            Step::Set => {
                self.set(secrets.as_ref(), event, &facts, &current, &strategy, policy)
                    .await
            }
            Step::Test => {
                let pending = self.pending(secrets.as_ref(), &facts, &event.token).await?;
                decide::check_pending(&current, &pending, &strategy).map_err(anyhow::Error::msg)?;
                self.apis
                    .database()
                    .test(&pending, &connect_options(&pending, policy))
                    .await?;
                tracing::info!(user = %pending.username, host = %pending.endpoint(), "the AWSPENDING credentials log in and run a query");
                Ok(StepReport::new(
                    "AWSPENDING logs in",
                    Some(&strategy),
                    false,
                ))
            }
            Step::Finish => {
                self.finish(
                    secrets.as_ref(),
                    event,
                    &facts,
                    &current,
                    &strategy,
                    policy,
                    metrics,
                )
                .await
            }
        }
    }

    async fn read(
        &self,
        secrets: &dyn SecretsApi,
        facts: &SecretFacts,
        version: Option<&str>,
        stage: &str,
    ) -> anyhow::Result<Option<DbCredentials>> {
        match secrets.value(&facts.arn, version, stage).await? {
            None => Ok(None),
            Some(text) => DbCredentials::parse(&text, stage)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("secret {}: {e}", facts.name)),
        }
    }

    async fn pending(
        &self,
        secrets: &dyn SecretsApi,
        facts: &SecretFacts,
        token: &str,
    ) -> anyhow::Result<DbCredentials> {
        self.read(secrets, facts, Some(token), AWSPENDING).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "version {token} of secret {} has no AWSPENDING value; createSecret must run first (Secrets Manager retries the rotation from createSecret)",
                facts.name
            )
        })
    }

    async fn create(
        &self,
        secrets: &dyn SecretsApi,
        event: &RotationEvent,
        facts: &SecretFacts,
        current: &DbCredentials,
        strategy: &Strategy,
        policy: &Policy,
    ) -> anyhow::Result<StepReport> {
        if self
            .read(secrets, facts, Some(&event.token), AWSPENDING)
            .await?
            .is_some()
        {
            tracing::info!("the AWSPENDING value already exists for this token; keeping it");
            return Ok(StepReport::new(
                "AWSPENDING already stored",
                Some(strategy),
                false,
            ));
        }
        let username = strategy
            .pending_username(current)
            .map_err(anyhow::Error::msg)?;
        let password = secrets
            .random_password(
                policy.rotation.password_length,
                &policy.rotation.exclude_characters,
            )
            .await?;
        let pending = current.with_login(&username, &password);
        secrets
            .put_pending(
                &facts.arn,
                &event.token,
                &pending.to_secret_string(),
                event.rotation_token.as_deref(),
            )
            .await?;
        tracing::info!(user = %username, strategy = strategy.as_str(), "stored a new password as AWSPENDING");
        Ok(StepReport::new("AWSPENDING stored", Some(strategy), true))
    }

    async fn set(
        &self,
        secrets: &dyn SecretsApi,
        event: &RotationEvent,
        facts: &SecretFacts,
        current: &DbCredentials,
        strategy: &Strategy,
        policy: &Policy,
    ) -> anyhow::Result<StepReport> {
        let pending = self.pending(secrets, facts, &event.token).await?;
        decide::check_pending(current, &pending, strategy).map_err(anyhow::Error::msg)?;
        let database = self.apis.database();
        let pending_options = connect_options(&pending, policy);
        if database.login(&pending, &pending_options).await? == Login::Accepted {
            tracing::info!(user = %pending.username, "the AWSPENDING credentials already log in (an earlier attempt set them); nothing to change");
            return Ok(StepReport::new(
                "AWSPENDING already logs in",
                Some(strategy),
                false,
            ));
        }
        match strategy {
            Strategy::SingleUser => {
                let mut candidates = vec![(AWSCURRENT, current.clone())];
                if let Some(previous) = self.read(secrets, facts, None, AWSPREVIOUS).await? {
                    if previous.username == pending.username
                        && previous.host.eq_ignore_ascii_case(&pending.host)
                    {
                        candidates.push((AWSPREVIOUS, previous));
                    }
                }
                for (label, admin) in &candidates {
                    let options = connect_options(admin, policy);
                    if database.login(admin, &options).await? == Login::Refused {
                        tracing::warn!(user = %admin.username, version = label, "the database refused these credentials");
                        continue;
                    }
                    database
                        .set_password(
                            admin,
                            &pending.username,
                            pending.password(),
                            &Target::Existing,
                            &options,
                        )
                        .await?;
                    tracing::info!(user = %pending.username, logged_in_with = label, "password changed to the AWSPENDING value");
                    return Ok(StepReport::new("password changed", Some(strategy), true));
                }
                anyhow::bail!(
                    "the database at {} refused user {:?} with the {} and with the AWSPENDING one; \
                     nothing was changed. Set the user's password to the AWSCURRENT value (ALTER ROLE ... PASSWORD), then retry the rotation",
                    current.endpoint(),
                    current.username,
                    if candidates.len() > 1 { "AWSCURRENT and AWSPREVIOUS passwords" } else { "AWSCURRENT password" }
                )
            }
            Strategy::AlternatingUsers { master_arn } => {
                let master_text = secrets
                    .value(master_arn, None, AWSCURRENT)
                    .await?
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "the master secret {master_arn} (masterarn) has no AWSCURRENT value"
                        )
                    })?;
                let master = DbCredentials::parse(&master_text, "master secret's AWSCURRENT")
                    .map_err(|e| anyhow::anyhow!("master secret {master_arn}: {e}"))?;
                decide::check_master(&master, &pending).map_err(anyhow::Error::msg)?;
                let target = if pending.username.ends_with(CLONE_SUFFIX)
                    && pending.username != current.username
                {
                    Target::CreateLike {
                        like: current.username.clone(),
                    }
                } else {
                    Target::Existing
                };
                let options = connect_options(&master, policy);
                database
                    .set_password(
                        &master,
                        &pending.username,
                        pending.password(),
                        &target,
                        &options,
                    )
                    .await?;
                tracing::info!(user = %pending.username, master_user = %master.username, created_if_missing = matches!(target, Target::CreateLike { .. }), "password of the alternate user set to the AWSPENDING value");
                Ok(StepReport::new("password changed", Some(strategy), true))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        secrets: &dyn SecretsApi,
        event: &RotationEvent,
        facts: &SecretFacts,
        current: &DbCredentials,
        strategy: &Strategy,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<StepReport> {
        let pending = self.pending(secrets, facts, &event.token).await?;
        let from = facts.version_with(AWSCURRENT).map(str::to_string);
        secrets
            .move_current(&facts.arn, &event.token, from.as_deref())
            .await?;
        secrets.clear_pending(&facts.arn, &event.token).await?;
        tracing::info!(
            previous_version = from.as_deref().unwrap_or("(none)"),
            "AWSCURRENT moved to the new version; the old one is AWSPREVIOUS"
        );
        let mut n = Notification::new(
            Severity::Info,
            Category::Rotation,
            "rotated",
            format!("secret {} rotated ({})", facts.name, strategy.as_str()),
        );
        n.details.push(format!(
            "The credentials of user {:?} on {} were rotated; AWSCURRENT is now version {} and logs in.",
            pending.username,
            pending.endpoint(),
            event.token
        ));
        if pending.username != current.username {
            n.details.push(format!(
                "User {:?} (now AWSPREVIOUS) keeps its password until the next rotation.",
                current.username
            ));
        }
        let subject = self.subject_of(facts);
        self.fill(
            &mut n,
            &subject,
            "finishSecret",
            &event.token,
            Some(strategy.as_str()),
        );
        n.dedupe_key = format!("{}#{}#rotated", facts.arn, event.token);
        match self.steward.notify(&n, policy).await {
            Ok(NotifyOutcome::Sent(_)) => metrics.notifications_sent += 1,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the rotation finished but its notification failed")
            }
        }
        Ok(StepReport::new("AWSCURRENT moved", Some(strategy), true))
    }

    /// Dry-run and the kill switch: the checks ran, nothing is written, and
    /// the step fails so Secrets Manager does not record a rotation; AWSCURRENT stays valid.
    async fn refuse_in_this_mode(
        &self,
        event: &RotationEvent,
        facts: &SecretFacts,
        strategy: &Strategy,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<StepReport> {
        let mode = self.steward.mode();
        let variable = match mode {
            steward_shared::RunMode::Disabled => "STEWARD_DISABLED",
            _ => "STEWARD_DRY_RUN",
        };
        let reason = format!(
            "{variable} is set: steward would run {} of secret {} ({}) but changed nothing; the rotation stops here and AWSCURRENT stays valid",
            event.step,
            facts.name,
            strategy.as_str()
        );
        tracing::warn!(mode = %mode, "{reason}");
        let mut n = Notification::new(
            Severity::Medium,
            Category::Rotation,
            "not-rotated",
            format!("rotation of secret {} not run ({})", facts.name, mode),
        );
        n.details.push(reason.clone());
        n.next_steps.push(format!(
            "Unset {variable} on the function, then rotate the secret again."
        ));
        let subject = self.subject_of(facts);
        self.fill(
            &mut n,
            &subject,
            event.step.as_str(),
            &event.token,
            Some(strategy.as_str()),
        );
        if let Ok(NotifyOutcome::Sent(_)) = self.steward.notify(&n, policy).await {
            metrics.notifications_sent += 1;
        }
        Err(NotRunInThisMode(reason).into())
    }

    fn fill(
        &self,
        n: &mut Notification,
        subject: &Subject,
        step: &str,
        token: &str,
        strategy: Option<&str>,
    ) {
        n.account = subject.account.clone();
        n.region = subject.region.clone();
        n.environment = subject.environment.clone();
        if subject.arn.starts_with("arn:") {
            n.related_resources.push(subject.arn.clone());
        }
        n.thread_id = subject.arn.clone();
        n.facts.insert("secretName".into(), subject.name.clone());
        n.facts.insert("step".into(), step.to_string());
        n.facts
            .insert("clientRequestToken".into(), token.to_string());
        if let Some(s) = strategy {
            n.facts.insert("strategy".into(), s.to_string());
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn notify_failure(
        &self,
        subject: &Subject,
        step: &str,
        token: &str,
        strategy: Option<&str>,
        reason: &str,
        policy: &Policy,
        metrics: &mut Metrics,
    ) {
        let mut n = Notification::new(
            Severity::High,
            Category::Rotation,
            "failed",
            format!("rotation of secret {} failed at {step}", subject.name),
        );
        n.details.push(format!("Reason: {reason}"));
        n.details.push(
            "The secret's AWSCURRENT version was not changed by this step; the database keeps a credential the secret records."
                .into(),
        );
        n.next_steps.push("Fix the cause named above; Secrets Manager retries the step, or rotate the secret again.".into());
        n.next_steps
            .push("Check the function's logs for this token for the full sequence.".into());
        self.fill(&mut n, subject, step, token, strategy);
        let digest = Sha256::digest(reason.as_bytes());
        let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        n.dedupe_key = format!("{}#{token}#{step}#{short}", subject.arn);
        match self.steward.notify(&n, policy).await {
            Ok(NotifyOutcome::Sent(_)) => metrics.notifications_sent += 1,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the failure notification could not be sent")
            }
        }
    }
}

/// The secret's name from an ARN (`...:secret:NAME-AbCdEf`) or the id itself.
pub fn secret_name(secret_id: &str) -> String {
    match secret_id.split_once(":secret:") {
        Some((_, rest)) => match rest.rsplit_once('-') {
            Some((name, suffix)) if suffix.len() == 6 && !name.is_empty() => name.to_string(),
            _ => rest.to_string(),
        },
        None => secret_id.to_string(),
    }
}

/// How to connect with these credentials under the policy.
pub fn connect_options(credentials: &DbCredentials, policy: &Policy) -> ConnectOptions {
    let rotation = &policy.rotation;
    ConnectOptions {
        tls: decide::tls_mode(credentials.ssl, rotation.require_tls),
        ca_bundle: (!rotation.ca_bundle.trim().is_empty())
            .then(|| PathBuf::from(rotation.ca_bundle.trim())),
        connect_timeout: Duration::from_secs(u64::from(rotation.connect_timeout_seconds.max(1))),
    }
}

#[async_trait::async_trait]
impl<A: Apis + 'static> steward_shared::entry::Handler for SecretRotator<A> {
    async fn handle(
        &self,
        payload: Value,
        invocation: &mut steward_shared::entry::Invocation,
    ) -> anyhow::Result<Value> {
        self.process(payload, &mut invocation.metrics).await
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod flow_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_arns() {
        assert_eq!(
            secret_name("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app-AbCdEf"),
            "prod/app"
        );
        assert_eq!(secret_name("prod/app"), "prod/app");
    }
}
