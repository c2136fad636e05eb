//! The domain types shared by the plan, the adapters and the report: budgets
//! as AWS Budgets returns them, thresholds, cost lines and the enrichment
//! that goes into a message. No SDK type appears here.

use chrono::NaiveDate;

/// Whether an alert is about actual or forecasted spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    Actual,
    Forecasted,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Actual => "ACTUAL",
            AlertKind::Forecasted => "FORECASTED",
        }
    }
}

/// A budget's period unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Daily,
    Monthly,
    Quarterly,
    Annually,
}

impl TimeUnit {
    pub fn parse(s: &str) -> Option<TimeUnit> {
        match s {
            "DAILY" => Some(TimeUnit::Daily),
            "MONTHLY" => Some(TimeUnit::Monthly),
            "QUARTERLY" => Some(TimeUnit::Quarterly),
            "ANNUALLY" => Some(TimeUnit::Annually),
            _ => None,
        }
    }
}

/// A budget as `DescribeBudget`/`DescribeBudgets` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetFacts {
    pub account: String,
    pub name: String,
    pub budget_type: String,
    /// The budgeted amount (`BudgetLimit`).
    pub limit: Option<f64>,
    pub unit: String,
    pub time_unit: TimeUnit,
    /// `CalculatedSpend.ActualSpend`.
    pub actual: Option<f64>,
    /// `CalculatedSpend.ForecastedSpend`.
    pub forecast: Option<f64>,
}

/// How a configured threshold is expressed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Percent of the budgeted amount.
    Percent(f64),
    /// An absolute amount.
    Absolute(f64),
}

impl Threshold {
    /// The amount this threshold stands for, given the budgeted amount.
    pub fn amount(self, limit: Option<f64>) -> Option<f64> {
        match self {
            Threshold::Percent(p) => limit.map(|l| l * p / 100.0),
            Threshold::Absolute(a) => Some(a),
        }
    }
}

/// One notification configured on a budget (`DescribeNotificationsForBudget`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfiguredAlert {
    pub kind: AlertKind,
    pub threshold: Threshold,
}

/// A budget period: `start` inclusive, `end` exclusive (first day of the next period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// One line of a cost breakdown: a key (service, account, tag value) and its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    pub key: String,
    pub amount: f64,
}

/// How a Cost Explorer query groups its result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupBy {
    Service,
    LinkedAccount,
    /// A cost allocation tag key.
    Tag(String),
}

impl GroupBy {
    pub fn label(&self) -> String {
        match self {
            GroupBy::Service => "service".into(),
            GroupBy::LinkedAccount => "account".into(),
            GroupBy::Tag(key) => format!("tag {key}"),
        }
    }
}

/// One GetCostAndUsage question: unblended cost in `[start, end)`, grouped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CostQuery {
    /// Only this linked account; `None`: every account Cost Explorer sees.
    pub account: Option<String>,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub group: GroupBy,
}

/// One GetCostForecast question: unblended cost from `start` to `end` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForecastQuery {
    pub account: Option<String>,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// A cost that moved between two equal spans.
#[derive(Debug, Clone, PartialEq)]
pub struct Mover {
    pub key: String,
    pub before: f64,
    pub now: f64,
}

impl Mover {
    pub fn change(&self) -> f64 {
        self.now - self.before
    }
}

/// What Cost Explorer told us about an account's month (best effort).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Breakdown {
    pub by_service: Option<Vec<CostLine>>,
    pub by_cost_center: Option<Vec<CostLine>>,
    pub by_env: Option<Vec<CostLine>>,
    pub movers: Option<Vec<Mover>>,
    pub forecast: Option<f64>,
    /// Share (0..=1) of spend without a `cost_center` tag.
    pub untagged_share: Option<f64>,
    /// Each part that could not be read, with the reason.
    pub missing: Vec<String>,
}

/// The weekly review's figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeeklyFigures {
    pub week: Option<Period>,
    pub total: Option<f64>,
    pub previous_total: Option<f64>,
    pub by_account: Option<Vec<CostLine>>,
    pub by_service: Option<Vec<CostLine>>,
    pub by_project: Option<Vec<CostLine>>,
    pub by_env: Option<Vec<CostLine>>,
    pub by_cost_center: Option<Vec<CostLine>>,
    pub movers: Option<Vec<Mover>>,
    pub untagged_share: Option<f64>,
    pub forecast: Option<f64>,
    pub missing: Vec<String>,
}

/// What Cost Explorer says about an anomaly (`GetAnomalies`).
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyFacts {
    pub id: String,
    pub total_impact: Option<f64>,
    pub actual_spend: Option<f64>,
    pub expected_spend: Option<f64>,
    pub root_causes: Vec<String>,
}
