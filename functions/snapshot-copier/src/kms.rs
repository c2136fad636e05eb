//! The KMS adapter: checks the DR key with `DescribeKey` before any copy
//! (the emulator accepts a copy without a usable key; AWS does not).

use async_trait::async_trait;
use steward_shared::sdk;

/// The IAM actions this adapter calls.
pub const PERMISSIONS: &[&str] = &["kms:DescribeKey"];

/// Whether the DR key can encrypt copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    Usable {
        arn: String,
    },
    /// Missing, disabled, pending deletion or not readable: why.
    Unusable(String),
}

#[async_trait]
pub trait Keys: Send + Sync {
    async fn check(&self, key: &str) -> anyhow::Result<KeyCheck>;
}

/// [`Keys`] on the SDK client of one account and region.
pub struct AwsKms(pub aws_sdk_kms::Client);

#[async_trait]
impl Keys for AwsKms {
    async fn check(&self, key: &str) -> anyhow::Result<KeyCheck> {
        match self.0.describe_key().key_id(key).send().await {
            Ok(out) => {
                let Some(meta) = out.key_metadata() else {
                    return Ok(KeyCheck::Unusable(
                        "DescribeKey returned no key metadata".into(),
                    ));
                };
                let state = meta
                    .key_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                if meta.enabled() && (state.is_empty() || state == "Enabled") {
                    Ok(KeyCheck::Usable {
                        arn: meta.arn().unwrap_or(key).to_string(),
                    })
                } else {
                    Ok(KeyCheck::Unusable(format!(
                        "the key is not enabled (state {state})"
                    )))
                }
            }
            Err(e) => match sdk::error_code(&e) {
                Some("NotFoundException") => Ok(KeyCheck::Unusable(
                    "the key does not exist in the DR region".into(),
                )),
                Some("AccessDeniedException") => Ok(KeyCheck::Unusable(
                    "this role may not describe the key (kms:DescribeKey denied)".into(),
                )),
                _ => Err(sdk::sdk_error("DescribeKey", e)),
            },
        }
    }
}
