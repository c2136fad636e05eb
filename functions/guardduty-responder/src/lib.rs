//! The GuardDuty responder: triages every GuardDuty finding by severity band,
//! tells the security team at once, contains EC2 instances (quarantine
//! security group, forensic snapshots, termination protection) and leaked
//! credentials (user keys set inactive, role sessions revoked), and undoes an
//! instance quarantine on request.
//!
//! `finding` models the event, `triage` and `plan` hold the pure decisions,
//! `ec2` and `iam` are the SDK adapters, `report` builds the message,
//! `release` undoes a quarantine, and `handler` ties them together.

pub mod ec2;
pub mod finding;
pub mod handler;
pub mod iam;
pub mod plan;
pub mod release;
pub mod report;
pub mod triage;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "guardduty-responder";
