//! `steward schedule explain` (work in progress).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The tag value, as written on the resource.
    #[arg(long)]
    pub tag: String,
    /// The instant (RFC 3339).
    #[arg(long)]
    pub at: String,
    /// Time zone when the tag names none (default: the policy's).
    #[arg(long)]
    pub tz: Option<String>,
    /// The scheduler window ending at `--at` (for example 15m, 1h).
    #[arg(long)]
    pub window: Option<String>,
}

pub fn explain(_args: ExplainArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("steward schedule explain is not built yet")
}
