//! `steward plan --at RFC3339`: what an off-hours scheduler run at that
//! instant would do in the configured targets (stop, start, skip with the
//! reason, malformed schedule tags), changing nothing. It calls the same
//! listing and planning code the function runs.

use std::path::PathBuf;
use std::process::ExitCode;

use offhours_scheduler::plan::Decision;
use steward_shared::aws::AwsContext;

use crate::context;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// The instant of the run (RFC 3339).
    #[arg(long)]
    pub at: String,
    /// Policy file (default: $STEWARD_POLICY, a file or ssm:/parameter/name, as the functions read it; unset: the built-in defaults).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Role assumed in member accounts (default: $STEWARD_MEMBER_ROLE).
    #[arg(long)]
    pub role: Option<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let at = chrono::DateTime::parse_from_rfc3339(&args.at)
        .map_err(|e| {
            anyhow::anyhow!(
                "--at {:?} is not an RFC 3339 time (e.g. 2026-11-20T19:00:00Z): {e}",
                args.at
            )
        })?
        .with_timezone(&chrono::Utc);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let preview = runtime.block_on(async {
        let role = args.role.clone().or_else(|| {
            std::env::var("STEWARD_MEMBER_ROLE")
                .ok()
                .filter(|r| !r.is_empty())
        });
        let aws = AwsContext::load(context::CLI_NAME, role).await?;
        let policy = context::load_policy(args.policy.as_deref(), Some(aws.base())).await?;
        offhours_scheduler::preview::preview(&aws, &policy, at).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&preview)?);
    } else {
        println!(
            "Off-hours run at {} acts on transitions in ({}, {}]: {} change(s).",
            at.to_rfc3339(),
            preview.window.start.to_rfc3339(),
            preview.window.end.to_rfc3339(),
            preview.changes
        );
        if let Some(blocked) = &preview.blocked {
            println!("BLOCKED: {blocked}");
        }
        for t in &preview.targets {
            println!(
                "\n{}/{}: {} evaluated, {} already in state",
                t.account, t.region, t.evaluated, t.already_in_state
            );
            if let Some(e) = &t.error {
                println!("  target failed: {e}");
            }
            for p in &t.items {
                let what = match &p.decision {
                    Decision::Stop { hibernate: true } => "hibernate".to_string(),
                    Decision::Stop { hibernate: false } => "stop".to_string(),
                    Decision::Start => "start".to_string(),
                    Decision::Skip { reason } => format!("skip ({reason})"),
                };
                println!("  {what:<10} {} {}", p.resource.kind, p.resource.id);
            }
            for m in &t.malformed {
                println!(
                    "  malformed  {}={:?} on {}: {}",
                    m.tag, m.value, m.arn, m.error
                );
            }
        }
    }
    let failed = preview.targets.iter().any(|t| t.error.is_some());
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
