//! Measures a function's cold start: from process start to its first poll of
//! the Lambda Runtime API (runtime set-up, SDK clients, the STS call for the
//! own account, the policy), over repeated starts against the local AWS.
//! Also prints the size of the release `bootstrap.zip` when it is built.
//!
//! Usage: steward-coldstart FUNCTION [RUNS]   (STEWARD_BIN_DIR selects the build)

use std::time::Duration;

use steward_tests::moto::Moto;
use steward_tests::runtime_api::Function;
use steward_tests::{function_binary, workspace_root};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "tag-enforcer".into());
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(30);
    let binary = function_binary(&name);
    let moto = Moto::start().await?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let f = Function::start(&binary, &name, &moto.env()).await?;
        samples.push(f.cold_start(Duration::from_secs(30)).await?);
        drop(f);
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{name}: binary {}", binary.display());
    println!(
        "cold start (process start -> first Runtime API poll), {runs} runs: median {:.1} ms, p10 {:.1} ms, p90 {:.1} ms",
        ms(samples[runs / 2]),
        ms(samples[runs / 10]),
        ms(samples[runs * 9 / 10])
    );
    let zip = workspace_root()
        .join("target/lambda")
        .join(&name)
        .join("bootstrap.zip");
    if let Ok(meta) = std::fs::metadata(&zip) {
        println!(
            "release bootstrap.zip: {} bytes ({:.2} MiB)",
            meta.len(),
            meta.len() as f64 / 1_048_576.0
        );
    }
    Ok(())
}
