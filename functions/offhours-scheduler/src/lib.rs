//! The off-hours scheduler: stops dev EC2 instances, Auto Scaling groups, EKS
//! managed node groups, RDS instances, Aurora clusters and ECS services
//! outside business hours and starts them again, in every target account and
//! region, with one digest per run.
//!
//! Data flows one way: `events` (typed triggers) -> `resources` (one adapter
//! per type behind one trait) -> `plan` (pure decisions) -> `run` (apply per
//! target) -> `digest` (the notification). `handler` wires the flow.

mod budget_stop;
mod calls;
mod digest;
mod env_watch;
pub mod events;
mod handler;
pub mod model;
pub mod plan;
pub mod preview;
mod report;
mod resources;
mod restart;
mod run;
mod run_digest;
mod run_state;
mod runner;
mod schedule;
mod targets;

// The public facade: the typed input, the model and the pure planner (the
// CLI's `steward plan` previews through `preview`), the handler and the port
// a test fleet implements, and the run records a test seeds; the adapters and
// the handler's rooms stay inside.
pub use handler::Scheduler;
pub use resources::{ScheduledResource, StopItem, Target};
pub use run::Fleet;
pub use run_state::{open_run, open_runs};

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
