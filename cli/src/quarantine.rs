//! `steward quarantine release INSTANCE`: undoes a GuardDuty containment from
//! the undo record the responder kept in steward's idempotency table (the
//! hub's `STEWARD_IDEMPOTENCY_TABLE`, read with your credentials), checked
//! against the tags it wrote beside it (each interface's
//! `steward:previous-groups`, the instance's `steward:quarantined`,
//! `steward:target-groups` and `steward:standby`): a tag that disagrees with
//! the record is reported and the record wins. In the hub's own account or,
//! with `--account`, through the member role; says what it left in place
//! (always the allow-all group of the two-step swap, loudly when it is still
//! attached) and what failed. Exit 1 when an undo step failed.

use std::process::ExitCode;

use std::path::PathBuf;

use guardduty_responder::release;
use guardduty_responder::{AwsAutoScaling, AwsEc2, AwsTargetGroups, UndoLog};
use steward_shared::aws::AwsContext;
use steward_shared::idempotency::DynamoStore;

#[derive(clap::Args)]
pub struct ReleaseArgs {
    /// The contained instance id.
    pub instance: String,
    /// Account of the instance (default: the account of your credentials).
    #[arg(long)]
    pub account: Option<String>,
    /// Region of the instance (default: your configured region).
    #[arg(long)]
    pub region: Option<String>,
    /// Role assumed in a member account (default: $STEWARD_MEMBER_ROLE).
    #[arg(long)]
    pub role: Option<String>,
    /// Policy file (default: $STEWARD_POLICY, else the built-in defaults);
    /// its quarantine group name finds the allow-all group of the swap.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Say what would be restored; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where steward's table holds no record, undo what steward's tags say
    /// (only after checking them by hand: anyone who may tag the instance
    /// can write them).
    #[arg(long)]
    pub trust_tags: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn release(args: ReleaseArgs) -> anyhow::Result<ExitCode> {
    if !args.instance.starts_with("i-") {
        anyhow::bail!("`{}` is not an instance id (i-...)", args.instance);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: ReleaseArgs) -> anyhow::Result<ExitCode> {
    let role = args.role.clone().or_else(|| {
        std::env::var("STEWARD_MEMBER_ROLE")
            .ok()
            .filter(|r| !r.is_empty())
    });
    let aws = AwsContext::load("steward-cli", role).await?;
    let account = args
        .account
        .clone()
        .unwrap_or_else(|| aws.own_account().to_string());
    let region = args
        .region
        .clone()
        .unwrap_or_else(|| aws.own_region().to_string());
    let config = aws
        .config_for(&account, &region, &format!("release-{}", args.instance))
        .await?;
    let policy = crate::context::load_policy(args.policy.as_deref(), Some(aws.base())).await?;
    let ec2 = AwsEc2::new(&config);
    let autoscaling = AwsAutoScaling::new(&config);
    let targets = AwsTargetGroups::new(&config);
    let adapters = release::Adapters {
        ec2: &ec2,
        autoscaling: &autoscaling,
        targets: &targets,
    };
    let store = std::env::var(steward_shared::settings::vars::IDEMPOTENCY_TABLE)
        .ok()
        .filter(|t| !t.is_empty())
        .map(|table| DynamoStore::new(aws_sdk_dynamodb::Client::new(aws.base()), table));
    let undo = store
        .as_ref()
        .map(|s| UndoLog::new(s, &account, &region, &args.instance));
    let records = release::Records {
        undo: undo.as_ref(),
        trust_tags: args.trust_tags,
    };
    let report = release::release(
        &adapters,
        &records,
        &args.instance,
        &policy.containment.quarantine_group_name,
        args.dry_run,
    )
    .await?;
    if args.json {
        let value = serde_json::json!({
            "instance": report.instance_id,
            "account": account,
            "region": region,
            "dry_run": report.dry_run,
            "quarantined": report.quarantined,
            "restored": report.restored.iter().map(|(eni, groups)| serde_json::json!({"interface": eni, "groups": groups})).collect::<Vec<_>>(),
            "unrecorded_interfaces": report.unrecorded,
            "reregistered": report.reregistered,
            "standby_exited": report.standby_exited,
            "protection_removed": report.protection_removed,
            "open_group": report.open_group.as_ref().map(|g| serde_json::json!({
                "id": g.id, "vpc": g.vpc_id, "still_attached_to": g.attached_to,
            })),
            "left": report.left,
            "tags_changed": report.tags_changed,
            "failed": report.failed,
            "lines": report.lines(),
            "snapshots_left": report.snapshots_left,
            "termination_protection_left": report.termination_protection_left,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        let head = if report.dry_run {
            "would release"
        } else {
            "released"
        };
        println!(
            "{head} {} in account {account} ({region}):",
            report.instance_id
        );
        for line in report.lines() {
            println!("  - {line}");
        }
    }
    if report.failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "release incomplete: {} step(s) failed; finish them by hand (see FAILED above)",
            report.failed.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
