//! Demo section: an AWS Budgets alert for the dev account becomes one message
//! with the cost by service and by owner, the movers and the forecast; the
//! same alert delivered again sends nothing; a cost anomaly reported by SNS
//! and by EventBridge reaches the team once.

use serde_json::{json, Value};

use super::{heading, show_chat, show_email, step, DemoStack};
use crate::event;

fn ce_result(groups: &[(&str, f64)]) -> Value {
    json!({
        "ResultsByTime": [{
            "TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"},
            "Total": {},
            "Groups": groups.iter().map(|(k, a)| json!({
                "Keys": [k],
                "Metrics": {"UnblendedCost": {"Amount": format!("{a:.2}"), "Unit": "USD"}}
            })).collect::<Vec<_>>(),
            "Estimated": true
        }],
        "DimensionValueAttributes": []
    })
}

pub async fn run(stack: &DemoStack) -> anyhow::Result<()> {
    heading(
        "budget-alerter: a budget breach and a cost anomaly, with what is spending and who owns it",
    );
    stack
        .moto
        .post(
            "/_steward/budgets/create",
            &json!({"account_id": "123456789012", "budget": {
                "BudgetName": "dev-monthly", "BudgetType": "COST", "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": "100.0", "Unit": "USD"},
                "CalculatedSpend": {"ActualSpend": {"Amount": "112.5", "Unit": "USD"},
                                    "ForecastedSpend": {"Amount": "140", "Unit": "USD"}}},
                "notifications": [{"Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                                                    "Threshold": 80.0, "ThresholdType": "PERCENTAGE"},
                                   "Subscribers": [{"SubscriptionType": "SNS", "Address": "arn:aws:sns:us-east-1:123456789012:steward-cost-events"}]}]}),
        )
        .await?;
    step("budget dev-monthly (100 USD, 80% ACTUAL alert) in the dev account has spent 112.50 USD");
    stack
        .moto
        .seed_cost_and_usage(&[
            ce_result(&[
                ("Amazon Elastic Compute Cloud - Compute", 70.0),
                ("Amazon Relational Database Service", 30.0),
                ("Amazon Simple Storage Service", 12.5),
            ]),
            ce_result(&[("cost_center$team-a", 90.0), ("cost_center$", 22.5)]),
            ce_result(&[("env$dev", 100.0), ("env$", 12.5)]),
            ce_result(&[
                ("Amazon Elastic Compute Cloud - Compute", 20.0),
                ("Amazon Relational Database Service", 28.0),
            ]),
        ])
        .await?;
    stack
        .moto
        .post("/_steward/ce/forecast", &json!({"amount": "150.00"}))
        .await?;
    stack
        .moto
        .post(
            "/_steward/ce/anomalies",
            &json!({"anomalies": [{
                "AnomalyId": "12345678-abcd-ef12-3456-987654321a12",
                "AnomalyStartDate": "2026-11-29", "AnomalyEndDate": "2026-11-30",
                "MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/abcdef12-1234-4ea0-84cc-918a97d736ef",
                "AnomalyScore": {"MaxScore": 0.47, "CurrentScore": 0.47},
                "Impact": {"MaxImpact": 151.0, "TotalImpact": 151.0, "TotalActualSpend": 1301.0, "TotalExpectedSpend": 1150.0},
                "RootCauses": [{"Service": "Amazon Elastic Compute Cloud - Compute", "Region": "us-east-1",
                                "LinkedAccount": "123456789012", "UsageType": "USE1-BoxUsage:m5.4xlarge"}]}]}),
        )
        .await?;
    let mut f = stack.function("budget-alerter", &[]).await?;

    let out = f.invoke(&event("budget-sns-actual.json")).await?.response();
    step(&format!(
        "AWS Budgets' plain-text SNS message -> {} ({} Cost Explorer requests)",
        out["results"][0]["notification"], out["cost_explorer_requests"]
    ));
    let again = f.invoke(&event("budget-sns-actual.json")).await?.response();
    step(&format!(
        "the same message delivered again -> {}",
        again["results"][0]["notification"]
    ));
    for (subject, text, chat) in stack.new_notifications().await? {
        show_email(&subject, &text);
        show_chat(&chat);
    }

    let sns = f.invoke(&event("anomaly-sns.json")).await?.response();
    let eb = f
        .invoke(&event("anomaly-eventbridge.json"))
        .await?
        .response();
    step(&format!(
        "a cost anomaly through SNS -> {}, the same anomaly through EventBridge -> {}",
        sns["results"][0]["notification"], eb["results"][0]["notification"]
    ));
    for (subject, text, _) in stack.new_notifications().await? {
        show_email(&subject, &text);
    }
    Ok(())
}
