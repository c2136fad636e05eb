//! The snapshot copier: copies snapshots of in-scope databases (RDS
//! instances and Aurora clusters, automated and manual) to the DR region
//! with the DR key, quota-aware; prunes its own copies by retention class,
//! deciding from the real state of each copy; and reports each database's
//! DR recovery point against the RPO.
//!
//! `events` models the triggers, `plan` holds the pure decisions, `rds`,
//! `kms` and `queue` are the adapters (`clients` picks the account),
//! `execute` carries out copy orders, `report` builds the messages,
//! `handler` and `sweep` tie them together. The restore drill: `drill`
//! (pure state machine), `drill_rds` (its adapter), `drill_run` (records,
//! the `dr-drill` job, the sweep's backstop, the CLI loop), `drill_report`.

mod clients;
pub mod drill;
mod drill_rds;
pub mod drill_report;
pub mod drill_run;
pub mod events;
mod execute;
mod handler;
mod kms;
pub mod model;
pub mod plan;
mod queue;
mod rds;
mod report;
mod sweep;

// The public facade: the typed input, the pure decisions and the drill
// (which the CLI's `steward dr drill` drives), plus what the entry point and
// `steward dr status` use; the adapters and the handler's rooms stay inside.
pub use clients::AwsConnect;
pub use handler::Copier;
pub use report::table as recovery_table;
pub use sweep::recovery_status;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "snapshot-copier";

/// Every IAM action the copier calls, for the templates and their test.
pub fn permissions() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = [
        rds::PERMISSIONS,
        kms::PERMISSIONS,
        queue::PERMISSIONS,
        drill_rds::PERMISSIONS,
    ]
    .concat();
    all.sort_unstable();
    all.dedup();
    all
}
