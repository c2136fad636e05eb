//! Measures cold starts: from process start to the first poll of the Lambda
//! Runtime API (runtime set-up, clients, the policy; the STS lookup of the
//! own account runs in the background and is not waited for), over repeated
//! starts against the local AWS, for each function and, as the baseline, a
//! hello-world Rust Lambda (`tests/hello-lambda`) built and started the same
//! way. Prints the size of each release `bootstrap.zip` next to it.
//!
//! Usage: steward-coldstart [RUNS] [FUNCTION ...]   (default 21 runs, every
//! function; STEWARD_BIN_DIR selects the build, e.g. the release packages)

use std::path::Path;
use std::time::Duration;

use steward_tests::function_binary;
use steward_tests::moto::Moto;
use steward_tests::runtime_api::Function;

const FUNCTIONS: [&str; 7] = [
    "tag-enforcer",
    "offhours-scheduler",
    "secret-rotator",
    "guardduty-responder",
    "compliance-notifier",
    "budget-alerter",
    "snapshot-copier",
];
const BASELINE: &str = "hello-lambda";

/// Median, 10th and 90th percentile of one binary's cold starts, in ms.
struct Starts {
    median: f64,
    p10: f64,
    p90: f64,
}

async fn measure(moto: &Moto, name: &str, binary: &Path, runs: usize) -> anyhow::Result<Starts> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let f = Function::start(binary, name, &moto.env()).await?;
        samples.push(f.cold_start(Duration::from_secs(30)).await?);
        drop(f);
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Starts {
        median: ms(samples[runs / 2]),
        p10: ms(samples[runs / 10]),
        p90: ms(samples[runs * 9 / 10]),
    })
}

/// The release package beside a cargo-lambda binary (`<name>/bootstrap.zip`), in MiB.
fn zip_mib(binary: &Path) -> Option<f64> {
    let zip = binary.parent()?.join("bootstrap.zip");
    let meta = std::fs::metadata(zip).ok()?;
    Some(meta.len() as f64 / 1_048_576.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut runs = 21;
    let mut names = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.parse::<usize>() {
            Ok(n) => runs = n.max(1),
            Err(_) => names.push(arg),
        }
    }
    if names.is_empty() {
        names = FUNCTIONS.iter().map(|s| s.to_string()).collect();
    }
    let moto = Moto::start().await?;
    let baseline_binary = function_binary(BASELINE);
    println!("cold start: process start -> first Runtime API poll, {runs} starts each");
    println!(
        "binaries: {}",
        baseline_binary
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""))
            .display()
    );
    let baseline = measure(&moto, BASELINE, &baseline_binary, runs).await?;
    println!(
        "{:<22} {:>12} {:>10} {:>8} {:>8} {:>12}",
        "function", "zip (MiB)", "median ms", "p10", "p90", "vs hello"
    );
    let zip = |b: &Path| {
        zip_mib(b)
            .map(|m| format!("{m:.2}"))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{:<22} {:>12} {:>10.1} {:>8.1} {:>8.1} {:>12}",
        BASELINE,
        zip(&baseline_binary),
        baseline.median,
        baseline.p10,
        baseline.p90,
        "1.00x"
    );
    for name in &names {
        let binary = function_binary(name);
        let s = measure(&moto, name, &binary, runs).await?;
        println!(
            "{:<22} {:>12} {:>10.1} {:>8.1} {:>8.1} {:>11.2}x",
            name,
            zip(&binary),
            s.median,
            s.p10,
            s.p90,
            s.median / baseline.median
        );
    }
    Ok(())
}
