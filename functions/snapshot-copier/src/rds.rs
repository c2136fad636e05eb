//! The RDS adapter: reads snapshots and databases (paginated), copies a
//! snapshot into the region of its client and deletes DR copies. Errors say
//! which call failed; quota, capacity and key errors are outcomes, not
//! failures, so a run never fails for them.

use async_trait::async_trait;
use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Utc};
use steward_shared::sdk;
use steward_shared::tags::{self as tag_keys, TagMap};

use crate::model::{Database, Kind, Snapshot};
use crate::plan::{self, CopyOrder};

/// The IAM actions this adapter calls (`AddTagsToResource` authorises the
/// tags given to a copy; RDS creates a grant on the DR key with the
/// caller's `kms:CreateGrant` to encrypt a copy).
pub const PERMISSIONS: &[&str] = &[
    "kms:CreateGrant",
    "rds:DescribeDBSnapshots",
    "rds:DescribeDBClusterSnapshots",
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:CopyDBSnapshot",
    "rds:CopyDBClusterSnapshot",
    "rds:AddTagsToResource",
    "rds:DeleteDBSnapshot",
    "rds:DeleteDBClusterSnapshot",
];

/// What a copy request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// RDS accepted the copy; its status.
    Started { status: String },
    /// The target exists already (another attempt made it).
    Exists,
    /// The manual-snapshot quota of the DR region is reached.
    Quota(String),
    /// Too many copies in progress, or throttled: try again later.
    Capacity(String),
    /// RDS cannot use the DR key.
    KeyUnusable(String),
    /// RDS refused this copy for another reason (reported, not retried).
    Refused(String),
}

/// The RDS calls the copier makes in one account and region.
#[async_trait]
pub trait Rds: Send + Sync {
    /// One snapshot by identifier; `None` when it does not exist.
    async fn snapshot(&self, kind: Kind, id: &str) -> anyhow::Result<Option<Snapshot>>;
    /// Every automated and manual snapshot of a kind.
    async fn snapshots(&self, kind: Kind) -> anyhow::Result<Vec<Snapshot>>;
    /// Every instance and Aurora cluster with its tags.
    async fn databases(&self) -> anyhow::Result<Vec<Database>>;
    /// A database's tags; `None` when the database is gone.
    async fn database_tags(&self, kind: Kind, id: &str) -> anyhow::Result<Option<TagMap>>;
    /// Copies the order's source into this client's region.
    async fn copy(&self, order: &CopyOrder) -> anyhow::Result<CopyOutcome>;
    async fn delete(&self, kind: Kind, id: &str) -> anyhow::Result<()>;
}

/// [`Rds`] on the SDK client of one account and region.
pub struct AwsRds {
    client: aws_sdk_rds::Client,
    account: String,
    region: String,
}

impl AwsRds {
    pub fn new(config: &aws_config::SdkConfig, account: &str) -> AwsRds {
        AwsRds {
            client: aws_sdk_rds::Client::new(config),
            account: account.to_string(),
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
        }
    }

    fn place(&self, arn: &str) -> (String, String) {
        plan::parse_snapshot_arn(arn)
            .map(|a| (a.account, a.region))
            .unwrap_or_else(|| (self.account.clone(), self.region.clone()))
    }

    fn instance_snapshot(&self, s: &aws_sdk_rds::types::DbSnapshot) -> Snapshot {
        let arn = s.db_snapshot_arn().unwrap_or_default().to_string();
        let (account, region) = self.place(&arn);
        Snapshot {
            kind: Kind::Instance,
            id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
            arn,
            account,
            region,
            database: s.db_instance_identifier().unwrap_or_default().to_string(),
            snapshot_type: s.snapshot_type().unwrap_or_default().to_string(),
            status: s.status().unwrap_or_default().to_string(),
            encrypted: s.encrypted().unwrap_or(false),
            created: s.snapshot_create_time().and_then(time),
            original_created: s.original_snapshot_create_time().and_then(time),
            source: s.source_db_snapshot_identifier().map(str::to_string),
            source_region: s.source_region().map(str::to_string),
            tags: tags(s.tag_list()),
        }
    }

    fn cluster_snapshot(&self, s: &aws_sdk_rds::types::DbClusterSnapshot) -> Snapshot {
        let arn = s.db_cluster_snapshot_arn().unwrap_or_default().to_string();
        let (account, region) = self.place(&arn);
        Snapshot {
            kind: Kind::Cluster,
            id: s
                .db_cluster_snapshot_identifier()
                .unwrap_or_default()
                .to_string(),
            arn,
            account,
            region,
            database: s.db_cluster_identifier().unwrap_or_default().to_string(),
            snapshot_type: s.snapshot_type().unwrap_or_default().to_string(),
            status: s.status().unwrap_or_default().to_string(),
            encrypted: s.storage_encrypted().unwrap_or(false),
            created: s.snapshot_create_time().and_then(time),
            original_created: None,
            source: s.source_db_cluster_snapshot_arn().map(str::to_string),
            source_region: None,
            tags: tags(s.tag_list()),
        }
    }
}

fn time(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn tags(list: &[Tag]) -> TagMap {
    tag_keys::to_map(list.iter().map(|t| (t.key(), t.value())))
}

fn sdk_tags(order: &CopyOrder) -> Vec<Tag> {
    order
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// What a copy request's answer means: started (with RDS's status for the
/// copy), a refusal `copy_refusal` recognises, or else the SDK error.
fn copy_outcome<E, R>(
    operation: &str,
    result: Result<Option<String>, aws_sdk_rds::error::SdkError<E, R>>,
) -> anyhow::Result<CopyOutcome>
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(status) => Ok(CopyOutcome::Started {
            status: status.unwrap_or_else(|| "pending".to_string()),
        }),
        Err(e) => {
            let message = sdk::describe(operation, &e);
            copy_refusal(sdk::error_code(&e), message).ok_or_else(|| sdk::sdk_error(operation, e))
        }
    }
}

/// Sorts a refused copy by its error code.
fn copy_refusal(code: Option<&str>, message: String) -> Option<CopyOutcome> {
    match code {
        Some(
            "DBSnapshotAlreadyExists"
            | "DBSnapshotAlreadyExistsFault"
            | "DBClusterSnapshotAlreadyExistsFault",
        ) => Some(CopyOutcome::Exists),
        Some("SnapshotQuotaExceeded" | "SnapshotQuotaExceededFault")
            if message.contains("progress") || message.contains("concurrent") =>
        {
            Some(CopyOutcome::Capacity(message))
        }
        Some("SnapshotQuotaExceeded" | "SnapshotQuotaExceededFault") => {
            Some(CopyOutcome::Quota(message))
        }
        Some(c) if sdk::THROTTLING_CODES.contains(&c) => Some(CopyOutcome::Capacity(message)),
        Some("KMSKeyNotAccessibleFault" | "KMSKeyNotAccessible") => {
            Some(CopyOutcome::KeyUnusable(message))
        }
        Some(
            "InvalidDBSnapshotState"
            | "InvalidDBSnapshotStateFault"
            | "InvalidDBClusterSnapshotStateFault"
            | "InvalidParameterValue"
            | "InvalidParameterCombination",
        ) => Some(CopyOutcome::Refused(message)),
        _ => None,
    }
}

#[async_trait]
impl Rds for AwsRds {
    async fn snapshot(&self, kind: Kind, id: &str) -> anyhow::Result<Option<Snapshot>> {
        match kind {
            Kind::Instance => {
                match self
                    .client
                    .describe_db_snapshots()
                    .db_snapshot_identifier(id)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out
                        .db_snapshots()
                        .first()
                        .map(|s| self.instance_snapshot(s))),
                    Err(e) if sdk::error_code(&e) == Some("DBSnapshotNotFound") => Ok(None),
                    Err(e) => Err(sdk::sdk_error("DescribeDBSnapshots", e)),
                }
            }
            Kind::Cluster => {
                match self
                    .client
                    .describe_db_cluster_snapshots()
                    .db_cluster_snapshot_identifier(id)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out
                        .db_cluster_snapshots()
                        .first()
                        .map(|s| self.cluster_snapshot(s))),
                    Err(e) if sdk::error_code(&e) == Some("DBClusterSnapshotNotFoundFault") => {
                        Ok(None)
                    }
                    Err(e) => Err(sdk::sdk_error("DescribeDBClusterSnapshots", e)),
                }
            }
        }
    }

    async fn snapshots(&self, kind: Kind) -> anyhow::Result<Vec<Snapshot>> {
        let mut all = Vec::new();
        match kind {
            Kind::Instance => {
                let mut pages = self.client.describe_db_snapshots().into_paginator().send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| sdk::sdk_error("DescribeDBSnapshots", e))?;
                    all.extend(
                        page.db_snapshots()
                            .iter()
                            .map(|s| self.instance_snapshot(s)),
                    );
                }
            }
            Kind::Cluster => {
                let mut pages = self
                    .client
                    .describe_db_cluster_snapshots()
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| sdk::sdk_error("DescribeDBClusterSnapshots", e))?;
                    all.extend(
                        page.db_cluster_snapshots()
                            .iter()
                            .map(|s| self.cluster_snapshot(s)),
                    );
                }
            }
        }
        Ok(all)
    }

    async fn databases(&self) -> anyhow::Result<Vec<Database>> {
        let mut all = Vec::new();
        let mut pages = self.client.describe_db_instances().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk::sdk_error("DescribeDBInstances", e))?;
            for db in page.db_instances() {
                // Aurora members are covered by their cluster's snapshots.
                if db.db_cluster_identifier().is_some() {
                    continue;
                }
                all.push(Database {
                    kind: Kind::Instance,
                    id: db.db_instance_identifier().unwrap_or_default().to_string(),
                    tags: tags(db.tag_list()),
                });
            }
        }
        let mut pages = self.client.describe_db_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk::sdk_error("DescribeDBClusters", e))?;
            for c in page.db_clusters() {
                all.push(Database {
                    kind: Kind::Cluster,
                    id: c.db_cluster_identifier().unwrap_or_default().to_string(),
                    tags: tags(c.tag_list()),
                });
            }
        }
        Ok(all)
    }

    async fn database_tags(&self, kind: Kind, id: &str) -> anyhow::Result<Option<TagMap>> {
        match kind {
            Kind::Instance => match self
                .client
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
            {
                Ok(out) => Ok(out.db_instances().first().map(|d| tags(d.tag_list()))),
                Err(e) if sdk::error_code(&e) == Some("DBInstanceNotFound") => Ok(None),
                Err(e) => Err(sdk::sdk_error("DescribeDBInstances", e)),
            },
            Kind::Cluster => match self
                .client
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
            {
                Ok(out) => Ok(out.db_clusters().first().map(|c| tags(c.tag_list()))),
                Err(e) if sdk::error_code(&e) == Some("DBClusterNotFoundFault") => Ok(None),
                Err(e) => Err(sdk::sdk_error("DescribeDBClusters", e)),
            },
        }
    }

    async fn copy(&self, order: &CopyOrder) -> anyhow::Result<CopyOutcome> {
        // The source is named by ARN (another region) and the DR key is
        // given explicitly. The Rust SDK sends no pre-signed URL (RDS ignores
        // one outside GovCloud). Tags are given explicitly and `CopyTags` is
        // off, so no source tag the copier filtered out (`steward:exempt`)
        // reaches the copy.
        match order.source.kind {
            Kind::Instance => {
                let result = self
                    .client
                    .copy_db_snapshot()
                    .source_db_snapshot_identifier(&order.source.arn)
                    .target_db_snapshot_identifier(&order.target_id)
                    .kms_key_id(&order.kms_key)
                    .copy_tags(false)
                    .set_tags(Some(sdk_tags(order)))
                    .send()
                    .await;
                copy_outcome(
                    "CopyDBSnapshot",
                    result.map(|out| {
                        out.db_snapshot()
                            .and_then(|s| s.status())
                            .map(str::to_string)
                    }),
                )
            }
            Kind::Cluster => {
                let result = self
                    .client
                    .copy_db_cluster_snapshot()
                    .source_db_cluster_snapshot_identifier(&order.source.arn)
                    .target_db_cluster_snapshot_identifier(&order.target_id)
                    .kms_key_id(&order.kms_key)
                    .copy_tags(false)
                    .set_tags(Some(sdk_tags(order)))
                    .send()
                    .await;
                copy_outcome(
                    "CopyDBClusterSnapshot",
                    result.map(|out| {
                        out.db_cluster_snapshot()
                            .and_then(|s| s.status())
                            .map(str::to_string)
                    }),
                )
            }
        }
    }

    async fn delete(&self, kind: Kind, id: &str) -> anyhow::Result<()> {
        match kind {
            Kind::Instance => match self
                .client
                .delete_db_snapshot()
                .db_snapshot_identifier(id)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if sdk::error_code(&e) == Some("DBSnapshotNotFound") => Ok(()),
                Err(e) => Err(sdk::sdk_error("DeleteDBSnapshot", e)),
            },
            Kind::Cluster => match self
                .client
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(id)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if sdk::error_code(&e) == Some("DBClusterSnapshotNotFoundFault") => Ok(()),
                Err(e) => Err(sdk::sdk_error("DeleteDBClusterSnapshot", e)),
            },
        }
    }
}
