//! The GuardDuty responder: verifies every GuardDuty finding with GuardDuty
//! itself, triages it by severity band, tells the security team at once,
//! contains EC2 instances (first keeping the evidence: Standby with scale-in
//! protection in its Auto Scaling group, deregistration from its target
//! groups; then a two-step security-group swap into a no-rule quarantine
//! group, forensic snapshots, termination protection) and leaked
//! credentials (user keys set inactive; role sessions revoked when the policy
//! allows), sweeps recent findings on a schedule in case an event was lost,
//! and undoes an instance quarantine on request.
//!
//! Rooms: `events` (the finding model), `plan` (triage, trust and
//! containment decisions, pure), the adapters `guardduty`, `ec2`, `iam`,
//! `autoscaling`, `elbv2`, `organizations`, `report` (the message),
//! `handler`, `trust` (verification and the governed-account check),
//! `containment` and `execute` (orchestration), `sweep` (the scheduled
//! findings sweep), `clients` (the per-account adapter factory), `release`
//! (the operator's undo).
//!
//! Public facade (what `main.rs` and the CLI use): `handler::Responder`,
//! `clients::AwsApis`, `ec2::AwsEc2`, `autoscaling::AwsAutoScaling`,
//! `elbv2::AwsTargetGroups`, `release`, `permissions()` and
//! `release_permissions()`. The adapter ports, `events` and `plan` stay public
//! because the ports' signatures name the plan's fact types; the report, the
//! trust check, the sweep and the containment orchestration are crate-private.

mod autoscaling;
mod clients;
mod containment;
mod ec2;
mod elbv2;
pub mod events;
mod execute;
mod guardduty;
mod handler;
mod iam;
mod organizations;
mod plan;
pub mod release;
mod report;
mod sweep;
mod trust;
mod undo;

// The public facade: what the entry point, the CLI (`steward quarantine
// release`) and the parser tests use; everything else stays inside the crate.
pub use autoscaling::{AutoScalingApi, AwsAutoScaling};
pub use clients::AwsApis;
pub use ec2::{AwsEc2, Ec2Api};
pub use elbv2::{AwsTargetGroups, TargetGroupsApi};
pub use handler::{Responder, JOBS};
pub use undo::UndoLog;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "guardduty-responder";

/// Every IAM action the function's adapters call.
pub fn permissions() -> Vec<&'static str> {
    [
        ec2::PERMISSIONS,
        iam::PERMISSIONS,
        guardduty::PERMISSIONS,
        autoscaling::PERMISSIONS,
        elbv2::PERMISSIONS,
        organizations::PERMISSIONS,
    ]
    .concat()
}

/// The actions only the operator's `steward quarantine release` adds (never
/// granted to the function or the member role).
pub fn release_permissions() -> Vec<&'static str> {
    [
        ec2::RELEASE_PERMISSIONS,
        autoscaling::RELEASE_PERMISSIONS,
        elbv2::RELEASE_PERMISSIONS,
    ]
    .concat()
}
