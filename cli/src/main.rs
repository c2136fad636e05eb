//! `steward`, the operator CLI: validate a policy, explain a schedule, plan a
//! scheduler run, release a quarantine. Every command calls the same library
//! code the Lambda functions call.

mod context;
mod dr;
mod dr_drill;
mod plan;
mod quarantine;
mod schedule;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "steward",
    version,
    about = "Operator tools for steward, serverless governance for AWS organizations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a policy file; exit 0 when valid, errors name the key and the line.
    Validate(validate::ValidateArgs),
    /// Off-hours schedules.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// What an off-hours scheduler run at an instant would do in the configured targets, changing nothing.
    Plan(plan::PlanArgs),
    /// GuardDuty containment.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Disaster recovery: the DR recovery point of every database, restore drills.
    #[command(subcommand)]
    Dr(dr::DrCommand),
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Explain what a `steward:offhours` tag value means at an instant (JSON).
    Explain(schedule::ExplainArgs),
}

#[derive(Subcommand)]
enum QuarantineCommand {
    /// Undo a containment from the tags steward recorded on the instance.
    Release(quarantine::ReleaseArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Schedule(ScheduleCommand::Explain(args)) => schedule::explain(args),
        Command::Plan(args) => plan::run(args),
        Command::Quarantine(QuarantineCommand::Release(args)) => quarantine::release(args),
        Command::Dr(command) => dr::run(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
