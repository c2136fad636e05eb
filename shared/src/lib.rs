//! steward's shared library: everything the functions have in common.
//!
//! Data flows one way: an event is parsed into a typed model, facts are read
//! from AWS, a pure decision turns them into a plan, adapters execute the plan,
//! and the outcome is reported (notification, logs, metrics). The modules here
//! hold the parts every function needs; each function crate holds its own
//! event models, decisions and adapters.

pub mod aws;
pub mod context;
pub mod entry;
pub mod failure;
#[cfg(any(test, feature = "testing"))]
pub mod fuzz;
pub mod idempotency;
pub mod notify;
pub mod observability;
pub mod permissions;
pub mod policy;
pub mod policy_store;
pub mod safety;
pub mod schedule;
pub mod sdk;
pub mod settings;
pub mod sqs;
pub mod tags;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trigger;

pub use context::{NotifyOutcome, Once, Steward};
pub use entry::{Handler, Invocation};
pub use failure::{bad_event, BadEvent};
pub use notify::{Category, Notification, Severity};
pub use policy::Policy;
pub use safety::RunMode;
