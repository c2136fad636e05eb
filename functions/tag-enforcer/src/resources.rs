//! The resource types the tag enforcer governs, and the adapter that reads and
//! adds their tags through the SDK. Each type is one arm of `ResourceKind`
//! (its Config type name and ARN shape) plus its read, tag and list calls.

use std::collections::{BTreeMap, HashMap};

use aws_config::SdkConfig;

/// A resource type the tag enforcer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Ec2Instance,
    Ec2Volume,
    RdsInstance,
    RdsCluster,
    AutoScalingGroup,
    Secret,
    S3Bucket,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 7] = [
        ResourceKind::Ec2Instance,
        ResourceKind::Ec2Volume,
        ResourceKind::RdsInstance,
        ResourceKind::RdsCluster,
        ResourceKind::AutoScalingGroup,
        ResourceKind::Secret,
        ResourceKind::S3Bucket,
    ];

    /// The AWS Config resource type.
    pub fn config_type(self) -> &'static str {
        match self {
            ResourceKind::Ec2Instance => "AWS::EC2::Instance",
            ResourceKind::Ec2Volume => "AWS::EC2::Volume",
            ResourceKind::RdsInstance => "AWS::RDS::DBInstance",
            ResourceKind::RdsCluster => "AWS::RDS::DBCluster",
            ResourceKind::AutoScalingGroup => "AWS::AutoScaling::AutoScalingGroup",
            ResourceKind::Secret => "AWS::SecretsManager::Secret",
            ResourceKind::S3Bucket => "AWS::S3::Bucket",
        }
    }

    pub fn from_config_type(t: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|k| k.config_type() == t)
    }
}

/// A resource named the way its service's API names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceRef {
    pub kind: ResourceKind,
    /// Instance id, volume id, DB instance or cluster identifier, group name, secret ARN or name, bucket name.
    pub id: String,
}

/// A resource as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceState {
    pub r: ResourceRef,
    pub arn: String,
    /// The id AWS Config uses for this resource (for RDS its resource id, for groups and secrets the ARN).
    pub config_id: String,
    pub tags: HashMap<String, String>,
}

/// The tag calls the tag enforcer needs, for one account and region.
#[async_trait::async_trait]
pub trait ResourceApi: Send + Sync {
    /// Reads the resources; those that no longer exist are left out.
    async fn read(&self, refs: &[ResourceRef]) -> anyhow::Result<Vec<ResourceState>>;
    /// Adds tags (existing keys not named are kept).
    async fn add_tags(
        &self,
        resource: &ResourceState,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<()>;
    /// Every resource of a kind in the account and region (paginated).
    async fn list(&self, kind: ResourceKind) -> anyhow::Result<Vec<ResourceState>>;
}

/// The SDK adapter.
pub struct AwsResources {
    region: String,
    account: String,
    ec2: aws_sdk_ec2::Client,
    rds: aws_sdk_rds::Client,
    autoscaling: aws_sdk_autoscaling::Client,
    secrets: aws_sdk_secretsmanager::Client,
    s3: aws_sdk_s3::Client,
}

impl AwsResources {
    pub fn new(config: &SdkConfig, account: &str) -> AwsResources {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build();
        AwsResources {
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            account: account.to_string(),
            ec2: aws_sdk_ec2::Client::new(config),
            rds: aws_sdk_rds::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
        }
    }

    fn ec2_arn(&self, what: &str, id: &str) -> String {
        format!(
            "arn:{}:ec2:{}:{}:{what}/{id}",
            steward_shared::aws::partition_of(&self.region),
            self.region,
            self.account
        )
    }

    async fn read_instances(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if is_code(&e, "InvalidInstanceID.NotFound") && ids.len() > 1 => {
                    // One id is gone: read the others one by one.
                    return self.read_each(ids, ResourceKind::Ec2Instance).await;
                }
                Err(e) if is_code(&e, "InvalidInstanceID.NotFound") => return Ok(Vec::new()),
                Err(e) => return Err(sdk("ec2:DescribeInstances", e)),
            };
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(id) = instance.instance_id() else {
                    continue;
                };
                if instance.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("terminated")
                {
                    continue;
                }
                out.push(ResourceState {
                    r: ResourceRef {
                        kind: ResourceKind::Ec2Instance,
                        id: id.to_string(),
                    },
                    arn: self.ec2_arn("instance", id),
                    config_id: id.to_string(),
                    tags: steward_shared::tags::to_map(
                        instance.tags().iter().map(|t| (t.key(), t.value())),
                    ),
                });
            }
        }
        Ok(out)
    }

    async fn read_volumes(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .ec2
            .describe_volumes()
            .set_volume_ids(Some(ids.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if is_code(&e, "InvalidVolume.NotFound") && ids.len() > 1 => {
                    return self.read_each(ids, ResourceKind::Ec2Volume).await;
                }
                Err(e) if is_code(&e, "InvalidVolume.NotFound") => return Ok(Vec::new()),
                Err(e) => return Err(sdk("ec2:DescribeVolumes", e)),
            };
            for volume in page.volumes() {
                let Some(id) = volume.volume_id() else {
                    continue;
                };
                out.push(ResourceState {
                    r: ResourceRef {
                        kind: ResourceKind::Ec2Volume,
                        id: id.to_string(),
                    },
                    arn: self.ec2_arn("volume", id),
                    config_id: id.to_string(),
                    tags: steward_shared::tags::to_map(
                        volume.tags().iter().map(|t| (t.key(), t.value())),
                    ),
                });
            }
        }
        Ok(out)
    }

    async fn read_each(
        &self,
        ids: &[String],
        kind: ResourceKind,
    ) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        for id in ids {
            let one = vec![id.clone()];
            let found = match kind {
                ResourceKind::Ec2Instance => Box::pin(self.read_instances(&one)).await?,
                _ => Box::pin(self.read_volumes(&one)).await?,
            };
            out.extend(found);
        }
        Ok(out)
    }

    async fn read_db_instances(&self, id: Option<&str>) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .rds
            .describe_db_instances()
            .set_db_instance_identifier(id.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
                {
                    return Ok(out)
                }
                Err(e) => return Err(sdk("rds:DescribeDBInstances", e)),
            };
            for db in page.db_instances() {
                let (Some(name), Some(arn)) = (db.db_instance_identifier(), db.db_instance_arn())
                else {
                    continue;
                };
                out.push(ResourceState {
                    r: ResourceRef {
                        kind: ResourceKind::RdsInstance,
                        id: name.to_string(),
                    },
                    arn: arn.to_string(),
                    config_id: db.dbi_resource_id().unwrap_or(name).to_string(),
                    tags: steward_shared::tags::to_map(
                        db.tag_list().iter().map(|t| (t.key(), t.value())),
                    ),
                });
            }
        }
        Ok(out)
    }

    async fn read_db_clusters(&self, id: Option<&str>) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .rds
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
                Err(e) => return Err(sdk("rds:DescribeDBClusters", e)),
            };
            for cluster in page.db_clusters() {
                let (Some(name), Some(arn)) =
                    (cluster.db_cluster_identifier(), cluster.db_cluster_arn())
                else {
                    continue;
                };
                out.push(ResourceState {
                    r: ResourceRef {
                        kind: ResourceKind::RdsCluster,
                        id: name.to_string(),
                    },
                    arn: arn.to_string(),
                    config_id: cluster.db_cluster_resource_id().unwrap_or(name).to_string(),
                    tags: steward_shared::tags::to_map(
                        cluster.tag_list().iter().map(|t| (t.key(), t.value())),
                    ),
                });
            }
        }
        Ok(out)
    }

    async fn read_groups(&self, names: Option<Vec<String>>) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .autoscaling
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(names)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk("autoscaling:DescribeAutoScalingGroups", e))?;
            for group in page.auto_scaling_groups() {
                let name = group.auto_scaling_group_name().unwrap_or_default();
                let arn = group.auto_scaling_group_arn().map(str::to_string).unwrap_or_else(|| {
                    format!("arn:aws:autoscaling:{}:{}:autoScalingGroup:*:autoScalingGroupName/{name}", self.region, self.account)
                });
                out.push(ResourceState {
                    r: ResourceRef {
                        kind: ResourceKind::AutoScalingGroup,
                        id: name.to_string(),
                    },
                    config_id: arn.clone(),
                    arn,
                    tags: steward_shared::tags::to_map(
                        group.tags().iter().map(|t| (t.key(), t.value())),
                    ),
                });
            }
        }
        Ok(out)
    }

    async fn read_secret(&self, id: &str) -> anyhow::Result<Vec<ResourceState>> {
        match self.secrets.describe_secret().secret_id(id).send().await {
            Ok(secret) => {
                if secret.deleted_date().is_some() {
                    return Ok(Vec::new());
                }
                let arn = secret.arn().unwrap_or(id).to_string();
                Ok(vec![ResourceState {
                    r: ResourceRef {
                        kind: ResourceKind::Secret,
                        id: arn.clone(),
                    },
                    config_id: arn.clone(),
                    arn,
                    tags: steward_shared::tags::to_map(
                        secret.tags().iter().map(|t| (t.key(), t.value())),
                    ),
                }])
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(sdk("secretsmanager:DescribeSecret", e)),
        }
    }

    async fn list_secrets(&self) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self.secrets.list_secrets().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk("secretsmanager:ListSecrets", e))?;
            for secret in page.secret_list() {
                let Some(arn) = secret.arn() else { continue };
                out.push(ResourceState {
                    r: ResourceRef {
                        kind: ResourceKind::Secret,
                        id: arn.to_string(),
                    },
                    arn: arn.to_string(),
                    config_id: arn.to_string(),
                    tags: steward_shared::tags::to_map(
                        secret.tags().iter().map(|t| (t.key(), t.value())),
                    ),
                });
            }
        }
        Ok(out)
    }

    async fn read_bucket(&self, name: &str) -> anyhow::Result<Vec<ResourceState>> {
        let tags = match self.s3.get_bucket_tagging().bucket(name).send().await {
            Ok(out) => steward_shared::tags::to_map(
                out.tag_set()
                    .iter()
                    .map(|t| (Some(t.key()), Some(t.value()))),
            ),
            Err(e) if is_code(&e, "NoSuchTagSet") => HashMap::new(),
            Err(e) if is_code(&e, "NoSuchBucket") => return Ok(Vec::new()),
            Err(e) => return Err(sdk("s3:GetBucketTagging", e)),
        };
        Ok(vec![ResourceState {
            r: ResourceRef {
                kind: ResourceKind::S3Bucket,
                id: name.to_string(),
            },
            arn: format!(
                "arn:{}:s3:::{name}",
                steward_shared::aws::partition_of(&self.region)
            ),
            config_id: name.to_string(),
            tags,
        }])
    }

    async fn list_buckets(&self) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .s3
            .list_buckets()
            .bucket_region(&self.region)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk("s3:ListBuckets", e))?;
            for bucket in page.buckets() {
                let Some(name) = bucket.name() else { continue };
                if let Some(region) = bucket.bucket_region() {
                    if region != self.region {
                        continue;
                    }
                }
                out.extend(self.read_bucket(name).await?);
            }
        }
        Ok(out)
    }
}

fn is_code<E, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>, code: &str) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some(code)
}

fn sdk<E, R>(call: &str, e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    anyhow::anyhow!(
        "{call} failed: {}",
        aws_smithy_types::error::display::DisplayErrorContext(&e)
    )
}

#[async_trait::async_trait]
impl ResourceApi for AwsResources {
    async fn read(&self, refs: &[ResourceRef]) -> anyhow::Result<Vec<ResourceState>> {
        let mut by_kind: BTreeMap<ResourceKind, Vec<String>> = BTreeMap::new();
        for r in refs {
            by_kind.entry(r.kind).or_default().push(r.id.clone());
        }
        let mut out = Vec::new();
        for (kind, ids) in by_kind {
            match kind {
                ResourceKind::Ec2Instance => {
                    for chunk in ids.chunks(1000) {
                        out.extend(self.read_instances(chunk).await?);
                    }
                }
                ResourceKind::Ec2Volume => {
                    for chunk in ids.chunks(500) {
                        out.extend(self.read_volumes(chunk).await?);
                    }
                }
                ResourceKind::RdsInstance => {
                    for id in &ids {
                        out.extend(self.read_db_instances(Some(id)).await?);
                    }
                }
                ResourceKind::RdsCluster => {
                    for id in &ids {
                        out.extend(self.read_db_clusters(Some(id)).await?);
                    }
                }
                ResourceKind::AutoScalingGroup => {
                    for chunk in ids.chunks(50) {
                        out.extend(self.read_groups(Some(chunk.to_vec())).await?);
                    }
                }
                ResourceKind::Secret => {
                    for id in &ids {
                        out.extend(self.read_secret(id).await?);
                    }
                }
                ResourceKind::S3Bucket => {
                    for id in &ids {
                        out.extend(self.read_bucket(id).await?);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn add_tags(
        &self,
        resource: &ResourceState,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        match resource.r.kind {
            ResourceKind::Ec2Instance | ResourceKind::Ec2Volume => {
                let mut request = self.ec2.create_tags().resources(&resource.r.id);
                for (k, v) in tags {
                    request =
                        request.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
                }
                request.send().await.map_err(|e| sdk("ec2:CreateTags", e))?;
            }
            ResourceKind::RdsInstance | ResourceKind::RdsCluster => {
                let mut request = self.rds.add_tags_to_resource().resource_name(&resource.arn);
                for (k, v) in tags {
                    request =
                        request.tags(aws_sdk_rds::types::Tag::builder().key(k).value(v).build());
                }
                request
                    .send()
                    .await
                    .map_err(|e| sdk("rds:AddTagsToResource", e))?;
            }
            ResourceKind::AutoScalingGroup => {
                let mut request = self.autoscaling.create_or_update_tags();
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
                    .map_err(|e| sdk("autoscaling:CreateOrUpdateTags", e))?;
            }
            ResourceKind::Secret => {
                let mut request = self.secrets.tag_resource().secret_id(&resource.arn);
                for (k, v) in tags {
                    request = request.tags(
                        aws_sdk_secretsmanager::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build(),
                    );
                }
                request
                    .send()
                    .await
                    .map_err(|e| sdk("secretsmanager:TagResource", e))?;
            }
            ResourceKind::S3Bucket => {
                // PutBucketTagging replaces the whole set: merge with what is there now.
                let current = self.read_bucket(&resource.r.id).await?;
                let mut merged: BTreeMap<String, String> = current
                    .first()
                    .map(|s| s.tags.clone().into_iter().collect())
                    .unwrap_or_default();
                merged.extend(tags.clone());
                let mut set = Vec::new();
                for (k, v) in merged {
                    set.push(aws_sdk_s3::types::Tag::builder().key(k).value(v).build()?);
                }
                self.s3
                    .put_bucket_tagging()
                    .bucket(&resource.r.id)
                    .tagging(
                        aws_sdk_s3::types::Tagging::builder()
                            .set_tag_set(Some(set))
                            .build()?,
                    )
                    .send()
                    .await
                    .map_err(|e| sdk("s3:PutBucketTagging", e))?;
            }
        }
        Ok(())
    }

    async fn list(&self, kind: ResourceKind) -> anyhow::Result<Vec<ResourceState>> {
        match kind {
            ResourceKind::Ec2Instance => {
                let mut out = Vec::new();
                let mut pages = self
                    .ec2
                    .describe_instances()
                    .max_results(1000)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| sdk("ec2:DescribeInstances", e))?;
                    for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                        let Some(id) = instance.instance_id() else {
                            continue;
                        };
                        if instance.state().and_then(|s| s.name()).map(|n| n.as_str())
                            == Some("terminated")
                        {
                            continue;
                        }
                        out.push(ResourceState {
                            r: ResourceRef {
                                kind,
                                id: id.to_string(),
                            },
                            arn: self.ec2_arn("instance", id),
                            config_id: id.to_string(),
                            tags: steward_shared::tags::to_map(
                                instance.tags().iter().map(|t| (t.key(), t.value())),
                            ),
                        });
                    }
                }
                Ok(out)
            }
            ResourceKind::Ec2Volume => {
                let mut out = Vec::new();
                let mut pages = self
                    .ec2
                    .describe_volumes()
                    .max_results(500)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| sdk("ec2:DescribeVolumes", e))?;
                    for volume in page.volumes() {
                        let Some(id) = volume.volume_id() else {
                            continue;
                        };
                        out.push(ResourceState {
                            r: ResourceRef {
                                kind,
                                id: id.to_string(),
                            },
                            arn: self.ec2_arn("volume", id),
                            config_id: id.to_string(),
                            tags: steward_shared::tags::to_map(
                                volume.tags().iter().map(|t| (t.key(), t.value())),
                            ),
                        });
                    }
                }
                Ok(out)
            }
            ResourceKind::RdsInstance => self.read_db_instances(None).await,
            ResourceKind::RdsCluster => self.read_db_clusters(None).await,
            ResourceKind::AutoScalingGroup => self.read_groups(None).await,
            ResourceKind::Secret => self.list_secrets().await,
            ResourceKind::S3Bucket => self.list_buckets().await,
        }
    }
}
