//! Where a call acts: the RDS and KMS ports for one account and region,
//! through the function's own credentials in its own account and the member
//! role (`STEWARD_MEMBER_ROLE`) elsewhere. A copy is always made in the
//! source's own account, in the DR region.

use async_trait::async_trait;
use steward_shared::aws::AwsContext;

use crate::drill_rds::{AwsDrillRds, DrillRds};
use crate::kms::{AwsKms, Keys};
use crate::rds::{AwsRds, Rds};

/// Builds the ports for an account and region.
#[async_trait]
pub trait Connect: Send + Sync {
    async fn rds(&self, account: &str, region: &str, session: &str)
        -> anyhow::Result<Box<dyn Rds>>;
    async fn keys(
        &self,
        account: &str,
        region: &str,
        session: &str,
    ) -> anyhow::Result<Box<dyn Keys>>;
    /// The restore drill's RDS calls (in the DR region).
    async fn drill(
        &self,
        account: &str,
        region: &str,
        session: &str,
    ) -> anyhow::Result<Box<dyn DrillRds>>;
}

/// [`Connect`] on the SDK.
pub struct AwsConnect(pub AwsContext);

#[async_trait]
impl Connect for AwsConnect {
    async fn rds(
        &self,
        account: &str,
        region: &str,
        session: &str,
    ) -> anyhow::Result<Box<dyn Rds>> {
        let config = self.0.config_for(account, region, session).await?;
        Ok(Box::new(AwsRds::new(&config, account)))
    }

    async fn keys(
        &self,
        account: &str,
        region: &str,
        session: &str,
    ) -> anyhow::Result<Box<dyn Keys>> {
        let config = self.0.config_for(account, region, session).await?;
        Ok(Box::new(AwsKms(aws_sdk_kms::Client::new(&config))))
    }

    async fn drill(
        &self,
        account: &str,
        region: &str,
        session: &str,
    ) -> anyhow::Result<Box<dyn DrillRds>> {
        let config = self.0.config_for(account, region, session).await?;
        Ok(Box::new(AwsDrillRds {
            client: aws_sdk_rds::Client::new(&config),
            account: account.to_string(),
            region: region.to_string(),
        }))
    }
}
