//! The ports the handler reaches AWS through, per account and region (the
//! real ones assume the member role in member accounts), and their SDK
//! implementation. Tests implement [`Apis`] in memory.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::config_rule::{AwsConfig, ConfigApi};
use crate::resources::{self, Resources, Scope};

/// Builds the per-account adapters (the real ones assume the member role).
#[async_trait::async_trait]
pub trait Apis: Send + Sync {
    async fn resources(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Resources>;
    async fn config(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn ConfigApi>>;
    /// The role this function runs as in its own account (its own tag writes
    /// are made by it), when known.
    async fn own_role(&self) -> Option<String>;
}

/// The SDK adapters, reached through the shared AWS context.
pub struct AwsApis {
    aws: steward_shared::aws::AwsContext,
    own_role: OnceCell<Option<String>>,
}

impl AwsApis {
    pub fn new(aws: steward_shared::aws::AwsContext) -> AwsApis {
        AwsApis {
            aws,
            own_role: OnceCell::new(),
        }
    }
}

#[async_trait::async_trait]
impl Apis for AwsApis {
    async fn resources(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Resources> {
        let config = self.aws.config_for(account, region, event_id).await?;
        let scope = Scope {
            config: &config,
            account,
            region,
        };
        Ok(Resources::new(resources::adapters(&scope)))
    }

    async fn config(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn ConfigApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsConfig::new(&config)))
    }

    async fn own_role(&self) -> Option<String> {
        self.own_role
            .get_or_init(|| crate::sts::own_role(self.aws.base()))
            .await
            .clone()
    }
}
