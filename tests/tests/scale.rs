//! Organization scale, functionally: one scheduled run of the built
//! off-hours scheduler over 20 member accounts x 3 regions (moto's
//! multi-account mode, reached through the member role) stops every dev
//! instance and leaves every prod instance running. How fast it does so
//! under injected latency is a benchmark figure (`steward-scale`, in
//! `make bench`), never asserted here.

use serde_json::json;
use steward_tests::event;
use steward_tests::scale::{self, REGIONS};
use steward_tests::stack::Stack;

#[tokio::test]
async fn a_sweep_over_twenty_accounts_in_three_regions_stops_all_dev_and_no_prod() {
    let stack = Stack::new().await;
    let fleet = scale::seed(
        &stack.moto,
        &scale::accounts(500_000_000_001, 20),
        &REGIONS,
        2,
        1,
    )
    .await
    .unwrap();
    assert_eq!(fleet.target_count(), 60);
    let mut scheduler = stack
        .function("offhours-scheduler", &fleet.policy(8), &[])
        .await;
    let mut e = event("scheduler-eventbridge-rule.json");
    e["id"] = json!(uuid::Uuid::new_v4().to_string());
    e["time"] = json!("2026-11-20T19:05:00Z");
    let out = scheduler.invoke(&e).await.unwrap().response();
    let targets = out["targets"].as_array().expect("targets in the response");
    assert_eq!(targets.len(), 60, "{out:#}");
    assert!(
        targets.iter().all(|t| t["error"].is_null()),
        "no target failed: {out:#}"
    );
    let tally = fleet.tally().await.unwrap();
    assert!(tally.all_dev_stopped_prod_untouched(), "{tally}");
    assert_eq!(tally.dev_total, 120);
    assert_eq!(tally.prod_total, 60);
}
