//! The budget alerter's flow for one invocation: parse the trigger; for a
//! Budgets alert read the budget back, decide, enrich, request the dev stop
//! when the policy asks for it, and notify once per budget, threshold and
//! period; for an anomaly confirm it with Cost Explorer and notify once per
//! anomaly id (whichever path delivers it first); for the daily check walk
//! every budget of every target account; for the weekly review send one
//! digest. Dry-run and the kill switch stop after the plan: they notify
//! (marked) but send nothing to the work queue and record nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_shared::entry::{Handler, Invocation};
use steward_shared::trigger::ScheduledRun;
use steward_shared::{Policy, Steward};

use crate::budgets::{read_back, AwsBudgets, BudgetsApi};
use crate::costexplorer::{CostApi, CostSource, RunCache};
use crate::events::{self, AnomalyAlert, BudgetAlert, Message, Trigger};
use crate::model::BudgetFacts;
use crate::plan::{self, AlertDecision, StopDecision};
use crate::queue::{request_stops, SqsWorkQueue, WorkQueue};
use crate::{enrich, report};

/// The budget alerter, built once per process.
pub struct Alerter {
    steward: Arc<Steward>,
    budgets: Arc<dyn BudgetsApi>,
    cost: CostSource,
    queue: Option<Arc<dyn WorkQueue>>,
}

impl Alerter {
    /// The alerter on the real SDK adapters: Cost Explorer of the policy's
    /// account (each run), budgets per account, the work queue when set.
    pub fn from_steward(steward: Arc<Steward>) -> Alerter {
        let base = steward.aws.base();
        let budgets = Arc::new(AwsBudgets {
            aws: steward.aws.clone(),
            session: "budgets".into(),
        });
        let queue = steward.settings.work_queue.clone().map(|url| {
            Arc::new(SqsWorkQueue {
                client: aws_sdk_sqs::Client::new(base),
                url,
            }) as Arc<dyn WorkQueue>
        });
        let cost = CostSource::Aws(Box::new(steward.aws.clone()));
        Alerter {
            steward,
            budgets,
            cost,
            queue,
        }
    }

    /// The alerter on the given adapters (tests).
    pub fn new(
        steward: Arc<Steward>,
        budgets: Arc<dyn BudgetsApi>,
        cost: Arc<dyn CostApi>,
        queue: Option<Arc<dyn WorkQueue>>,
    ) -> Alerter {
        Alerter {
            steward,
            budgets,
            cost: CostSource::Given(cost),
            queue,
        }
    }

    async fn on_budget_alert(
        &self,
        alert: BudgetAlert,
        policy: &Policy,
        cache: &RunCache<'_>,
        inv: &mut Invocation,
    ) -> anyhow::Result<Value> {
        inv.set_event_id(&alert.message_id);
        let (facts, configured) =
            read_back(self.budgets.as_ref(), &alert.account, &alert.budget_name).await;
        inv.metrics.resources_evaluated += 1;
        let decision = plan::decide_budget_alert(
            &alert,
            facts.as_ref(),
            &configured,
            &policy.budgets,
            alert.time.date_naive(),
        );
        self.alert(decision, facts.as_ref(), policy, cache, alert.time, inv)
            .await
    }

    /// Enriches, requests the dev stop when decided, and notifies one budget alert.
    async fn alert(
        &self,
        decision: AlertDecision,
        facts: Option<&BudgetFacts>,
        policy: &Policy,
        cache: &RunCache<'_>,
        now: DateTime<Utc>,
        inv: &mut Invocation,
    ) -> anyhow::Result<Value> {
        if self.steward.already_notified(&decision.dedupe_key).await? {
            tracing::info!(key = %decision.dedupe_key, "already alerted for this budget, threshold and period");
            return Ok(json!({"budget": decision.budget, "notification": "duplicate"}));
        }
        let items = policy.budgets.breakdown_items as usize;
        let breakdown = enrich::breakdown(cache, &decision.account, now.date_naive(), items).await;
        let governed = plan::governed(&decision.account, self.steward.aws.own_account(), policy);
        let mut stop = plan::dev_stop(
            &decision,
            facts,
            policy,
            governed,
            &plan::regions(self.steward.aws.own_region(), policy),
            now,
        );
        if let StopDecision::Stop(requests) = &stop {
            match &self.queue {
                None => stop = StopDecision::Blocked(
                    "STEWARD_WORK_QUEUE is not set, so the off-hours scheduler could not be asked"
                        .into(),
                ),
                Some(queue) => request_stops(&self.steward, queue.as_ref(), requests, inv).await?,
            }
        }
        let n = report::budget_alert(
            &decision,
            &breakdown,
            &stop,
            policy.environment_of_account(&decision.account),
            self.steward.aws.own_region(),
        );
        let outcome = self.steward.notify_counted(&n, policy, inv).await?;
        Ok(json!({
            "budget": decision.budget,
            "account": decision.account,
            "alert_type": decision.kind.as_str(),
            "severity": decision.severity.as_str(),
            "notification": outcome.as_str(),
            "dev_stop": matches!(stop, StopDecision::Stop(_)),
            "missing": breakdown.missing,
        }))
    }

    async fn on_anomaly(
        &self,
        a: AnomalyAlert,
        policy: &Policy,
        cache: &RunCache<'_>,
        inv: &mut Invocation,
    ) -> anyhow::Result<Value> {
        inv.set_event_id(&a.anomaly_id);
        let key = format!("anomaly#{}", a.anomaly_id);
        if self.steward.already_notified(&key).await? {
            tracing::info!(anomaly = %a.anomaly_id, "anomaly already notified (through the other path or a retry)");
            return Ok(json!({"anomaly": a.anomaly_id, "notification": "duplicate"}));
        }
        inv.metrics.resources_evaluated += 1;
        let start = a
            .start_date
            .unwrap_or_else(|| a.time.date_naive() - chrono::Duration::days(1));
        let found = cache.anomalies(&a.monitor_arn, start, a.end_date).await;
        let confirmed = match &found {
            Ok(list) => Ok(list.iter().find(|f| f.id == a.anomaly_id)),
            Err(e) => Err(e.as_str()),
        };
        let impact = confirmed
            .ok()
            .flatten()
            .and_then(|f| f.total_impact)
            .or(a.total_impact);
        let severity = plan::anomaly_severity(impact, &policy.budgets);
        let n = report::anomaly(
            &a,
            confirmed,
            severity,
            policy.environment_of_account(&a.account),
            self.steward.aws.own_region(),
        );
        let outcome = self.steward.notify_counted(&n, policy, inv).await?;
        Ok(
            json!({"anomaly": a.anomaly_id, "severity": severity.as_str(), "notification": outcome.as_str()}),
        )
    }

    async fn daily_check(
        &self,
        run: &ScheduledRun,
        policy: &Policy,
        cache: &RunCache<'_>,
        inv: &mut Invocation,
    ) -> anyhow::Result<Value> {
        let today = run.time.date_naive();
        let mut alerts = Vec::new();
        let mut failures = Vec::new();
        for account in plan::accounts(self.steward.aws.own_account(), policy) {
            let budgets = match self.budgets.all_budgets(&account).await {
                Ok(b) => b,
                Err(e) => {
                    failures.push(format!("{account}: {e:#}"));
                    continue;
                }
            };
            inv.metrics.resources_evaluated += budgets.len() as u64;
            for facts in budgets {
                if plan::daily_check(&facts, &[], &policy.budgets, today).is_empty() {
                    continue;
                }
                let configured = self
                    .budgets
                    .notifications(&account, &facts.name)
                    .await
                    .unwrap_or_default();
                for decision in plan::daily_check(&facts, &configured, &policy.budgets, today) {
                    alerts.push(
                        self.alert(decision, Some(&facts), policy, cache, run.time, inv)
                            .await?,
                    );
                }
            }
        }
        if !failures.is_empty() {
            let n = report::daily_check_failures(&failures, &run.id);
            self.steward.notify_counted(&n, policy, inv).await?;
        }
        Ok(
            json!({"job": "daily-check", "alerts": alerts, "failures": failures,
                  "cost_explorer_requests": cache.requests()}),
        )
    }

    async fn weekly_review(
        &self,
        run: &ScheduledRun,
        policy: &Policy,
        cache: &RunCache<'_>,
        inv: &mut Invocation,
    ) -> anyhow::Result<Value> {
        let (week, _) = plan::review_weeks(run.time.date_naive());
        if self
            .steward
            .already_notified(&format!("weekly-review#{}", week.start))
            .await?
        {
            return Ok(json!({"job": "weekly-review", "notification": "duplicate"}));
        }
        let items = policy.budgets.breakdown_items as usize;
        let figures = enrich::weekly(cache, run.time.date_naive(), items).await;
        let n = report::weekly_review(&figures, &run.id, items);
        let outcome = self.steward.notify_counted(&n, policy, inv).await?;
        Ok(
            json!({"job": "weekly-review", "notification": outcome.as_str(),
                  "missing": figures.missing, "cost_explorer_requests": cache.requests()}),
        )
    }
}

#[async_trait::async_trait]
impl Handler for Alerter {
    async fn handle(&self, payload: Value, inv: &mut Invocation) -> anyhow::Result<Value> {
        let trigger = events::parse(&payload, Utc::now())?;
        let policy = self.steward.policy.current().await;
        let cost = self.cost.for_run(&policy, &inv.request_id).await;
        let cache = RunCache::new(cost.as_ref());
        match trigger {
            Trigger::Scheduled(run) => {
                inv.set_event_id(&run.id);
                match run.job.as_str() {
                    "weekly-review" => self.weekly_review(&run, &policy, &cache, inv).await,
                    _ => self.daily_check(&run, &policy, &cache, inv).await,
                }
            }
            Trigger::Messages(messages) => {
                let mut results = Vec::new();
                for message in messages {
                    results.push(match message {
                        Message::Budget(a) => self.on_budget_alert(a, &policy, &cache, inv).await?,
                        Message::Anomaly(a) => self.on_anomaly(a, &policy, &cache, inv).await?,
                    });
                }
                Ok(json!({"results": results, "cost_explorer_requests": cache.requests()}))
            }
        }
    }
}
