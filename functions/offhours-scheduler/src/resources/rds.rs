//! RDS DB instances: stopped and started one call each. Read replicas,
//! instances that have read replicas and Aurora cluster members cannot be
//! stopped on their own; they are skipped with the reason.

/// The IAM actions this file calls.
pub const PERMISSIONS: &[&str] = &[
    "rds:DescribeDBInstances",
    "rds:StopDBInstance",
    "rds:StartDBInstance",
    "rds:AddTagsToResource",
    "rds:RemoveTagsFromResource",
];

use aws_config::SdkConfig;
use aws_sdk_rds::types::DbInstance;
use steward_shared::sdk::{describe_brief, sdk_error_brief};

use super::{bounded, Operation, ScheduledResource, StopItem};
use crate::model::{ItemResult, Kind, Power, Resource, RESTART_PENDING};

pub struct RdsInstances {
    client: aws_sdk_rds::Client,
}

impl RdsInstances {
    async fn stop_one(&self, item: StopItem<'_>) -> ItemResult {
        let id = &item.resource.id;
        match self
            .client
            .stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(_) => clear_restart_marker(&self.client, item.resource).await,
            Err(e) => ItemResult::failed(id, describe_brief("StopDBInstance", &e)),
        }
    }

    async fn start_one(&self, r: &Resource) -> ItemResult {
        match self
            .client
            .start_db_instance()
            .db_instance_identifier(&r.id)
            .send()
            .await
        {
            Ok(_) => ItemResult::ok(&r.id),
            Err(e) => ItemResult::failed(&r.id, describe_brief("StartDBInstance", &e)),
        }
    }

    pub fn new(config: &SdkConfig) -> RdsInstances {
        RdsInstances {
            client: crate::calls::counted_client!(aws_sdk_rds, config),
        }
    }
}

/// Sets one tag on an RDS instance or Aurora cluster (by ARN).
pub async fn add_tag(
    client: &aws_sdk_rds::Client,
    r: &Resource,
    key: &str,
    value: &str,
) -> Result<(), String> {
    client
        .add_tags_to_resource()
        .resource_name(&r.arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key(key)
                .value(value)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| describe_brief("AddTagsToResource", &e))
}

/// Removes the seven-day restart marker after a successful stop (if set).
pub async fn clear_restart_marker(client: &aws_sdk_rds::Client, r: &Resource) -> ItemResult {
    if !r.tags.contains_key(RESTART_PENDING) {
        return ItemResult::ok(&r.id);
    }
    match client
        .remove_tags_from_resource()
        .resource_name(&r.arn)
        .tag_keys(RESTART_PENDING)
        .send()
        .await
    {
        Ok(_) => ItemResult::ok(&r.id),
        Err(e) => ItemResult::failed(
            &r.id,
            describe_brief("RemoveTagsFromResource (stopped, marker kept)", &e),
        ),
    }
}

/// Maps an RDS status (`available`, `stopped`, `starting`...) to a power state.
pub fn rds_power(status: Option<&str>) -> Power {
    match status {
        Some("available") => Power::Running,
        Some("stopped") => Power::Stopped,
        Some(other) => Power::Busy(other.to_string()),
        None => Power::Busy("unknown".into()),
    }
}

/// Why RDS will not stop or start this instance on its own, if it will not.
pub fn owner_skip(db: &DbInstance) -> Option<String> {
    if let Some(cluster) = db.db_cluster_identifier() {
        return Some(format!(
            "is a member of DB cluster {cluster}; the cluster is scheduled instead"
        ));
    }
    if let Some(source) = db.read_replica_source_db_instance_identifier() {
        return Some(format!(
            "is a read replica of {source}; RDS cannot stop read replicas"
        ));
    }
    let replicas = db.read_replica_db_instance_identifiers();
    if !replicas.is_empty() {
        return Some(format!(
            "has read replicas ({}); RDS cannot stop an instance with read replicas",
            replicas.join(", ")
        ));
    }
    None
}

#[async_trait::async_trait]
impl ScheduledResource for RdsInstances {
    fn kind(&self) -> Kind {
        Kind::RdsInstance
    }

    async fn list(&self) -> anyhow::Result<Vec<Resource>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_db_instances()
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error_brief("DescribeDBInstances", e))?;
            for db in page.db_instances() {
                let Some(id) = db.db_instance_identifier() else {
                    continue;
                };
                let tags = steward_shared::tags::to_map(
                    db.tag_list().iter().map(|t| (t.key(), t.value())),
                );
                let arn = db.db_instance_arn().unwrap_or(id).to_string();
                let mut r = Resource::new(
                    Kind::RdsInstance,
                    id,
                    arn,
                    tags,
                    rds_power(db.db_instance_status()),
                );
                r.owner_skip = owner_skip(db);
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn stop(&self, batch: &[StopItem<'_>]) -> Vec<ItemResult> {
        let operations: Vec<_> = batch
            .iter()
            .map(|item| Box::pin(self.stop_one(*item)) as Operation<'_>)
            .collect();
        bounded(operations).await
    }

    async fn start(&self, batch: &[&Resource]) -> Vec<ItemResult> {
        let operations: Vec<_> = batch
            .iter()
            .map(|r| Box::pin(self.start_one(r)) as Operation<'_>)
            .collect();
        bounded(operations).await
    }
    async fn tag(&self, resource: &Resource, key: &str, value: &str) -> Result<(), String> {
        add_tag(&self.client, resource, key, value).await
    }
}
