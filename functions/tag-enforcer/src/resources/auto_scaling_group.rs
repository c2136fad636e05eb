//! Auto Scaling groups: created by `CreateAutoScalingGroup` (the name is in
//! the request), tagged with `CreateOrUpdateTags` (propagated at launch).

use std::collections::BTreeMap;
use std::sync::Arc;

use steward_shared::sdk::sdk_error;

use super::{state, Entry, Scope, TaggedResource};
use crate::model::{IdsAt, ResourceState, ResourceType, TagCalls};

pub const TYPE: ResourceType = ResourceType {
    kind: "auto-scaling-group",
    config_type: "AWS::AutoScaling::AutoScalingGroup",
    label: "Auto Scaling group",
    create_call: "CreateAutoScalingGroup",
    ids: IdsAt::FirstOf(&["/requestParameters/autoScalingGroupName"]),
    tag_calls: TagCalls::AutoScaling,
};

pub const PERMISSIONS: &[&str] = &[
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:CreateOrUpdateTags",
];

pub const ENTRY: Entry = Entry {
    kind: &TYPE,
    build: |scope| Arc::new(AutoScalingGroups::new(scope)),
    permissions: PERMISSIONS,
};

/// The SDK adapter.
pub struct AutoScalingGroups {
    client: aws_sdk_autoscaling::Client,
    region: String,
    account: String,
}

impl AutoScalingGroups {
    pub fn new(scope: &Scope<'_>) -> AutoScalingGroups {
        AutoScalingGroups {
            client: aws_sdk_autoscaling::Client::new(scope.config),
            region: scope.region.to_string(),
            account: scope.account.to_string(),
        }
    }

    async fn describe(&self, names: Option<Vec<String>>) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(names)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("autoscaling:DescribeAutoScalingGroups", e))?;
            for group in page.auto_scaling_groups() {
                let name = group.auto_scaling_group_name().unwrap_or_default();
                let arn = group
                    .auto_scaling_group_arn()
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        format!(
                            "arn:{}:autoscaling:{}:{}:autoScalingGroup:*:autoScalingGroupName/{name}",
                            steward_shared::aws::partition_of(&self.region),
                            self.region,
                            self.account
                        )
                    });
                out.push(state(
                    &TYPE,
                    name,
                    arn.clone(),
                    arn,
                    group.tags().iter().map(|t| (t.key(), t.value())),
                ));
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl TaggedResource for AutoScalingGroups {
    fn kind(&self) -> &'static ResourceType {
        &TYPE
    }

    async fn read(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(50) {
            out.extend(self.describe(Some(chunk.to_vec())).await?);
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
        let mut request = self.client.create_or_update_tags();
        for (k, v) in tags {
            request = request.tags(
                aws_sdk_autoscaling::types::Tag::builder()
                    .resource_id(&resource.r.id)
                    .resource_type("auto-scaling-group")
                    .key(k)
                    .value(v)
                    .propagate_at_launch(true)
                    .build(),
            );
        }
        request
            .send()
            .await
            .map_err(|e| sdk_error("autoscaling:CreateOrUpdateTags", e))?;
        Ok(())
    }
}
