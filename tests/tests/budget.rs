//! The budget alerter end to end: the built binary under the Lambda Runtime
//! API emulator, against moto (Budgets and GetCostAndUsage seeded through
//! moto itself; GetCostForecast and GetAnomalies from the documented
//! extension `tools/moto_ext_costexplorer.py`), with the security team's
//! inbox subscribed and the scheduler's work queue read back.

use serde_json::{json, Value};
use steward_tests::inbox::{Envelope, Received};
use steward_tests::moto::{HUB_ACCOUNT, REGION};
use steward_tests::stack::{Stack, MEMBER_ACCOUNT};
use steward_tests::{event, unique};

const FUNCTION: &str = "budget-alerter";

/// One GetCostAndUsage response with one group per (key, amount).
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

/// The four GetCostAndUsage answers of one budget alert, in the order the alerter asks.
async fn seed_month(stack: &Stack) -> anyhow::Result<()> {
    let results = [
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
    ];
    stack.moto.seed_cost_and_usage(&results).await
}

async fn create_budget(
    stack: &Stack,
    account: &str,
    name: &str,
    actual: f64,
    forecast: f64,
    with_notification: bool,
) {
    let notifications = if with_notification {
        json!([{"Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                                 "Threshold": 80.0, "ThresholdType": "PERCENTAGE"},
                "Subscribers": [{"SubscriptionType": "SNS", "Address": "arn:aws:sns:us-east-1:123456789012:steward-cost-events"}]}])
    } else {
        json!([])
    };
    stack
        .moto
        .post(
            "/_steward/budgets/create",
            &json!({"account_id": account, "budget": {
                "BudgetName": name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": "100.0", "Unit": "USD"},
                "CalculatedSpend": {"ActualSpend": {"Amount": format!("{actual}"), "Unit": "USD"},
                                    "ForecastedSpend": {"Amount": format!("{forecast}"), "Unit": "USD"}}},
                "notifications": notifications}),
        )
        .await
        .expect("budget created");
}

async fn forecast(stack: &Stack, body: Value) {
    stack
        .moto
        .post("/_steward/ce/forecast", &body)
        .await
        .expect("forecast seeded");
}

async fn ce_requests(stack: &Stack) -> Value {
    serde_json::from_str(&stack.moto.get("/_steward/ce/requests").await.unwrap()).unwrap()
}

/// The Budgets SNS fixture for another account or budget.
fn budget_alert(account: &str, budget: &str) -> Value {
    let mut e = event("budget-sns-actual.json");
    let text = e["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .replace("123456789012", account)
        .replace("dev-monthly", budget);
    e["Records"][0]["Sns"]["Message"] = json!(text);
    e
}

fn full_text(r: &Received) -> String {
    r.full_text()
}

fn event_type(r: &Received) -> String {
    r.event_type()
}

async fn work_queue(stack: &Stack) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(&stack.moto.config());
    let url = sqs
        .create_queue()
        .queue_name(unique("steward-work"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    (sqs, url)
}

async fn queue_bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let batch = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if batch.messages().is_empty() {
            break;
        }
        for m in batch.messages() {
            out.push(m.body().unwrap_or_default().to_string());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn budgets_alert_gives_one_enriched_message_even_when_delivered_twice() {
    let stack = Stack::new().await;
    create_budget(&stack, HUB_ACCOUNT, "dev-monthly", 112.5, 140.0, true).await;
    seed_month(&stack).await.unwrap();
    forecast(&stack, json!({"amount": "150.00"})).await;
    let mut f = stack.function(FUNCTION, "", &[]).await;

    let first = f.response_to(&event("budget-sns-actual.json")).await;
    assert_eq!(first["results"][0]["notification"], "sent", "{first}");
    assert_eq!(first["cost_explorer_requests"], 5, "{first}");
    let again = f.response_to(&event("budget-sns-actual.json")).await;
    assert_eq!(again["results"][0]["notification"], "duplicate", "{again}");

    let inbox = stack.inbox.drain().await.unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let m = &inbox[0];
    // 112.50 is 40% over the 80.00 threshold: the HIGH band (25% and up).
    m.assert_envelope(Envelope {
        severity: "HIGH",
        category: "budget",
        event_type: "steward.budget.breached",
        account: HUB_ACCOUNT,
    });
    assert!(m.subject.contains("dev-monthly"), "{}", m.subject);
    let text = full_text(m);
    for expected in [
        "spent 112.50 USD of 100.00 USD",
        "80% of 100.00 USD",
        "Figures read back from AWS Budgets",
        "Amazon Elastic Compute Cloud - Compute 70.00 USD",
        "team-a 90.00 USD",
        "(untagged) 22.50 USD",
        "dev 100.00 USD",
        "Untagged spend (no cost_center): 20%",
        "Amazon Elastic Compute Cloud - Compute +50.00 USD",
        "forecast to month end: 150.00 USD",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("Missing from this message"), "{text}");
    // Five Cost Explorer requests for the message, none for the duplicate.
    let requests = ce_requests(&stack).await;
    assert_eq!(requests["GetCostAndUsage"], 4, "{requests}");
    assert_eq!(requests["GetCostForecast"], 1, "{requests}");
}

#[tokio::test]
async fn daily_check_flags_a_forecast_breach_on_a_budget_without_notification() {
    let stack = Stack::new().await;
    create_budget(&stack, HUB_ACCOUNT, "staging-monthly", 40.0, 130.0, false).await;
    create_budget(&stack, HUB_ACCOUNT, "quiet", 10.0, 20.0, false).await;
    seed_month(&stack).await.unwrap();
    forecast(&stack, json!({"amount": "130.00"})).await;
    let mut f = stack.function(FUNCTION, "", &[]).await;

    let out = f.response_to(&event("budget-daily-check.json")).await;
    assert_eq!(out["alerts"].as_array().unwrap().len(), 1, "{out}");
    let again = f.response_to(&event("budget-daily-check.json")).await;
    assert_eq!(again["alerts"][0]["notification"], "duplicate", "{again}");

    let inbox = stack.inbox.drain().await.unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(event_type(&inbox[0]), "steward.budget.forecast");
    // A forecast is capped at forecasts' maximum severity.
    assert_eq!(inbox[0].attributes["severity"], "MEDIUM");
    let text = full_text(&inbox[0]);
    assert!(text.contains("staging-monthly"), "{text}");
    assert!(text.contains("NO notification"), "{text}");
    assert!(text.contains("100% of 100.00 USD"), "{text}");
}

#[tokio::test]
async fn cost_explorer_failing_still_sends_the_alert_and_says_what_is_missing() {
    let stack = Stack::new().await;
    create_budget(&stack, HUB_ACCOUNT, "dev-monthly", 112.5, 140.0, true).await;
    forecast(&stack, json!({"fail": true})).await;
    let mut f = stack.function(FUNCTION, "", &[]).await;

    let out = f.response_to(&event("budget-sns-actual.json")).await;
    assert_eq!(out["results"][0]["notification"], "sent", "{out}");
    let inbox = stack.inbox.drain().await.unwrap();
    assert_eq!(inbox.len(), 1);
    let text = full_text(&inbox[0]);
    assert!(text.contains("Missing from this message"), "{text}");
    assert!(
        text.contains("forecast to month end: GetCostForecast failed"),
        "{text}"
    );
    assert!(text.contains("spent 112.50 USD of 100.00 USD"), "{text}");
    assert!(inbox[0].chat["metadata"]["additionalContext"]["missing"]
        .as_str()
        .unwrap()
        .contains("GetCostForecast"));
}

#[tokio::test]
async fn an_anomaly_from_sns_and_from_eventbridge_gives_one_message() {
    let stack = Stack::new().await;
    stack
        .moto
        .post(
            "/_steward/ce/anomalies",
            &json!({"anomalies": [{
                "AnomalyId": "12345678-abcd-ef12-3456-987654321a12",
                "AnomalyStartDate": "2026-11-29",
                "AnomalyEndDate": "2026-11-30",
                "DimensionValue": "Amazon Elastic Compute Cloud - Compute",
                "MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/abcdef12-1234-4ea0-84cc-918a97d736ef",
                "AnomalyScore": {"MaxScore": 0.47, "CurrentScore": 0.47},
                "Impact": {"MaxImpact": 151.0, "TotalImpact": 151.0, "TotalActualSpend": 1301.0, "TotalExpectedSpend": 1150.0},
                "RootCauses": [{"Service": "Amazon Elastic Compute Cloud - Compute", "Region": "us-east-1",
                                "LinkedAccount": "123456789012", "UsageType": "USE1-BoxUsage:m5.4xlarge"}]
            }]}),
        )
        .await
        .unwrap();
    let mut f = stack.function(FUNCTION, "", &[]).await;
    let sns = f.response_to(&event("anomaly-sns.json")).await;
    assert_eq!(sns["results"][0]["notification"], "sent", "{sns}");
    let eb = f.response_to(&event("anomaly-eventbridge.json")).await;
    assert_eq!(eb["results"][0]["notification"], "duplicate", "{eb}");

    let inbox = stack.inbox.drain().await.unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(event_type(&inbox[0]), "steward.budget.anomaly");
    assert_eq!(inbox[0].attributes["severity"], "MEDIUM");
    let text = full_text(&inbox[0]);
    assert!(text.contains("Confirmed by Cost Explorer"), "{text}");
    assert!(
        text.contains("actual 1301.00 USD against expected 1150.00 USD"),
        "{text}"
    );
    assert!(text.contains("USE1-BoxUsage:m5.4xlarge"), "{text}");
}

#[tokio::test]
async fn weekly_review_sends_one_digest() {
    let stack = Stack::new().await;
    stack
        .moto
        .seed_cost_and_usage(&[
            ce_result(&[(HUB_ACCOUNT, 300.0), (MEMBER_ACCOUNT, 700.0)]),
            ce_result(&[
                ("Amazon Elastic Compute Cloud - Compute", 600.0),
                ("Amazon Relational Database Service", 400.0),
            ]),
            ce_result(&[("project$shop", 800.0), ("project$", 200.0)]),
            ce_result(&[("env$prod", 700.0), ("env$dev", 300.0)]),
            ce_result(&[("cost_center$team-a", 900.0), ("cost_center$", 100.0)]),
            ce_result(&[
                ("Amazon Elastic Compute Cloud - Compute", 400.0),
                ("Amazon Relational Database Service", 380.0),
            ]),
        ])
        .await
        .unwrap();
    forecast(&stack, json!({"amount": "4200.00"})).await;
    let mut f = stack.function(FUNCTION, "", &[]).await;
    let out = f.response_to(&event("budget-weekly-review.json")).await;
    assert_eq!(out["notification"], "sent", "{out}");
    assert_eq!(out["cost_explorer_requests"], 7, "{out}");
    let again = f.response_to(&event("budget-weekly-review.json")).await;
    assert_eq!(again["notification"], "duplicate", "{again}");

    let inbox = stack.inbox.drain().await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(event_type(&inbox[0]), "steward.budget.weekly-review");
    assert_eq!(inbox[0].attributes["severity"], "INFO");
    assert_eq!(inbox[0].attributes["account"], "multiple");
    assert!(
        full_text(&inbox[0]).contains("1000.00 USD (+220.00 USD week over week)"),
        "{}",
        full_text(&inbox[0])
    );
    let text = full_text(&inbox[0]);
    for expected in [
        "By account: 111111111111 700.00 USD; 123456789012 300.00 USD",
        "By project: shop 800.00 USD; (untagged) 200.00 USD",
        "By env: prod 700.00 USD",
        "Amazon Elastic Compute Cloud - Compute +200.00 USD",
        "Untagged spend (no cost_center): 10%",
        "Forecast to month end: 4200.00 USD",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[tokio::test]
async fn dev_stop_queues_one_exact_job_per_region_only_for_a_dev_account_and_only_when_on() {
    let stack = Stack::new().await;
    let (sqs, queue) = work_queue(&stack).await;
    create_budget(&stack, HUB_ACCOUNT, "dev-monthly", 112.5, 140.0, true).await;
    create_budget(&stack, MEMBER_ACCOUNT, "prod-monthly", 150.0, 170.0, true).await;
    create_budget(&stack, HUB_ACCOUNT, "dev-other", 120.0, 140.0, true).await;
    create_budget(&stack, HUB_ACCOUNT, "dev-third", 130.0, 140.0, true).await;
    forecast(&stack, json!({"amount": "150.00"})).await;
    let policy = format!(
        "[targets]\naccounts = [\"{HUB_ACCOUNT}\", \"{MEMBER_ACCOUNT}\"]\nregions = [\"{REGION}\", \"eu-west-1\"]\n\
         [tagging.account_environments]\n\"{HUB_ACCOUNT}\" = \"dev\"\n\"{MEMBER_ACCOUNT}\" = \"prod\"\n\
         [budgets]\nstop_dev_on_breach = true\n"
    );
    let mut on = stack
        .function(FUNCTION, &policy, &[("STEWARD_WORK_QUEUE", queue.as_str())])
        .await;

    let out = on.response_to(&event("budget-sns-actual.json")).await;
    assert_eq!(out["results"][0]["dev_stop"], true, "{out}");
    let period = "\"period_start\": \"2026-12-01\", \"period_end\": \"2027-01-01\", \"time\": \"2026-12-01T10:00:00Z\"}";
    assert_eq!(
        queue_bodies(&sqs, &queue).await,
        vec![
            format!("{{\"job\": \"budget-stop\", \"account\": \"{HUB_ACCOUNT}\", \"region\": \"eu-west-1\", \"budget\": \"dev-monthly\", {period}"),
            format!("{{\"job\": \"budget-stop\", \"account\": \"{HUB_ACCOUNT}\", \"region\": \"us-east-1\", \"budget\": \"dev-monthly\", {period}"),
        ]
    );
    // The same alert again: no second job, no second message.
    on.response_to(&event("budget-sns-actual.json")).await;
    assert!(queue_bodies(&sqs, &queue).await.is_empty());
    let inbox = stack.inbox.drain().await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(event_type(&inbox[0]), "steward.budget.dev-stopped");
    let text = full_text(&inbox[0]);
    assert!(text.contains("steward:budget-hold"), "{text}");
    assert!(inbox[0].chat["content"]["nextSteps"]
        .to_string()
        .contains("To undo: remove the tag steward:budget-hold"));

    // A prod account's breach stops nothing, and says why.
    let prod = on
        .response_to(&budget_alert(MEMBER_ACCOUNT, "prod-monthly"))
        .await;
    assert_eq!(prod["results"][0]["dev_stop"], false, "{prod}");
    assert!(queue_bodies(&sqs, &queue).await.is_empty());
    let inbox = stack.inbox.drain().await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert!(
        inbox[0].description().contains("mapped to `prod`"),
        "{}",
        inbox[0].description()
    );

    // Off by default: the same dev breach with the default switch queues nothing.
    let off_policy = format!("[tagging.account_environments]\n\"{HUB_ACCOUNT}\" = \"dev\"\n");
    let mut off = stack
        .function(
            FUNCTION,
            &off_policy,
            &[("STEWARD_WORK_QUEUE", queue.as_str())],
        )
        .await;
    let out = off
        .response_to(&budget_alert(HUB_ACCOUNT, "dev-other"))
        .await;
    assert_eq!(out["results"][0]["dev_stop"], false, "{out}");
    assert!(queue_bodies(&sqs, &queue).await.is_empty());
    let inbox = stack.inbox.drain().await.unwrap();
    assert_eq!(event_type(&inbox[0]), "steward.budget.breached");

    // Dry-run decides the stop and says so, but queues nothing.
    let mut dry = stack
        .function(
            FUNCTION,
            &policy,
            &[
                ("STEWARD_WORK_QUEUE", queue.as_str()),
                ("STEWARD_DRY_RUN", "true"),
            ],
        )
        .await;
    let out = dry
        .response_to(&budget_alert(HUB_ACCOUNT, "dev-third"))
        .await;
    assert_eq!(out["results"][0]["dev_stop"], true, "{out}");
    assert!(queue_bodies(&sqs, &queue).await.is_empty());
    let inbox = stack.inbox.drain().await.unwrap();
    assert!(
        inbox[0].subject.contains("(DRY RUN)"),
        "{}",
        inbox[0].subject
    );
}

#[tokio::test]
async fn malformed_input_of_each_kind_fails_clearly_and_changes_nothing() {
    let stack = Stack::new().await;
    let (sqs, queue) = work_queue(&stack).await;
    let policy = format!(
        "[tagging.account_environments]\n\"{HUB_ACCOUNT}\" = \"dev\"\n[budgets]\nstop_dev_on_breach = true\n"
    );
    let mut f = stack
        .function(FUNCTION, &policy, &[("STEWARD_WORK_QUEUE", queue.as_str())])
        .await;

    let mut bad_account = event("budget-sns-actual.json");
    let text = bad_account["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .replace("AWS Account 123456789012", "AWS Account 1234");
    bad_account["Records"][0]["Sns"]["Message"] = json!(text);
    let mut bad_name = event("budget-sns-actual.json");
    let text = bad_name["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .replace("Budget Name: dev-monthly", "Budget Name: a:b");
    bad_name["Records"][0]["Sns"]["Message"] = json!(text);
    let mut no_anomaly_id = event("anomaly-sns.json");
    let mut doc: Value = serde_json::from_str(
        no_anomaly_id["Records"][0]["Sns"]["Message"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    doc.as_object_mut().unwrap().remove("anomalyId");
    doc["anomalyId"] = json!(42);
    no_anomaly_id["Records"][0]["Sns"]["Message"] = json!(doc.to_string());
    let mut no_detail = event("anomaly-eventbridge.json");
    no_detail.as_object_mut().unwrap().remove("detail");
    let mut bad_eb_account = event("anomaly-eventbridge.json");
    bad_eb_account["detail"]["accountId"] = json!("not-an-account");
    let cases = [
        (bad_account, "is not a 12-digit account id"),
        (bad_name, "is not a valid budget name"),
        (no_anomaly_id, "without an `anomalyId`"),
        (no_detail, "without a `detail` object"),
        (bad_eb_account, "`accountId` \"not-an-account\""),
        (
            json!({"job": "monthly-party"}),
            "unknown job \"monthly-party\"",
        ),
        (
            json!({"Records": [{"Sns": {"Timestamp": "2026-12-01T10:00:00Z", "Message": "hello"}}]}),
            "neither an AWS Budgets notification",
        ),
        (json!({"hello": "world"}), "unknown event shape"),
    ];
    for (payload, expected) in cases {
        let err = f.error_for(&payload).await;
        assert_eq!(err["errorType"], "BadEvent", "{err}");
        assert!(
            err["errorMessage"].as_str().unwrap().contains(expected),
            "expected {expected:?} in {err}"
        );
    }
    let err = f.invoke_raw("{\"Records\": ").await.unwrap().error();
    assert!(
        err.to_string().to_lowercase().contains("eof") || err.to_string().contains("JSON"),
        "{err}"
    );
    assert!(stack.inbox.drain().await.unwrap().is_empty());
    assert_eq!(stack.idempotency_records().await, 0);
    assert!(queue_bodies(&sqs, &queue).await.is_empty());
    assert!(f.logs_are_json());
}
