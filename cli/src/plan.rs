//! `steward plan` (work in progress).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// The instant of the run (RFC 3339).
    #[arg(long)]
    pub at: String,
}

pub fn run(_args: PlanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("steward plan is not built yet")
}
