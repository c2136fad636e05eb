//! AWS Organizations, behind a narrow trait: the chain of parents of an
//! account (its organizational unit, that unit's parent, ... up to the root),
//! so that an account inside a nested unit of a targeted unit counts as
//! governed. Called from the hub (the management account or a delegated
//! administrator). `AwsOrganizations` implements it with the SDK
//! (`ListParents`, paginated).

use aws_sdk_organizations::types::ParentType;
use steward_shared::sdk::sdk_error as failed;

/// The IAM actions this adapter calls (hub account only).
pub const PERMISSIONS: &[&str] = &["organizations:ListParents"];

/// Organizations allows five levels of units under the root; this bounds the
/// walk even if an answer loops.
pub const MAX_DEPTH: usize = 8;

/// What the governed-account check needs from Organizations.
#[async_trait::async_trait]
pub trait OrganizationApi: Send + Sync {
    /// The ids of the account's ancestors, nearest first, ending with the root.
    async fn ancestors(&self, account_id: &str) -> anyhow::Result<Vec<String>>;
}

/// The SDK implementation.
pub struct AwsOrganizations {
    client: aws_sdk_organizations::Client,
}

impl AwsOrganizations {
    pub fn new(config: &aws_config::SdkConfig) -> AwsOrganizations {
        AwsOrganizations {
            client: aws_sdk_organizations::Client::new(config),
        }
    }

    /// The parent of one child (an account or a unit), and whether it is the root.
    async fn parent(&self, child: &str) -> anyhow::Result<Option<(String, bool)>> {
        let mut pages = self
            .client
            .list_parents()
            .child_id(child)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| failed(&format!("Organizations ListParents {child}"), e))?;
            if let Some(p) = page.parents().first() {
                let root = p.r#type() == Some(&ParentType::Root);
                return Ok(p.id().map(|id| (id.to_string(), root)));
            }
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl OrganizationApi for AwsOrganizations {
    async fn ancestors(&self, account_id: &str) -> anyhow::Result<Vec<String>> {
        let mut chain = Vec::new();
        let mut child = account_id.to_string();
        for _ in 0..MAX_DEPTH {
            match self.parent(&child).await? {
                Some((id, root)) => {
                    chain.push(id.clone());
                    if root {
                        break;
                    }
                    child = id;
                }
                None => break,
            }
        }
        Ok(chain)
    }
}
