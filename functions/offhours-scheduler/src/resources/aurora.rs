//! Aurora DB clusters: the whole cluster is stopped and started (its member
//! instances follow). Aurora Serverless v1 clusters cannot be stopped and are
//! skipped with the reason; non-Aurora (Multi-AZ) DB clusters are not listed.

/// The IAM actions this file calls.
pub const PERMISSIONS: &[&str] = &[
    "rds:DescribeDBClusters",
    "rds:StopDBCluster",
    "rds:StartDBCluster",
    "rds:AddTagsToResource",
];

use aws_config::SdkConfig;
use steward_shared::sdk::{describe_brief, sdk_error_brief};

use super::rds::{clear_restart_marker, rds_power};
use super::{bounded, Operation, ScheduledResource, StopItem};
use crate::model::{ItemResult, Kind, Resource};

pub struct AuroraClusters {
    client: aws_sdk_rds::Client,
}

impl AuroraClusters {
    async fn stop_one(&self, item: StopItem<'_>) -> ItemResult {
        let id = &item.resource.id;
        match self
            .client
            .stop_db_cluster()
            .db_cluster_identifier(id)
            .send()
            .await
        {
            Ok(_) => clear_restart_marker(&self.client, item.resource).await,
            Err(e) => ItemResult::failed(id, describe_brief("StopDBCluster", &e)),
        }
    }

    async fn start_one(&self, r: &Resource) -> ItemResult {
        match self
            .client
            .start_db_cluster()
            .db_cluster_identifier(&r.id)
            .send()
            .await
        {
            Ok(_) => ItemResult::ok(&r.id),
            Err(e) => ItemResult::failed(&r.id, describe_brief("StartDBCluster", &e)),
        }
    }

    pub fn new(config: &SdkConfig) -> AuroraClusters {
        AuroraClusters {
            client: crate::calls::counted_client!(aws_sdk_rds, config),
        }
    }
}

#[async_trait::async_trait]
impl ScheduledResource for AuroraClusters {
    fn kind(&self) -> Kind {
        Kind::AuroraCluster
    }

    async fn list(&self) -> anyhow::Result<Vec<Resource>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_db_clusters()
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error_brief("DescribeDBClusters", e))?;
            for c in page.db_clusters() {
                let Some(id) = c.db_cluster_identifier() else {
                    continue;
                };
                if !c.engine().unwrap_or_default().starts_with("aurora") {
                    continue;
                }
                let tags =
                    steward_shared::tags::to_map(c.tag_list().iter().map(|t| (t.key(), t.value())));
                let arn = c.db_cluster_arn().unwrap_or(id).to_string();
                let mut r =
                    Resource::new(Kind::AuroraCluster, id, arn, tags, rds_power(c.status()));
                if c.engine_mode() == Some("serverless") {
                    r.owner_skip = Some("is Aurora Serverless v1, which cannot be stopped".into());
                }
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
        super::rds::add_tag(&self.client, resource, key, value).await
    }
}
