//! The schedule grammar and transitions this function consumes: the shared
//! implementation (`steward_shared::schedule`), re-exported so the planner,
//! `steward plan` and the tests all read schedules the same way.

pub use steward_shared::schedule::*;
