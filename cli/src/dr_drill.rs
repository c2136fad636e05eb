//! `steward dr drill DB [--json]`: restores the newest DR copy of DB into a
//! throwaway database in the DR region, verifies it, deletes it and prints
//! the time to restore, with the snapshot copier's own drill code (the same
//! state machine the `dr-drill` job runs). Unlike the job it waits, polling
//! every `--poll-seconds` up to `--timeout-minutes`. The drill is recorded in
//! the idempotency table first (`--table` or `STEWARD_IDEMPOTENCY_TABLE`), so
//! a drill the CLI leaves open is finished by the job or the daily sweep.
//! Exit 0 only when the restore was verified (within the RTO) and deleted;
//! 3 when it failed or was too slow; 4 when the timeout passed first.

use std::process::ExitCode;
use std::time::Duration;

use snapshot_copier::drill_report;
use snapshot_copier::drill_run;
use snapshot_copier::AwsConnect;
use steward_shared::aws::AwsContext;
use steward_shared::idempotency::DynamoStore;
use steward_shared::Policy;

#[derive(clap::Args)]
pub struct DrillArgs {
    /// The database: its identifier, or ACCOUNT/REGION/ID when the name is not unique.
    pub database: String,
    /// Policy file (default: $STEWARD_POLICY when it names a file, else the built-in defaults).
    #[arg(long)]
    pub policy: Option<String>,
    /// Role assumed in member accounts (default: $STEWARD_MEMBER_ROLE).
    #[arg(long)]
    pub role: Option<String>,
    /// The idempotency table drills are recorded in (default: $STEWARD_IDEMPOTENCY_TABLE).
    #[arg(long)]
    pub table: Option<String>,
    /// Seconds between checks (the accuracy of the time to restore).
    #[arg(long, default_value_t = 30)]
    pub poll_seconds: u64,
    /// Minutes to wait before giving up (the drill stays open for the dr-drill job and the sweep).
    #[arg(long, default_value_t = 120)]
    pub timeout_minutes: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit code when the drill failed or exceeded the RTO.
const FAILED: u8 = 3;
/// Exit code when the timeout passed before the drill closed.
const TIMED_OUT: u8 = 4;

pub async fn drill(args: DrillArgs, policy: Policy) -> anyhow::Result<ExitCode> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let table = args.table.clone().or_else(|| env("STEWARD_IDEMPOTENCY_TABLE")).ok_or_else(|| {
        anyhow::anyhow!("no idempotency table: pass --table NAME or set STEWARD_IDEMPOTENCY_TABLE (drills are recorded there before the restore, so the sweep can clean up after a crash)")
    })?;
    if args.poll_seconds == 0 {
        anyhow::bail!("--poll-seconds must be at least 1");
    }
    let role = args.role.clone().or_else(|| env("STEWARD_MEMBER_ROLE"));
    let aws = AwsContext::load("steward-cli", role).await?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(aws.base()), table);
    let connect = AwsConnect(aws.clone());
    let outcome = drill_run::run_cli(
        &connect,
        &store,
        &policy,
        aws.own_account(),
        aws.own_region(),
        &args.database,
        drill_run::Polling {
            poll: Duration::from_secs(args.poll_seconds),
            timeout: Duration::from_secs(args.timeout_minutes.saturating_mul(60)),
        },
    )
    .await?;
    let rto = policy.snapshots.drill_rto_minutes;
    let record = &outcome.record;
    let verdict = if !outcome.finished {
        format!(
            "drill {} still open after {} min; the dr-drill job and the daily sweep finish it",
            record.drill_id, args.timeout_minutes
        )
    } else {
        drill_report::summary(record, rto)
    };
    if args.json {
        let timing = snapshot_copier::drill::timing(record, rto);
        let doc = serde_json::json!({
            "drill_id": record.drill_id,
            "database": record.database,
            "dr_region": record.dr_region,
            "dr_copy": record.copy.id,
            "restored_identifier": record.restored_id,
            "state": record.state,
            "finished": outcome.finished,
            "passed": outcome.passed,
            "failed": record.failed,
            "problems": record.problems,
            "time_to_restore_minutes": timing.map(|t| t.minutes),
            "rto_minutes": rto,
            "check_every_seconds": record.check_every_seconds,
            "summary": verdict,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("{verdict}");
        for line in drill_report::lines(record, rto) {
            println!("  {line}");
        }
    }
    Ok(if outcome.passed {
        ExitCode::SUCCESS
    } else if !outcome.finished {
        eprintln!("error: {verdict}");
        ExitCode::from(TIMED_OUT)
    } else {
        eprintln!("error: {verdict}");
        ExitCode::from(FAILED)
    })
}
