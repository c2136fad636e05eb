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

pub mod apis;
pub mod apply;
pub mod config_rule;
pub mod events;
pub mod handler;
pub mod model;
pub mod plan;
pub mod report;
pub mod resources;
pub mod sts;

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
