//! The off-hours scheduler: stops dev EC2 instances, Auto Scaling groups, EKS
//! managed node groups, RDS instances, Aurora clusters and ECS services
//! outside business hours and starts them again, in every target account and
//! region, with one digest per run.
//!
//! Data flows one way: `events` (typed triggers) -> `resources` (one adapter
//! per type behind one trait) -> `plan` (pure decisions) -> `run` (apply per
//! target) -> `digest` (the notification). `handler` wires the flow.

pub mod budget_stop;
pub mod calls;
pub mod digest;
pub mod env_watch;
pub mod events;
pub mod handler;
pub mod model;
pub mod plan;
pub mod preview;
pub mod report;
pub mod resources;
pub mod restart;
pub mod run;
pub mod run_digest;
pub mod run_state;
pub mod runner;
pub mod schedule;
pub mod targets;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "offhours-scheduler";

/// Every IAM action the scheduler's code calls (each resource file and the
/// fan-out declare their own), for the permissions test and the templates.
pub fn permissions() -> Vec<&'static str> {
    [
        resources::ec2::PERMISSIONS,
        resources::asg::PERMISSIONS,
        resources::eks::PERMISSIONS,
        resources::rds::PERMISSIONS,
        resources::aurora::PERMISSIONS,
        resources::ecs::PERMISSIONS,
        targets::PERMISSIONS,
    ]
    .concat()
}
