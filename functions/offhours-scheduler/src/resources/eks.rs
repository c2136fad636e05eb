//! EKS managed node groups: scaled to zero (minimum and desired 0; EKS keeps
//! a maximum of at least 1) with the previous `min:max:desired` saved in
//! `steward:saved-capacity` on the node group, and restored exactly on start.

/// The IAM actions this file calls.
pub const PERMISSIONS: &[&str] = &[
    "eks:ListClusters",
    "eks:ListNodegroups",
    "eks:DescribeNodegroup",
    "eks:UpdateNodegroupConfig",
    "eks:TagResource",
];

use aws_config::SdkConfig;
use aws_sdk_eks::types::{NodegroupScalingConfig, NodegroupStatus};
use steward_shared::sdk::{describe_brief, sdk_error_brief};
use steward_shared::tags::SAVED_CAPACITY;

use super::asg::group_state;
use super::{bounded, Operation, ScheduledResource, StopItem};
use crate::model::{Capacity, ItemResult, Kind, Power, Resource};

pub struct EksNodegroups {
    client: aws_sdk_eks::Client,
}

impl EksNodegroups {
    async fn stop_one(&self, item: StopItem<'_>) -> ItemResult {
        let r = item.resource;
        let Some(current) = r.capacity else {
            return ItemResult::failed(&r.id, "capacity unknown; not scaled");
        };
        if current.is_zero() {
            return ItemResult::ok(&r.id);
        }
        if let Err(e) = self
            .client
            .tag_resource()
            .resource_arn(&r.arn)
            .tags(SAVED_CAPACITY, current.to_tag())
            .send()
            .await
        {
            return ItemResult::failed(&r.id, describe_brief("TagResource", &e));
        }
        match self
            .scale(
                &r.id,
                Capacity {
                    min: 0,
                    max: current.max,
                    desired: 0,
                },
            )
            .await
        {
            Ok(()) => ItemResult::ok(&r.id),
            Err(e) => ItemResult::failed(&r.id, e),
        }
    }

    async fn start_one(&self, r: &Resource) -> ItemResult {
        match r.tags.get(SAVED_CAPACITY).map(|v| Capacity::parse(v)) {
            Some(Ok(c)) => match self.scale(&r.id, c).await {
                Ok(()) => ItemResult::ok(&r.id),
                Err(e) => ItemResult::failed(&r.id, e),
            },
            Some(Err(e)) => ItemResult::failed(&r.id, e),
            None => ItemResult::failed(&r.id, format!("no {SAVED_CAPACITY} tag")),
        }
    }

    pub fn new(config: &SdkConfig) -> EksNodegroups {
        EksNodegroups {
            client: crate::calls::counted_client!(aws_sdk_eks, config),
        }
    }

    async fn scale(&self, id: &str, c: Capacity) -> Result<(), String> {
        let (cluster, nodegroup) = id
            .split_once('/')
            .ok_or_else(|| format!("{id} is not cluster/nodegroup"))?;
        self.client
            .update_nodegroup_config()
            .cluster_name(cluster)
            .nodegroup_name(nodegroup)
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(c.min)
                    .max_size(c.max.max(1))
                    .desired_size(c.desired)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe_brief("UpdateNodegroupConfig", &e))
    }
}

#[async_trait::async_trait]
impl ScheduledResource for EksNodegroups {
    fn kind(&self) -> Kind {
        Kind::EksNodegroup
    }

    async fn list(&self) -> anyhow::Result<Vec<Resource>> {
        let mut out = Vec::new();
        let mut clusters = self.client.list_clusters().into_paginator().items().send();
        while let Some(cluster) = clusters.next().await {
            let cluster = cluster.map_err(|e| sdk_error_brief("ListClusters", e))?;
            let mut groups = self
                .client
                .list_nodegroups()
                .cluster_name(&cluster)
                .into_paginator()
                .items()
                .send();
            while let Some(name) = groups.next().await {
                let name =
                    name.map_err(|e| sdk_error_brief(&format!("ListNodegroups {cluster}"), e))?;
                let described = self
                    .client
                    .describe_nodegroup()
                    .cluster_name(&cluster)
                    .nodegroup_name(&name)
                    .send()
                    .await
                    .map_err(|e| {
                        sdk_error_brief(&format!("DescribeNodegroup {cluster}/{name}"), e)
                    })?;
                let Some(g) = described.nodegroup() else {
                    continue;
                };
                let tags: steward_shared::tags::TagMap = g
                    .tags()
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let sc = g.scaling_config();
                let current = Capacity {
                    min: sc.and_then(|s| s.min_size()).unwrap_or(0),
                    max: sc.and_then(|s| s.max_size()).unwrap_or(0),
                    desired: sc.and_then(|s| s.desired_size()).unwrap_or(0),
                };
                let (mut power, blocker) = group_state(current, tags.get(SAVED_CAPACITY));
                match g.status() {
                    Some(NodegroupStatus::Active) | None => {}
                    Some(other) => power = Power::Busy(other.as_str().to_ascii_lowercase()),
                }
                let arn = g.nodegroup_arn().unwrap_or_default().to_string();
                let mut r = Resource::new(
                    Kind::EksNodegroup,
                    format!("{cluster}/{name}"),
                    arn,
                    tags,
                    power,
                );
                r.capacity = Some(current);
                r.start_blocker = blocker;
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
        self.client
            .tag_resource()
            .resource_arn(&resource.arn)
            .tags(key, value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe_brief("TagResource", &e))
    }
}
