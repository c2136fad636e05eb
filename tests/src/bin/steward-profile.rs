//! `make bench`, per function: peak memory and AWS calls of representative
//! invocations. Each function's `make demo` section (real-shaped events
//! against a small organization on the local AWS) runs in a child process
//! with `STEWARD_PROFILE_LOG` set, so every invocation records the AWS calls
//! the emulator served while it ran and the function process's peak
//! resident memory (see `steward_tests::profile`). Prints, per function,
//! the first invocation (a cold process: STS lookup and first connections
//! included), the median over the section, the largest peak memory, and
//! the minimum calls the first invocation needs.
//!
//! Usage: steward-profile [FUNCTION ...]   (STEWARD_BIN_DIR selects the build)

use std::process::Stdio;

use serde_json::Value;
use steward_tests::demo::{self, DemoStack, SECTIONS};

/// The fewest AWS calls each section's first invocation can make, and why
/// (0: not derived). A floor for the path the demo's first event takes,
/// counted by hand from what the function must read, write and send.
fn minimum(function: &str) -> (u64, &'static str) {
    match function {
        "tag-enforcer" => (5, "own account, read the instance's tags, tag it, one idempotency write, publish"),
        "offhours-scheduler" => (13, "own account, one list per resource type (6), stop EC2 and RDS, tag + scale the group, claim the run, publish the digest"),
        "secret-rotator" => (4, "describe the secret, read the current value, random password, store the pending value"),
        "guardduty-responder" => (0, "not derived: the first event isolates an instance (security groups, snapshot, tags)"),
        "compliance-notifier" => (4, "own account, the resource's configuration, one idempotency write, publish"),
        "budget-alerter" => (5, "own account, the budget, one cost breakdown, one idempotency write, publish"),
        "snapshot-copier" => (4, "own account, the snapshot, the destination key, the copy"),
        _ => (0, "-"),
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

async fn section(name: &str) -> anyhow::Result<()> {
    let stack = DemoStack::start().await?;
    demo::run_sections(&stack, &[name]).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--section") {
        let name = args.get(1).cloned().unwrap_or_default();
        return section(&name).await;
    }
    let functions: Vec<String> = if args.is_empty() {
        SECTIONS.iter().map(|s| s.to_string()).collect()
    } else {
        args
    };
    let dir = std::env::temp_dir().join(steward_tests::unique("steward-profile"));
    std::fs::create_dir_all(&dir)?;
    let me = std::env::current_exe()?;
    println!("per function: the `make demo` section's invocations (AWS calls served while each ran; peak RSS of the process)");
    println!(
        "{:<22} {:>5} {:>12} {:>9} {:>12} {:>14}  first invocation's calls",
        "function", "inv.", "first calls", "minimum", "median calls", "peak RSS MiB"
    );
    for name in &functions {
        let log = dir.join(format!("{name}.jsonl"));
        let status = tokio::process::Command::new(&me)
            .args(["--section", name])
            .env("STEWARD_PROFILE_LOG", &log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await?;
        let lines: Vec<Value> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &Value| v["function"] == name.as_str())
            .collect();
        let Some(first) = lines.first() else {
            println!("{name:<22} no invocation recorded (section exit: {status})");
            continue;
        };
        let calls: Vec<u64> = lines.iter().filter_map(|l| l["calls"].as_u64()).collect();
        let peak = lines
            .iter()
            .filter_map(|l| l["peak_rss_kib"].as_u64())
            .max()
            .unwrap_or(0);
        let ops: Vec<String> = first["by_operation"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
            .unwrap_or_default();
        let (min, why) = minimum(name);
        println!(
            "{:<22} {:>5} {:>12} {:>9} {:>12} {:>14.1}  {}",
            name,
            lines.len(),
            first["calls"].as_u64().unwrap_or(0),
            min,
            median(calls),
            peak as f64 / 1024.0,
            ops.join(", ")
        );
        println!("{:<22} minimum: {why}", "");
        if !status.success() {
            println!(
                "{:<22} (the demo section reported a failure; figures are from what ran)",
                ""
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
