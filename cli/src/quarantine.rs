//! `steward quarantine release` (work in progress).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ReleaseArgs {
    /// The contained instance id.
    pub instance: String,
}

pub fn release(_args: ReleaseArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("steward quarantine release is not built yet")
}
