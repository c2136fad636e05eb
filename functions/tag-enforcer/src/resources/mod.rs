//! The resource registry: one file per resource type, each declaring its
//! [`ResourceType`] (kind, Config type, label, the CloudTrail call that
//! creates it and where its ids are, the tagging calls that change it), its
//! IAM `PERMISSIONS`, and an adapter implementing [`TaggedResource`]. Adding a
//! type is one new file and one line in [`REGISTRY`].

pub mod auto_scaling_group;
pub mod ec2_instance;
pub mod ec2_volume;
pub mod rds_cluster;
pub mod rds_instance;
pub mod s3_bucket;
pub mod secret;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::model::{ResourceRef, ResourceState, ResourceType};

/// One governed resource type in one account and region.
#[async_trait::async_trait]
pub trait TaggedResource: Send + Sync {
    /// What this type is (as data).
    fn kind(&self) -> &'static ResourceType;
    /// Reads these resources; those that no longer exist are left out.
    async fn read(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>>;
    /// Every resource of this type in the account and region (paginated).
    async fn list(&self) -> anyhow::Result<Vec<ResourceState>>;
    /// Adds tags (existing keys not named are kept).
    async fn add_tags(
        &self,
        resource: &ResourceState,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<()>;
}

/// Where an adapter acts.
pub struct Scope<'a> {
    pub config: &'a SdkConfig,
    pub account: &'a str,
    pub region: &'a str,
}

/// A registry entry: the type as data and how to build its adapter.
pub struct Entry {
    pub kind: &'static ResourceType,
    pub build: fn(&Scope<'_>) -> Arc<dyn TaggedResource>,
    pub permissions: &'static [&'static str],
}

/// Every resource type the tag enforcer governs.
pub const REGISTRY: &[Entry] = &[
    ec2_instance::ENTRY,
    ec2_volume::ENTRY,
    rds_instance::ENTRY,
    rds_cluster::ENTRY,
    auto_scaling_group::ENTRY,
    secret::ENTRY,
    s3_bucket::ENTRY,
];

/// The types as data, for the event parser and the plan.
pub fn types() -> Vec<&'static ResourceType> {
    REGISTRY.iter().map(|e| e.kind).collect()
}

/// The adapters for one account and region.
pub fn adapters(scope: &Scope<'_>) -> Vec<Arc<dyn TaggedResource>> {
    REGISTRY.iter().map(|e| (e.build)(scope)).collect()
}

/// Every IAM action the adapters call.
pub fn permissions() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .flat_map(|e| e.permissions.iter().copied())
        .collect()
}

/// The adapters as one port: reads refs of any type, lists every type.
#[derive(Clone)]
pub struct Resources {
    adapters: Vec<Arc<dyn TaggedResource>>,
}

impl Resources {
    pub fn new(adapters: Vec<Arc<dyn TaggedResource>>) -> Resources {
        Resources { adapters }
    }

    fn adapter(&self, kind: &str) -> anyhow::Result<&Arc<dyn TaggedResource>> {
        self.adapters
            .iter()
            .find(|a| a.kind().kind == kind)
            .ok_or_else(|| anyhow::anyhow!("no adapter for resource type {kind}"))
    }

    /// Reads the resources, grouped by type; missing ones are left out.
    pub async fn read(&self, refs: &[ResourceRef]) -> anyhow::Result<Vec<ResourceState>> {
        let mut by_kind: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for r in refs {
            by_kind.entry(r.kind).or_default().push(r.id.clone());
        }
        let mut out = Vec::new();
        for (kind, ids) in by_kind {
            out.extend(self.adapter(kind)?.read(&ids).await?);
        }
        Ok(out)
    }

    /// Every resource of every type.
    pub async fn list_all(&self) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        for adapter in &self.adapters {
            out.extend(adapter.list().await?);
        }
        Ok(out)
    }

    pub async fn add_tags(
        &self,
        resource: &ResourceState,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        self.adapter(resource.r.kind)?
            .add_tags(resource, tags)
            .await
    }
}

/// True when the service answered with this error code.
pub(crate) fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, code: &str) -> bool {
    steward_shared::sdk::error_code(e) == Some(code)
}

/// A state from parts.
pub(crate) fn state<'a>(
    kind: &'static ResourceType,
    id: &str,
    arn: String,
    config_id: String,
    tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> ResourceState {
    ResourceState {
        r: ResourceRef {
            kind: kind.kind,
            id: id.to_string(),
        },
        config_type: kind.config_type,
        arn,
        config_id,
        tags: steward_shared::tags::to_map(tags),
    }
}

/// An EC2 ARN in the scope's partition, region and account.
pub(crate) fn ec2_arn(region: &str, account: &str, what: &str, id: &str) -> String {
    format!(
        "arn:{}:ec2:{region}:{account}:{what}/{id}",
        steward_shared::aws::partition_of(region)
    )
}
