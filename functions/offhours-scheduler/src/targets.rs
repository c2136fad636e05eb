//! Where a run acts: the policy's accounts (plus the accounts of its
//! organizational units and of every OU nested under them, from
//! Organizations) times its regions, defaulting
//! to the function's own account and region; and the fan-out of a run's
//! targets to the work queue, one message per target.

/// The IAM actions this file calls.
pub const PERMISSIONS: &[&str] = &[
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
    "sqs:SendMessage",
];

/// How deep OUs nest under a root (AWS allows five levels).
pub const MAX_OU_DEPTH: usize = 5;

use std::collections::BTreeSet;

use aws_sdk_organizations::types::AccountStatus;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::{DateTime, Utc};
use steward_shared::sdk::{describe_brief, sdk_error_brief};
use steward_shared::Policy;

use crate::events::WorkItem;
use crate::resources::Target;

/// Messages per SendMessageBatch call (the API's maximum).
pub const SEND_BATCH: usize = 10;

/// The active accounts and the OUs directly under an organizational unit (or root).
#[async_trait::async_trait]
pub trait Organization: Send + Sync {
    async fn accounts_of(&self, parent: &str) -> anyhow::Result<Vec<String>>;
    /// The OUs directly under `parent` (ids).
    async fn children_of(&self, parent: &str) -> anyhow::Result<Vec<String>>;
}

#[async_trait::async_trait]
impl Organization for aws_sdk_organizations::Client {
    async fn accounts_of(&self, parent: &str) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut pages = self
            .list_accounts_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                sdk_error_brief(&format!("Organizations ListAccountsForParent {parent}"), e)
            })?;
            for account in page.accounts() {
                if account.status() == Some(&AccountStatus::Active) || account.status().is_none() {
                    out.extend(account.id().map(str::to_string));
                }
            }
        }
        Ok(out)
    }

    async fn children_of(&self, parent: &str) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut pages = self
            .list_organizational_units_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                sdk_error_brief(
                    &format!("Organizations ListOrganizationalUnitsForParent {parent}"),
                    e,
                )
            })?;
            out.extend(
                page.organizational_units()
                    .iter()
                    .filter_map(|ou| ou.id().map(str::to_string)),
            );
        }
        Ok(out)
    }
}

/// The accounts of `ou` and of every OU nested under it (at most
/// [`MAX_OU_DEPTH`] levels; each OU is read once).
pub async fn accounts_under(org: &dyn Organization, ou: &str) -> anyhow::Result<Vec<String>> {
    let mut accounts = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut level = vec![ou.to_string()];
    for _ in 0..=MAX_OU_DEPTH {
        let mut next = Vec::new();
        for parent in level {
            if !seen.insert(parent.clone()) {
                continue;
            }
            accounts.extend(org.accounts_of(&parent).await?);
            next.extend(org.children_of(&parent).await?);
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    Ok(accounts)
}

/// The run's targets, sorted and without duplicates.
pub async fn resolve(
    policy: &Policy,
    own_account: &str,
    own_region: &str,
    org: Option<&dyn Organization>,
) -> anyhow::Result<Vec<Target>> {
    let mut accounts: BTreeSet<String> = policy.targets.accounts.iter().cloned().collect();
    if !policy.targets.organizational_units.is_empty() {
        let org = org.ok_or_else(|| {
            anyhow::anyhow!("[targets] organizational_units needs Organizations access")
        })?;
        for ou in &policy.targets.organizational_units {
            accounts.extend(accounts_under(org, ou).await?);
        }
    }
    if accounts.is_empty() {
        accounts.insert(own_account.to_string());
    }
    let regions: Vec<String> = if policy.targets.regions.is_empty() {
        vec![own_region.to_string()]
    } else {
        policy.targets.regions.clone()
    };
    Ok(accounts
        .iter()
        .flat_map(|a| {
            regions.iter().map(move |r| Target {
                account: a.clone(),
                region: r.clone(),
            })
        })
        .collect())
}

/// Puts one work item per target on the queue, ten per call; returns the
/// targets that could not be queued, with the reason.
pub async fn fan_out(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    targets: &[Target],
    time: DateTime<Utc>,
) -> Vec<(Target, String)> {
    let mut failed = Vec::new();
    for chunk in targets.chunks(SEND_BATCH) {
        let mut request = sqs.send_message_batch().queue_url(queue_url);
        for (i, t) in chunk.iter().enumerate() {
            let body = serde_json::to_string(&WorkItem {
                account: t.account.clone(),
                region: t.region.clone(),
                time,
                budget_stop: None,
            })
            .expect("a work item serializes");
            request = request.entries(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .expect("id and body set"),
            );
        }
        match request.send().await {
            Ok(out) => {
                for f in out.failed() {
                    if let Some(t) = f.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                        failed.push((
                            t.clone(),
                            format!("SendMessageBatch: {}", f.message().unwrap_or(f.code())),
                        ));
                    }
                }
            }
            Err(e) => failed.extend(
                chunk
                    .iter()
                    .map(|t| (t.clone(), describe_brief("SendMessageBatch", &e))),
            ),
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeOrg;

    #[async_trait::async_trait]
    impl Organization for FakeOrg {
        async fn accounts_of(&self, parent: &str) -> anyhow::Result<Vec<String>> {
            Ok(match parent {
                "ou-dev" => vec!["222222222222".into(), "111111111111".into()],
                "ou-dev-team" => vec!["333333333333".into()],
                _ => vec![],
            })
        }

        async fn children_of(&self, parent: &str) -> anyhow::Result<Vec<String>> {
            Ok(match parent {
                "ou-dev" => vec!["ou-dev-team".into()],
                _ => vec![],
            })
        }
    }

    #[tokio::test]
    async fn defaults_to_own_account_and_region() {
        let t = resolve(&Policy::default(), "123456789012", "eu-west-1", None)
            .await
            .unwrap();
        assert_eq!(
            t,
            vec![Target {
                account: "123456789012".into(),
                region: "eu-west-1".into()
            }]
        );
    }

    #[tokio::test]
    async fn accounts_and_ous_times_regions() {
        let mut p = Policy::default();
        p.targets.accounts = vec!["111111111111".into()];
        p.targets.organizational_units = vec!["ou-dev".into()];
        p.targets.regions = vec!["us-east-1".into(), "eu-west-1".into()];
        let t = resolve(&p, "123456789012", "us-east-1", Some(&FakeOrg))
            .await
            .unwrap();
        assert_eq!(t.len(), 6, "the nested OU's account too: {t:?}");
        assert!(t.iter().any(|t| t.account == "333333333333"));
        assert_eq!(t[0].to_string(), "111111111111/us-east-1");
        assert!(resolve(&p, "1", "r", None).await.is_err());
    }
}
