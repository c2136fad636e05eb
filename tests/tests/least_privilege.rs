//! Least privilege, proven by running: the demo's main scenario of every
//! function (`make demo`'s sections) on the emulator with moto's IAM
//! enforcement on, each built binary signing with an IAM user that holds
//! only the actions of its hub role in `infra/template.yaml` (resources
//! widened to `*`, conditions dropped: moto evaluates no conditions and
//! denies resource-scoped allows outside S3, SQS, IAM and STS). Every call
//! a function makes must be allowed.
//!
//! moto does not authorize every call: the ones answered by a launcher
//! extension (Cost Explorer forecasts and anomalies, Config evaluations,
//! GuardDuty findings, RDS snapshot copies, network-interface reads) and
//! REST-JSON operations it serves without the check. The test prints, per
//! function, the declared actions no decision was recorded for.

use std::collections::BTreeSet;

use steward_tests::demo::{run_sections, DemoStack, SECTIONS};
use steward_tests::functions::declared_permissions;
use steward_tests::least_privilege::decisions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_runs_its_main_scenario_with_only_its_template_actions() {
    let stack = DemoStack::start_enforcing(&[]).await.expect("stack");
    run_sections(&stack, SECTIONS)
        .await
        .expect("every section runs under IAM enforcement");
    let decisions = decisions(&stack.moto).await.expect("decisions");

    let mut denied = Vec::new();
    for (function, (key, _)) in &stack.function_keys {
        let own: Vec<_> = decisions
            .iter()
            .filter(|d| d.key.as_deref() == Some(key))
            .collect();
        assert!(
            own.iter().any(|d| d.allowed),
            "moto authorized no call of {function}: enforcement is not on"
        );
        denied.extend(
            own.iter()
                .filter(|d| !d.allowed)
                .map(|d| format!("{function}: {} on {}", d.action, d.resource)),
        );
        let checked: BTreeSet<String> = own.iter().map(|d| d.action.to_lowercase()).collect();
        let unchecked: Vec<&str> = declared_permissions()[function.as_str()]
            .iter()
            .copied()
            .filter(|a| !checked.contains(&a.to_lowercase()))
            .collect();
        println!(
            "{function}: {} calls authorized by moto ({} actions); declared but not checked here: {unchecked:?}",
            own.len(),
            checked.len()
        );
    }
    assert!(
        denied.is_empty(),
        "calls denied under the template's permissions:\n  {}",
        denied.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_missing_from_the_template_is_denied() {
    let stack = DemoStack::start_enforcing(&[("tag-enforcer", "ec2:CreateTags")])
        .await
        .expect("stack");
    let ec2 = aws_sdk_ec2::Client::new(&stack.moto.config());
    let launched = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("an instance");
    let instance = launched.instances()[0].instance_id().unwrap().to_string();
    let mut event = steward_tests::event("cloudtrail-run-instances.json");
    event["detail"]["responseElements"]["instancesSet"]["items"] =
        serde_json::json!([{ "instanceId": instance }]);
    let mut tagger = stack.function("tag-enforcer", &[]).await.expect("starts");
    let outcome = tagger.invoke(&event).await.expect("invoked");

    let (key, _) = &stack.function_keys["tag-enforcer"];
    let decisions = decisions(&stack.moto).await.expect("decisions");
    assert!(
        decisions
            .iter()
            .any(|d| d.key.as_deref() == Some(key) && d.action == "ec2:CreateTags" && !d.allowed),
        "the tag enforcer tagged without ec2:CreateTags: {decisions:?}"
    );
    // The failure is the function's, reported, not swallowed.
    assert!(
        outcome.error()["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("ec2:CreateTags")),
        "the denied tagging must fail the invocation"
    );
}
