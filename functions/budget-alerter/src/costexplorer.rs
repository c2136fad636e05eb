//! Cost Explorer adapter: cost by service, account or tag
//! (`GetCostAndUsage`, paginated), the forecast to the end of a period
//! (`GetCostForecast`) and anomalies of a monitor (`GetAnomalies`).
//!
//! Every request costs money, so each run wraps the client in a
//! [`RunCache`]: the same question is asked at most once per run, and a
//! failed or throttled answer is remembered for the run too (the message
//! says that part is missing instead of asking again). Only the management
//! account's Cost Explorer sees every account's costs: [`CostSource`] reads
//! the one the policy names (`budgets.cost_explorer_account`) through its
//! member role.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_costexplorer::types::{
    AnomalyDateInterval, DateInterval, Dimension, DimensionValues, Expression, Granularity,
    GroupDefinition, GroupDefinitionType, Metric,
};
use chrono::NaiveDate;
use steward_shared::aws::AwsContext;
use steward_shared::{sdk, Policy};

use crate::model::{AnomalyFacts, CostLine, CostQuery, ForecastQuery, GroupBy};

/// The IAM actions this adapter calls.
pub const PERMISSIONS: &[&str] = &[
    "ce:GetCostAndUsage",
    "ce:GetCostForecast",
    "ce:GetAnomalies",
];

/// The port: what the alerter asks Cost Explorer.
#[async_trait::async_trait]
pub trait CostApi: Send + Sync {
    async fn cost(&self, query: &CostQuery) -> anyhow::Result<Vec<CostLine>>;
    async fn forecast(&self, query: &ForecastQuery) -> anyhow::Result<f64>;
    /// Anomalies of a monitor that started in `[start, end]`.
    async fn anomalies(
        &self,
        monitor_arn: &str,
        start: NaiveDate,
        end: Option<NaiveDate>,
    ) -> anyhow::Result<Vec<AnomalyFacts>>;
}

/// Cost Explorer through the SDK.
pub struct AwsCostExplorer {
    pub client: aws_sdk_costexplorer::Client,
}

/// Cost Explorer's only endpoint.
const COST_EXPLORER_REGION: &str = "us-east-1";

/// Where the alerter reads Cost Explorer: an API it was given (tests), or
/// AWS's, in the policy's `budgets.cost_explorer_account`.
pub enum CostSource {
    Given(Arc<dyn CostApi>),
    Aws(Box<AwsContext>),
}

impl CostSource {
    /// This run's Cost Explorer. When the account cannot be reached, every
    /// answer is that failure: alerts still go out and say what is missing.
    pub async fn for_run(&self, policy: &Policy, run_id: &str) -> Arc<dyn CostApi> {
        let aws = match self {
            CostSource::Given(api) => return api.clone(),
            CostSource::Aws(aws) => aws,
        };
        let account = match policy.budgets.cost_explorer_account.as_str() {
            "" => aws.own_account().to_string(),
            named => named.to_string(),
        };
        match aws.config_for(&account, COST_EXPLORER_REGION, run_id).await {
            Ok(config) => Arc::new(AwsCostExplorer {
                client: aws_sdk_costexplorer::Client::new(&config),
            }),
            Err(e) => Arc::new(Unreachable(format!(
                "Cost Explorer of account {account} is unreachable: {e}"
            ))),
        }
    }
}

/// Cost Explorer that could not be reached: each question gets the reason.
struct Unreachable(String);

#[async_trait::async_trait]
impl CostApi for Unreachable {
    async fn cost(&self, _: &CostQuery) -> anyhow::Result<Vec<CostLine>> {
        Err(anyhow::anyhow!(self.0.clone()))
    }
    async fn forecast(&self, _: &ForecastQuery) -> anyhow::Result<f64> {
        Err(anyhow::anyhow!(self.0.clone()))
    }
    async fn anomalies(
        &self,
        _: &str,
        _: NaiveDate,
        _: Option<NaiveDate>,
    ) -> anyhow::Result<Vec<AnomalyFacts>> {
        Err(anyhow::anyhow!(self.0.clone()))
    }
}

const METRIC: &str = "UnblendedCost";

fn interval(start: NaiveDate, end: NaiveDate) -> anyhow::Result<DateInterval> {
    Ok(DateInterval::builder()
        .start(start.format("%Y-%m-%d").to_string())
        .end(end.format("%Y-%m-%d").to_string())
        .build()?)
}

fn account_filter(account: &Option<String>) -> Option<Expression> {
    account.as_ref().map(|a| {
        Expression::builder()
            .dimensions(
                DimensionValues::builder()
                    .key(Dimension::LinkedAccount)
                    .values(a.clone())
                    .build(),
            )
            .build()
    })
}

fn group_definition(group: &GroupBy) -> GroupDefinition {
    let (kind, key) = match group {
        GroupBy::Service => (GroupDefinitionType::Dimension, "SERVICE".to_string()),
        GroupBy::LinkedAccount => (GroupDefinitionType::Dimension, "LINKED_ACCOUNT".to_string()),
        GroupBy::Tag(tag) => (GroupDefinitionType::Tag, tag.clone()),
    };
    GroupDefinition::builder().r#type(kind).key(key).build()
}

/// A group key as a line key: tag groups come back as `key$value` (`key$` when untagged).
fn line_key(group: &GroupBy, raw: &str) -> String {
    match group {
        GroupBy::Tag(tag) => raw
            .strip_prefix(&format!("{tag}$"))
            .unwrap_or(raw)
            .to_string(),
        _ => raw.to_string(),
    }
}

#[async_trait::async_trait]
impl CostApi for AwsCostExplorer {
    async fn cost(&self, query: &CostQuery) -> anyhow::Result<Vec<CostLine>> {
        let mut sums: HashMap<String, f64> = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_cost_and_usage()
                .time_period(interval(query.start, query.end)?)
                .granularity(Granularity::Monthly)
                .metrics(METRIC)
                .group_by(group_definition(&query.group))
                .set_filter(account_filter(&query.account))
                .set_next_page_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    let throttled = sdk::is_throttling(&e);
                    let err = sdk::sdk_error("GetCostAndUsage", e);
                    if throttled {
                        err.context("Cost Explorer throttled the request")
                    } else {
                        err
                    }
                })?;
            for result in page.results_by_time() {
                for group in result.groups() {
                    let key = group
                        .keys()
                        .first()
                        .map(|k| line_key(&query.group, k))
                        .unwrap_or_default();
                    let amount = group
                        .metrics()
                        .and_then(|m| m.get(METRIC))
                        .and_then(|v| v.amount())
                        .and_then(|a| a.parse::<f64>().ok())
                        .filter(|a| a.is_finite())
                        .unwrap_or(0.0);
                    *sums.entry(key).or_default() += amount;
                }
            }
            match page.next_page_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        let mut lines: Vec<CostLine> = sums
            .into_iter()
            .map(|(key, amount)| CostLine { key, amount })
            .collect();
        lines.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(lines)
    }

    async fn forecast(&self, query: &ForecastQuery) -> anyhow::Result<f64> {
        let out = self
            .client
            .get_cost_forecast()
            .time_period(interval(query.start, query.end)?)
            .metric(Metric::UnblendedCost)
            .granularity(Granularity::Monthly)
            .set_filter(account_filter(&query.account))
            .send()
            .await
            .map_err(|e| sdk::sdk_error("GetCostForecast", e))?;
        out.total()
            .and_then(|t| t.amount())
            .and_then(|a| a.parse::<f64>().ok())
            .filter(|a| a.is_finite())
            .ok_or_else(|| anyhow::anyhow!("GetCostForecast returned no total"))
    }

    async fn anomalies(
        &self,
        monitor_arn: &str,
        start: NaiveDate,
        end: Option<NaiveDate>,
    ) -> anyhow::Result<Vec<AnomalyFacts>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_anomalies()
                .monitor_arn(monitor_arn)
                .date_interval(
                    AnomalyDateInterval::builder()
                        .start_date(start.format("%Y-%m-%d").to_string())
                        .set_end_date(end.map(|e| e.format("%Y-%m-%d").to_string()))
                        .build()?,
                )
                .set_next_page_token(token.take())
                .send()
                .await
                .map_err(|e| sdk::sdk_error("GetAnomalies", e))?;
            for a in page.anomalies() {
                out.push(AnomalyFacts {
                    id: a.anomaly_id().to_string(),
                    total_impact: a.impact().map(|i| i.total_impact()),
                    actual_spend: a.impact().and_then(|i| i.total_actual_spend()),
                    expected_spend: a.impact().and_then(|i| i.total_expected_spend()),
                    root_causes: a
                        .root_causes()
                        .iter()
                        .map(|c| {
                            [
                                c.service().map(|s| format!("service {s}")),
                                c.linked_account().map(|s| format!("account {s}")),
                                c.region().map(|s| format!("region {s}")),
                                c.usage_type().map(|s| format!("usage type {s}")),
                            ]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(", ")
                        })
                        .collect(),
                });
            }
            match page.next_page_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// One run's view of Cost Explorer: each distinct question asked once;
/// answers and failures are remembered for the run. `requests()` counts the
/// requests actually sent.
pub struct RunCache<'a> {
    inner: &'a dyn CostApi,
    costs: Mutex<HashMap<CostQuery, Result<Vec<CostLine>, String>>>,
    forecasts: Mutex<HashMap<ForecastQuery, Result<f64, String>>>,
    requests: Mutex<usize>,
}

impl<'a> RunCache<'a> {
    pub fn new(inner: &'a dyn CostApi) -> RunCache<'a> {
        RunCache {
            inner,
            costs: Mutex::default(),
            forecasts: Mutex::default(),
            requests: Mutex::default(),
        }
    }

    fn count(&self) {
        if let Ok(mut n) = self.requests.lock() {
            *n += 1;
        }
    }

    /// Requests sent to Cost Explorer in this run.
    pub fn requests(&self) -> usize {
        self.requests.lock().map(|n| *n).unwrap_or(0)
    }

    pub async fn cost(&self, query: &CostQuery) -> Result<Vec<CostLine>, String> {
        if let Some(hit) = self.costs.lock().ok().and_then(|c| c.get(query).cloned()) {
            return hit;
        }
        self.count();
        let answer = self.inner.cost(query).await.map_err(|e| format!("{e:#}"));
        if let Ok(mut c) = self.costs.lock() {
            c.insert(query.clone(), answer.clone());
        }
        answer
    }

    pub async fn forecast(&self, query: &ForecastQuery) -> Result<f64, String> {
        if let Some(hit) = self
            .forecasts
            .lock()
            .ok()
            .and_then(|c| c.get(query).cloned())
        {
            return hit;
        }
        self.count();
        let answer = self
            .inner
            .forecast(query)
            .await
            .map_err(|e| format!("{e:#}"));
        if let Ok(mut c) = self.forecasts.lock() {
            c.insert(query.clone(), answer.clone());
        }
        answer
    }

    pub async fn anomalies(
        &self,
        monitor_arn: &str,
        start: NaiveDate,
        end: Option<NaiveDate>,
    ) -> Result<Vec<AnomalyFacts>, String> {
        self.count();
        self.inner
            .anomalies(monitor_arn, start, end)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}
