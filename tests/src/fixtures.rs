//! The EC2 and Auto Scaling set-up the suites, the demo and the benchmark
//! share: instances with tags (optionally hibernation-capable), an Auto
//! Scaling group on its own launch template, and reading an instance's
//! state and tags back. Errors are returned, so the demo can report them;
//! tests `unwrap`.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{
    HibernationOptionsRequest, InstanceType, RequestLaunchTemplateData, ResourceType, Tag,
    TagSpecification,
};

use crate::moto::REGION;

/// An AMI moto knows.
pub const AMI: &str = "ami-12c6146b";

/// The id of the region's default VPC (moto creates one per region).
pub async fn default_vpc(config: &SdkConfig) -> anyhow::Result<String> {
    let out = aws_sdk_ec2::Client::new(config)
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("is-default")
                .values("true")
                .build(),
        )
        .send()
        .await?;
    out.vpcs()
        .first()
        .and_then(|v| v.vpc_id())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the region has no default VPC"))
}

/// The same configuration (endpoint, account, credentials) in another region.
pub fn in_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

/// What to launch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Launch<'a> {
    pub count: i32,
    pub tags: &'a [(&'a str, &'a str)],
    pub hibernation: bool,
}

impl<'a> Launch<'a> {
    /// One instance with these tags.
    pub fn one(tags: &'a [(&'a str, &'a str)]) -> Launch<'a> {
        Launch {
            count: 1,
            tags,
            hibernation: false,
        }
    }
}

/// Launches t3.micro instances; their ids.
pub async fn launch(config: &SdkConfig, what: Launch<'_>) -> anyhow::Result<Vec<String>> {
    let count = what.count.max(1);
    let mut request = aws_sdk_ec2::Client::new(config)
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::T3Micro)
        .min_count(count)
        .max_count(count);
    if !what.tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in what.tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        request = request.tag_specifications(spec.build());
    }
    if what.hibernation {
        request = request.hibernation_options(
            HibernationOptionsRequest::builder()
                .configured(true)
                .build(),
        );
    }
    let out = request.send().await?;
    Ok(out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect())
}

/// One instance with these tags; its id.
pub async fn launch_one(config: &SdkConfig, tags: &[(&str, &str)]) -> anyhow::Result<String> {
    launch(config, Launch::one(tags))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("RunInstances returned no instance"))
}

async fn describe(config: &SdkConfig, id: &str) -> anyhow::Result<aws_sdk_ec2::types::Instance> {
    let out = aws_sdk_ec2::Client::new(config)
        .describe_instances()
        .instance_ids(id)
        .send()
        .await?;
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("instance {id} not found"))
}

/// The instance's state name (`running`, `stopped`, …).
pub async fn instance_state(config: &SdkConfig, id: &str) -> anyhow::Result<String> {
    Ok(describe(config, id)
        .await?
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default())
}

/// The instance's tags.
pub async fn instance_tags(
    config: &SdkConfig,
    id: &str,
) -> anyhow::Result<HashMap<String, String>> {
    Ok(describe(config, id)
        .await?
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// An Auto Scaling group `name` on its own launch template, with these
/// sizes (min, max, desired) and tags (propagated at launch).
pub async fn auto_scaling_group(
    config: &SdkConfig,
    name: &str,
    tags: &[(&str, &str)],
    (min, max, desired): (i32, i32, i32),
) -> anyhow::Result<()> {
    let template = format!("{name}-template");
    aws_sdk_ec2::Client::new(config)
        .create_launch_template()
        .launch_template_name(&template)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .instance_type(InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await?;
    let mut request = aws_sdk_autoscaling::Client::new(config)
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(&template)
                .build(),
        )
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones(format!("{REGION}a"));
    for (k, v) in tags {
        request = request.tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(*k)
                .value(*v)
                .propagate_at_launch(true)
                .build(),
        );
    }
    request.send().await?;
    Ok(())
}
