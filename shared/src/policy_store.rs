//! Reads the policy from where `STEWARD_POLICY` says (built-in defaults, a
//! file, or an SSM parameter) at start, and again once it is five minutes old.
//! A policy that fails to load at start stops the function with the reason; a
//! later reload that fails keeps the last good policy and logs why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::policy::Policy;
use crate::settings::PolicySource;

/// How long a loaded policy is used before it is read again.
pub const POLICY_MAX_AGE: Duration = Duration::from_secs(300);

/// The current policy of a process.
pub struct PolicyStore {
    source: PolicySource,
    ssm: Option<aws_sdk_ssm::Client>,
    current: Mutex<(Arc<Policy>, Instant)>,
}

impl PolicyStore {
    /// Loads the policy once; errors name the source and the problem.
    pub async fn load(
        source: PolicySource,
        ssm: Option<aws_sdk_ssm::Client>,
    ) -> anyhow::Result<PolicyStore> {
        let policy = read(&source, ssm.as_ref()).await?;
        Ok(PolicyStore {
            source,
            ssm,
            current: Mutex::new((Arc::new(policy), Instant::now())),
        })
    }

    /// A store holding a fixed policy (tests and the CLI).
    pub fn fixed(policy: Policy) -> PolicyStore {
        PolicyStore {
            source: PolicySource::BuiltIn,
            ssm: None,
            current: Mutex::new((Arc::new(policy), Instant::now())),
        }
    }

    /// The policy to use now, re-read when it is older than five minutes.
    pub async fn current(&self) -> Arc<Policy> {
        let mut current = self.current.lock().await;
        if self.source != PolicySource::BuiltIn && current.1.elapsed() >= POLICY_MAX_AGE {
            match read(&self.source, self.ssm.as_ref()).await {
                Ok(policy) => {
                    if policy.version != current.0.version {
                        tracing::info!(policy_version = %policy.version, "policy changed; using the new version");
                    }
                    *current = (Arc::new(policy), Instant::now());
                }
                Err(e) => {
                    tracing::error!(error = %e, "re-reading the policy failed; keeping the last good policy");
                    current.1 = Instant::now();
                }
            }
        }
        current.0.clone()
    }
}

async fn read(source: &PolicySource, ssm: Option<&aws_sdk_ssm::Client>) -> anyhow::Result<Policy> {
    match source {
        PolicySource::BuiltIn => Ok(Policy::default()),
        PolicySource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("STEWARD_POLICY file {path} could not be read: {e}")
            })?;
            Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("STEWARD_POLICY file {path}: {e}"))
        }
        PolicySource::Ssm(name) => {
            let ssm =
                ssm.ok_or_else(|| anyhow::anyhow!("no SSM client for STEWARD_POLICY=ssm:{name}"))?;
            let output = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "STEWARD_POLICY parameter {name} could not be read: {}",
                        aws_sdk_ssm::error::DisplayErrorContext(&e)
                    )
                })?;
            let text = output
                .parameter()
                .and_then(|p| p.value())
                .ok_or_else(|| anyhow::anyhow!("STEWARD_POLICY parameter {name} has no value"))?;
            Policy::from_toml(text)
                .map_err(|e| anyhow::anyhow!("STEWARD_POLICY parameter {name}: {e}"))
        }
    }
}
