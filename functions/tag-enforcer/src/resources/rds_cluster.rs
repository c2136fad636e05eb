//! Aurora DB clusters: created by `CreateDBCluster`, tagged with
//! `AddTagsToResource` on the cluster ARN.

use std::collections::BTreeMap;
use std::sync::Arc;

use steward_shared::sdk::sdk_error;

use super::rds_instance::add_tags_to_resource;
use super::{state, Entry, Scope, TaggedResource};
use crate::model::{IdsAt, ResourceState, ResourceType, TagCalls};

pub const TYPE: ResourceType = ResourceType {
    kind: "rds-cluster",
    config_type: "AWS::RDS::DBCluster",
    label: "Aurora DB cluster",
    create_call: "CreateDBCluster",
    ids: IdsAt::FirstOf(&[
        "/responseElements/dBClusterIdentifier",
        "/requestParameters/dBClusterIdentifier",
    ]),
    tag_calls: TagCalls::Rds {
        arn_segment: ":cluster:",
    },
};

pub const PERMISSIONS: &[&str] = &["rds:DescribeDBClusters", "rds:AddTagsToResource"];

pub const ENTRY: Entry = Entry {
    kind: &TYPE,
    build: |scope| Arc::new(RdsClusters::new(scope)),
    permissions: PERMISSIONS,
};

/// The SDK adapter.
pub struct RdsClusters {
    client: aws_sdk_rds::Client,
}

impl RdsClusters {
    pub fn new(scope: &Scope<'_>) -> RdsClusters {
        RdsClusters {
            client: aws_sdk_rds::Client::new(scope.config),
        }
    }

    async fn describe(&self, id: Option<&str>) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_db_clusters()
            .set_db_cluster_identifier(id.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_db_cluster_not_found_fault()) =>
                {
                    return Ok(out)
                }
                Err(e) => return Err(sdk_error("rds:DescribeDBClusters", e)),
            };
            for cluster in page.db_clusters() {
                let (Some(name), Some(arn)) =
                    (cluster.db_cluster_identifier(), cluster.db_cluster_arn())
                else {
                    continue;
                };
                out.push(state(
                    &TYPE,
                    name,
                    arn.to_string(),
                    cluster.db_cluster_resource_id().unwrap_or(name).to_string(),
                    cluster.tag_list().iter().map(|t| (t.key(), t.value())),
                ));
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl TaggedResource for RdsClusters {
    fn kind(&self) -> &'static ResourceType {
        &TYPE
    }

    async fn read(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.describe(Some(id)).await?);
        }
        Ok(out)
    }

    async fn list(&self) -> anyhow::Result<Vec<ResourceState>> {
        self.describe(None).await
    }

    async fn add_tags(
        &self,
        resource: &ResourceState,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        add_tags_to_resource(&self.client, &resource.arn, tags).await
    }
}
