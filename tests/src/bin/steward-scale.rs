//! `make bench`, organization scale: the off-hours scheduler's Friday-evening
//! stop sweep over many member accounts with 50 ms added to every AWS call
//! (`tools/moto_ext_call_latency.py`), as on AWS where each call takes tens
//! of milliseconds.
//!
//! 1. Direct: 20 accounts x 3 regions (60 targets, 2 dev + 1 prod instance
//!    each) in one invocation, `[offhours] concurrency` targets at a time;
//!    also at concurrency 1 for comparison.
//! 2. Work queue: 100 accounts x 1 region. The scheduled invocation fans the
//!    targets out to the SQS work queue (STEWARD_WORK_QUEUE); then the
//!    batches are driven through the same binary the way Lambda's SQS event
//!    source does: WORKERS function processes (Lambda starts 5 pollers) each
//!    receive up to 10 messages, are invoked with the batch, and delete the
//!    messages not reported in `batchItemFailures`, until the queue is
//!    empty. The wall time runs from the scheduled invocation to the last
//!    batch done, so it includes the fan-out, the receives and deletes.
//!
//! Both runs check every dev instance stopped and every prod one running.
//! The function processes are started (cold) before the clock starts; the
//! first invocation includes the STS lookup of the own account. A
//! benchmark, not a test: the figures are printed, never asserted.
//!
//! Usage: steward-scale   (STEWARD_BIN_DIR selects the build, e.g. release;
//! STEWARD_SCALE_CALLS=1 also prints each sweep's AWS calls per operation)

use std::time::Instant;

use serde_json::{json, Value};
use steward_tests::moto::Moto;
use steward_tests::runtime_api::Function;
use steward_tests::scale::{self, OrgFleet, REGIONS};
use steward_tests::stack::Stack;
use steward_tests::{event, unique};

const LATENCY_MS: u64 = 50;
const DIRECT_ACCOUNTS: usize = 20;
const QUEUE_ACCOUNTS: usize = 100;
const CONCURRENCY: u32 = 16;
const WORKERS: usize = 5;
/// Friday evenings, five minutes after the 19:00 off transition: one per
/// run, so no run finds the previous one's run record.
const FRIDAYS: [&str; 3] = [
    "2026-11-20T19:05:00Z",
    "2026-11-27T19:05:00Z",
    "2026-12-04T19:05:00Z",
];

fn scheduled(time: &str) -> Value {
    let mut e = event("scheduler-eventbridge-rule.json");
    e["id"] = json!(unique("scale"));
    e["time"] = json!(time);
    e
}

async fn set_latency(moto: &Moto, ms: u64) -> anyhow::Result<()> {
    moto.post("/_steward/latency", &json!({ "latency_ms": ms }))
        .await?;
    Ok(())
}

async fn calls(moto: &Moto) -> anyhow::Result<u64> {
    let v: Value = serde_json::from_str(&moto.get("/_steward/calls/count").await?)?;
    if std::env::var_os("STEWARD_SCALE_CALLS").is_some() {
        println!("{:#}", v["by_operation"]);
    }
    Ok(v["total"].as_u64().unwrap_or(0))
}

async fn clear_calls(moto: &Moto) -> anyhow::Result<()> {
    moto.post("/_steward/calls/count/clear", &json!({})).await?;
    Ok(())
}

/// One direct sweep of `fleet` at `concurrency`; wall seconds and AWS calls.
async fn direct(
    stack: &Stack,
    fleet: &OrgFleet,
    concurrency: u32,
    time: &str,
) -> anyhow::Result<(f64, u64)> {
    let mut f = stack
        .function("offhours-scheduler", &fleet.policy(concurrency), &[])
        .await;
    f.cold_start(std::time::Duration::from_secs(30)).await?;
    set_latency(&stack.moto, LATENCY_MS).await?;
    clear_calls(&stack.moto).await?;
    let started = Instant::now();
    let out = f.invoke(&scheduled(time)).await?.response();
    let wall = started.elapsed().as_secs_f64();
    let n = calls(&stack.moto).await?;
    set_latency(&stack.moto, 0).await?;
    anyhow::ensure!(
        out["targets"].as_array().map(Vec::len) == Some(fleet.target_count()),
        "expected {} targets in the response: {out}",
        fleet.target_count()
    );
    Ok((wall, n))
}

/// Restarts every dev instance, so the next sweep has work again.
async fn restart_dev(fleet: &OrgFleet) -> anyhow::Result<()> {
    for t in &fleet.targets {
        let ec2 = aws_sdk_ec2::Client::new(&t.config);
        ec2.start_instances()
            .set_instance_ids(Some(t.dev.clone()))
            .send()
            .await?;
    }
    Ok(())
}

/// One worker: receives batches and invokes its function with each until the queue is empty.
async fn worker(
    mut f: Function,
    sqs: aws_sdk_sqs::Client,
    queue: String,
) -> anyhow::Result<(usize, Function)> {
    let mut batches = 0;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .visibility_timeout(120)
            .send()
            .await?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok((batches, f));
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id().unwrap_or_default(),
                    "receiptHandle": m.receipt_handle().unwrap_or_default(),
                    "body": m.body().unwrap_or_default(),
                    "eventSource": "aws:sqs",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        let out = f.invoke(&json!({ "Records": records })).await?.response();
        batches += 1;
        let failed: Vec<&str> = out["batchItemFailures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["itemIdentifier"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        anyhow::ensure!(failed.is_empty(), "batch items failed: {out}");
        let mut delete = sqs.delete_message_batch().queue_url(&queue);
        for (i, m) in messages.iter().enumerate() {
            delete = delete.entries(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()?,
            );
        }
        delete.send().await?;
    }
}

/// The queued run: fan-out, then the batches on WORKERS processes; wall seconds, batches, calls.
async fn queued(stack: &Stack, fleet: &OrgFleet) -> anyhow::Result<(f64, f64, usize, u64)> {
    let config = stack.moto.config();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .create_queue()
        .queue_name(unique("steward-offhours-work"))
        .send()
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let policy = fleet.policy(8);
    let env = [("STEWARD_WORK_QUEUE", queue.as_str())];
    let mut fan = stack.function("offhours-scheduler", &policy, &env).await;
    fan.cold_start(std::time::Duration::from_secs(30)).await?;
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let f = stack.function("offhours-scheduler", &policy, &env).await;
        f.cold_start(std::time::Duration::from_secs(30)).await?;
        workers.push(f);
    }
    set_latency(&stack.moto, LATENCY_MS).await?;
    clear_calls(&stack.moto).await?;
    let started = Instant::now();
    let out = fan.invoke(&scheduled(FRIDAYS[2])).await?.response();
    let fanned = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        out["fanned_out"].as_u64() == Some(fleet.target_count() as u64),
        "expected {} targets fanned out: {out}",
        fleet.target_count()
    );
    let mut running = tokio::task::JoinSet::new();
    for f in workers {
        running.spawn(worker(f, sqs.clone(), queue.clone()));
    }
    let mut batches = 0;
    let mut done = Vec::new();
    while let Some(result) = running.join_next().await {
        let (n, f) = result??;
        batches += n;
        done.push(f);
    }
    let wall = started.elapsed().as_secs_f64();
    let n = calls(&stack.moto).await?;
    set_latency(&stack.moto, 0).await?;
    Ok((wall, fanned, batches, n))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::new().await;
    println!(
        "organization scale: off-hours stop sweep, {LATENCY_MS} ms added to every AWS call; binary: {}",
        steward_tests::function_binary("offhours-scheduler").display()
    );

    let direct_fleet = scale::seed(
        &stack.moto,
        &scale::accounts(300_000_000_001, DIRECT_ACCOUNTS),
        &REGIONS,
        2,
        1,
    )
    .await?;
    let targets = direct_fleet.target_count();
    let (wall, n) = direct(&stack, &direct_fleet, CONCURRENCY, FRIDAYS[0]).await?;
    let tally = direct_fleet.tally().await?;
    println!(
        "  direct, {DIRECT_ACCOUNTS} accounts x {} regions = {targets} targets, concurrency {CONCURRENCY}: {wall:.2} s wall, {n} AWS calls; {tally}",
        REGIONS.len()
    );
    anyhow::ensure!(
        tally.all_dev_stopped_prod_untouched(),
        "direct sweep: {tally}"
    );
    restart_dev(&direct_fleet).await?;
    let (wall1, n1) = direct(&stack, &direct_fleet, 1, FRIDAYS[1]).await?;
    let tally = direct_fleet.tally().await?;
    println!(
        "  direct, same fleet, concurrency 1 (for comparison): {wall1:.2} s wall, {n1} AWS calls; {tally}"
    );
    println!(
        "    bounded concurrency {CONCURRENCY}: {:.1}x faster than one target at a time",
        wall1 / wall
    );

    let queue_fleet = scale::seed(
        &stack.moto,
        &scale::accounts(400_000_000_001, QUEUE_ACCOUNTS),
        &REGIONS[..1],
        2,
        1,
    )
    .await?;
    let (wall, fanned, batches, n) = queued(&stack, &queue_fleet).await?;
    let tally = queue_fleet.tally().await?;
    println!(
        "  work queue, {QUEUE_ACCOUNTS} accounts x 1 region = {} targets: fan-out {fanned:.2} s, then {batches} batches of <= 10 on {WORKERS} function processes; whole fan-out {wall:.2} s wall, {n} AWS calls; {tally}",
        queue_fleet.target_count()
    );
    anyhow::ensure!(
        tally.all_dev_stopped_prod_untouched(),
        "queued sweep: {tally}"
    );
    println!("  targets: direct <= 5 s (20 x 3), work queue <= 20 s (100 accounts); wall time measured around the invocations by this driver.");
    Ok(())
}
