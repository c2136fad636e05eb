//! `steward dr drill DB` is in `dr_drill`.
//!
//! `steward dr status [--json]`: the recovery point of every in-scope
//! database in the DR region, computed by the snapshot copier's own code
//! (the same table as the sweep's digest). Exits 2 when a database is past
//! its RPO, so a script or a pipeline can alarm on it.

use std::process::ExitCode;

use steward_shared::aws::AwsContext;
use steward_shared::Policy;

/// The `dr` commands.
#[derive(clap::Subcommand)]
pub enum DrCommand {
    /// Per in-scope database: the newest DR copy and its age against the RPO (exit 2 when past it).
    Status(StatusArgs),
    /// Restore the newest DR copy of DB into a throwaway database, verify it, delete it, report the time to restore (exit 0 only when it passed).
    Drill(crate::dr_drill::DrillArgs),
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Policy file (default: $STEWARD_POLICY when it names a file, else the built-in defaults).
    #[arg(long)]
    pub policy: Option<String>,
    /// Role assumed in member accounts (default: $STEWARD_MEMBER_ROLE).
    #[arg(long)]
    pub role: Option<String>,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit code when a database is past its RPO.
const PAST_RPO: u8 = 2;

fn load_policy(path: Option<&str>) -> anyhow::Result<Policy> {
    let path = match path {
        Some(p) => Some(p.to_string()),
        None => match std::env::var("STEWARD_POLICY").ok().filter(|v| !v.trim().is_empty()) {
            Some(v) if v.starts_with("ssm:") => anyhow::bail!(
                "STEWARD_POLICY={v} is an SSM parameter; save it to a file (aws ssm get-parameter ...) and pass --policy FILE"
            ),
            other => other,
        },
    };
    match path {
        None => Ok(Policy::default()),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
            Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{path}: {e}"))
        }
    }
}

pub fn run(command: DrCommand) -> anyhow::Result<ExitCode> {
    let args = match command {
        DrCommand::Status(args) => args,
        DrCommand::Drill(args) => {
            let policy = load_policy(args.policy.as_deref())?;
            if policy.snapshots.dr_region.is_empty() {
                anyhow::bail!(
                    "snapshots.dr_region is empty in the policy: there is no DR copy to drill"
                );
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            return runtime.block_on(crate::dr_drill::drill(args, policy));
        }
    };
    let policy = load_policy(args.policy.as_deref())?;
    if policy.snapshots.dr_region.is_empty() {
        anyhow::bail!(
            "snapshots.dr_region is empty in the policy: there is no DR region to report on"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(status(args, policy))
}

async fn status(args: StatusArgs, policy: Policy) -> anyhow::Result<ExitCode> {
    let role = args.role.clone().or_else(|| {
        std::env::var("STEWARD_MEMBER_ROLE")
            .ok()
            .filter(|r| !r.is_empty())
    });
    let aws = AwsContext::load("steward-cli", role).await?;
    let rows = snapshot_copier::recovery_status(&aws, &policy, chrono::Utc::now()).await?;
    let past = rows.iter().filter(|r| r.past_rpo).count();
    if args.json {
        let doc = serde_json::json!({
            "dr_region": policy.snapshots.dr_region,
            "rpo_hours": policy.snapshots.rpo_hours,
            "databases_past_rpo": past,
            "databases": rows,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "DR region {}, RPO {} h: {} databases, {past} past the RPO",
            policy.snapshots.dr_region,
            policy.snapshots.rpo_hours,
            rows.len()
        );
        for line in snapshot_copier::recovery_table(&rows, policy.snapshots.rpo_hours) {
            println!("  {line}");
        }
    }
    Ok(if past > 0 {
        ExitCode::from(PAST_RPO)
    } else {
        ExitCode::SUCCESS
    })
}
