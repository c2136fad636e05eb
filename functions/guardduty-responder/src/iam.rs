//! The IAM side of containment behind a narrow trait: read a user's key
//! status and tags, set a key inactive, read a role's tags and its session
//! revocation, attach the revocation policy. `AwsIam` implements it with the
//! SDK (list calls paginate).

use aws_sdk_iam::types::StatusType;
use chrono::{DateTime, Utc};
use steward_shared::sdk::sdk_error as failed;
use steward_shared::tags::TagMap;

use crate::plan::{revoke_policy_cutoff, revoke_policy_document, REVOKE_POLICY_NAME};

/// The IAM actions this adapter calls (in the finding's account: the member role too).
pub const PERMISSIONS: &[&str] = &[
    "iam:ListUserTags",
    "iam:ListAccessKeys",
    "iam:UpdateAccessKey",
    "iam:ListRoleTags",
    "iam:GetRolePolicy",
    "iam:PutRolePolicy",
];

#[async_trait::async_trait]
pub trait IamApi: Send + Sync {
    /// The user's tags, or `None` when the user does not exist.
    async fn user_tags(&self, user: &str) -> anyhow::Result<Option<TagMap>>;
    /// `Active` or `Inactive`, or `None` when the user has no such key.
    async fn access_key_status(
        &self,
        user: &str,
        access_key_id: &str,
    ) -> anyhow::Result<Option<String>>;
    async fn deactivate_key(&self, user: &str, access_key_id: &str) -> anyhow::Result<()>;
    /// The role's tags, or `None` when the role does not exist.
    async fn role_tags(&self, role: &str) -> anyhow::Result<Option<TagMap>>;
    /// The cutoff of steward's revocation policy on the role, if attached.
    async fn revocation_cutoff(&self, role: &str) -> anyhow::Result<Option<DateTime<Utc>>>;
    async fn revoke_sessions(&self, role: &str, cutoff: DateTime<Utc>) -> anyhow::Result<()>;
}

pub struct AwsIam {
    client: aws_sdk_iam::Client,
}

impl AwsIam {
    pub fn new(config: &aws_config::SdkConfig) -> AwsIam {
        AwsIam {
            client: aws_sdk_iam::Client::new(config),
        }
    }
}

fn is_not_found<E: aws_sdk_iam::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("NoSuchEntity")
}

#[async_trait::async_trait]
impl IamApi for AwsIam {
    async fn user_tags(&self, user: &str) -> anyhow::Result<Option<TagMap>> {
        let mut tags = TagMap::new();
        let mut pages = self
            .client
            .list_user_tags()
            .user_name(user)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(page) => tags.extend(
                    page.tags()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string())),
                ),
                Err(e) if e.as_service_error().is_some_and(is_not_found) => return Ok(None),
                Err(e) => return Err(failed(&format!("ListUserTags {user}"), e)),
            }
        }
        Ok(Some(tags))
    }

    async fn access_key_status(
        &self,
        user: &str,
        access_key_id: &str,
    ) -> anyhow::Result<Option<String>> {
        let mut pages = self
            .client
            .list_access_keys()
            .user_name(user)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) if e.as_service_error().is_some_and(is_not_found) => return Ok(None),
                Err(e) => return Err(failed(&format!("ListAccessKeys {user}"), e)),
            };
            if let Some(key) = page
                .access_key_metadata()
                .iter()
                .find(|k| k.access_key_id() == Some(access_key_id))
            {
                return Ok(Some(
                    key.status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "Active".into()),
                ));
            }
        }
        Ok(None)
    }

    async fn deactivate_key(&self, user: &str, access_key_id: &str) -> anyhow::Result<()> {
        self.client
            .update_access_key()
            .user_name(user)
            .access_key_id(access_key_id)
            .status(StatusType::Inactive)
            .send()
            .await
            .map_err(|e| {
                failed(
                    &format!("UpdateAccessKey {access_key_id} of {user} to Inactive"),
                    e,
                )
            })?;
        Ok(())
    }

    async fn role_tags(&self, role: &str) -> anyhow::Result<Option<TagMap>> {
        let mut tags = TagMap::new();
        let mut pages = self
            .client
            .list_role_tags()
            .role_name(role)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(page) => tags.extend(
                    page.tags()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string())),
                ),
                Err(e) if e.as_service_error().is_some_and(is_not_found) => return Ok(None),
                Err(e) => return Err(failed(&format!("ListRoleTags {role}"), e)),
            }
        }
        Ok(Some(tags))
    }

    async fn revocation_cutoff(&self, role: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        match self
            .client
            .get_role_policy()
            .role_name(role)
            .policy_name(REVOKE_POLICY_NAME)
            .send()
            .await
        {
            Ok(out) => Ok(revoke_policy_cutoff(out.policy_document())),
            Err(e) if e.as_service_error().is_some_and(is_not_found) => Ok(None),
            Err(e) => Err(failed(
                &format!("GetRolePolicy {REVOKE_POLICY_NAME} of {role}"),
                e,
            )),
        }
    }

    async fn revoke_sessions(&self, role: &str, cutoff: DateTime<Utc>) -> anyhow::Result<()> {
        self.client
            .put_role_policy()
            .role_name(role)
            .policy_name(REVOKE_POLICY_NAME)
            .policy_document(revoke_policy_document(cutoff))
            .send()
            .await
            .map_err(|e| failed(&format!("PutRolePolicy {REVOKE_POLICY_NAME} on {role}"), e))?;
        Ok(())
    }
}
