//! secret-rotator: rotates PostgreSQL credentials held in Secrets Manager.
//!
//! Secrets Manager invokes the function four times per rotation
//! (`createSecret`, `setSecret`, `testSecret`, `finishSecret`) with the same
//! client request token. The modules follow steward's one-way flow:
//! `events` parses the invocation, `model` holds the domain types (the
//! secret's value, its facts, role rights), `plan` the pure decisions
//! (versions, strategy, who logs in and which role changes, allowed master
//! secrets, the rights check, TLS), `secrets` and `database` are the adapters
//! (Secrets Manager SDK and PostgreSQL), `report` builds what the team reads,
//! and `handler` orchestrates one step.
//!
//! The public facade is what `main.rs` wires: [`SecretRotator`], [`AwsApis`],
//! [`FUNCTION_NAME`], [`LOG_CAPPED_TARGETS`] and [`permissions`].

mod apis;
mod database;
/// The rotation event parser (public for its property tests).
pub mod events;
mod handler;
mod model;
mod plan;
mod report;
mod secrets;

pub use apis::AwsApis;
pub use handler::SecretRotator;

/// The function's name: binary name, log field and metric dimension.
pub const FUNCTION_NAME: &str = "secret-rotator";

/// Log targets held at INFO whatever `AWS_LAMBDA_LOG_LEVEL` says: at DEBUG and
/// TRACE the database client logs its statements (an `ALTER ROLE` carries a
/// password verifier), and the SDK and HTTP stack log request and response
/// bodies (secret values).
pub const LOG_CAPPED_TARGETS: &[&str] = &[
    "tokio_postgres",
    "postgres_protocol",
    "tokio_postgres_rustls",
    "aws_smithy",
    "aws_sdk",
    "aws_config",
    "aws_runtime",
    "aws_credential_types",
    "aws_sigv4",
    "hyper",
    "h2",
    "rustls",
    "tower",
    "lambda_runtime",
];

/// The IAM actions the function calls, from every adapter.
pub fn permissions() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = secrets::PERMISSIONS
        .iter()
        .chain(database::PERMISSIONS)
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    #[test]
    fn permissions_name_the_secrets_manager_calls() {
        let all = super::permissions();
        assert!(all.contains(&"secretsmanager:DescribeSecret"));
        assert!(all.contains(&"secretsmanager:UpdateSecretVersionStage"));
        assert!(all
            .iter()
            .all(|p| p.starts_with("secretsmanager:") || p.starts_with("kms:")));
    }
}
