//! Auto Scaling, behind a narrow trait: the group an instance belongs to (its
//! lifecycle state, scale-in protection and the group's sizes), scale-in
//! protection, and Standby in and out. Containment puts a contained instance
//! in Standby so that failing health checks after isolation do not make the
//! group terminate it with its evidence; the operator's release takes it out.
//! `AwsAutoScaling` implements it with the SDK (the describe call paginates).

use steward_shared::sdk::sdk_error as failed;

use crate::plan::GroupMembership;

/// The IAM actions containment calls (in the finding's account: the member role too).
pub const PERMISSIONS: &[&str] = &[
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:SetInstanceProtection",
    "autoscaling:EnterStandby",
];

/// The action only `steward quarantine release` adds (run by an operator).
pub const RELEASE_PERMISSIONS: &[&str] = &["autoscaling:ExitStandby"];

/// What containment and release need from Auto Scaling in one account and region.
#[async_trait::async_trait]
pub trait AutoScalingApi: Send + Sync {
    /// The group the instance belongs to, or `None` when it is in no group.
    async fn membership(&self, instance_id: &str) -> anyhow::Result<Option<GroupMembership>>;
    async fn set_scale_in_protection(
        &self,
        group: &str,
        instance_id: &str,
        protected: bool,
    ) -> anyhow::Result<()>;
    /// Moves an InService instance to Standby (the group stops health-checking it).
    async fn enter_standby(
        &self,
        group: &str,
        instance_id: &str,
        decrement_desired: bool,
    ) -> anyhow::Result<()>;
    /// Moves a Standby instance back to InService (the group's desired capacity grows by one).
    async fn exit_standby(&self, group: &str, instance_id: &str) -> anyhow::Result<()>;
}

/// The SDK implementation.
pub struct AwsAutoScaling {
    client: aws_sdk_autoscaling::Client,
}

impl AwsAutoScaling {
    pub fn new(config: &aws_config::SdkConfig) -> AwsAutoScaling {
        AwsAutoScaling {
            client: aws_sdk_autoscaling::Client::new(config),
        }
    }
}

#[async_trait::async_trait]
impl AutoScalingApi for AwsAutoScaling {
    async fn membership(&self, instance_id: &str) -> anyhow::Result<Option<GroupMembership>> {
        let mut found = None;
        let mut pages = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| failed(&format!("DescribeAutoScalingInstances {instance_id}"), e))?;
            if let Some(i) = page
                .auto_scaling_instances()
                .iter()
                .find(|i| i.instance_id() == Some(instance_id))
            {
                found = Some((
                    i.auto_scaling_group_name().unwrap_or_default().to_string(),
                    i.lifecycle_state().unwrap_or_default().to_string(),
                    i.protected_from_scale_in().unwrap_or(false),
                ));
                break;
            }
        }
        let Some((group, lifecycle_state, protected)) = found else {
            return Ok(None);
        };
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&group)
            .send()
            .await
            .map_err(|e| failed(&format!("DescribeAutoScalingGroups {group}"), e))?;
        let sizes = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(group.as_str()));
        Ok(Some(GroupMembership {
            lifecycle_state,
            protected,
            min_size: sizes.and_then(|g| g.min_size()).unwrap_or(0),
            desired: sizes.and_then(|g| g.desired_capacity()).unwrap_or(0),
            group,
        }))
    }

    async fn set_scale_in_protection(
        &self,
        group: &str,
        instance_id: &str,
        protected: bool,
    ) -> anyhow::Result<()> {
        self.client
            .set_instance_protection()
            .auto_scaling_group_name(group)
            .instance_ids(instance_id)
            .protected_from_scale_in(protected)
            .send()
            .await
            .map_err(|e| {
                failed(
                    &format!("SetInstanceProtection {instance_id} in {group}"),
                    e,
                )
            })?;
        Ok(())
    }

    async fn enter_standby(
        &self,
        group: &str,
        instance_id: &str,
        decrement_desired: bool,
    ) -> anyhow::Result<()> {
        self.client
            .enter_standby()
            .auto_scaling_group_name(group)
            .instance_ids(instance_id)
            .should_decrement_desired_capacity(decrement_desired)
            .send()
            .await
            .map_err(|e| failed(&format!("EnterStandby {instance_id} in {group}"), e))?;
        Ok(())
    }

    async fn exit_standby(&self, group: &str, instance_id: &str) -> anyhow::Result<()> {
        self.client
            .exit_standby()
            .auto_scaling_group_name(group)
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| failed(&format!("ExitStandby {instance_id} in {group}"), e))?;
        Ok(())
    }
}
