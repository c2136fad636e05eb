//! Orchestration only: parse the trigger, gather the facts (history, tags,
//! compliance counts) through the adapters, let the plan decide, notify, and
//! record what must be remembered (never in dry-run or with the kill switch:
//! `Steward::once` writes nothing then).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use steward_shared::entry::{Handler, Invocation};
use steward_shared::trigger::ScheduledRun;
use steward_shared::{Policy, Steward};

use crate::config::Apis;
use crate::events::{self, Trigger};
use crate::model::{ComplianceChange, DigestFacts, ResourceTags, RuleCount, TargetFailure};
use crate::plan::{self, FlapDecision};
use crate::{history, report};

/// The compliance notifier, built once per process.
pub struct ComplianceNotifier<A: Apis> {
    steward: Arc<Steward>,
    apis: A,
}

impl<A: Apis> ComplianceNotifier<A> {
    pub fn new(steward: Arc<Steward>, apis: A) -> ComplianceNotifier<A> {
        ComplianceNotifier { steward, apis }
    }

    async fn on_change(
        &self,
        change: ComplianceChange,
        policy: &Policy,
        invocation: &mut Invocation,
    ) -> anyhow::Result<Value> {
        invocation.set_event_id(&change.event_id);
        invocation.metrics.resources_evaluated += 1;
        let base = json!({
            "event_id": change.event_id,
            "rule": change.rule,
            "resource": change.resource_label(),
            "new_state": change.new_state.as_str(),
            "mode": self.steward.mode().as_str(),
        });
        let settings = &policy.compliance;
        let transition = plan::classify(change.old_state, change.new_state);
        if transition == plan::Transition::LogOnly {
            tracing::info!(rule = %change.rule, resource = %change.resource_label(),
                old = ?change.old_state.map(|s| s.as_str()), new = %change.new_state,
                "compliance change logged only: not a change to or from NON_COMPLIANT");
            return Ok(merge(
                base,
                json!({"transition": transition.as_str(), "notification": "none"}),
            ));
        }
        let history = history::read(&self.steward, &change, settings.flap_changes).await?;
        let (transition, message, decision) = plan::plan_change(&change, &history, settings);
        let Some(message) = message else {
            tracing::info!(rule = %change.rule, resource = %change.resource_label(), ?decision,
                "the resource is flapping and was announced already; logged only");
            return Ok(merge(
                base,
                json!({"transition": transition.as_str(), "notification": "suppressed-flapping"}),
            ));
        };
        let tags = self.tags_of(&change).await;
        let environment = match &tags {
            ResourceTags::Known(t) => t.get("env").cloned(),
            ResourceTags::Unknown(_) => None,
        }
        .or_else(|| {
            policy
                .environment_of_account(&change.account)
                .map(String::from)
        });
        let notification = report::change_notification(&change, &message, &tags, environment);
        let outcome = self
            .steward
            .notify_counted(&notification, policy, invocation)
            .await?;
        let window = Duration::from_secs(u64::from(settings.flap_window_hours) * 3600);
        match decision {
            Some(FlapDecision::Notify) => {
                history::record_change(
                    &self.steward,
                    &change,
                    &history,
                    settings.flap_changes,
                    window,
                )
                .await?
            }
            Some(FlapDecision::AnnounceFlapping { .. }) => {
                history::mark_flapping(&self.steward, &change, window).await?
            }
            _ => {}
        }
        Ok(merge(
            base,
            json!({
                "transition": transition.as_str(),
                "event_type": notification.event_type(),
                "severity": notification.severity.as_str(),
                "tags_known": matches!(tags, ResourceTags::Known(_)),
                "notification": outcome.as_str(),
            }),
        ))
    }

    /// The resource's tags, best effort: a failed lookup is said in the message, never fatal.
    async fn tags_of(&self, change: &ComplianceChange) -> ResourceTags {
        let api = match self
            .apis
            .config(&change.account, &change.region, &change.event_id)
            .await
        {
            Ok(api) => api,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "could not reach the resource's account; the message says its tags are unknown");
                return ResourceTags::Unknown(format!(
                    "account {} could not be reached",
                    change.account
                ));
            }
        };
        match api
            .resource_tags(&change.resource_type, &change.resource_id)
            .await
        {
            Ok(Some(tags)) => ResourceTags::Known(tags),
            Ok(None) => {
                ResourceTags::Unknown("AWS Config holds no configuration item for it".into())
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "tag lookup failed; the message says its tags are unknown");
                ResourceTags::Unknown("the lookup in AWS Config failed".into())
            }
        }
    }

    async fn on_digest(
        &self,
        run: ScheduledRun,
        policy: &Policy,
        invocation: &mut Invocation,
    ) -> anyhow::Result<Value> {
        invocation.set_event_id(&run.id);
        let day = run.time.date_naive();
        let targets = self.targets(policy);
        let mut counts = Vec::new();
        let mut failures = Vec::new();
        for (account, region) in &targets {
            match self.read_target(account, region, &run.id).await {
                Ok(found) => counts.extend(found),
                Err(e) => {
                    tracing::error!(%account, %region, error = %format!("{e:#}"), "could not read compliance");
                    failures.push(TargetFailure {
                        account: account.clone(),
                        region: region.clone(),
                        error: format!("{e:#}"),
                    });
                }
            }
        }
        invocation.metrics.resources_evaluated +=
            counts.iter().map(|c| c.resources.len() as u64).sum::<u64>();
        let yesterday = match day.pred_opt() {
            Some(d) => history::digest_counts(&self.steward, d).await?,
            None => None,
        };
        let lines = plan::digest_lines(&counts, yesterday.as_ref(), report::DIGEST_RESOURCES_SHOWN);
        let facts = DigestFacts {
            run_id: run.id.clone(),
            day,
            time: run.time,
            targets,
            counts,
            failures,
            yesterday,
        };
        let notification = report::digest_notification(&facts, &lines);
        let outcome = self
            .steward
            .notify_counted(&notification, policy, invocation)
            .await?;
        if facts.failures.is_empty() {
            let remembered = plan::counts_to_remember(&facts.counts);
            history::remember_digest_counts(&self.steward, day, &remembered).await?;
        } else {
            tracing::warn!("some targets could not be read; today's counts are not remembered, so tomorrow's digest shows no change for them");
        }
        Ok(json!({
            "run_id": run.id,
            "job": run.job,
            "day": day.to_string(),
            "rules": lines.iter().filter(|l| l.count > 0).count(),
            "resources": lines.iter().map(|l| l.count).sum::<u64>(),
            "failed_targets": facts.failures.len(),
            "severity": notification.severity.as_str(),
            "notification": outcome.as_str(),
            "mode": self.steward.mode().as_str(),
        }))
    }

    /// The digest's targets: `[targets]` accounts x regions (default: the function's own).
    fn targets(&self, policy: &Policy) -> Vec<(String, String)> {
        if !policy.targets.organizational_units.is_empty() {
            tracing::warn!("targets.organizational_units is not expanded by the compliance digest; list the accounts in targets.accounts");
        }
        let own_account = self.steward.aws.own_account().to_string();
        let own_region = self.steward.aws.own_region().to_string();
        let accounts = if policy.targets.accounts.is_empty() {
            vec![own_account]
        } else {
            policy.targets.accounts.clone()
        };
        let regions = if policy.targets.regions.is_empty() {
            vec![own_region]
        } else {
            policy.targets.regions.clone()
        };
        accounts
            .iter()
            .flat_map(|a| regions.iter().map(move |r| (a.clone(), r.clone())))
            .collect()
    }

    async fn read_target(
        &self,
        account: &str,
        region: &str,
        run_id: &str,
    ) -> anyhow::Result<Vec<RuleCount>> {
        let api = self.apis.config(account, region, run_id).await?;
        let mut counts = Vec::new();
        for rule in api.noncompliant_rules().await? {
            let resources = api.noncompliant_resources(&rule).await?;
            counts.push(RuleCount {
                account: account.to_string(),
                region: region.to_string(),
                rule,
                resources,
            });
        }
        Ok(counts)
    }
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

#[async_trait::async_trait]
impl<A: Apis + 'static> Handler for ComplianceNotifier<A> {
    async fn handle(&self, payload: Value, invocation: &mut Invocation) -> anyhow::Result<Value> {
        let trigger = events::parse(&payload, Utc::now())?;
        let policy = self.steward.policy.current().await;
        match trigger {
            Trigger::Change(change) => self.on_change(*change, &policy, invocation).await,
            Trigger::Digest(run) => self.on_digest(run, &policy, invocation).await,
        }
    }
}
