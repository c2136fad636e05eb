//! Elastic Load Balancing (v2) target groups, behind a narrow trait: where an
//! instance is registered (every target group of the region, paginated, and
//! each one's registered targets), deregistration before containment and
//! registration again on the operator's release. Targets registered by IP
//! address are not matched to the instance (see the guide).
//! `AwsTargetGroups` implements it with the SDK.

use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetHealthStateEnum, TargetTypeEnum,
};
use steward_shared::sdk::{error_code, sdk_error as failed};

use crate::plan::TargetRegistration;

/// The IAM actions containment calls (in the finding's account: the member role too).
pub const PERMISSIONS: &[&str] = &[
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DeregisterTargets",
];

/// The action only `steward quarantine release` adds (run by an operator).
pub const RELEASE_PERMISSIONS: &[&str] = &["elasticloadbalancing:RegisterTargets"];

/// What containment and release need from target groups in one account and region.
#[async_trait::async_trait]
pub trait TargetGroupsApi: Send + Sync {
    /// The instance-type target groups the instance is registered in (targets
    /// already draining count as deregistered).
    async fn registrations(&self, instance_id: &str) -> anyhow::Result<Vec<TargetRegistration>>;
    /// The ARNs of every target group in the region.
    async fn target_group_arns(&self) -> anyhow::Result<Vec<String>>;
    async fn deregister(
        &self,
        target_group_arn: &str,
        instance_id: &str,
        port: Option<i32>,
    ) -> anyhow::Result<()>;
    async fn register(
        &self,
        target_group_arn: &str,
        instance_id: &str,
        port: Option<i32>,
    ) -> anyhow::Result<()>;
}

/// The SDK implementation.
pub struct AwsTargetGroups {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

impl AwsTargetGroups {
    pub fn new(config: &aws_config::SdkConfig) -> AwsTargetGroups {
        AwsTargetGroups {
            client: aws_sdk_elasticloadbalancingv2::Client::new(config),
        }
    }

    /// Instance-type target groups (ARNs).
    async fn instance_target_groups(&self) -> anyhow::Result<Vec<String>> {
        let mut arns = Vec::new();
        let mut pages = self.client.describe_target_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed("DescribeTargetGroups", e))?;
            for tg in page.target_groups() {
                let by_instance = tg
                    .target_type()
                    .is_none_or(|t| *t == TargetTypeEnum::Instance);
                if let (true, Some(arn)) = (by_instance, tg.target_group_arn()) {
                    arns.push(arn.to_string());
                }
            }
        }
        Ok(arns)
    }
}

fn target(instance_id: &str, port: Option<i32>) -> anyhow::Result<TargetDescription> {
    Ok(TargetDescription::builder()
        .id(instance_id)
        .set_port(port)
        .build())
}

#[async_trait::async_trait]
impl TargetGroupsApi for AwsTargetGroups {
    async fn registrations(&self, instance_id: &str) -> anyhow::Result<Vec<TargetRegistration>> {
        let mut found = Vec::new();
        for arn in self.instance_target_groups().await? {
            let out = match self
                .client
                .describe_target_health()
                .target_group_arn(&arn)
                .send()
                .await
            {
                Ok(out) => out,
                // Deleted between the two calls.
                Err(e) if error_code(&e) == Some("TargetGroupNotFound") => continue,
                Err(e) => return Err(failed(&format!("DescribeTargetHealth {arn}"), e)),
            };
            for d in out.target_health_descriptions() {
                let Some(t) = d.target() else { continue };
                let draining = d
                    .target_health()
                    .and_then(|h| h.state())
                    .is_some_and(|s| *s == TargetHealthStateEnum::Draining);
                if t.id() == Some(instance_id) && !draining {
                    found.push(TargetRegistration {
                        target_group_arn: arn.clone(),
                        port: t.port(),
                    });
                }
            }
        }
        Ok(found)
    }

    async fn target_group_arns(&self) -> anyhow::Result<Vec<String>> {
        self.instance_target_groups().await
    }

    async fn deregister(
        &self,
        target_group_arn: &str,
        instance_id: &str,
        port: Option<i32>,
    ) -> anyhow::Result<()> {
        match self
            .client
            .deregister_targets()
            .target_group_arn(target_group_arn)
            .targets(target(instance_id, port)?)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already gone from the group (an Auto Scaling group's Standby deregisters it too).
            Err(e) if error_code(&e) == Some("InvalidTarget") => Ok(()),
            Err(e) => Err(failed(
                &format!("DeregisterTargets {instance_id} from {target_group_arn}"),
                e,
            )),
        }
    }

    async fn register(
        &self,
        target_group_arn: &str,
        instance_id: &str,
        port: Option<i32>,
    ) -> anyhow::Result<()> {
        self.client
            .register_targets()
            .target_group_arn(target_group_arn)
            .targets(target(instance_id, port)?)
            .send()
            .await
            .map_err(|e| {
                failed(
                    &format!("RegisterTargets {instance_id} in {target_group_arn}"),
                    e,
                )
            })?;
        Ok(())
    }
}
