//! The tag enforcer's flow for one event: parse, read the resources, decide,
//! check the safety limits, apply (unless dry-run or the kill switch), report
//! to AWS Config or notify, and write the metrics line.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use steward_shared::context::NotifyOutcome;
use steward_shared::notify::{Category, Notification, Severity};
use steward_shared::observability::Metrics;
use steward_shared::{safety, tags, Policy, Steward};

use crate::config_rule::{self, AwsConfig, ConfigApi, Evaluation, Verdict};
use crate::decide::{self, Requirements, ResourcePlan};
use crate::events::{self, ConfigInvocation, ConfigRuleEvent, CreateCall, Trigger};
use crate::resources::{AwsResources, ResourceApi, ResourceKind, ResourceState};
use crate::FUNCTION_NAME;

/// Builds the per-account adapters (the real ones assume the member role).
#[async_trait::async_trait]
pub trait Apis: Send + Sync {
    async fn resources(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn ResourceApi>>;
    async fn config(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn ConfigApi>>;
}

/// The SDK adapters, reached through the shared AWS context.
pub struct AwsApis {
    aws: steward_shared::aws::AwsContext,
}

impl AwsApis {
    pub fn new(aws: steward_shared::aws::AwsContext) -> AwsApis {
        AwsApis { aws }
    }
}

#[async_trait::async_trait]
impl Apis for AwsApis {
    async fn resources(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn ResourceApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsResources::new(&config, account)))
    }

    async fn config(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn ConfigApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsConfig::new(&config)))
    }
}

/// The tag enforcer, built once per process.
pub struct TagEnforcer<A: Apis> {
    steward: Arc<Steward>,
    apis: A,
}

impl<A: Apis> TagEnforcer<A> {
    pub fn new(steward: Arc<Steward>, apis: A) -> TagEnforcer<A> {
        TagEnforcer { steward, apis }
    }

    /// Handles one invocation; the span puts the request and event ids on every log line.
    pub async fn invoke(&self, payload: Value, request_id: &str) -> anyhow::Result<Value>
    where
        A: 'static,
    {
        steward_shared::entry::invoke(self, FUNCTION_NAME, payload, request_id).await
    }

    async fn process(&self, payload: Value, metrics: &mut Metrics) -> anyhow::Result<Value> {
        let trigger = events::parse(&payload)?;
        let policy = self.steward.policy.current().await;
        match trigger {
            Trigger::CreateCall(call) => {
                tracing::Span::current().record("event_id", call.event_id.as_str());
                self.on_create(*call, &policy, metrics).await
            }
            Trigger::Config(event) => {
                tracing::Span::current().record("event_id", event.event_id.as_str());
                self.on_config(*event, &policy, metrics).await
            }
        }
    }

    async fn on_create(
        &self,
        call: CreateCall,
        policy: &Policy,
        metrics: &mut Metrics,
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
            tracing::warn!(resource = %missing.id, kind = ?missing.kind, "resource no longer exists; skipped");
        }
        metrics.resources_evaluated += found.len() as u64;
        let creator = decide::creator(&call.identity);
        let requirements =
            Requirements::from_policy(policy, &Default::default()).map_err(anyhow::Error::msg)?;
        let plans: Vec<(ResourceState, ResourcePlan)> = found
            .into_iter()
            .map(|state| {
                let plan = decide::plan_resource(
                    &state.tags,
                    creator.as_deref(),
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
            let mut n = Notification::new(
                Severity::High,
                Category::Tagging,
                "blast-radius",
                format!(
                    "{} {} would tag {changes} resources; limit {}",
                    call.event_name, call.event_id, exceeded.limit
                ),
            );
            n.details.push(exceeded.to_string());
            n.items = plans.iter().map(|(s, _)| s.arn.clone()).collect();
            n.next_steps
                .push("Check who made this call and why it created so many resources.".into());
            n.next_steps.push(
                "If it is intended, raise [limits] max_changes_per_run and replay the event."
                    .into(),
            );
            self.fill_common(&mut n, &call, None);
            if self.send(&n, policy).await? {
                metrics.notifications_sent += 1;
            }
            return Ok(json!({"event_id": call.event_id, "blocked": exceeded.to_string()}));
        }

        let mut failures: Vec<(String, String)> = Vec::new();
        let mut applied: Vec<String> = Vec::new();
        for (state, plan) in &plans {
            if plan.add.is_empty() {
                continue;
            }
            if !self.steward.mode().may_change() {
                tracing::info!(resource = %state.arn, add = ?plan.add, mode = %self.steward.mode(), "would add tags; changing nothing");
                continue;
            }
            match api.add_tags(state, &plan.add).await {
                Ok(()) => {
                    tracing::info!(resource = %state.arn, add = ?plan.add, "tags added");
                    metrics.actions_taken += 1;
                    applied.push(state.arn.clone());
                }
                Err(e) => {
                    tracing::error!(resource = %state.arn, error = %format!("{e:#}"), "adding tags failed");
                    metrics.actions_failed += 1;
                    failures.push((state.arn.clone(), format!("{e:#}")));
                }
            }
        }

        let noncompliant: Vec<&(ResourceState, ResourcePlan)> = plans
            .iter()
            .filter(|(_, p)| !p.compliance.is_compliant())
            .collect();
        let mut notification_outcome = "none";
        if (!noncompliant.is_empty() && policy.tagging.notify_noncompliant) || !failures.is_empty()
        {
            let n = self.create_notification(
                &call,
                creator.as_deref(),
                &plans,
                &noncompliant,
                &failures,
            );
            notification_outcome = if self.send(&n, policy).await? {
                metrics.notifications_sent += 1;
                "sent"
            } else {
                "duplicate"
            };
        }
        let report: Vec<Value> = plans
            .iter()
            .map(|(s, p)| {
                json!({
                    "arn": s.arn,
                    "add": p.add,
                    "exempt": p.exempt,
                    "compliant": p.compliance.is_compliant(),
                    "missing": p.compliance.missing,
                    "invalid": p.compliance.invalid.iter().map(|(k, v, _)| format!("{k}={v}")).collect::<Vec<_>>(),
                })
            })
            .collect();
        if !failures.is_empty() {
            anyhow::bail!(
                "adding tags failed for {} of {} resources (first: {}: {}); the retry will try again",
                failures.len(),
                plans.len(),
                failures[0].0,
                failures[0].1
            );
        }
        Ok(json!({
            "event_id": call.event_id,
            "mode": self.steward.mode().as_str(),
            "creator": creator,
            "tagged": applied,
            "resources": report,
            "notification": notification_outcome,
        }))
    }

    fn fill_common(&self, n: &mut Notification, call: &CreateCall, environment: Option<String>) {
        n.account = call.account.clone();
        n.region = call.region.clone();
        n.environment = environment;
        n.dedupe_key = call.event_id.clone();
        n.facts.insert("eventName".into(), call.event_name.clone());
        n.facts
            .insert("cloudTrailEventId".into(), call.event_id.clone());
    }

    fn create_notification(
        &self,
        call: &CreateCall,
        creator: Option<&str>,
        plans: &[(ResourceState, ResourcePlan)],
        noncompliant: &[&(ResourceState, ResourcePlan)],
        failures: &[(String, String)],
    ) -> Notification {
        let who = creator.unwrap_or("an AWS service or instance role");
        let severity = if failures.is_empty() {
            Severity::Low
        } else {
            Severity::Medium
        };
        let summary = if noncompliant.is_empty() {
            format!(
                "tagging failed on {} new resources from {}",
                failures.len(),
                call.event_name
            )
        } else {
            match noncompliant.len() {
                1 => format!("1 new resource created by {who} lacks required tags"),
                count => format!("{count} new resources created by {who} lack required tags"),
            }
        };
        let mut n = Notification::new(severity, Category::Tagging, "noncompliant", summary);
        n.details.push(format!(
            "{} created {} in account {} ({}) with {}.",
            who,
            match plans.len() {
                1 => "1 resource".to_string(),
                count => format!("{count} resources"),
            },
            call.account,
            call.region,
            call.event_name
        ));
        for (state, plan) in noncompliant {
            let mut line = format!(
                "{} ({}): {}",
                state.arn,
                kind_label(state.r.kind),
                plan.compliance.annotation()
            );
            if plan.exempt {
                line.push_str(" [steward:exempt, not changed]");
            }
            if !plan.add.is_empty() {
                let added: Vec<String> = plan.add.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let verb = if self.steward.mode().may_change() {
                    "steward added"
                } else {
                    "steward would add"
                };
                line.push_str(&format!("; {verb} {}", added.join(", ")));
            }
            n.items.push(line);
            n.related_resources.push(state.arn.clone());
        }
        for (arn, error) in failures {
            n.items.push(format!("{arn}: adding tags failed: {error}"));
        }
        let mut missing: Vec<String> = noncompliant
            .iter()
            .flat_map(|(_, p)| p.compliance.missing.clone())
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            n.next_steps.push(format!(
                "Ask {who} to add the missing tags: {}.",
                missing.join(", ")
            ));
        }
        if noncompliant
            .iter()
            .any(|(_, p)| !p.compliance.invalid.is_empty())
        {
            n.next_steps
                .push("Correct tag values that are not allowed (see each resource).".into());
        }
        if !failures.is_empty() {
            n.next_steps
                .push("Check the member role's tagging permissions; the event is retried.".into());
        }
        let envs: std::collections::BTreeSet<String> = plans
            .iter()
            .filter_map(|(s, p)| {
                p.add
                    .get(tags::ENV)
                    .or_else(|| s.tags.get(tags::ENV))
                    .cloned()
            })
            .collect();
        let environment = (envs.len() == 1).then(|| envs.into_iter().next().unwrap_or_default());
        n.thread_id = if noncompliant.len() == 1 {
            noncompliant[0].0.arn.clone()
        } else {
            call.event_id.clone()
        };
        n.facts.insert("createdBy".into(), who.to_string());
        self.fill_common(&mut n, call, environment);
        n
    }

    /// Publishes once per event; true when sent now, false for a duplicate.
    async fn send(&self, n: &Notification, policy: &Policy) -> anyhow::Result<bool> {
        Ok(matches!(
            self.steward.notify(n, policy).await?,
            NotifyOutcome::Sent(_)
        ))
    }

    async fn on_config(
        &self,
        event: ConfigRuleEvent,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Value> {
        let requirements = Requirements::from_policy(policy, &event.parameters).map_err(|e| {
            steward_shared::bad_event(format!("AWS Config rule {}: {e}", event.rule_name))
        })?;
        let config = self
            .apis
            .config(&event.account, &event.region, &event.event_id)
            .await?;
        let evaluations: Vec<Evaluation> = match &event.invocation {
            ConfigInvocation::Change(item) => vec![config_rule::evaluate_item(
                item,
                event.event_left_scope,
                &requirements,
            )],
            ConfigInvocation::Oversized(summary) => {
                let item = if summary.status.starts_with("ResourceDeleted")
                    || summary.status == "ResourceNotRecorded"
                    || event.event_left_scope
                {
                    None
                } else {
                    config
                        .latest_item(
                            &summary.resource_type,
                            &summary.resource_id,
                            summary.capture_time,
                        )
                        .await?
                };
                match item {
                    Some(item) => vec![config_rule::evaluate_item(
                        &item,
                        event.event_left_scope,
                        &requirements,
                    )],
                    None => vec![Evaluation {
                        resource_type: summary.resource_type.clone(),
                        resource_id: summary.resource_id.clone(),
                        verdict: Verdict::NotApplicable,
                        annotation: if event.event_left_scope {
                            "the resource left the rule's scope".into()
                        } else {
                            format!(
                                "the resource is deleted or not recorded ({})",
                                summary.status
                            )
                        },
                        ordering: summary.capture_time,
                    }],
                }
            }
            ConfigInvocation::Scheduled { notification_time } => {
                let api = self
                    .apis
                    .resources(&event.account, &event.region, &event.event_id)
                    .await?;
                let mut current = Vec::new();
                for kind in ResourceKind::ALL {
                    current.extend(api.list(kind).await?);
                }
                let previous = config.reported_resources(&event.rule_name).await?;
                config_rule::periodic_evaluations(
                    &current,
                    &previous,
                    &requirements,
                    *notification_time,
                )
            }
        };
        metrics.resources_evaluated += evaluations.len() as u64;
        let failed = config
            .put_evaluations(&event.result_token, &evaluations)
            .await?;
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &evaluations {
            *counts.entry(e.verdict.as_str()).or_default() += 1;
        }
        tracing::info!(rule = %event.rule_name, evaluations = evaluations.len(), ?counts, failed, "evaluations reported to AWS Config");
        if failed > 0 {
            metrics.actions_failed += failed as u64;
            anyhow::bail!(
                "AWS Config rejected {failed} of {} evaluations; the invocation is retried",
                evaluations.len()
            );
        }
        Ok(json!({
            "rule": event.rule_name,
            "evaluations": evaluations.iter().map(|e| json!({
                "resource_type": e.resource_type,
                "resource_id": e.resource_id,
                "compliance": e.verdict.as_str(),
                "annotation": e.annotation,
            })).collect::<Vec<_>>(),
        }))
    }
}

fn kind_label(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Ec2Instance => "EC2 instance",
        ResourceKind::Ec2Volume => "EBS volume",
        ResourceKind::RdsInstance => "RDS DB instance",
        ResourceKind::RdsCluster => "Aurora DB cluster",
        ResourceKind::AutoScalingGroup => "Auto Scaling group",
        ResourceKind::Secret => "secret",
        ResourceKind::S3Bucket => "S3 bucket",
    }
}

#[async_trait::async_trait]
impl<A: Apis + 'static> steward_shared::entry::Handler for TagEnforcer<A> {
    async fn handle(
        &self,
        payload: Value,
        invocation: &mut steward_shared::entry::Invocation,
    ) -> anyhow::Result<Value> {
        self.process(payload, &mut invocation.metrics).await
    }
}
