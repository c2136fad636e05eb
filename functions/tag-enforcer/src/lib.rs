//! The tag enforcer: tags the creator and derivable defaults on new resources
//! (CloudTrail create calls through EventBridge), evaluates required tags for
//! an AWS Config custom rule (change-triggered and periodic), tells the
//! security team which new resources are not compliant, and reports changes
//! to the governance tags (`env`, `steward:exempt`, `steward:offhours`) made
//! by CloudTrail tagging calls.
//!
//! The rooms (see `docs/architecture.md`): `events` parses the triggers into
//! the types of `model`; `plan` holds the pure decisions; `resources/` has
//! one adapter per resource type behind one trait, `config_rule` the AWS
//! Config adapter and `sts` the caller identity; `report` builds what the
//! team reads; `apis` builds them per account, `handler` only orchestrates.

mod apis;
mod apply;
mod config_rule;
pub mod events;
mod handler;
mod model;
mod plan;
mod report;
mod resources;
mod sts;

// The public facade: what the entry point, the CLI and the parser tests use;
// everything else stays inside the crate.
pub use handler::{AwsApis, TagEnforcer};
pub use model::{ConfigInvocation, Identity};
pub use plan::{caller_name, creator};
pub use resources::types as resource_types;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "tag-enforcer";

/// Every IAM action the tag enforcer's adapters call (sorted, no duplicates).
pub fn permissions() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = resources::permissions();
    all.extend(config_rule::PERMISSIONS);
    all.extend(sts::PERMISSIONS);
    all.sort_unstable();
    all.dedup();
    all
}
