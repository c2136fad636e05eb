//! AWS Budgets adapter: read one budget, its notifications, and every budget
//! of an account (paginated). Budgets are global (endpoint in us-east-1); a
//! member account's budgets are read through `STEWARD_MEMBER_ROLE` assumed in
//! that account, the hub's own with its own role.

use aws_sdk_budgets::types::{NotificationType, ThresholdType};
use steward_shared::aws::AwsContext;
use steward_shared::sdk;

use crate::model::{AlertKind, BudgetFacts, ConfiguredAlert, Threshold, TimeUnit};

/// The IAM actions this adapter calls.
pub const PERMISSIONS: &[&str] = &[
    "budgets:ViewBudget",
    // DescribeBudget, DescribeBudgets and DescribeNotificationsForBudget are
    // all authorized by budgets:ViewBudget.
];

/// The region AWS Budgets is served from.
pub const BUDGETS_REGION: &str = "us-east-1";

/// The port: what the alerter reads from AWS Budgets.
#[async_trait::async_trait]
pub trait BudgetsApi: Send + Sync {
    /// One budget; `Ok(None)` when it does not exist.
    async fn budget(&self, account: &str, name: &str) -> anyhow::Result<Option<BudgetFacts>>;
    /// The notifications configured on a budget.
    async fn notifications(
        &self,
        account: &str,
        name: &str,
    ) -> anyhow::Result<Vec<ConfiguredAlert>>;
    /// Every budget of an account (all pages).
    async fn all_budgets(&self, account: &str) -> anyhow::Result<Vec<BudgetFacts>>;
}

/// AWS Budgets through the SDK, per account.
pub struct AwsBudgets {
    pub aws: AwsContext,
    /// Names the member-role session (the run's or event's id).
    pub session: String,
}

impl AwsBudgets {
    async fn client(&self, account: &str) -> anyhow::Result<aws_sdk_budgets::Client> {
        let config = self
            .aws
            .config_for(account, BUDGETS_REGION, &self.session)
            .await?;
        Ok(aws_sdk_budgets::Client::new(&config))
    }
}

fn amount(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Turns an SDK budget into the domain's facts.
pub fn facts(account: &str, b: &aws_sdk_budgets::types::Budget) -> BudgetFacts {
    let spend = b.calculated_spend();
    BudgetFacts {
        account: account.to_string(),
        name: b.budget_name().to_string(),
        budget_type: b.budget_type().as_str().to_string(),
        limit: b.budget_limit().and_then(|s| amount(s.amount())),
        unit: b
            .budget_limit()
            .map(|s| s.unit().to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "USD".into()),
        time_unit: TimeUnit::parse(b.time_unit().as_str()).unwrap_or(TimeUnit::Monthly),
        actual: spend
            .and_then(|s| s.actual_spend())
            .and_then(|s| amount(s.amount())),
        forecast: spend
            .and_then(|s| s.forecasted_spend())
            .and_then(|s| amount(s.amount())),
    }
}

#[async_trait::async_trait]
impl BudgetsApi for AwsBudgets {
    async fn budget(&self, account: &str, name: &str) -> anyhow::Result<Option<BudgetFacts>> {
        let client = self.client(account).await?;
        match client
            .describe_budget()
            .account_id(account)
            .budget_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.budget().map(|b| facts(account, b))),
            Err(e) if sdk::error_code(&e) == Some("NotFoundException") => Ok(None),
            Err(e) => Err(sdk::sdk_error("DescribeBudget", e)),
        }
    }

    async fn notifications(
        &self,
        account: &str,
        name: &str,
    ) -> anyhow::Result<Vec<ConfiguredAlert>> {
        let client = self.client(account).await?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .describe_notifications_for_budget()
                .account_id(account)
                .budget_name(name)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk::sdk_error("DescribeNotificationsForBudget", e))?;
            for n in page.notifications() {
                let kind = match n.notification_type() {
                    NotificationType::Actual => AlertKind::Actual,
                    NotificationType::Forecasted => AlertKind::Forecasted,
                    _ => continue,
                };
                let threshold = match n.threshold_type() {
                    Some(ThresholdType::AbsoluteValue) => Threshold::Absolute(n.threshold()),
                    _ => Threshold::Percent(n.threshold()),
                };
                out.push(ConfiguredAlert { kind, threshold });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn all_budgets(&self, account: &str) -> anyhow::Result<Vec<BudgetFacts>> {
        let client = self.client(account).await?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .describe_budgets()
                .account_id(account)
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk::sdk_error("DescribeBudgets", e))?;
            out.extend(page.budgets().iter().map(|b| facts(account, b)));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// A budget read back for its alert, and its configured notifications. A
/// failed read is logged and leaves the alert to the message's own text.
pub async fn read_back(
    budgets: &dyn BudgetsApi,
    account: &str,
    name: &str,
) -> (Option<BudgetFacts>, Vec<ConfiguredAlert>) {
    let facts = budgets.budget(account, name).await.unwrap_or_else(|e| {
        tracing::warn!(error = %format!("{e:#}"), "could not read the budget back; using the message's text");
        None
    });
    let configured = match &facts {
        Some(_) => budgets.notifications(account, name).await.unwrap_or_else(|e| {
            tracing::warn!(error = %format!("{e:#}"), "could not read the budget's notifications");
            Vec::new()
        }),
        None => Vec::new(),
    };
    (facts, configured)
}
