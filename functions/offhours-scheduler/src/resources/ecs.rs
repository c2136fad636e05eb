//! ECS services: desired count set to zero with the previous count saved in
//! `steward:saved-capacity`, and restored on start. Ids are
//! `cluster-name/service-name`.

/// The IAM actions this file calls.
pub const PERMISSIONS: &[&str] = &[
    "ecs:ListClusters",
    "ecs:ListServices",
    "ecs:DescribeServices",
    "ecs:UpdateService",
    "ecs:TagResource",
];

use aws_config::SdkConfig;
use aws_sdk_ecs::types::{ServiceField, Tag};
use steward_shared::sdk::{describe_brief, sdk_error_brief};
use steward_shared::tags::SAVED_CAPACITY;

use super::{bounded, Operation, ScheduledResource, StopItem};
use crate::model::{parse_saved_desired, Capacity, ItemResult, Kind, Power, Resource};

/// Services per DescribeServices call (the API's maximum).
const DESCRIBE_BATCH: usize = 10;

pub struct EcsServices {
    client: aws_sdk_ecs::Client,
}

impl EcsServices {
    async fn stop_one(&self, item: StopItem<'_>) -> ItemResult {
        let r = item.resource;
        let desired = r.capacity.map(|c| c.desired).unwrap_or(0);
        if desired == 0 {
            return ItemResult::ok(&r.id);
        }
        let tag = Tag::builder()
            .key(SAVED_CAPACITY)
            .value(desired.to_string())
            .build();
        if let Err(e) = self
            .client
            .tag_resource()
            .resource_arn(&r.arn)
            .tags(tag)
            .send()
            .await
        {
            return ItemResult::failed(&r.id, describe_brief("TagResource", &e));
        }
        match self.set_desired(&r.id, 0).await {
            Ok(()) => ItemResult::ok(&r.id),
            Err(e) => ItemResult::failed(&r.id, e),
        }
    }

    async fn start_one(&self, r: &Resource) -> ItemResult {
        match r.tags.get(SAVED_CAPACITY).map(|v| parse_saved_desired(v)) {
            Some(Ok(n)) => match self.set_desired(&r.id, n).await {
                Ok(()) => ItemResult::ok(&r.id),
                Err(e) => ItemResult::failed(&r.id, e),
            },
            Some(Err(e)) => ItemResult::failed(&r.id, e),
            None => ItemResult::failed(&r.id, format!("no {SAVED_CAPACITY} tag")),
        }
    }

    pub fn new(config: &SdkConfig) -> EcsServices {
        EcsServices {
            client: crate::calls::counted_client!(aws_sdk_ecs, config),
        }
    }

    async fn set_desired(&self, id: &str, desired: i32) -> Result<(), String> {
        let (cluster, service) = id
            .split_once('/')
            .ok_or_else(|| format!("{id} is not cluster/service"))?;
        self.client
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(desired)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe_brief("UpdateService", &e))
    }
}

fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[async_trait::async_trait]
impl ScheduledResource for EcsServices {
    fn kind(&self) -> Kind {
        Kind::EcsService
    }

    async fn list(&self) -> anyhow::Result<Vec<Resource>> {
        let mut out = Vec::new();
        let mut clusters = self.client.list_clusters().into_paginator().items().send();
        while let Some(cluster_arn) = clusters.next().await {
            let cluster_arn = cluster_arn.map_err(|e| sdk_error_brief("ListClusters", e))?;
            let cluster = last_segment(&cluster_arn).to_string();
            let mut arns = Vec::new();
            let mut services = self
                .client
                .list_services()
                .cluster(&cluster_arn)
                .into_paginator()
                .items()
                .send();
            while let Some(arn) = services.next().await {
                arns.push(arn.map_err(|e| sdk_error_brief(&format!("ListServices {cluster}"), e))?);
            }
            for chunk in arns.chunks(DESCRIBE_BATCH) {
                let described = self
                    .client
                    .describe_services()
                    .cluster(&cluster_arn)
                    .set_services(Some(chunk.to_vec()))
                    .include(ServiceField::Tags)
                    .send()
                    .await
                    .map_err(|e| sdk_error_brief(&format!("DescribeServices {cluster}"), e))?;
                for s in described.services() {
                    let (Some(arn), Some(name)) = (s.service_arn(), s.service_name()) else {
                        continue;
                    };
                    let tags =
                        steward_shared::tags::to_map(s.tags().iter().map(|t| (t.key(), t.value())));
                    let desired = s.desired_count();
                    let power = match s.status() {
                        Some("ACTIVE") | None if desired > 0 => Power::Running,
                        Some("ACTIVE") | None => Power::Stopped,
                        Some(other) => Power::Busy(other.to_ascii_lowercase()),
                    };
                    let mut r = Resource::new(
                        Kind::EcsService,
                        format!("{cluster}/{name}"),
                        arn,
                        tags,
                        power,
                    );
                    r.capacity = Some(Capacity {
                        min: 0,
                        max: desired,
                        desired,
                    });
                    if desired == 0 {
                        r.start_blocker = match r.tags.get(SAVED_CAPACITY) {
                            None => Some(format!("has desired count 0 and no {SAVED_CAPACITY} tag; nothing to restore")),
                            Some(v) => parse_saved_desired(v).err(),
                        };
                    }
                    out.push(r);
                }
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
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe_brief("TagResource", &e))
    }
}
