//! EBS volumes: created by `CreateVolume`, tagged with `CreateTags`.

use std::collections::BTreeMap;
use std::sync::Arc;

use steward_shared::sdk::sdk_error;

use super::ec2_instance::create_tags;
use super::{ec2_arn, is_code, state, Entry, Scope, TaggedResource};
use crate::model::{IdsAt, ResourceState, ResourceType, TagCalls};

pub const TYPE: ResourceType = ResourceType {
    kind: "ec2-volume",
    config_type: "AWS::EC2::Volume",
    label: "EBS volume",
    create_call: "CreateVolume",
    ids: IdsAt::FirstOf(&["/responseElements/volumeId"]),
    tag_calls: TagCalls::Ec2 { id_prefix: "vol-" },
};

pub const PERMISSIONS: &[&str] = &["ec2:DescribeVolumes", "ec2:CreateTags"];

pub const ENTRY: Entry = Entry {
    kind: &TYPE,
    build: |scope| Arc::new(Ec2Volumes::new(scope)),
    permissions: PERMISSIONS,
};

/// The SDK adapter.
pub struct Ec2Volumes {
    client: aws_sdk_ec2::Client,
    region: String,
    account: String,
}

impl Ec2Volumes {
    pub fn new(scope: &Scope<'_>) -> Ec2Volumes {
        Ec2Volumes {
            client: aws_sdk_ec2::Client::new(scope.config),
            region: scope.region.to_string(),
            account: scope.account.to_string(),
        }
    }

    async fn describe(&self, ids: Option<Vec<String>>) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let request = match &ids {
            Some(ids) => self
                .client
                .describe_volumes()
                .set_volume_ids(Some(ids.clone())),
            None => self.client.describe_volumes().max_results(500),
        };
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if is_code(&e, "InvalidVolume.NotFound") => match &ids {
                    Some(ids) if ids.len() > 1 => {
                        let mut each = Vec::new();
                        for id in ids {
                            each.extend(Box::pin(self.describe(Some(vec![id.clone()]))).await?);
                        }
                        return Ok(each);
                    }
                    _ => return Ok(Vec::new()),
                },
                Err(e) => return Err(sdk_error("ec2:DescribeVolumes", e)),
            };
            for volume in page.volumes() {
                let Some(id) = volume.volume_id() else {
                    continue;
                };
                out.push(state(
                    &TYPE,
                    id,
                    ec2_arn(&self.region, &self.account, "volume", id),
                    id.to_string(),
                    volume.tags().iter().map(|t| (t.key(), t.value())),
                ));
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl TaggedResource for Ec2Volumes {
    fn kind(&self) -> &'static ResourceType {
        &TYPE
    }

    async fn read(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
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
