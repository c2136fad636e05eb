//! AWS client configuration: built once per process from the environment
//! (`AWS_ENDPOINT_URL` is honoured by the SDK itself) with the one HTTPS
//! client of the process ([`https_client`]: rustls on ring); the function's
//! own account from STS, looked up in the background while the runtime
//! starts polling ([`AwsContext::start`]) and awaited before the first use;
//! and configurations for member accounts obtained by assuming
//! `STEWARD_MEMBER_ROLE` there, cached per account (the provider refreshes
//! the credentials when they expire).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::sync::{Mutex, OnceCell};

/// The HTTPS client every SDK client of the process shares (one connection
/// pool): hyper with rustls on the ring provider and the system trust store.
/// The SDK crates are built without their default client (see the workspace
/// `Cargo.toml`), so a configuration without this client cannot send.
///
/// The trust store (about 150 files under `/etc/ssl/certs`) is read when the
/// first request is sent, not when the clients are configured: configuring
/// them is on the cold-start path, and the first request (the background STS
/// lookup) runs after the function has polled for its first event.
pub fn https_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
            SharedHttpClient::new(AtFirstRequest(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .build_https(),
            ))
        })
        .clone()
}

/// An HTTP client whose connectors are built by their first request.
#[derive(Debug)]
struct AtFirstRequest(SharedHttpClient);

impl HttpClient for AtFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ConnectorAtFirstRequest {
            client: self.0.clone(),
            settings: settings.clone(),
            components: components.clone(),
            built: OnceLock::new(),
        })
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// A connector of [`AtFirstRequest`]: the real one, built at its first call.
#[derive(Debug)]
struct ConnectorAtFirstRequest {
    client: SharedHttpClient,
    settings: HttpConnectorSettings,
    components: RuntimeComponents,
    built: OnceLock<SharedHttpConnector>,
}

impl HttpConnector for ConnectorAtFirstRequest {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.built
            .get_or_init(|| self.client.http_connector(&self.settings, &self.components))
            .call(request)
    }
}

/// The function's own account id: given at once (tests, callers that know
/// it) or looked up from STS once; clones share the one lookup.
#[derive(Clone, Debug, Default)]
pub struct OwnAccount(Arc<OnceCell<String>>);

impl OwnAccount {
    /// An account id known without asking STS.
    pub fn known(account: impl Into<String>) -> OwnAccount {
        OwnAccount(Arc::new(OnceCell::new_with(Some(account.into()))))
    }

    /// The account id, or `""` while the lookup has not finished (the entry
    /// point awaits [`AwsContext::resolve_account`] before every invocation,
    /// so handlers always see it).
    pub fn get(&self) -> &str {
        self.0.get().map(String::as_str).unwrap_or("")
    }
}

impl From<&str> for OwnAccount {
    fn from(account: &str) -> OwnAccount {
        OwnAccount::known(account)
    }
}

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
    own_account: OwnAccount,
    own_region: String,
    member_role: Option<String>,
    function_name: String,
    members: Arc<Mutex<HashMap<String, Arc<OnceCell<SdkConfig>>>>>,
}

/// An error reaching an account: names the account and what to check.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("event is for account {account} but STEWARD_MEMBER_ROLE is not set; set it to the role name deployed in member accounts")]
    NoMemberRole { account: String },
    #[error("could not assume {role_arn}: {reason}; check that the member-account role exists and trusts this function")]
    AssumeRole { role_arn: String, reason: String },
    #[error("{reason}")]
    OwnAccount { reason: String },
}

impl AwsContext {
    /// Loads the SDK configuration from the environment and waits for STS
    /// to name the own account (the command-line tools).
    pub async fn load(
        function_name: &str,
        member_role: Option<String>,
    ) -> anyhow::Result<AwsContext> {
        let aws = AwsContext::start(function_name, member_role).await?;
        aws.resolve_account().await?;
        Ok(aws)
    }

    /// Loads the SDK configuration from the environment (no network) and
    /// starts the STS lookup of the own account in the background, so a
    /// function polls for its first event without waiting for it.
    pub async fn start(
        function_name: &str,
        member_role: Option<String>,
    ) -> anyhow::Result<AwsContext> {
        let base = sdk_config().await;
        let own_region = base
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| anyhow::anyhow!("no AWS region configured: set AWS_REGION"))?;
        let aws = AwsContext {
            base,
            own_account: OwnAccount::default(),
            own_region,
            member_role,
            function_name: function_name.to_string(),
            members: Arc::new(Mutex::new(HashMap::new())),
        };
        let prefetch = aws.clone();
        tokio::spawn(async move {
            // A failure here is reported again by the invocation that needs the account.
            if let Err(e) = prefetch.resolve_account().await {
                tracing::warn!(error = %format!("{e:#}"), "own account lookup failed; the next invocation tries again");
            }
        });
        Ok(aws)
    }

    /// The own account, asking STS once (concurrent callers share the call;
    /// a failed call is tried again by the next caller).
    pub async fn resolve_account(&self) -> anyhow::Result<&str> {
        let account = self
            .own_account
            .0
            .get_or_try_init(|| async {
                let sts = aws_sdk_sts::Client::new(&self.base);
                let identity = sts.get_caller_identity().send().await.map_err(|e| {
                    anyhow::anyhow!(
                        "STS GetCallerIdentity failed: {}; check the function's credentials and network access to STS",
                        aws_sdk_sts::error::DisplayErrorContext(&e)
                    )
                })?;
                let account = identity
                    .account()
                    .ok_or_else(|| anyhow::anyhow!("STS GetCallerIdentity returned no account"))?
                    .to_string();
                tracing::info!(account = %account, region = %self.own_region, "own account resolved");
                anyhow::Ok(account)
            })
            .await?;
        Ok(account.as_str())
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
            own_account: OwnAccount::known(own_account),
            own_region,
            member_role,
            function_name: function_name.to_string(),
            members: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The own account id; `""` until [`AwsContext::resolve_account`] has
    /// finished (the entry point awaits it before every invocation).
    pub fn own_account(&self) -> &str {
        self.own_account.get()
    }

    /// A handle on the own account id that later sees the lookup's result.
    pub fn own_account_handle(&self) -> OwnAccount {
        self.own_account.clone()
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
        let own = self
            .resolve_account()
            .await
            .map_err(|e| AccessError::OwnAccount {
                reason: format!("{e:#}"),
            })?;
        if account == own {
            return Ok(with_region(&self.base));
        }
        let role = self
            .member_role
            .as_deref()
            .ok_or_else(|| AccessError::NoMemberRole {
                account: account.to_string(),
            })?;
        // One cell per account: the first caller assumes the role, later
        // callers of that account wait for it, other accounts proceed at once.
        let cell = self
            .members
            .lock()
            .await
            .entry(account.to_string())
            .or_default()
            .clone();
        let config = cell
            .get_or_try_init(|| async {
                let role_arn = format!(
                    "arn:{}:iam::{account}:role/{role}",
                    partition_of(&self.own_region)
                );
                let provider = AssumeRoleProvider::builder(role_arn.clone())
                    .session_name(session_name(&self.function_name, event_id))
                    .configure(&self.base)
                    .build()
                    .await;
                // Resolve once now so a missing or untrusted role fails this
                // event with a clear error; the clients start from these
                // credentials instead of assuming the role a second time.
                use aws_credential_types::provider::ProvideCredentials;
                let first =
                    provider
                        .provide_credentials()
                        .await
                        .map_err(|e| AccessError::AssumeRole {
                            role_arn: role_arn.clone(),
                            reason: aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
                        })?;
                Ok::<SdkConfig, AccessError>(
                    self.base
                        .to_builder()
                        .credentials_provider(SharedCredentialsProvider::new(Primed::new(
                            first, provider,
                        )))
                        .build(),
                )
            })
            .await?;
        Ok(with_region(config))
    }
}

/// A role's credentials that start from the session already assumed (to
/// check the role) and come from the role provider once that session is
/// within five minutes of its expiry. The SDK's identity cache in front of
/// it asks only when its cached credentials run out.
#[derive(Debug)]
struct Primed {
    first: aws_credential_types::Credentials,
    provider: AssumeRoleProvider,
}

impl Primed {
    const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(300);

    fn new(first: aws_credential_types::Credentials, provider: AssumeRoleProvider) -> Primed {
        Primed { first, provider }
    }
}

impl aws_credential_types::provider::ProvideCredentials for Primed {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let fresh_until = std::time::SystemTime::now() + Self::FRESH_FOR;
        if self.first.expiry().is_none_or(|e| e > fresh_until) {
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(self
                .first
                .clone()))
        } else {
            self.provider.provide_credentials()
        }
    }
}

/// The SDK configuration from the environment, with the process's HTTPS
/// client and retries: throttled and transient failures are retried with
/// exponential backoff and jitter.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(limits::retry_config())
        .timeout_config(limits::timeout_config())
        .load()
        .await
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

    /// The role provider of these tests has no HTTP client: asking it fails
    /// at once, so an answer with credentials came from the primed session.
    async fn primed(expires_in: std::time::Duration) -> Primed {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .load()
            .await;
        let provider = AssumeRoleProvider::builder("arn:aws:iam::111111111111:role/steward-member")
            .session_name("steward-test")
            .configure(&base)
            .build()
            .await;
        let first = aws_credential_types::Credentials::new(
            "ASIAFIRST",
            "secret",
            Some("token".into()),
            Some(std::time::SystemTime::now() + expires_in),
            "test",
        );
        Primed::new(first, provider)
    }

    #[tokio::test]
    async fn a_fresh_primed_session_is_used_without_assuming_the_role_again() {
        use aws_credential_types::provider::ProvideCredentials;
        let p = primed(std::time::Duration::from_secs(3600)).await;
        for _ in 0..3 {
            let c = p.provide_credentials().await.unwrap();
            assert_eq!(c.access_key_id(), "ASIAFIRST");
        }
    }

    #[tokio::test]
    async fn a_primed_session_near_its_expiry_is_replaced_by_assuming_the_role() {
        use aws_credential_types::provider::ProvideCredentials;
        let p = primed(std::time::Duration::from_secs(60)).await;
        assert!(
            p.provide_credentials().await.is_err(),
            "within five minutes of expiry the role provider is asked"
        );
    }

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
