//! The tag enforcer: tags the creator and derivable defaults on new resources
//! (CloudTrail events through EventBridge), evaluates required tags for an
//! AWS Config custom rule (change-triggered and periodic), and tells the
//! security team which new resources are not compliant.
//!
//! `events` parses the triggers, `decide` holds the pure decisions,
//! `resources` reads and writes tags through the SDK (one place per resource
//! type), `config_rule` reports evaluations, and `handler` ties them together.

pub mod config_rule;
pub mod decide;
pub mod events;
pub mod handler;
pub mod resources;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "tag-enforcer";
