//! Auto Scaling groups: min, max and desired set to zero, the previous values
//! saved first in `steward:saved-capacity` (`min:max:desired`) and restored
//! exactly on start. Groups owned by an EKS node group, an ECS capacity
//! provider or Elastic Beanstalk are left to their owner.

/// The IAM actions this file calls.
pub const PERMISSIONS: &[&str] = &[
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:UpdateAutoScalingGroup",
    "autoscaling:CreateOrUpdateTags",
];

use aws_config::SdkConfig;
use aws_sdk_autoscaling::types::Tag;
use steward_shared::sdk::{describe_brief, sdk_error_brief};
use steward_shared::tags::SAVED_CAPACITY;

use super::{bounded, Operation, ScheduledResource, StopItem};
use crate::model::{Capacity, ItemResult, Kind, Power, Resource};

/// Tags that mark a group as managed by another service, and that service.
pub const OWNER_TAGS: [(&str, &str); 3] = [
    ("eks:nodegroup-name", "EKS node group"),
    ("AmazonECSManaged", "ECS capacity provider"),
    (
        "elasticbeanstalk:environment-name",
        "Elastic Beanstalk environment",
    ),
];

pub struct AutoScalingGroups {
    client: aws_sdk_autoscaling::Client,
}

impl AutoScalingGroups {
    async fn stop_one(&self, item: StopItem<'_>) -> ItemResult {
        let name = &item.resource.id;
        let Some(current) = item.resource.capacity else {
            return ItemResult::failed(name, "capacity unknown; not scaled");
        };
        if current.is_zero() {
            return ItemResult::ok(name);
        }
        // Save first: a failure after this leaves the group running with its capacity recorded.
        let tag = Tag::builder()
            .resource_id(name)
            .resource_type("auto-scaling-group")
            .key(SAVED_CAPACITY)
            .value(current.to_tag())
            .propagate_at_launch(false)
            .build();
        if let Err(e) = self.client.create_or_update_tags().tags(tag).send().await {
            return ItemResult::failed(name, describe_brief("CreateOrUpdateTags", &e));
        }
        match self
            .set_capacity(
                name,
                Capacity {
                    min: 0,
                    max: 0,
                    desired: 0,
                },
            )
            .await
        {
            Ok(()) => ItemResult::ok(name),
            Err(e) => ItemResult::failed(name, e),
        }
    }

    async fn start_one(&self, r: &Resource) -> ItemResult {
        let saved = r.tags.get(SAVED_CAPACITY).map(|v| Capacity::parse(v));
        match saved {
            Some(Ok(c)) => match self.set_capacity(&r.id, c).await {
                Ok(()) => ItemResult::ok(&r.id),
                Err(e) => ItemResult::failed(&r.id, e),
            },
            Some(Err(e)) => ItemResult::failed(&r.id, e),
            None => ItemResult::failed(&r.id, format!("no {SAVED_CAPACITY} tag")),
        }
    }

    pub fn new(config: &SdkConfig) -> AutoScalingGroups {
        AutoScalingGroups {
            client: crate::calls::counted_client!(aws_sdk_autoscaling, config),
        }
    }

    async fn set_capacity(&self, name: &str, c: Capacity) -> Result<(), String> {
        self.client
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(c.min)
            .max_size(c.max)
            .desired_capacity(c.desired)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe_brief("UpdateAutoScalingGroup", &e))
    }
}

/// Power and start blocker of a group from its capacity and saved tag
/// (shared with EKS node groups, which save the same form).
pub fn group_state(current: Capacity, saved: Option<&String>) -> (Power, Option<String>) {
    if !current.is_zero() {
        return (Power::Running, None);
    }
    let blocker = match saved {
        None => Some(format!(
            "is at zero capacity with no {SAVED_CAPACITY} tag; nothing to restore"
        )),
        Some(v) => Capacity::parse(v).err(),
    };
    (Power::Stopped, blocker)
}

#[async_trait::async_trait]
impl ScheduledResource for AutoScalingGroups {
    fn kind(&self) -> Kind {
        Kind::AutoScalingGroup
    }

    async fn list(&self) -> anyhow::Result<Vec<Resource>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_auto_scaling_groups()
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error_brief("DescribeAutoScalingGroups", e))?;
            for g in page.auto_scaling_groups() {
                let Some(name) = g.auto_scaling_group_name() else {
                    continue;
                };
                let tags =
                    steward_shared::tags::to_map(g.tags().iter().map(|t| (t.key(), t.value())));
                let current = Capacity {
                    min: g.min_size().unwrap_or(0),
                    max: g.max_size().unwrap_or(0),
                    desired: g.desired_capacity().unwrap_or(0),
                };
                let (mut power, start_blocker) = group_state(current, tags.get(SAVED_CAPACITY));
                if let Some(status) = g.status() {
                    power = Power::Busy(status.to_string());
                }
                let arn = g.auto_scaling_group_arn().unwrap_or(name).to_string();
                let mut r = Resource::new(Kind::AutoScalingGroup, name, arn, tags, power);
                r.capacity = Some(current);
                r.start_blocker = start_blocker;
                r.owner_skip = OWNER_TAGS
                    .iter()
                    .find(|(tag, _)| r.tags.contains_key(*tag))
                    .map(|(tag, owner)| {
                        format!("is managed by an {owner} ({tag} tag); left to its owner")
                    });
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
        let tag = Tag::builder()
            .resource_id(&resource.id)
            .resource_type("auto-scaling-group")
            .key(key)
            .value(value)
            .propagate_at_launch(false)
            .build();
        self.client
            .create_or_update_tags()
            .tags(tag)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe_brief("CreateOrUpdateTags", &e))
    }
}
