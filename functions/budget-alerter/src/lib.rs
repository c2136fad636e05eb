//! The budget alerter: turns AWS Budgets notifications, Cost Anomaly
//! Detection alerts, a daily check of every budget and a weekly cost review
//! into messages that say what is spending, who owns it and what to do; and,
//! when the policy asks for it, has the off-hours scheduler stop a dev
//! account whose actual spend breached its budget.
//!
//! `events` models the triggers, `plan` holds the pure decisions, `budgets`,
//! `costexplorer` and `queue` are the SDK adapters, `enrich` reads the cost
//! breakdown through the run's cache, `report` builds the messages and
//! `handler` ties them together.

mod budgets;
mod costexplorer;
mod enrich;
pub mod events;
mod handler;
mod model;
mod plan;
mod queue;
mod report;

// The public facade: what the entry point, the CLI and the parser tests use;
// everything else stays inside the crate.
pub use handler::Alerter;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "budget-alerter";

/// Every IAM action the function calls, for the permissions test and the templates.
pub fn permissions() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = [
        budgets::PERMISSIONS,
        costexplorer::PERMISSIONS,
        queue::PERMISSIONS,
    ]
    .concat();
    all.sort_unstable();
    all.dedup();
    all
}
