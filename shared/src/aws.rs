//! AWS client configuration: built once per process from the environment
//! (`AWS_ENDPOINT_URL` is honoured by the SDK itself), the function's own
//! account from STS once, and configurations for member accounts obtained by
//! assuming `STEWARD_MEMBER_ROLE` there, cached per account (the provider
//! refreshes the credentials when they expire).

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::sync::Mutex;

/// The process's AWS identity and the way to reach member accounts.
#[derive(Clone)]
pub struct AwsContext {
    base: SdkConfig,
    own_account: String,
    own_region: String,
    member_role: Option<String>,
    function_name: String,
    members: Arc<Mutex<HashMap<String, SdkConfig>>>,
}

/// An error reaching an account: names the account and what to check.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("event is for account {account} but STEWARD_MEMBER_ROLE is not set; set it to the role name deployed in member accounts")]
    NoMemberRole { account: String },
    #[error("could not assume {role_arn}: {reason}; check that the member-account role exists and trusts this function")]
    AssumeRole { role_arn: String, reason: String },
}

impl AwsContext {
    /// Loads the SDK configuration from the environment and asks STS for the own account.
    pub async fn load(
        function_name: &str,
        member_role: Option<String>,
    ) -> anyhow::Result<AwsContext> {
        // Throttled and transient failures are retried with exponential backoff and jitter.
        let base = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
            .load()
            .await;
        let own_region = base
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| anyhow::anyhow!("no AWS region configured: set AWS_REGION"))?;
        let sts = aws_sdk_sts::Client::new(&base);
        let identity = sts.get_caller_identity().send().await.map_err(|e| {
            anyhow::anyhow!(
                "STS GetCallerIdentity failed: {}",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            )
        })?;
        let own_account = identity
            .account()
            .ok_or_else(|| anyhow::anyhow!("STS GetCallerIdentity returned no account"))?
            .to_string();
        Ok(AwsContext::new(
            base,
            own_account,
            own_region,
            member_role,
            function_name,
        ))
    }

    /// Builds a context from parts (tests, and callers that know the account).
    pub fn new(
        base: SdkConfig,
        own_account: String,
        own_region: String,
        member_role: Option<String>,
        function_name: &str,
    ) -> AwsContext {
        AwsContext {
            base,
            own_account,
            own_region,
            member_role,
            function_name: function_name.to_string(),
            members: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn own_account(&self) -> &str {
        &self.own_account
    }

    pub fn own_region(&self) -> &str {
        &self.own_region
    }

    /// The configuration of the function's own account and region.
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// The configuration for acting in `account` and `region`: the function's
    /// own credentials for its own account, the assumed member role otherwise.
    /// `event_id` names the session (visible in the member's CloudTrail).
    pub async fn config_for(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> Result<SdkConfig, AccessError> {
        let with_region = |config: &SdkConfig| {
            config
                .to_builder()
                .region(Region::new(region.to_string()))
                .build()
        };
        if account == self.own_account {
            return Ok(with_region(&self.base));
        }
        let role = self
            .member_role
            .as_deref()
            .ok_or_else(|| AccessError::NoMemberRole {
                account: account.to_string(),
            })?;
        let mut members = self.members.lock().await;
        if let Some(config) = members.get(account) {
            return Ok(with_region(config));
        }
        let role_arn = format!(
            "arn:{}:iam::{account}:role/{role}",
            partition_of(&self.own_region)
        );
        let provider = AssumeRoleProvider::builder(role_arn.clone())
            .session_name(session_name(&self.function_name, event_id))
            .configure(&self.base)
            .build()
            .await;
        // Resolve once now so a missing or untrusted role fails this event with a clear error.
        use aws_credential_types::provider::ProvideCredentials;
        provider
            .provide_credentials()
            .await
            .map_err(|e| AccessError::AssumeRole {
                role_arn: role_arn.clone(),
                reason: aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
            })?;
        let config = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        members.insert(account.to_string(), config.clone());
        Ok(with_region(&config))
    }
}

/// The partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// A role session name that identifies steward, the function and the event:
/// at most 64 characters from `[\w+=,.@-]`.
pub fn session_name(function_name: &str, event_id: &str) -> String {
    let raw = format!("steward-{function_name}-{event_id}");
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid() {
        let name = session_name(
            "tag-enforcer",
            "6f5ea4d3-7d2b-4c1e-9a0b-1234567890ab/extra:stuff and more text here",
        );
        assert!(name.len() <= 64);
        assert!(name.starts_with("steward-tag-enforcer-6f5ea4d3"));
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c)));
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of("eu-west-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
