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

/// The one place every steward client's retries and timeouts are set (the
/// member-account configurations and the assume-role provider are built
/// from the same base, so they inherit them).
///
/// Suited to Lambda, where a hung call costs the whole invocation and AWS
/// retries a failed invocation anyway (asynchronous retries, SQS redelivery):
///
/// | setting | value | why |
/// | --- | --- | --- |
/// | retry mode | standard, [`MAX_ATTEMPTS`](limits::MAX_ATTEMPTS) = 5 attempts | throttling, 5xx and dropped connections are retried with exponential backoff and full jitter; the SDK's retry quota stops a retry storm |
/// | backoff | [`INITIAL_BACKOFF`](limits::INITIAL_BACKOFF) 200 ms doubling up to [`MAX_BACKOFF`](limits::MAX_BACKOFF) 5 s | at most about 3 s of waiting over the 5 attempts, instead of the SDK's 1 s to 20 s |
/// | connect timeout | [`CONNECT_TIMEOUT`](limits::CONNECT_TIMEOUT) 3 s | an endpoint that does not accept is retried soon |
/// | attempt timeout | [`ATTEMPT_TIMEOUT`](limits::ATTEMPT_TIMEOUT) 10 s | one hung attempt is abandoned and retried |
/// | operation timeout | [`OPERATION_TIMEOUT`](limits::OPERATION_TIMEOUT) 30 s | a call, retries included, ends well inside the shortest function timeout (60 s), so the function reports it instead of being killed |
pub mod limits {
    use std::time::Duration;

    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;

    pub const MAX_ATTEMPTS: u32 = 5;
    pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
    pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

    /// Standard retries: [`MAX_ATTEMPTS`] attempts, jittered exponential backoff.
    pub fn retry_config() -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF)
            .with_max_backoff(MAX_BACKOFF)
    }

    /// Connect, per-attempt and whole-operation timeouts.
    pub fn timeout_config() -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build()
    }
}

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
        let base = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(limits::retry_config())
            .timeout_config(limits::timeout_config())
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
    fn every_client_gets_bounded_retries_and_timeouts() {
        let retry = limits::retry_config();
        assert_eq!(retry.max_attempts(), limits::MAX_ATTEMPTS);
        assert_eq!(retry.initial_backoff(), limits::INITIAL_BACKOFF);
        let timeouts = limits::timeout_config();
        assert_eq!(
            timeouts.operation_timeout(),
            Some(limits::OPERATION_TIMEOUT)
        );
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(limits::ATTEMPT_TIMEOUT)
        );
        assert_eq!(timeouts.connect_timeout(), Some(limits::CONNECT_TIMEOUT));
        // Attempts and the waits between them fit in the operation timeout,
        // which fits in the shortest function timeout (60 s).
        assert!(limits::ATTEMPT_TIMEOUT * 2 + limits::MAX_BACKOFF <= limits::OPERATION_TIMEOUT);
        assert!(limits::OPERATION_TIMEOUT < std::time::Duration::from_secs(60));
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of("eu-west-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
