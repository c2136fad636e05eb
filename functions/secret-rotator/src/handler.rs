//! One rotation step, orchestrated: parse the invocation, read the secret's
//! facts (Secrets Manager), let the plan decide (versions, strategy, who logs
//! in, which role changes, whether a master is allowed and may change that
//! role), execute through the adapters, and report. Every failure and every
//! refusal is notified (HIGH, with the secret's name, the step and the
//! reason, never a value) and fails the invocation so Secrets Manager retries.

use std::sync::Arc;

use serde_json::Value;
use steward_shared::entry::Invocation;
use steward_shared::{Policy, Steward};

use crate::apis::Apis;
use crate::database::Login;
use crate::events::{self, RotationEvent, Step};
use crate::model::{DbCredentials, SecretFacts, Target, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::plan::{self, Decided, Gate, SetPlan, Strategy};
use crate::report::{self, done, StepRef, StepReport, Subject};
use crate::secrets::{read_credentials, read_master, read_pending, SecretsApi};

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

impl StepContext<'_> {
    /// The step, token and strategy, for reports.
    fn at(&self) -> StepRef<'_> {
        StepRef {
            step: self.event.step.as_str(),
            token: &self.event.token,
            strategy: self.strategy.as_ref().map(Strategy::as_str),
        }
    }
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
                    let subject = self.subject_from_id(secret_id);
                    let n = report::failed_unparsed(&subject, &payload, &format!("{e:#}"));
                    self.send(&n, &policy, invocation).await;
                }
                return Err(e);
            }
        };
        invocation.set_event_id(&event.token);
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
                Ok(report::response(
                    &ctx.subject,
                    &ctx.at(),
                    report.result,
                    report.changed,
                    self.steward.mode(),
                ))
            }
            // Already reported as what this mode would have done.
            Err(e) if e.downcast_ref::<NotRunInThisMode>().is_some() => Err(e.context(format!(
                "{} of secret {} not run",
                event.step, ctx.subject.name
            ))),
            Err(e) => {
                let n = report::failed(&ctx.subject, &ctx.at(), &format!("{e:#}"));
                self.send(&n, &policy, invocation).await;
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
    ) {
        if let Err(e) = self.steward.notify_counted(n, policy, invocation).await {
            tracing::error!(error = %format!("{e:#}"), event_type = %n.event_type(), "the notification could not be sent");
        }
    }

    fn subject_from_id(&self, secret_id: &str) -> Subject {
        let aws = &self.steward.aws;
        Subject::from_id(secret_id, aws.own_account(), aws.own_region())
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
        ctx.subject
            .describe(&facts.arn, &facts.name, facts.environment.as_deref());
        if let Gate::AlreadyCurrent { stale_pending } =
            plan::gate(&facts, &event.token).decided()?
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
        let current = read_credentials(secrets.as_ref(), &facts, None, AWSCURRENT)
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
            return self.refuse_in_this_mode(ctx, invocation).await;
        }
        let rotation = &ctx.policy.rotation;
        match event.step {
            Step::Create => {
                // The TLS floor fails the rotation before a version is written.
                plan::connect_options(&current, rotation).decided()?;
                if read_credentials(secrets.as_ref(), &facts, Some(&event.token), AWSPENDING)
                    .await?
                    .is_some()
                {
                    tracing::info!(
                        "the AWSPENDING value already exists for this token; keeping it"
                    );
                    return done("AWSPENDING already stored", false);
                }
                let username = strategy.pending_username(&current).decided()?;
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
                let pending = read_pending(secrets.as_ref(), &facts, &event.token).await?;
                plan::check_pending(&current, &pending, &strategy).decided()?;
                let options = plan::connect_options(&pending, rotation).decided()?;
                self.apis.database().test(&pending, &options).await?;
                tracing::info!(user = %pending.username, host = %pending.endpoint(), "the AWSPENDING credentials log in and run a query");
                done("AWSPENDING logs in", false)
            }
            Step::Finish => {
                let pending = read_pending(secrets.as_ref(), &facts, &event.token).await?;
                let from = facts.version_with(AWSCURRENT).map(str::to_string);
                secrets
                    .move_current(&facts.arn, &event.token, from.as_deref())
                    .await?;
                secrets.clear_pending(&facts.arn, &event.token).await?;
                tracing::info!(
                    previous_version = from.as_deref().unwrap_or("(none)"),
                    "AWSCURRENT moved to the new version; the old one is AWSPREVIOUS"
                );
                let n = report::rotated(&ctx.subject, &ctx.at(), &pending, &current);
                self.send(&n, ctx.policy, invocation).await;
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
        let pending = read_pending(secrets, facts, &ctx.event.token).await?;
        plan::check_pending(current, &pending, strategy).decided()?;
        let database = self.apis.database();
        let pending_options = plan::connect_options(&pending, rotation).decided()?;
        if database.login(&pending, &pending_options).await? == Login::Accepted {
            tracing::info!(user = %pending.username, "the AWSPENDING credentials already log in (an earlier attempt set them); nothing to change");
            return done("AWSPENDING already logs in", false);
        }
        let previous = match strategy {
            Strategy::SingleUser => read_credentials(secrets, facts, None, AWSPREVIOUS).await?,
            Strategy::AlternatingUsers { .. } => None,
        };
        match plan::plan_set(strategy, current, previous, &pending) {
            SetPlan::OwnPassword { logins } => {
                for (label, login) in &logins {
                    let options = plan::connect_options(login, rotation).decided()?;
                    if database.login(login, &options).await? == Login::Refused {
                        tracing::warn!(user = %login.username, version = label, "the database refused these credentials");
                        continue;
                    }
                    database
                        .set_password(login, &pending, &Target::Existing, &options)
                        .await?;
                    tracing::info!(user = %pending.username, logged_in_with = label, "password changed to the AWSPENDING value");
                    return done("password changed", true);
                }
                anyhow::bail!(plan::no_login_accepted(current, logins.len()))
            }
            SetPlan::ThroughMaster { master_arn, target } => {
                let (master_facts, master) = read_master(secrets, &master_arn).await?;
                plan::check_master(&master_facts, &master, &pending, rotation).decided()?;
                let options = plan::connect_options(&master, rotation).decided()?;
                let roles = plan::roles_to_check(&pending.username, &target);
                let found = database.role_facts(&master, &roles, &options).await?;
                plan::check_master_target(
                    &master.username,
                    &pending.username,
                    &target,
                    &found,
                    rotation,
                )
                .decided()?;
                database
                    .set_password(&master, &pending, &target, &options)
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
        invocation: &mut Invocation,
    ) -> anyhow::Result<StepReport> {
        let mode = self.steward.mode();
        let (n, reason) = report::not_run(&ctx.subject, &ctx.at(), mode);
        tracing::warn!(mode = %mode, "{reason}");
        self.send(&n, ctx.policy, invocation).await;
        Err(NotRunInThisMode(reason).into())
    }
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
