//! The resource registry: one file per resource type, each implementing
//! [`ScheduledResource`]. Adding a type is one new file and one line in
//! [`registry`].

pub mod asg;
pub mod aurora;
pub mod batch;
pub mod ec2;
pub mod ecs;
pub mod eks;
pub mod rds;

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::model::{ItemResult, Kind, Resource};

/// A stop request: the resource and whether to hibernate it (EC2 only).
#[derive(Debug, Clone, Copy)]
pub struct StopItem<'a> {
    pub resource: &'a Resource,
    pub hibernate: bool,
}

/// One governed resource type in one account and region.
#[async_trait::async_trait]
pub trait ScheduledResource: Send + Sync {
    fn kind(&self) -> Kind;

    /// Every resource of this type, with tags, power state and the reason it
    /// must be left alone, if any (paginated).
    async fn list(&self) -> anyhow::Result<Vec<Resource>>;

    /// Stops (or scales to zero) the batch; one result per resource. Stopping
    /// a stopped resource is harmless.
    async fn stop(&self, batch: &[StopItem<'_>]) -> Vec<ItemResult>;

    /// Starts (or restores) the batch; one result per resource.
    async fn start(&self, batch: &[&Resource]) -> Vec<ItemResult>;

    /// Sets one tag on one resource (the budget hold); the error names the call.
    async fn tag(&self, resource: &Resource, key: &str, value: &str) -> Result<(), String>;
}

/// Where the adapters act.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Target {
    pub account: String,
    pub region: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// Every resource type, built on one SDK configuration for one target.
pub fn registry(config: &SdkConfig, target: &Target) -> Vec<Arc<dyn ScheduledResource>> {
    vec![
        Arc::new(ec2::Ec2Instances::new(config, target)),
        Arc::new(asg::AutoScalingGroups::new(config)),
        Arc::new(eks::EksNodegroups::new(config)),
        Arc::new(rds::RdsInstances::new(config)),
        Arc::new(aurora::AuroraClusters::new(config)),
        Arc::new(ecs::EcsServices::new(config)),
    ]
}

/// One pending per-resource stop or start.
pub(crate) type Operation<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = ItemResult> + Send + 'a>>;

/// Runs per-resource operations a few at a time, keeping their order.
pub(crate) async fn bounded(operations: Vec<Operation<'_>>) -> Vec<ItemResult> {
    use futures::stream::{self, StreamExt};
    stream::iter(operations).buffered(8).collect().await
}
