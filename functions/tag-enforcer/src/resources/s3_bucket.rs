//! S3 buckets: created by `CreateBucket` (the name is in the request), tagged
//! with `PutBucketTagging`, which replaces the whole set (so existing tags are
//! merged in first).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use steward_shared::sdk::sdk_error;

use super::{is_code, Entry, Scope, TaggedResource};
use crate::model::{IdsAt, ResourceRef, ResourceState, ResourceType, TagCalls};

pub const TYPE: ResourceType = ResourceType {
    kind: "s3-bucket",
    config_type: "AWS::S3::Bucket",
    label: "S3 bucket",
    create_call: "CreateBucket",
    ids: IdsAt::FirstOf(&["/requestParameters/bucketName"]),
    tag_calls: TagCalls::None,
};

pub const PERMISSIONS: &[&str] = &[
    "s3:GetBucketTagging",
    "s3:PutBucketTagging",
    "s3:ListAllMyBuckets",
];

pub const ENTRY: Entry = Entry {
    kind: &TYPE,
    build: |scope| Arc::new(Buckets::new(scope)),
    permissions: PERMISSIONS,
};

/// The SDK adapter.
pub struct Buckets {
    client: aws_sdk_s3::Client,
    region: String,
}

impl Buckets {
    pub fn new(scope: &Scope<'_>) -> Buckets {
        let config = aws_sdk_s3::config::Builder::from(scope.config)
            .force_path_style(true)
            .build();
        Buckets {
            client: aws_sdk_s3::Client::from_conf(config),
            region: scope.region.to_string(),
        }
    }

    async fn read_one(&self, name: &str) -> anyhow::Result<Option<ResourceState>> {
        let tags = match self.client.get_bucket_tagging().bucket(name).send().await {
            Ok(out) => steward_shared::tags::to_map(
                out.tag_set()
                    .iter()
                    .map(|t| (Some(t.key()), Some(t.value()))),
            ),
            Err(e) if is_code(&e, "NoSuchTagSet") => HashMap::new(),
            Err(e) if is_code(&e, "NoSuchBucket") => return Ok(None),
            Err(e) => return Err(sdk_error("s3:GetBucketTagging", e)),
        };
        Ok(Some(ResourceState {
            r: ResourceRef {
                kind: TYPE.kind,
                id: name.to_string(),
            },
            config_type: TYPE.config_type,
            arn: format!(
                "arn:{}:s3:::{name}",
                steward_shared::aws::partition_of(&self.region)
            ),
            config_id: name.to_string(),
            tags,
        }))
    }
}

#[async_trait::async_trait]
impl TaggedResource for Buckets {
    fn kind(&self) -> &'static ResourceType {
        &TYPE
    }

    async fn read(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.read_one(id).await?);
        }
        Ok(out)
    }

    async fn list(&self) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_buckets()
            .bucket_region(&self.region)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("s3:ListBuckets", e))?;
            for bucket in page.buckets() {
                let Some(name) = bucket.name() else { continue };
                if bucket.bucket_region().is_some_and(|r| r != self.region) {
                    continue;
                }
                out.extend(self.read_one(name).await?);
            }
        }
        Ok(out)
    }

    async fn add_tags(
        &self,
        resource: &ResourceState,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let current = self.read_one(&resource.r.id).await?;
        let mut merged: BTreeMap<String, String> = current
            .map(|s| s.tags.into_iter().collect())
            .unwrap_or_default();
        merged.extend(tags.clone());
        let mut set = Vec::new();
        for (k, v) in merged {
            set.push(aws_sdk_s3::types::Tag::builder().key(k).value(v).build()?);
        }
        self.client
            .put_bucket_tagging()
            .bucket(&resource.r.id)
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .set_tag_set(Some(set))
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| sdk_error("s3:PutBucketTagging", e))?;
        Ok(())
    }
}
