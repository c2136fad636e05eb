//! The RDS adapter of the restore drill, in the DR region of one account:
//! reads the DR copy to restore, restores it into a throwaway database
//! (Aurora: the cluster, then its one instance), observes it, deletes it,
//! and lists the databases that look like drills (for the sweep).

use async_trait::async_trait;
use aws_sdk_rds::types::Tag;
use steward_shared::sdk;

use crate::drill::{
    CopyFacts, DrillCandidate, RestoreRequest, Restored, Seen, DRILL_PREFIX, DRILL_TAG,
};
use crate::model::Kind;

/// The IAM actions this adapter calls. `AddTagsToResource` authorises the
/// tags given at restore; the deletes are limited to drill databases by a
/// tag condition in the templates.
pub const PERMISSIONS: &[&str] = &[
    "rds:DescribeDBSnapshots",
    "rds:DescribeDBClusterSnapshots",
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:RestoreDBInstanceFromDBSnapshot",
    "rds:RestoreDBClusterFromSnapshot",
    "rds:CreateDBInstance",
    "rds:AddTagsToResource",
    "rds:DeleteDBInstance",
    "rds:DeleteDBCluster",
];

/// The drill's RDS calls in the DR region of one account.
#[async_trait]
pub trait DrillRds: Send + Sync {
    /// The DR copy's engine and storage; `None` when it is gone.
    async fn copy_facts(&self, kind: Kind, id: &str) -> anyhow::Result<Option<CopyFacts>>;
    /// Requests the restore (an existing database of that name counts as requested).
    async fn restore(&self, request: &RestoreRequest) -> anyhow::Result<()>;
    /// The restored database (and Aurora member) as they are now.
    async fn observe(&self, kind: Kind, id: &str, member: Option<&str>) -> anyhow::Result<Seen>;
    /// Deletes a drill instance (no final snapshot); gone counts as deleted.
    async fn delete_instance(&self, id: &str) -> anyhow::Result<()>;
    /// Deletes a drill cluster (no final snapshot); gone counts as deleted.
    async fn delete_cluster(&self, id: &str) -> anyhow::Result<()>;
    /// Instances and clusters with the drill prefix or the `steward:drill` tag.
    async fn drill_like(&self) -> anyhow::Result<Vec<DrillCandidate>>;
}

/// [`DrillRds`] on the SDK client.
pub struct AwsDrillRds {
    pub client: aws_sdk_rds::Client,
    pub account: String,
    pub region: String,
}

fn tag_list(request: &RestoreRequest) -> Vec<Tag> {
    request
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn drill_tag(tags: &[Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some(DRILL_TAG))
        .and_then(|t| t.value())
        .map(str::to_string)
}

fn is_exists(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "DBInstanceAlreadyExists"
                | "DBInstanceAlreadyExistsFault"
                | "DBClusterAlreadyExistsFault"
        )
    )
}

/// The result of a call that creates a drill database: made, or made
/// already by an earlier check of the same drill (a retry), is success.
fn created_or_exists<T, E, R>(
    result: Result<T, aws_sdk_rds::error::SdkError<E, R>>,
    operation: &str,
) -> anyhow::Result<()>
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_exists(sdk::error_code(&e)) => Ok(()),
        Err(e) => Err(sdk::sdk_error(operation, e)),
    }
}

fn is_gone(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("DBInstanceNotFound" | "DBInstanceNotFoundFault" | "DBClusterNotFoundFault")
    )
}

impl AwsDrillRds {
    async fn instance(&self, id: &str) -> anyhow::Result<Option<aws_sdk_rds::types::DbInstance>> {
        match self
            .client
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_instances().first().cloned()),
            Err(e) if is_gone(sdk::error_code(&e)) => Ok(None),
            Err(e) => Err(sdk::sdk_error("DescribeDBInstances", e)),
        }
    }
}

#[async_trait]
impl DrillRds for AwsDrillRds {
    async fn copy_facts(&self, kind: Kind, id: &str) -> anyhow::Result<Option<CopyFacts>> {
        match kind {
            Kind::Instance => {
                match self
                    .client
                    .describe_db_snapshots()
                    .db_snapshot_identifier(id)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out.db_snapshots().first().map(|s| CopyFacts {
                        kind,
                        id: id.to_string(),
                        arn: s.db_snapshot_arn().unwrap_or_default().to_string(),
                        engine: s.engine().unwrap_or_default().to_string(),
                        engine_version: s.engine_version().unwrap_or_default().to_string(),
                        allocated_storage: s.allocated_storage().unwrap_or(0),
                        encrypted: s.encrypted().unwrap_or(false),
                    })),
                    Err(e) if sdk::error_code(&e) == Some("DBSnapshotNotFound") => Ok(None),
                    Err(e) => Err(sdk::sdk_error("DescribeDBSnapshots", e)),
                }
            }
            Kind::Cluster => match self
                .client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(id)
                .send()
                .await
            {
                Ok(out) => Ok(out.db_cluster_snapshots().first().map(|s| CopyFacts {
                    kind,
                    id: id.to_string(),
                    arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_string(),
                    engine: s.engine().unwrap_or_default().to_string(),
                    engine_version: s.engine_version().unwrap_or_default().to_string(),
                    allocated_storage: s.allocated_storage().unwrap_or(0),
                    encrypted: s.storage_encrypted().unwrap_or(false),
                })),
                Err(e) if sdk::error_code(&e) == Some("DBClusterSnapshotNotFoundFault") => Ok(None),
                Err(e) => Err(sdk::sdk_error("DescribeDBClusterSnapshots", e)),
            },
        }
    }

    async fn restore(&self, request: &RestoreRequest) -> anyhow::Result<()> {
        match request.kind {
            Kind::Instance => {
                let result = self
                    .client
                    .restore_db_instance_from_db_snapshot()
                    .db_instance_identifier(&request.identifier)
                    .db_snapshot_identifier(&request.copy_id)
                    .db_instance_class(&request.instance_class)
                    .publicly_accessible(request.publicly_accessible)
                    .multi_az(false)
                    .deletion_protection(false)
                    .set_db_subnet_group_name(request.subnet_group.clone())
                    .set_vpc_security_group_ids(
                        Some(request.security_groups.clone()).filter(|g| !g.is_empty()),
                    )
                    .set_tags(Some(tag_list(request)))
                    .send()
                    .await;
                created_or_exists(result, "RestoreDBInstanceFromDBSnapshot")
            }
            Kind::Cluster => {
                let result = self
                    .client
                    .restore_db_cluster_from_snapshot()
                    .db_cluster_identifier(&request.identifier)
                    .snapshot_identifier(&request.copy_id)
                    .engine(&request.engine)
                    .deletion_protection(false)
                    .set_db_subnet_group_name(request.subnet_group.clone())
                    .set_vpc_security_group_ids(
                        Some(request.security_groups.clone()).filter(|g| !g.is_empty()),
                    )
                    .set_tags(Some(tag_list(request)))
                    .send()
                    .await;
                created_or_exists(result, "RestoreDBClusterFromSnapshot")?;
                let Some(member) = &request.member else {
                    return Ok(());
                };
                let result = self
                    .client
                    .create_db_instance()
                    .db_instance_identifier(member)
                    .db_cluster_identifier(&request.identifier)
                    .engine(&request.engine)
                    .db_instance_class(&request.instance_class)
                    .publicly_accessible(request.publicly_accessible)
                    .set_tags(Some(tag_list(request)))
                    .send()
                    .await;
                created_or_exists(result, "CreateDBInstance")
            }
        }
    }

    async fn observe(&self, kind: Kind, id: &str, member: Option<&str>) -> anyhow::Result<Seen> {
        let mut seen = Seen::default();
        match kind {
            Kind::Instance => {
                seen.primary = self.instance(id).await?.map(|db| Restored {
                    status: db.db_instance_status().unwrap_or_default().to_string(),
                    engine: db.engine().unwrap_or_default().to_string(),
                    engine_version: db.engine_version().unwrap_or_default().to_string(),
                    allocated_storage: db.allocated_storage().unwrap_or(0),
                    encrypted: db.storage_encrypted().unwrap_or(false),
                    publicly_accessible: db.publicly_accessible().unwrap_or(false),
                });
            }
            Kind::Cluster => {
                let cluster = match self
                    .client
                    .describe_db_clusters()
                    .db_cluster_identifier(id)
                    .send()
                    .await
                {
                    Ok(out) => out.db_clusters().first().cloned(),
                    Err(e) if is_gone(sdk::error_code(&e)) => None,
                    Err(e) => return Err(sdk::sdk_error("DescribeDBClusters", e)),
                };
                let member_db = match member {
                    Some(m) => self.instance(m).await?,
                    None => None,
                };
                seen.primary = cluster.map(|c| Restored {
                    status: c.status().unwrap_or_default().to_string(),
                    engine: c.engine().unwrap_or_default().to_string(),
                    engine_version: c.engine_version().unwrap_or_default().to_string(),
                    allocated_storage: c.allocated_storage().unwrap_or(0),
                    encrypted: c.storage_encrypted().unwrap_or(false),
                    publicly_accessible: member_db
                        .as_ref()
                        .and_then(|m| m.publicly_accessible())
                        .unwrap_or(false),
                });
                seen.member =
                    member_db.map(|m| m.db_instance_status().unwrap_or_default().to_string());
            }
        }
        Ok(seen)
    }

    async fn delete_instance(&self, id: &str) -> anyhow::Result<()> {
        match self
            .client
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_gone(sdk::error_code(&e)) => Ok(()),
            Err(e) if sdk::error_code(&e) == Some("InvalidDBInstanceState") => {
                tracing::info!(
                    instance = id,
                    "the drill instance is busy (already deleting?); the next check deletes it"
                );
                Ok(())
            }
            Err(e) => Err(sdk::sdk_error("DeleteDBInstance", e)),
        }
    }

    async fn delete_cluster(&self, id: &str) -> anyhow::Result<()> {
        match self
            .client
            .delete_db_cluster()
            .db_cluster_identifier(id)
            .skip_final_snapshot(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_gone(sdk::error_code(&e)) => Ok(()),
            Err(e) if sdk::error_code(&e) == Some("InvalidDBClusterStateFault") => {
                tracing::info!(
                    cluster = id,
                    "the drill cluster is busy (already deleting?); the next check deletes it"
                );
                Ok(())
            }
            Err(e) => Err(sdk::sdk_error("DeleteDBCluster", e)),
        }
    }

    async fn drill_like(&self) -> anyhow::Result<Vec<DrillCandidate>> {
        let mut all = Vec::new();
        let mut pages = self.client.describe_db_instances().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk::sdk_error("DescribeDBInstances", e))?;
            for db in page.db_instances() {
                let id = db.db_instance_identifier().unwrap_or_default();
                let tag = drill_tag(db.tag_list());
                if id.starts_with(DRILL_PREFIX) || tag.is_some() {
                    all.push(DrillCandidate {
                        kind: Kind::Instance,
                        id: id.to_string(),
                        account: self.account.clone(),
                        region: self.region.clone(),
                        drill_tag: tag,
                    });
                }
            }
        }
        let mut pages = self.client.describe_db_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk::sdk_error("DescribeDBClusters", e))?;
            for c in page.db_clusters() {
                let id = c.db_cluster_identifier().unwrap_or_default();
                let tag = drill_tag(c.tag_list());
                if id.starts_with(DRILL_PREFIX) || tag.is_some() {
                    all.push(DrillCandidate {
                        kind: Kind::Cluster,
                        id: id.to_string(),
                        account: self.account.clone(),
                        region: self.region.clone(),
                        drill_tag: tag,
                    });
                }
            }
        }
        Ok(all)
    }
}
