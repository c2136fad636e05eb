//! The tag enforcer's flow for one event, orchestration only: parse, read
//! the facts through the adapters, plan (`plan.rs`), apply unless dry-run or
//! the kill switch, and report (`report.rs`) to the team or to AWS Config.

use std::sync::Arc;

use serde_json::{json, Value};
use steward_shared::entry::{Handler, Invocation};
use steward_shared::{safety, Policy, Steward};

pub use crate::apis::{Apis, AwsApis};
use crate::apply::{add_planned_tags, Applied};
use crate::events::{self, Trigger};
use crate::model::{ConfigInvocation, ConfigRuleEvent, CreateCall, ResourceType, TagCall};
use crate::plan::{self, Previous, Requirements};
use crate::report;
use crate::resources;

/// The tag enforcer, built once per process.
pub struct TagEnforcer<A: Apis> {
    steward: Arc<Steward>,
    apis: A,
    types: Vec<&'static ResourceType>,
}

impl<A: Apis> TagEnforcer<A> {
    pub fn new(steward: Arc<Steward>, apis: A) -> TagEnforcer<A> {
        TagEnforcer {
            steward,
            apis,
            types: resources::types(),
        }
    }

    fn kind_of(&self, kind: &str) -> Option<&'static ResourceType> {
        self.types.iter().copied().find(|t| t.kind == kind)
    }

    fn label(&self, kind: &str) -> &'static str {
        self.kind_of(kind).map(|t| t.label).unwrap_or("resource")
    }

    async fn on_create(
        &self,
        call: CreateCall,
        policy: &Policy,
        inv: &mut Invocation,
    ) -> anyhow::Result<Value> {
        if let Some(code) = &call.error_code {
            tracing::info!(event_name = %call.event_name, error_code = %code, "the call failed, so nothing was created; nothing to do");
            return Ok(
                json!({"event_id": call.event_id, "skipped": format!("{} failed with {code}", call.event_name)}),
            );
        }
        let api = self
            .apis
            .resources(&call.account, &call.region, &call.event_id)
            .await?;
        let found = api.read(&call.resources).await?;
        for missing in call
            .resources
            .iter()
            .filter(|r| !found.iter().any(|s| &s.r == *r))
        {
            tracing::warn!(resource = %missing.id, kind = missing.kind, "resource no longer exists; skipped");
        }
        inv.metrics.resources_evaluated += found.len() as u64;
        let creator = plan::creator(&call.identity);
        let requirements =
            Requirements::from_policy(policy, &Default::default()).map_err(anyhow::Error::msg)?;
        let plans: Vec<_> = found
            .into_iter()
            .map(|state| {
                let plan = plan::plan_resource(
                    &state.tags,
                    creator.as_ref(),
                    &call.account,
                    policy,
                    &requirements,
                );
                (state, plan)
            })
            .collect();
        let changes = plans.iter().filter(|(_, p)| !p.add.is_empty()).count();
        if let Err(exceeded) =
            safety::check_blast_radius(changes, policy.limits.max_changes_per_run)
        {
            tracing::error!(
                planned = changes,
                limit = policy.limits.max_changes_per_run,
                "blast-radius limit exceeded; changing nothing"
            );
            let n = report::blast_radius(&call, &exceeded, &plans);
            self.steward.notify_counted(&n, policy, inv).await?;
            return Ok(json!({"event_id": call.event_id, "blocked": exceeded.to_string()}));
        }

        let mode = self.steward.mode();
        let Applied { applied, failures } = add_planned_tags(&api, &plans, mode, inv).await;

        let noncompliant = plans.iter().any(|(_, p)| !p.compliance.is_compliant());
        let mut outcome = "none";
        if (noncompliant && policy.tagging.notify_noncompliant) || !failures.is_empty() {
            let label = |kind: &str| self.label(kind);
            let n = report::created(&call, creator.as_ref(), &plans, &failures, &label, mode);
            outcome = self.steward.notify_counted(&n, policy, inv).await?.as_str();
        }
        if let Some((arn, error)) = failures.first() {
            anyhow::bail!(
                "adding tags failed for {} of {} resources (first: {arn}: {error}); the retry will try again",
                failures.len(),
                plans.len(),
            );
        }
        Ok(report::created_response(
            &call,
            creator.as_ref(),
            &plans,
            &applied,
            mode,
            outcome,
        ))
    }

    async fn on_tag_call(
        &self,
        call: TagCall,
        policy: &Policy,
        inv: &mut Invocation,
    ) -> anyhow::Result<Value> {
        if let Some(code) = &call.error_code {
            tracing::info!(event_name = %call.event_name, error_code = %code, "the tagging call failed; nothing changed");
            return Ok(
                json!({"event_id": call.event_id, "skipped": format!("{} failed with {code}", call.event_name)}),
            );
        }
        let own_role = self.apis.own_role().await;
        let member_role = self.steward.settings.member_role.as_deref();
        if plan::is_steward_caller(&call.identity, member_role, own_role.as_deref()) {
            tracing::info!(event_name = %call.event_name, "steward's own tag write; not reported");
            return Ok(json!({"event_id": call.event_id, "skipped": "steward's own tag write"}));
        }
        let watched: Vec<_> = call
            .changes
            .iter()
            .filter(|(_, changes)| !plan::watched(changes).is_empty())
            .collect();
        if watched.is_empty() {
            return Ok(json!({"event_id": call.event_id, "skipped": "no governance tag changed"}));
        }
        inv.metrics.resources_evaluated += watched.len() as u64;
        // Enrichment never loses the notice: a failed lookup is said, not fatal.
        let mut missing: Vec<String> = Vec::new();
        let refs: Vec<_> = watched.iter().map(|(r, _)| r.clone()).collect();
        let current = match self
            .apis
            .resources(&call.account, &call.region, &call.event_id)
            .await
        {
            Ok(api) => api.read(&refs).await,
            Err(e) => Err(e),
        }
        .unwrap_or_else(|e| {
            missing.push(format!("The resources could not be read now: {e:#}."));
            Vec::new()
        });
        let config = self
            .apis
            .config(&call.account, &call.region, &call.event_id)
            .await;
        let mut judged = Vec::new();
        let mut arns = Vec::new();
        for (r, changes) in watched {
            let state = current.iter().find(|s| &s.r == r);
            arns.extend(state.map(|s| s.arn.clone()));
            let config_type = self.kind_of(r.kind).map(|t| t.config_type);
            let config_id = state.map(|s| s.config_id.as_str()).unwrap_or(r.id.as_str());
            let before = match &config {
                Ok(c) => c
                    .tags_before(config_type.unwrap_or_default(), config_id, call.event_time)
                    .await
                    .map_err(|e| format!("{e:#}")),
                Err(e) => Err(format!("{e:#}")),
            };
            let after = plan::tags_after(state.map(|s| &s.tags), changes);
            for (key, now) in plan::watched(changes) {
                let previous = Previous::from_history(&before, key);
                judged.push(plan::judge_change(
                    &r.id,
                    self.label(r.kind),
                    key,
                    previous,
                    now,
                    &after,
                    policy,
                    call.event_time,
                ));
            }
        }
        let who = plan::caller_name(&call.identity);
        let n = report::governance_changes(&call, &who, &judged, &arns, &missing);
        let outcome = self.steward.notify_counted(&n, policy, inv).await?;
        Ok(report::tag_change_response(
            &call,
            &who,
            &n,
            &judged,
            outcome.as_str(),
        ))
    }

    async fn on_config(
        &self,
        event: ConfigRuleEvent,
        policy: &Policy,
        inv: &mut Invocation,
    ) -> anyhow::Result<Value> {
        let requirements = Requirements::from_policy(policy, &event.parameters).map_err(|e| {
            steward_shared::bad_event(format!("AWS Config rule {}: {e}", event.rule_name))
        })?;
        let config = self
            .apis
            .config(&event.account, &event.region, &event.event_id)
            .await?;
        let left = event.event_left_scope;
        let evaluations = match &event.invocation {
            ConfigInvocation::Change(item) => vec![plan::evaluate_item(item, left, &requirements)],
            ConfigInvocation::Oversized(summary) => {
                match plan::oversized_not_applicable(summary, left, None) {
                    Some(not_applicable) => vec![not_applicable],
                    None => match config
                        .latest_item(
                            &summary.resource_type,
                            &summary.resource_id,
                            summary.capture_time,
                        )
                        .await?
                    {
                        Some(item) => vec![plan::evaluate_item(&item, left, &requirements)],
                        None => plan::oversized_not_applicable(summary, left, Some(None))
                            .into_iter()
                            .collect(),
                    },
                }
            }
            ConfigInvocation::Scheduled { notification_time } => {
                let api = self
                    .apis
                    .resources(&event.account, &event.region, &event.event_id)
                    .await?;
                let current = api.list_all().await?;
                let previous = config.reported_resources(&event.rule_name).await?;
                plan::periodic_evaluations(&current, &previous, &requirements, *notification_time)
            }
        };
        inv.metrics.resources_evaluated += evaluations.len() as u64;
        let counts = plan::verdict_counts(&evaluations);
        let mode = self.steward.mode();
        let reported = mode.may_change();
        if reported {
            let failed = config
                .put_evaluations(&event.result_token, &evaluations)
                .await?;
            tracing::info!(rule = %event.rule_name, evaluations = evaluations.len(), ?counts, failed, "evaluations reported to AWS Config");
            if failed > 0 {
                inv.metrics.actions_failed += failed as u64;
                anyhow::bail!(
                    "AWS Config rejected {failed} of {} evaluations; the invocation is retried",
                    evaluations.len()
                );
            }
        } else {
            tracing::info!(rule = %event.rule_name, evaluations = evaluations.len(), ?counts, %mode, "would report evaluations to AWS Config; reporting nothing");
            let n = report::config_not_reported(&event, &evaluations);
            self.steward.notify_counted(&n, policy, inv).await?;
        }
        Ok(report::config_response(
            &event,
            &evaluations,
            mode,
            reported,
        ))
    }
}

#[async_trait::async_trait]
impl<A: Apis + 'static> Handler for TagEnforcer<A> {
    async fn handle(&self, payload: Value, inv: &mut Invocation) -> anyhow::Result<Value> {
        let trigger = events::parse(&payload, &self.types)?;
        let policy = self.steward.policy.current().await;
        match trigger {
            Trigger::CreateCall(call) => {
                inv.set_event_id(&call.event_id);
                self.on_create(*call, &policy, inv).await
            }
            Trigger::TagCall(call) => {
                inv.set_event_id(&call.event_id);
                self.on_tag_call(*call, &policy, inv).await
            }
            Trigger::Config(event) => {
                inv.set_event_id(&event.event_id);
                self.on_config(*event, &policy, inv).await
            }
        }
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
