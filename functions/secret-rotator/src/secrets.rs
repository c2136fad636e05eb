//! The Secrets Manager adapter behind a narrow trait: describe the secret's
//! versions, read one version's value, generate a password, store the
//! pending version, and move the staging labels. Values are returned to the
//! caller and never logged here. `DescribeSecret` also reads the tags the
//! plan decides on (`steward:exempt`, `steward:rotation-master`, `env`).

use aws_sdk_secretsmanager::Client;
use steward_shared::sdk::sdk_error;

use crate::model::{DbCredentials, SecretFacts, AWSCURRENT, AWSPENDING, ROTATION_MASTER_TAG};

/// The IAM actions this adapter calls.
pub const PERMISSIONS: &[&str] = &[
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:GetRandomPassword",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    // Secrets Manager decrypts and encrypts secret values with the caller's
    // KMS permissions (scoped to kms:ViaService in the templates).
    "kms:Decrypt",
    "kms:GenerateDataKey",
];

/// What the rotation needs from Secrets Manager.
#[async_trait::async_trait]
pub(crate) trait SecretsApi: Send + Sync {
    async fn describe(&self, secret_id: &str) -> anyhow::Result<SecretFacts>;
    /// The `SecretString` of a version (by id and/or stage); `None` when that
    /// version has no value under the stage yet.
    async fn value(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        stage: &str,
    ) -> anyhow::Result<Option<String>>;
    async fn random_password(
        &self,
        length: u32,
        exclude_characters: &str,
    ) -> anyhow::Result<String>;
    /// Stores `value` as version `token`, labelled `AWSPENDING`.
    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &str,
        rotation_token: Option<&str>,
    ) -> anyhow::Result<()>;
    /// Moves `AWSCURRENT` from `from_version` to `token` (Secrets Manager moves `AWSPREVIOUS`).
    async fn move_current(
        &self,
        secret_id: &str,
        token: &str,
        from_version: Option<&str>,
    ) -> anyhow::Result<()>;
    /// Removes the `AWSPENDING` label from version `token`.
    async fn clear_pending(&self, secret_id: &str, token: &str) -> anyhow::Result<()>;
}

/// Reads and parses one version's credentials; `None` when it has no value.
pub(crate) async fn read_credentials(
    secrets: &dyn SecretsApi,
    facts: &SecretFacts,
    version: Option<&str>,
    stage: &str,
) -> anyhow::Result<Option<DbCredentials>> {
    match secrets.value(&facts.arn, version, stage).await? {
        None => Ok(None),
        Some(text) => DbCredentials::parse(&text, stage)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("secret {}: {e}", facts.name)),
    }
}

/// The pending version of this token; an error says createSecret must run first.
pub(crate) async fn read_pending(
    secrets: &dyn SecretsApi,
    facts: &SecretFacts,
    token: &str,
) -> anyhow::Result<DbCredentials> {
    read_credentials(secrets, facts, Some(token), AWSPENDING).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "version {token} of secret {} has no AWSPENDING value; createSecret must run first (Secrets Manager retries the rotation from createSecret)",
            facts.name
        )
    })
}

/// The master secret's facts (its full ARN and tags, for the plan) and its
/// `AWSCURRENT` credentials.
pub(crate) async fn read_master(
    secrets: &dyn SecretsApi,
    master_arn: &str,
) -> anyhow::Result<(SecretFacts, DbCredentials)> {
    let facts = secrets.describe(master_arn).await?;
    let text = secrets
        .value(&facts.arn, None, AWSCURRENT)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("the master secret {master_arn} (masterarn) has no AWSCURRENT value")
        })?;
    let credentials = DbCredentials::parse(&text, "master secret's AWSCURRENT")
        .map_err(|e| anyhow::anyhow!("master secret {master_arn}: {e}"))?;
    Ok((facts, credentials))
}

/// The SDK implementation.
pub(crate) struct AwsSecrets {
    client: Client,
}

impl AwsSecrets {
    pub fn new(config: &aws_config::SdkConfig) -> AwsSecrets {
        AwsSecrets {
            client: Client::new(config),
        }
    }
}

/// `"Secrets Manager {call} on {secret_id}"`, the operation named in SDK errors.
fn call_on(call: &str, secret_id: &str) -> String {
    format!("Secrets Manager {call} on {secret_id}")
}

fn tag_is_true(tags: &[aws_sdk_secretsmanager::types::Tag], key: &str) -> bool {
    tags.iter().any(|t| {
        t.key() == Some(key)
            && t.value()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    })
}

#[async_trait::async_trait]
impl SecretsApi for AwsSecrets {
    async fn describe(&self, secret_id: &str) -> anyhow::Result<SecretFacts> {
        let out = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| sdk_error(&call_on("DescribeSecret", secret_id), e))?;
        Ok(SecretFacts {
            arn: out.arn().unwrap_or(secret_id).to_string(),
            name: out.name().unwrap_or(secret_id).to_string(),
            rotation_enabled: out.rotation_enabled().unwrap_or(false),
            versions: out
                .version_ids_to_stages()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            environment: out
                .tags()
                .iter()
                .find(|t| t.key() == Some(steward_shared::tags::ENV))
                .and_then(|t| t.value())
                .map(str::to_string),
            exempt: tag_is_true(out.tags(), steward_shared::tags::EXEMPT),
            rotation_master: tag_is_true(out.tags(), ROTATION_MASTER_TAG),
        })
    }

    async fn value(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        stage: &str,
    ) -> anyhow::Result<Option<String>> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_id(version_id.map(str::to_string))
            .version_stage(stage)
            .send()
            .await;
        match result {
            Ok(out) => match out.secret_string() {
                Some(s) => Ok(Some(s.to_string())),
                None => anyhow::bail!("{secret_id} ({stage}) holds a binary value; store the credentials as a JSON SecretString"),
            },
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(sdk_error(&call_on("GetSecretValue", secret_id), e)),
        }
    }

    async fn random_password(
        &self,
        length: u32,
        exclude_characters: &str,
    ) -> anyhow::Result<String> {
        let out = self
            .client
            .get_random_password()
            .password_length(i64::from(length))
            .exclude_characters(exclude_characters)
            .send()
            .await
            .map_err(|e| sdk_error("Secrets Manager GetRandomPassword", e))?;
        out.random_password().map(str::to_string).ok_or_else(|| {
            anyhow::anyhow!("Secrets Manager GetRandomPassword returned no password")
        })
    }

    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &str,
        rotation_token: Option<&str>,
    ) -> anyhow::Result<()> {
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .client_request_token(token)
            .secret_string(value)
            .version_stages(AWSPENDING)
            .set_rotation_token(rotation_token.map(str::to_string))
            .send()
            .await
            .map_err(|e| sdk_error(&call_on("PutSecretValue", secret_id), e))?;
        Ok(())
    }

    async fn move_current(
        &self,
        secret_id: &str,
        token: &str,
        from_version: Option<&str>,
    ) -> anyhow::Result<()> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(AWSCURRENT)
            .move_to_version_id(token)
            .set_remove_from_version_id(from_version.map(str::to_string))
            .send()
            .await
            .map_err(|e| sdk_error(&call_on("UpdateSecretVersionStage", secret_id), e))?;
        Ok(())
    }

    async fn clear_pending(&self, secret_id: &str, token: &str) -> anyhow::Result<()> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(AWSPENDING)
            .remove_from_version_id(token)
            .send()
            .await
            .map_err(|e| sdk_error(&call_on("UpdateSecretVersionStage", secret_id), e))?;
        Ok(())
    }
}
