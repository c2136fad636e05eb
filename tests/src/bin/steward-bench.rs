//! `make bench`: the off-hours scheduler's stop sweep on the local AWS over
//! 5,000 EC2 instances (2,000 dev), 100 RDS instances (40 dev) and 50 Auto
//! Scaling groups (20 dev): AWS calls made against the minimum needed, wall
//! time, CPU time and peak memory of the function process (the built binary
//! under the Lambda Runtime API emulator); and, side by side, Cloud
//! Custodian's offhour filter stopping the same dev EC2 instances on a fresh
//! emulator with the same fleet. Prints medians over the repetitions and the
//! ratios. This is a benchmark, not a test: it asserts only that both sides
//! stopped what they should.
//!
//! Usage: steward-bench [REPETITIONS]   (default 3)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use serde_json::{json, Value};
use steward_tests::moto::Moto;
use steward_tests::runtime_api::Function;
use steward_tests::{event, unique, workspace_root};

const EC2_TOTAL: i32 = 5_000;
const EC2_DEV: i32 = 2_000;
const RDS_TOTAL: usize = 100;
const RDS_DEV: usize = 40;
const ASG_TOTAL: usize = 50;
const ASG_DEV: usize = 20;
/// Instances per RunInstances call while seeding.
const SEED_BATCH: i32 = 500;

/// Seeds the benchmark fleet.
async fn seed(config: &SdkConfig) -> anyhow::Result<()> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let mut launched = 0;
    while launched < EC2_TOTAL {
        let count = SEED_BATCH.min(EC2_TOTAL - launched);
        let env = if launched < EC2_DEV { "dev" } else { "prod" };
        ec2.run_instances()
            .image_id("ami-12c6146b")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(count)
            .max_count(count)
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("env")
                            .value(env)
                            .build(),
                    )
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("project")
                            .value("bench")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await?;
        launched += count;
    }
    let rds = aws_sdk_rds::Client::new(config);
    for i in 0..RDS_TOTAL {
        let env = if i < RDS_DEV { "dev" } else { "prod" };
        rds.create_db_instance()
            .db_instance_identifier(format!("bench-db-{i}"))
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("bench")
            .master_user_password("bench-password-1")
            .tags(
                aws_sdk_rds::types::Tag::builder()
                    .key("env")
                    .value(env)
                    .build(),
            )
            .send()
            .await?;
    }
    ec2.create_launch_template()
        .launch_template_name("bench-template")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await?;
    let asg = aws_sdk_autoscaling::Client::new(config);
    for i in 0..ASG_TOTAL {
        let name = format!("bench-asg-{i}");
        let env = if i < ASG_DEV { "dev" } else { "prod" };
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_name("bench-template")
                    .build(),
            )
            .min_size(1)
            .max_size(2)
            .desired_capacity(1)
            .availability_zones("us-east-1a")
            .tags(
                aws_sdk_autoscaling::types::Tag::builder()
                    .resource_id(&name)
                    .resource_type("auto-scaling-group")
                    .key("env")
                    .value(env)
                    .propagate_at_launch(false)
                    .build(),
            )
            .send()
            .await?;
    }
    Ok(())
}

/// Dev EC2 instances in the `stopped` state.
async fn stopped_dev_instances(config: &SdkConfig) -> anyhow::Result<usize> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let mut pages = ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:env")
                .values("dev")
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("stopped")
                .build(),
        )
        .into_paginator()
        .send();
    let mut n = 0;
    while let Some(page) = pages.next().await {
        n += page?
            .reservations()
            .iter()
            .map(|r| r.instances().len())
            .sum::<usize>();
    }
    Ok(n)
}

/// The scheduler binary: the one `STEWARD_BIN_DIR` names, else the release
/// package (`make release`, unpacked) when present, else the debug build.
fn scheduler_binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let release = target.join("lambda/offhours-scheduler/bootstrap");
    if std::env::var("STEWARD_BIN_DIR").is_err() && release.is_file() {
        release
    } else {
        steward_tests::function_binary("offhours-scheduler")
    }
}

/// A wrapper that records the process id, then becomes the binary (same pid).
fn pid_wrapper(dir: &Path, binary: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let pid_file = dir.join("pid");
    let script = dir.join("offhours-scheduler");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > '{}'\nexec '{}'\n",
            pid_file.display(),
            binary.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok((script, pid_file))
}

/// CPU seconds (user + system) and peak resident memory (KiB) of a live process.
fn process_usage(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = &stat[stat
        .rfind(')')
        .ok_or_else(|| anyhow::anyhow!("bad /proc stat"))?
        + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the name.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let clock = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Ok((ticks / clock, hwm))
}

struct Sample {
    calls: f64,
    ec2_calls: f64,
    wall: f64,
    cpu: f64,
    peak_kib: f64,
}

async fn steward_run(dir: &Path) -> anyhow::Result<Sample> {
    let moto = Moto::start().await?;
    seed(&moto.config()).await?;
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "[limits]\nmax_changes_per_run = 100000\n")?;
    let (wrapper, pid_file) = pid_wrapper(dir, &scheduler_binary())?;
    let mut env = moto.env();
    env.push(("STEWARD_POLICY".into(), policy.display().to_string()));
    let mut f = Function::start(&wrapper, "offhours-scheduler", &env).await?;
    f.cold_start(Duration::from_secs(60)).await?;
    let pid: u32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    let mut e = event("scheduler-eventbridge-rule.json");
    e["id"] = json!(unique("bench"));
    e["time"] = json!("2026-11-20T19:05:00Z");
    let started = Instant::now();
    let out = f.invoke(&e).await?.response();
    let wall = started.elapsed().as_secs_f64();
    let (cpu_after, peak) = process_usage(pid)?;
    let stopped = stopped_dev_instances(&moto.config()).await?;
    anyhow::ensure!(
        stopped == EC2_DEV as usize,
        "steward stopped {stopped} dev instances, expected {EC2_DEV}"
    );
    Ok(Sample {
        calls: out["aws_calls"].as_f64().unwrap_or(f64::NAN),
        ec2_calls: out["aws_calls_by_operation"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.to_ascii_lowercase().starts_with("ec2."))
                    .filter_map(|(_, v)| v.as_f64())
                    .sum()
            })
            .unwrap_or(f64::NAN),
        wall,
        // The whole process (start-up and the run), as for Cloud Custodian.
        cpu: cpu_after,
        peak_kib: peak as f64,
    })
}

async fn custodian_run(dir: &Path) -> anyhow::Result<Sample> {
    let moto = Moto::start().await?;
    seed(&moto.config()).await?;
    let hour = chrono::Utc::now().format("%H").to_string().parse::<u32>()?;
    let policy = dir.join("c7n-policy.yml");
    std::fs::write(
        &policy,
        format!(
            "policies:\n  - name: offhours-stop-dev\n    resource: ec2\n    filters:\n      - \"tag:env\": dev\n      - type: offhour\n        default_tz: utc\n        offhour: {hour}\n        weekends: false\n        opt-out: true\n    actions:\n      - stop\n"
        ),
    )?;
    let python = workspace_root().join(".venv-c7n/bin/python");
    anyhow::ensure!(
        python.exists(),
        "{} is missing: python3 -m venv .venv-c7n && .venv-c7n/bin/pip install -r tools/c7n-requirements.txt",
        python.display()
    );
    let output = tokio::process::Command::new(&python)
        .arg(workspace_root().join("tools/bench_c7n.py"))
        .args([
            "--endpoint",
            &moto.endpoint,
            "--policy",
            &policy.display().to_string(),
        ])
        .args(["--output", &dir.join("c7n-out").display().to_string()])
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "custodian failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow::anyhow!("no result from bench_c7n.py"))?;
    let v: Value = serde_json::from_str(line)?;
    let stopped = stopped_dev_instances(&moto.config()).await?;
    anyhow::ensure!(
        stopped == EC2_DEV as usize,
        "custodian stopped {stopped} dev instances, expected {EC2_DEV}"
    );
    Ok(Sample {
        calls: v["aws_calls"].as_f64().unwrap_or(f64::NAN),
        ec2_calls: v["ec2_calls"].as_f64().unwrap_or(f64::NAN),
        wall: v["wall_seconds"].as_f64().unwrap_or(f64::NAN),
        cpu: v["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
        peak_kib: v["peak_rss_kib"].as_f64().unwrap_or(f64::NAN),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn medians(samples: &[Sample]) -> Sample {
    Sample {
        calls: median(samples.iter().map(|s| s.calls).collect()),
        ec2_calls: median(samples.iter().map(|s| s.ec2_calls).collect()),
        wall: median(samples.iter().map(|s| s.wall).collect()),
        cpu: median(samples.iter().map(|s| s.cpu).collect()),
        peak_kib: median(samples.iter().map(|s| s.peak_kib).collect()),
    }
}

/// The fewest calls a stop sweep of this fleet can make: one list page per
/// 1,000 instances and per 100 DB instances / groups, one list call for each
/// other type (Aurora, EKS, ECS), one StopInstances per 1,000 dev instances, one
/// StopDBInstance per dev database, and a tag plus an update per dev group.
fn minimum_calls() -> usize {
    // Each group runs one instance (not tagged env, so out of scope).
    let ec2_pages = (EC2_TOTAL as usize + ASG_TOTAL).div_ceil(1000);
    let lists = ec2_pages + RDS_TOTAL.div_ceil(100) + ASG_TOTAL.div_ceil(100) + 3;
    lists + (EC2_DEV as usize).div_ceil(1000) + RDS_DEV + 2 * ASG_DEV
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(3)
        .max(1);
    let binary = scheduler_binary();
    println!("off-hours stop sweep: {EC2_TOTAL} EC2 ({EC2_DEV} dev), {RDS_TOTAL} RDS ({RDS_DEV} dev), {ASG_TOTAL} ASGs ({ASG_DEV} dev); {reps} repetition(s)");
    println!("steward binary: {}", binary.display());
    let mut steward = Vec::new();
    let mut custodian = Vec::new();
    for i in 0..reps {
        let dir = std::env::temp_dir().join(unique("steward-bench"));
        std::fs::create_dir_all(&dir)?;
        let s = steward_run(&dir).await?;
        println!(
            "  run {}: steward   {:>5} calls {:>7.2} s wall {:>6.2} s CPU {:>7.1} MiB peak",
            i + 1,
            s.calls,
            s.wall,
            s.cpu,
            s.peak_kib / 1024.0
        );
        let c = custodian_run(&dir).await?;
        println!(
            "  run {}: custodian {:>5} calls {:>7.2} s wall {:>6.2} s CPU {:>7.1} MiB peak",
            i + 1,
            c.calls,
            c.wall,
            c.cpu,
            c.peak_kib / 1024.0
        );
        steward.push(s);
        custodian.push(c);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let s = medians(&steward);
    let c = medians(&custodian);
    println!(
        "\nmedians over {reps} run(s)                 steward   custodian   custodian/steward"
    );
    println!(
        "  AWS calls                           {:>9.0} {:>11.0} {:>12.2}x",
        s.calls,
        c.calls,
        c.calls / s.calls
    );
    println!(
        "  of which EC2 calls                  {:>9.0} {:>11.0} {:>12.2}x",
        s.ec2_calls,
        c.ec2_calls,
        c.ec2_calls / s.ec2_calls
    );
    println!(
        "  wall time (s)                       {:>9.2} {:>11.2} {:>12.2}x",
        s.wall,
        c.wall,
        c.wall / s.wall
    );
    println!(
        "  CPU time (s)                        {:>9.2} {:>11.2} {:>12.2}x",
        s.cpu,
        c.cpu,
        c.cpu / s.cpu
    );
    println!(
        "  peak memory (MiB)                   {:>9.1} {:>11.1} {:>12.2}x",
        s.peak_kib / 1024.0,
        c.peak_kib / 1024.0,
        c.peak_kib / s.peak_kib
    );
    println!(
        "\nsteward covers all six resource types (EC2, ASG, EKS, RDS, Aurora, ECS); minimum calls for this sweep: {} (steward made {:.0}, {:.2}x).",
        minimum_calls(),
        s.calls,
        s.calls / minimum_calls() as f64
    );
    println!("custodian covers only the dev EC2 instances (one policy, one resource type). CPU and peak memory: the whole process on both sides; wall: the run only (steward: the invocation; custodian: `custodian run`).");
    println!("note: steward asks DescribeInstances for pages of 1,000 instances (moto pages by instance, tools/moto_ext_ec2_paging.py); Custodian asks without MaxResults and gets the fleet in one answer.");
    Ok(())
}
