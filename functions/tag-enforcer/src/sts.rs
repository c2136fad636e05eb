//! The role this function runs as, from STS `GetCallerIdentity` (which needs
//! no IAM permission): steward's own tag writes in its own account are made
//! by this role, and are recognised by it, never by a tag.

use aws_config::SdkConfig;

/// No IAM action: `sts:GetCallerIdentity` is always allowed.
pub const PERMISSIONS: &[&str] = &[];

/// The role name of `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, or
/// `None` when the caller is not an assumed role or STS cannot be reached
/// (then only the member-role rule recognises steward's writes).
pub async fn own_role(config: &SdkConfig) -> Option<String> {
    match aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(identity) => identity
            .arn()
            .and_then(|arn| arn.split(":assumed-role/").nth(1))
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string),
        Err(e) => {
            tracing::warn!(error = %steward_shared::sdk::describe("sts:GetCallerIdentity", &e), "own role unknown; steward's own tag writes are recognised by the member role only");
            None
        }
    }
}
