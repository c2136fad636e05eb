//! One rotation step, orchestrated: parse the invocation, read the secret's
//! facts (Secrets Manager), let the plan decide (versions, strategy, who logs
//! in, which role changes, whether a master is allowed and may change that
//! role), execute through the adapters, and report. Every failure and every
//! refusal is notified (HIGH, with the secret's name, the step and the
//! reason, never a value) and fails the invocation so Secrets Manager retries.

use std::sync::Arc;

use serde_json::{json, Value};
use steward_shared::entry::Invocation;
use steward_shared::{Policy, RunMode, Steward};

use crate::database::{Database, Login, Postgres};
use crate::events::{self, RotationEvent, Step};
use crate::model::{DbCredentials, SecretFacts, Target, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::plan::{self, Gate, SetPlan, Strategy};
use crate::report::{self, StepRef, Subject};
use crate::secrets::{AwsSecrets, SecretsApi};

/// Builds the adapters (Secrets Manager per account and region; the database).
#[async_trait::async_trait]
pub(crate) trait Apis: Send + Sync {
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
struct StepReport {
    result: &'static str,
    changed: bool,
}

fn done(result: &'static str, changed: bool) -> anyhow::Result<StepReport> {
    Ok(StepReport { result, changed })
}

/// The step was not run because of dry-run or the kill switch (notified as such, not as a failure).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotRunInThisMode(String);

/// One invocation's context: the event, the policy, the secret as known so far.
struct StepContext<'a> {
    event: &'a RotationEvent,
    policy: &'a Policy,
    subject: Subject,
    strategy: Option<Strategy>,
}

/// The rotation function, built once per process.
#[allow(private_bounds)]
pub struct SecretRotator<A: Apis> {
    steward: Arc<Steward>,
    apis: A,
}

#[allow(private_bounds)]
impl<A: Apis> SecretRotator<A> {
    #[allow(private_interfaces)]
    pub fn new(steward: Arc<Steward>, apis: A) -> SecretRotator<A> {
        SecretRotator { steward, apis }
    }

    /// Handles one invocation in-process (tests), as `entry::serve` would.
    #[cfg(test)]
    pub(crate) async fn invoke(&self, payload: Value, request_id: &str) -> anyhow::Result<Value>
    where
        A: 'static,
    {
        steward_shared::entry::invoke(self, crate::FUNCTION_NAME, payload, request_id).await
    }

    async fn process(&self, payload: Value, invocation: &mut Invocation) -> anyhow::Result<Value> {
        let policy = self.steward.policy.current().await;
        let event = match events::parse(&payload) {
            Ok(event) => event,
            Err(e) => {
                // Still tell the security team when the event names a secret.
                if let Some(secret_id) = payload.get("SecretId").and_then(Value::as_str) {
                    let text = |key: &str, default: &str| {
                        payload
                            .get(key)
                            .and_then(Value::as_str)
                            .unwrap_or(default)
                            .to_string()
                    };
                    let (step, token) = (text("Step", "(none)"), text("ClientRequestToken", ""));
                    let at = StepRef {
                        step: &step,
                        token: &token,
                        strategy: None,
                    };
                    let n =
                        report::failed(&self.subject_from_id(secret_id), &at, &format!("{e:#}"));
                    self.send(
                        &n,
                        &policy,
                        invocation,
                        "the failure notification could not be sent",
                    )
                    .await;
                }
                return Err(e);
            }
        };
        invocation.set_event_id(&event.token);
        let span = tracing::Span::current();
        span.record("secret", event.secret_id.as_str());
        span.record("step", event.step.as_str());
        let mut ctx = StepContext {
            event: &event,
            policy: &policy,
            subject: self.subject_from_id(&event.secret_id),
            strategy: None,
        };
        let result = self.run(&mut ctx, invocation).await;
        let strategy = ctx.strategy.as_ref().map(Strategy::as_str);
        match result {
            Ok(report) => {
                tracing::info!(
                    result = report.result,
                    strategy,
                    changed = report.changed,
                    "rotation step done"
                );
                if report.changed {
                    invocation.metrics.actions_taken += 1;
                }
                Ok(json!({
                    "secret": ctx.subject.name, "arn": ctx.subject.arn, "step": event.step.as_str(),
                    "token": event.token, "strategy": strategy, "result": report.result,
                    "changed": report.changed, "mode": self.steward.mode().as_str(),
                }))
            }
            // Already reported as what this mode would have done.
            Err(e) if e.downcast_ref::<NotRunInThisMode>().is_some() => Err(e.context(format!(
                "{} of secret {} not run",
                event.step, ctx.subject.name
            ))),
            Err(e) => {
                let at = StepRef {
                    step: event.step.as_str(),
                    token: &event.token,
                    strategy,
                };
                let n = report::failed(&ctx.subject, &at, &format!("{e:#}"));
                self.send(
                    &n,
                    &policy,
                    invocation,
                    "the failure notification could not be sent",
                )
                .await;
                Err(e.context(format!(
                    "{} of secret {} failed",
                    event.step, ctx.subject.name
                )))
            }
        }
    }

    /// Sends a notification; a failure to send is logged, never hides the step's own result.
    async fn send(
        &self,
        n: &steward_shared::notify::Notification,
        policy: &Policy,
        invocation: &mut Invocation,
        on_error: &str,
    ) {
        if let Err(e) = self.steward.notify_counted(n, policy, invocation).await {
            tracing::error!(error = %format!("{e:#}"), "{on_error}");
        }
    }

    fn subject_from_id(&self, secret_id: &str) -> Subject {
        let (account, region) = events::account_region_of(secret_id).unwrap_or_else(|| {
            (
                self.steward.aws.own_account().to_string(),
                self.steward.aws.own_region().to_string(),
            )
        });
        Subject {
            account,
            region,
            arn: secret_id.to_string(),
            name: report::secret_name(secret_id),
            environment: None,
        }
    }

    async fn run(
        &self,
        ctx: &mut StepContext<'_>,
        invocation: &mut Invocation,
    ) -> anyhow::Result<StepReport> {
        let event = ctx.event;
        let secrets = self
            .apis
            .secrets(&ctx.subject.account, &ctx.subject.region, &event.token)
            .await?;
        let facts = secrets.describe(&event.secret_id).await?;
        ctx.subject.arn = facts.arn.clone();
        ctx.subject.name = facts.name.clone();
        ctx.subject.environment = facts.environment.clone();
        tracing::Span::current().record("secret", facts.name.as_str());
        if let Gate::AlreadyCurrent { stale_pending } =
            plan::gate(&facts, &event.token).map_err(anyhow::Error::msg)?
        {
            tracing::info!(token = %event.token, "the token is already AWSCURRENT; nothing to do");
            if stale_pending && event.step == Step::Finish && self.steward.mode().may_change() {
                secrets.clear_pending(&facts.arn, &event.token).await?;
                return done(
                    "already AWSCURRENT; cleared the leftover AWSPENDING label",
                    true,
                );
            }
            return done("already AWSCURRENT; nothing to do", false);
        }
        let current = read(secrets.as_ref(), &facts, None, AWSCURRENT)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "secret {} has no AWSCURRENT value; store the database credentials first",
                    facts.name
                )
            })?;
        let strategy = Strategy::of(&current);
        ctx.strategy = Some(strategy.clone());
        if !self.steward.mode().may_change() {
            return self.refuse_in_this_mode(ctx, &strategy, invocation).await;
        }
        let rotation = &ctx.policy.rotation;
        match event.step {
            Step::Create => {
                // The TLS floor fails the rotation before a version is written.
                plan::connect_options(&current, rotation).map_err(anyhow::Error::msg)?;
                if read(secrets.as_ref(), &facts, Some(&event.token), AWSPENDING)
                    .await?
                    .is_some()
                {
                    tracing::info!(
                        "the AWSPENDING value already exists for this token; keeping it"
                    );
                    return done("AWSPENDING already stored", false);
                }
                let username = strategy
                    .pending_username(&current)
                    .map_err(anyhow::Error::msg)?;
                let password = secrets
                    .random_password(rotation.password_length, &rotation.exclude_characters)
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
                done("AWSPENDING stored", true)
            }
            Step::Set => {
                self.set(secrets.as_ref(), ctx, &facts, &current, &strategy)
                    .await
            }
            Step::Test => {
                let pending = pending(secrets.as_ref(), &facts, &event.token).await?;
                plan::check_pending(&current, &pending, &strategy).map_err(anyhow::Error::msg)?;
                let options =
                    plan::connect_options(&pending, rotation).map_err(anyhow::Error::msg)?;
                self.apis.database().test(&pending, &options).await?;
                tracing::info!(user = %pending.username, host = %pending.endpoint(), "the AWSPENDING credentials log in and run a query");
                done("AWSPENDING logs in", false)
            }
            Step::Finish => {
                let pending = pending(secrets.as_ref(), &facts, &event.token).await?;
                let from = facts.version_with(AWSCURRENT).map(str::to_string);
                secrets
                    .move_current(&facts.arn, &event.token, from.as_deref())
                    .await?;
                secrets.clear_pending(&facts.arn, &event.token).await?;
                tracing::info!(
                    previous_version = from.as_deref().unwrap_or("(none)"),
                    "AWSCURRENT moved to the new version; the old one is AWSPREVIOUS"
                );
                let at = StepRef {
                    step: "finishSecret",
                    token: &event.token,
                    strategy: Some(strategy.as_str()),
                };
                let previous =
                    (pending.username != current.username).then_some(current.username.as_str());
                let n = report::rotated(
                    &ctx.subject,
                    &at,
                    &pending.username,
                    &pending.endpoint(),
                    previous,
                );
                self.send(
                    &n,
                    ctx.policy,
                    invocation,
                    "the rotation finished but its notification failed",
                )
                .await;
                done("AWSCURRENT moved", true)
            }
        }
    }

    /// setSecret: the plan picks the login and the target; a master login is
    /// checked (allowed secret, then the target's rights in the database) before any change.
    async fn set(
        &self,
        secrets: &dyn SecretsApi,
        ctx: &StepContext<'_>,
        facts: &SecretFacts,
        current: &DbCredentials,
        strategy: &Strategy,
    ) -> anyhow::Result<StepReport> {
        let rotation = &ctx.policy.rotation;
        let pending = pending(secrets, facts, &ctx.event.token).await?;
        plan::check_pending(current, &pending, strategy).map_err(anyhow::Error::msg)?;
        let database = self.apis.database();
        let pending_options =
            plan::connect_options(&pending, rotation).map_err(anyhow::Error::msg)?;
        if database.login(&pending, &pending_options).await? == Login::Accepted {
            tracing::info!(user = %pending.username, "the AWSPENDING credentials already log in (an earlier attempt set them); nothing to change");
            return done("AWSPENDING already logs in", false);
        }
        let previous = match strategy {
            Strategy::SingleUser => read(secrets, facts, None, AWSPREVIOUS).await?,
            Strategy::AlternatingUsers { .. } => None,
        };
        match plan::plan_set(strategy, current, previous, &pending) {
            SetPlan::OwnPassword { logins } => {
                for (label, login) in &logins {
                    let options =
                        plan::connect_options(login, rotation).map_err(anyhow::Error::msg)?;
                    if database.login(login, &options).await? == Login::Refused {
                        tracing::warn!(user = %login.username, version = label, "the database refused these credentials");
                        continue;
                    }
                    database
                        .set_password(
                            login,
                            &pending.username,
                            pending.password(),
                            &Target::Existing,
                            &options,
                        )
                        .await?;
                    tracing::info!(user = %pending.username, logged_in_with = label, "password changed to the AWSPENDING value");
                    return done("password changed", true);
                }
                anyhow::bail!(
                    "the database at {} refused user {:?} with the {} and with the AWSPENDING one; \
                     nothing was changed. Set the user's password to the AWSCURRENT value (ALTER ROLE ... PASSWORD), then retry the rotation",
                    current.endpoint(),
                    current.username,
                    if logins.len() > 1 { "AWSCURRENT and AWSPREVIOUS passwords" } else { "AWSCURRENT password" }
                )
            }
            SetPlan::ThroughMaster { master_arn, target } => {
                let master_facts = secrets.describe(&master_arn).await?;
                let text = secrets
                    .value(&master_facts.arn, None, AWSCURRENT)
                    .await?
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "the master secret {master_arn} (masterarn) has no AWSCURRENT value"
                        )
                    })?;
                let master = DbCredentials::parse(&text, "master secret's AWSCURRENT")
                    .map_err(|e| anyhow::anyhow!("master secret {master_arn}: {e}"))?;
                plan::check_master(&master_facts, &master, &pending, rotation)
                    .map_err(anyhow::Error::msg)?;
                let options =
                    plan::connect_options(&master, rotation).map_err(anyhow::Error::msg)?;
                let mut roles = vec![pending.username.as_str()];
                if let Target::CreateLike { like } = &target {
                    roles.push(like);
                }
                let found = database.role_facts(&master, &roles, &options).await?;
                let (Some(target_facts), like) = (found.first(), found.get(1)) else {
                    anyhow::bail!(
                        "the database returned no facts about role {:?}",
                        pending.username
                    )
                };
                let like = match (&target, like) {
                    (Target::CreateLike { like }, Some(facts)) => Some((like.as_str(), facts)),
                    _ => None,
                };
                plan::check_master_target(
                    &master.username,
                    &pending.username,
                    target_facts,
                    like,
                    rotation,
                )
                .map_err(anyhow::Error::msg)?;
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
                done("password changed", true)
            }
        }
    }

    /// Dry-run and the kill switch: the checks ran, nothing is written, and
    /// the step fails so Secrets Manager does not record a rotation; AWSCURRENT stays valid.
    async fn refuse_in_this_mode(
        &self,
        ctx: &StepContext<'_>,
        strategy: &Strategy,
        invocation: &mut Invocation,
    ) -> anyhow::Result<StepReport> {
        let mode = self.steward.mode();
        let variable = match mode {
            RunMode::Disabled => "STEWARD_DISABLED",
            _ => "STEWARD_DRY_RUN",
        };
        let reason = format!(
            "{variable} is set: steward would run {} of secret {} ({}) but changed nothing; the rotation stops here and AWSCURRENT stays valid",
            ctx.event.step, ctx.subject.name, strategy.as_str()
        );
        tracing::warn!(mode = %mode, "{reason}");
        let at = StepRef {
            step: ctx.event.step.as_str(),
            token: &ctx.event.token,
            strategy: Some(strategy.as_str()),
        };
        let n = report::not_run(&ctx.subject, &at, mode, variable, &reason);
        self.send(
            &n,
            ctx.policy,
            invocation,
            "the notification could not be sent",
        )
        .await;
        Err(NotRunInThisMode(reason).into())
    }
}

async fn read(
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
    secrets: &dyn SecretsApi,
    facts: &SecretFacts,
    token: &str,
) -> anyhow::Result<DbCredentials> {
    read(secrets, facts, Some(token), AWSPENDING).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "version {token} of secret {} has no AWSPENDING value; createSecret must run first (Secrets Manager retries the rotation from createSecret)",
            facts.name
        )
    })
}

#[async_trait::async_trait]
impl<A: Apis + 'static> steward_shared::entry::Handler for SecretRotator<A> {
    async fn handle(&self, payload: Value, invocation: &mut Invocation) -> anyhow::Result<Value> {
        self.process(payload, invocation).await
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod flow_tests;
