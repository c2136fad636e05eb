//! EC2 instances: created by `RunInstances` (one or many per call), tagged
//! with `CreateTags`.

use std::collections::BTreeMap;
use std::sync::Arc;

use steward_shared::sdk::sdk_error;

use super::{ec2_arn, is_code, state, Entry, Scope, TaggedResource};
use crate::model::{IdsAt, ResourceState, ResourceType, TagCalls};

pub const TYPE: ResourceType = ResourceType {
    kind: "ec2-instance",
    config_type: "AWS::EC2::Instance",
    label: "EC2 instance",
    create_call: "RunInstances",
    ids: IdsAt::EachOf {
        array: "/responseElements/instancesSet/items",
        field: "instanceId",
    },
    tag_calls: TagCalls::Ec2 { id_prefix: "i-" },
};

pub const PERMISSIONS: &[&str] = &["ec2:DescribeInstances", "ec2:CreateTags"];

pub const ENTRY: Entry = Entry {
    kind: &TYPE,
    build: |scope| Arc::new(Ec2Instances::new(scope)),
    permissions: PERMISSIONS,
};

/// The SDK adapter.
pub struct Ec2Instances {
    client: aws_sdk_ec2::Client,
    region: String,
    account: String,
}

impl Ec2Instances {
    pub fn new(scope: &Scope<'_>) -> Ec2Instances {
        Ec2Instances {
            client: aws_sdk_ec2::Client::new(scope.config),
            region: scope.region.to_string(),
            account: scope.account.to_string(),
        }
    }

    fn to_state(&self, instance: &aws_sdk_ec2::types::Instance) -> Option<ResourceState> {
        let id = instance.instance_id()?;
        if instance.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("terminated") {
            return None;
        }
        Some(state(
            &TYPE,
            id,
            ec2_arn(&self.region, &self.account, "instance", id),
            id.to_string(),
            instance.tags().iter().map(|t| (t.key(), t.value())),
        ))
    }

    async fn describe(&self, ids: Option<Vec<String>>) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let request = match &ids {
            Some(ids) => self
                .client
                .describe_instances()
                .set_instance_ids(Some(ids.clone())),
            None => self.client.describe_instances().max_results(1000),
        };
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if is_code(&e, "InvalidInstanceID.NotFound") => match &ids {
                    // One id is gone: read the others one by one.
                    Some(ids) if ids.len() > 1 => {
                        let mut each = Vec::new();
                        for id in ids {
                            each.extend(Box::pin(self.describe(Some(vec![id.clone()]))).await?);
                        }
                        return Ok(each);
                    }
                    _ => return Ok(Vec::new()),
                },
                Err(e) => return Err(sdk_error("ec2:DescribeInstances", e)),
            };
            out.extend(
                page.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(|i| self.to_state(i)),
            );
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl TaggedResource for Ec2Instances {
    fn kind(&self) -> &'static ResourceType {
        &TYPE
    }

    async fn read(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(1000) {
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
        create_tags(&self.client, &resource.r.id, tags).await
    }
}

/// EC2 `CreateTags` on one resource (instances and volumes).
pub(crate) async fn create_tags(
    client: &aws_sdk_ec2::Client,
    id: &str,
    tags: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let mut request = client.create_tags().resources(id);
    for (k, v) in tags {
        request = request.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
    }
    request
        .send()
        .await
        .map_err(|e| sdk_error("ec2:CreateTags", e))?;
    Ok(())
}
