//! Starts the local AWS (moto with steward's small launcher, see
//! `tools/moto_launcher.py`) on a free 127.0.0.1 port, and builds SDK
//! configurations for it: the default account, or another account reached
//! through STS AssumeRole (moto's multi-account mode).

use std::process::Stdio;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::workspace_root;

/// moto's default account (the hub's own account in tests).
pub const HUB_ACCOUNT: &str = "123456789012";
/// The region of every test.
pub const REGION: &str = "us-east-1";

/// moto's accepted-by-anyone keys, until IAM enforcement is switched on.
const DEFAULT_KEYS: (&str, &str) = ("testing", "testing");

/// A running emulator; stopped when dropped (and by itself when this process dies).
pub struct Moto {
    pub endpoint: String,
    /// The access key and secret the harness signs with (an IAM user's once
    /// IAM enforcement is on; see `least_privilege`).
    keys: std::sync::RwLock<(String, String)>,
    _child: Child,
}

impl Moto {
    /// Starts the emulator and waits until it answers.
    pub async fn start() -> anyhow::Result<Moto> {
        let root = workspace_root();
        let python = std::env::var("STEWARD_PYTHON")
            .unwrap_or_else(|_| root.join(".venv/bin/python").display().to_string());
        let mut child = Command::new(&python)
            .arg(root.join("tools/moto_launcher.py"))
            .args(["--port", "0", "--max-seconds", "3600"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "starting {python} tools/moto_launcher.py: {e}; run `make venv` first"
                )
            })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("steward-moto ready on ") {
                    return Ok::<_, std::io::Error>(Some(url.trim().to_string()));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|_| anyhow::anyhow!("moto did not start within 60 s"))??;
        let endpoint = ready.ok_or_else(|| anyhow::anyhow!("moto exited before it was ready"))?;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let moto = Moto {
            endpoint,
            keys: std::sync::RwLock::new((DEFAULT_KEYS.0.into(), DEFAULT_KEYS.1.into())),
            _child: child,
        };
        moto.get("/_steward/health").await?;
        Ok(moto)
    }

    /// The SDK configuration of the hub account.
    pub fn config(&self) -> SdkConfig {
        let (key, secret) = self.keys();
        config_with(
            &self.endpoint,
            Credentials::new(key, secret, None, None, "steward-tests"),
        )
    }

    /// Signs every later harness request with these keys (an IAM user's).
    pub fn use_keys(&self, key: &str, secret: &str) {
        *self.keys.write().expect("keys lock") = (key.to_string(), secret.to_string());
    }

    fn keys(&self) -> (String, String) {
        self.keys.read().expect("keys lock").clone()
    }

    /// The SDK configuration of another account, through STS AssumeRole (moto
    /// ties the returned keys to that account).
    pub async fn account_config(&self, account: &str, role: &str) -> anyhow::Result<SdkConfig> {
        let sts = aws_sdk_sts::Client::new(&self.config());
        let out = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/{role}"))
            .role_session_name("steward-tests-setup")
            .send()
            .await?;
        let c = out
            .credentials()
            .ok_or_else(|| anyhow::anyhow!("AssumeRole returned no credentials"))?;
        Ok(config_with(
            &self.endpoint,
            Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "steward-tests",
            ),
        ))
    }

    /// The environment a function process needs to reach this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_DEFAULT_REGION".into(), REGION.into()),
            ("AWS_ACCESS_KEY_ID".into(), self.keys().0),
            ("AWS_SECRET_ACCESS_KEY".into(), self.keys().1),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<String> {
        http("GET", &format!("{}{path}", self.endpoint), None).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<String> {
        http(
            "POST",
            &format!("{}{path}", self.endpoint),
            Some(body.to_string()),
        )
        .await
    }

    /// Queues GetCostAndUsage results through moto's own endpoint: each
    /// request body moto has not seen takes the next result.
    pub async fn seed_cost_and_usage(&self, results: &[serde_json::Value]) -> anyhow::Result<()> {
        self.post(
            "/moto-api/static/ce/cost-and-usage-results",
            &serde_json::json!({ "results": results }),
        )
        .await?;
        Ok(())
    }

    /// Ties an AWS Config result token to its rule (see the launcher).
    pub async fn register_rule_token(&self, rule: &str, token: &str) -> anyhow::Result<()> {
        self.post(
            "/_steward/config/rule-token",
            &serde_json::json!({"rule": rule, "token": token}),
        )
        .await?;
        Ok(())
    }

    /// The evaluations recorded for a result token.
    pub async fn evaluations(&self, token: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let text = self
            .get(&format!("/_steward/config/evaluations?token={token}"))
            .await?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn config_with(endpoint: &str, credentials: Credentials) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(steward_shared::aws::https_client())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .build()
}

/// A minimal HTTP/1.1 client for the launcher's test endpoints (loopback only).
pub(crate) async fn http(method: &str, url: &str, body: Option<String>) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not an http URL: {url}"))?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut last_error = None;
    for _ in 0..50 {
        match tokio::net::TcpStream::connect(host).await {
            Ok(mut stream) => {
                let body = body.clone().unwrap_or_default();
                let request = format!(
                    "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(request.as_bytes()).await?;
                let mut response = String::new();
                stream.read_to_string(&mut response).await?;
                let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
                // 201: moto's own seeding endpoints (`/moto-api/static/...`) answer "Created".
                let status = head.split_whitespace().nth(1).unwrap_or_default();
                if status != "200" && status != "201" {
                    anyhow::bail!("{method} {url}: {head}");
                }
                return Ok(body.to_string());
            }
            Err(e) => {
                last_error = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    Err(anyhow::anyhow!("{method} {url}: {:?}", last_error))
}
