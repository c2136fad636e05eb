//! Builds the adapters for one account and region: the hub's own clients, or
//! the member account's through the member role (`AwsContext::config_for`).
//! Tests replace it with in-memory adapters.

use std::sync::Arc;

use crate::autoscaling::{AutoScalingApi, AwsAutoScaling};
use crate::ec2::{AwsEc2, Ec2Api};
use crate::elbv2::{AwsTargetGroups, TargetGroupsApi};
use crate::guardduty::{AwsGuardDuty, FindingsApi};
use crate::iam::{AwsIam, IamApi};
use crate::organizations::{AwsOrganizations, OrganizationApi};

/// The per-account adapters the handler needs.
#[async_trait::async_trait]
pub trait Apis: Send + Sync {
    async fn ec2(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn Ec2Api>>;
    async fn iam(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn IamApi>>;
    /// GuardDuty in `account` and `region` (the hub's own account, or a member's).
    async fn guardduty(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn FindingsApi>>;
    async fn autoscaling(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn AutoScalingApi>>;
    async fn target_groups(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn TargetGroupsApi>>;
    /// Organizations, from the hub's own account.
    async fn organization(&self) -> anyhow::Result<Arc<dyn OrganizationApi>>;
}

/// The SDK adapters, reached through the shared AWS context.
pub struct AwsApis {
    aws: steward_shared::aws::AwsContext,
}

impl AwsApis {
    pub fn new(aws: steward_shared::aws::AwsContext) -> AwsApis {
        AwsApis { aws }
    }
}

#[async_trait::async_trait]
impl Apis for AwsApis {
    async fn ec2(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn Ec2Api>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsEc2::new(&config)))
    }

    async fn iam(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn IamApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsIam::new(&config)))
    }

    async fn guardduty(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn FindingsApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsGuardDuty::new(&config)))
    }

    async fn autoscaling(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn AutoScalingApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsAutoScaling::new(&config)))
    }

    async fn target_groups(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn TargetGroupsApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsTargetGroups::new(&config)))
    }

    async fn organization(&self) -> anyhow::Result<Arc<dyn OrganizationApi>> {
        Ok(Arc::new(AwsOrganizations::new(self.aws.base())))
    }
}
