//! secret-rotator: rotates PostgreSQL credentials held in Secrets Manager.
//!
//! Secrets Manager invokes the function four times per rotation
//! (`createSecret`, `setSecret`, `testSecret`, `finishSecret`) with the same
//! client request token. The modules follow steward's one-way flow:
//! `events` parses the invocation, `credentials` models the secret's value,
//! `decide` holds the pure decisions (version checks, which user to rotate,
//! TLS), `secrets` and `database` are the adapters (Secrets Manager SDK and
//! PostgreSQL), and `handler` runs one step and reports failures.

pub mod credentials;
pub mod database;
pub mod decide;
pub mod events;
pub mod handler;
pub mod secrets;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "secret-rotator";
