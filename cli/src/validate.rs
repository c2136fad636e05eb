//! `steward validate FILE`: parse and check a policy, printing each problem
//! with its key and line.

use std::path::PathBuf;
use std::process::ExitCode;

use steward_shared::Policy;

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The policy file (TOML).
    pub file: PathBuf,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    match Policy::from_toml(&text) {
        Ok(policy) => {
            println!(
                "{}: valid (policy version {})",
                args.file.display(),
                policy.version
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{}:{e}", args.file.display());
            }
            eprintln!(
                "{}: {} problem(s); nothing is valid until all are fixed",
                args.file.display(),
                errors.0.len()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
