//! The one place the CLI finds its policy: `--policy FILE` when given, else
//! `STEWARD_POLICY` read through the same `Settings` and `PolicyStore` the
//! functions use (a file, `ssm:/parameter/name`, or unset for the built-in
//! defaults). Errors name the flag or the variable and what to fix.

use std::path::Path;

use aws_config::{BehaviorVersion, SdkConfig};
use steward_shared::policy_store::PolicyStore;
use steward_shared::settings::{PolicySource, Settings};
use steward_shared::Policy;

/// The name the CLI reads its settings under.
pub const CLI_NAME: &str = "steward-cli";

/// Loads the policy. `aws` is the SDK configuration already loaded by a
/// command that talks to AWS; without it one is loaded only when the policy
/// is an SSM parameter.
pub async fn load_policy(
    explicit: Option<&Path>,
    aws: Option<&SdkConfig>,
) -> anyhow::Result<Policy> {
    if let Some(path) = explicit {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("--policy {}: cannot read the file: {e}", path.display())
        })?;
        return Policy::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("--policy {}: {e}", path.display()));
    }
    let settings = Settings::from_env(CLI_NAME)
        .map_err(|e| anyhow::anyhow!("the environment is not usable: {e}"))?;
    let source = settings.policy_source;
    let store = match (&source, aws) {
        (PolicySource::Ssm(_), None) => {
            let base = aws_config::defaults(BehaviorVersion::latest())
                .retry_config(steward_shared::aws::limits::retry_config())
                .timeout_config(steward_shared::aws::limits::timeout_config())
                .load()
                .await;
            PolicyStore::load_for(source, &base).await?
        }
        (_, Some(base)) => PolicyStore::load_for(source, base).await?,
        (_, None) => PolicyStore::load(source, None).await?,
    };
    Ok(store.current().await.as_ref().clone())
}

/// Loads the policy from a synchronous command (one small runtime).
pub fn load_policy_blocking(explicit: Option<&Path>) -> anyhow::Result<Policy> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(load_policy(explicit, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_file_names_the_flag() {
        let err = load_policy_blocking(Some(Path::new("/nonexistent/policy.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--policy /nonexistent/policy.toml"),
            "{err}"
        );
        assert!(!err.contains("STEWARD_POLICY"), "{err}");
    }

    #[test]
    fn an_explicit_bad_file_names_key_and_line() {
        let path = std::env::temp_dir().join(format!("steward-cli-{}.toml", std::process::id()));
        std::fs::write(&path, "[limits]\nmax_changes_per_run = 0\n").unwrap();
        let err = load_policy_blocking(Some(&path)).unwrap_err().to_string();
        std::fs::remove_file(&path).ok();
        assert!(err.contains("limits.max_changes_per_run"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }
}
