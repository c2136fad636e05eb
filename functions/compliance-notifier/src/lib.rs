//! The compliance notifier: tells the security team when any AWS Config rule
//! turns a resource NON_COMPLIANT and when it recovers (EventBridge
//! `Config Rules Compliance Change`), folds a flapping resource into one
//! message, and sends one daily digest of what is still non-compliant per
//! account and rule, with the change since yesterday (scheduled job `digest`).
//!
//! `events` parses the triggers, `model` holds the domain types, `plan` the
//! pure decisions, `config` is the AWS Config adapter (compliance queries and
//! the resource's tags), `history` keeps the per-resource change history and
//! yesterday's counts in the idempotency table, `report` builds the messages,
//! and `handler` ties them together.

mod config;
pub mod events;
mod handler;
mod history;
mod model;
mod plan;
mod report;

// The public facade: what the entry point, the CLI and the parser tests use;
// everything else stays inside the crate.
pub use config::AwsConfigApis;
pub use handler::ComplianceNotifier;
pub use model::ComplianceState;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "compliance-notifier";

/// Every IAM action the function calls (the hub role; `config::MEMBER_PERMISSIONS`
/// are also needed in member accounts).
pub fn permissions() -> Vec<&'static str> {
    config::PERMISSIONS.to_vec()
}
