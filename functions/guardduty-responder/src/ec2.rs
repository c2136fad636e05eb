//! The EC2 side of containment and release behind a narrow trait: read an
//! instance with its interfaces and volumes, find or create the quarantine
//! group, swap interface groups, tag, protect from termination, snapshot.
//! `AwsEc2` implements it with the SDK (every list call paginates).

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, InstanceAttributeName, IpPermission, IpRange, Ipv6Range,
    ResourceType, Tag, TagSpecification,
};
use steward_shared::sdk::sdk_error as failed;
use steward_shared::tags::{self, TagMap};

use crate::plan::{GroupFacts, InstanceFacts, InterfaceFacts};

/// The action only `steward quarantine release` adds (run by an operator through
/// the member role, never by the function).
pub const RELEASE_PERMISSIONS: &[&str] = &["ec2:DeleteTags"];

/// The IAM actions this adapter calls (in the finding's account: the member role too).
pub const PERMISSIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeInstanceAttribute",
    "ec2:DescribeSecurityGroups",
    "ec2:CreateSecurityGroup",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:CreateTags",
    "ec2:ModifyInstanceAttribute",
    "ec2:CreateSnapshot",
    "ec2:DescribeSnapshots",
];

/// A forensic snapshot steward took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForensicSnapshot {
    pub snapshot_id: String,
    pub volume_id: String,
    pub finding_id: String,
}

/// What containment and release need from EC2 in one account and region.
#[async_trait::async_trait]
pub trait Ec2Api: Send + Sync {
    /// The instance, or `None` when it does not exist (or is terminated).
    async fn instance(&self, instance_id: &str) -> anyhow::Result<Option<InstanceFacts>>;
    /// The quarantine group of a VPC: by name, VPC and `steward:managed=true`.
    async fn quarantine_group(
        &self,
        vpc_id: &str,
        name: &str,
    ) -> anyhow::Result<Option<GroupFacts>>;
    /// Creates the quarantine group with no rules at all; returns its id.
    async fn create_quarantine_group(&self, vpc_id: &str, name: &str) -> anyhow::Result<String>;
    /// The allow-all group of the two-step swap in a VPC (by name and `steward:managed=true`).
    async fn open_group(&self, vpc_id: &str, name: &str) -> anyhow::Result<Option<String>>;
    /// Creates the allow-all group: all traffic in and out for 0.0.0.0/0 and ::/0.
    async fn create_open_group(&self, vpc_id: &str, name: &str) -> anyhow::Result<String>;
    /// Removes every inbound and outbound rule of a group.
    async fn remove_all_rules(&self, group_id: &str) -> anyhow::Result<()>;
    async fn set_interface_groups(
        &self,
        interface_id: &str,
        group_ids: &[String],
    ) -> anyhow::Result<()>;
    async fn tag(&self, resource_id: &str, key: &str, value: &str) -> anyhow::Result<()>;
    async fn untag(&self, resource_id: &str, key: &str) -> anyhow::Result<()>;
    async fn enable_termination_protection(&self, instance_id: &str) -> anyhow::Result<()>;
    /// Snapshots a volume tagged with the finding id; returns the snapshot id.
    async fn snapshot(
        &self,
        volume_id: &str,
        instance_id: &str,
        finding_id: &str,
    ) -> anyhow::Result<String>;
    /// steward's forensic snapshots of these volumes (any finding).
    async fn forensic_snapshots(
        &self,
        volume_ids: &[String],
    ) -> anyhow::Result<Vec<ForensicSnapshot>>;
}

/// The volumes that already have a forensic snapshot for this finding.
pub fn snapshotted_for(snapshots: &[ForensicSnapshot], finding_id: &str) -> BTreeSet<String> {
    snapshots
        .iter()
        .filter(|s| s.finding_id == finding_id)
        .map(|s| s.volume_id.clone())
        .collect()
}

/// The SDK implementation.
pub struct AwsEc2 {
    client: aws_sdk_ec2::Client,
}

impl AwsEc2 {
    pub fn new(config: &aws_config::SdkConfig) -> AwsEc2 {
        AwsEc2 {
            client: aws_sdk_ec2::Client::new(config),
        }
    }
}

impl AwsEc2 {
    /// Revokes every outbound rule of a group.
    async fn remove_egress(&self, group_id: &str) -> anyhow::Result<()> {
        let out = self
            .client
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
            .map_err(|e| failed(&format!("DescribeSecurityGroups {group_id}"), e))?;
        let egress = out
            .security_groups()
            .first()
            .map(|g| g.ip_permissions_egress().to_vec())
            .unwrap_or_default();
        if !egress.is_empty() {
            self.client
                .revoke_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(Some(egress))
                .send()
                .await
                .map_err(|e| failed(&format!("RevokeSecurityGroupEgress on {group_id}"), e))?;
        }
        Ok(())
    }
}

fn tag_map(tags: &[Tag]) -> TagMap {
    tags::to_map(tags.iter().map(|t| (t.key(), t.value())))
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

#[async_trait::async_trait]
impl Ec2Api for AwsEc2 {
    async fn instance(&self, instance_id: &str) -> anyhow::Result<Option<InstanceFacts>> {
        let out = match self
            .client
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .and_then(|s| s.meta().code())
                    .is_some_and(|c| c.starts_with("InvalidInstanceID")) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(failed(&format!("DescribeInstances {instance_id}"), e)),
        };
        let Some(instance) = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(instance_id))
        else {
            return Ok(None);
        };
        let state = instance
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default();
        if state == "terminated" || state == "shutting-down" {
            return Ok(None);
        }
        let interface_ids: Vec<String> = instance
            .network_interfaces()
            .iter()
            .filter_map(|n| n.network_interface_id().map(str::to_string))
            .collect();
        let mut interfaces = Vec::new();
        if !interface_ids.is_empty() {
            let mut pages = self
                .client
                .describe_network_interfaces()
                .set_network_interface_ids(Some(interface_ids.clone()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    failed(&format!("DescribeNetworkInterfaces of {instance_id}"), e)
                })?;
                for eni in page.network_interfaces() {
                    interfaces.push(InterfaceFacts {
                        id: eni.network_interface_id().unwrap_or_default().to_string(),
                        groups: eni
                            .groups()
                            .iter()
                            .filter_map(|g| g.group_id().map(str::to_string))
                            .collect(),
                        tags: tag_map(eni.tag_set()),
                    });
                }
            }
        }
        interfaces.sort_by_key(|i| interface_ids.iter().position(|id| *id == i.id));
        let volumes = instance
            .block_device_mappings()
            .iter()
            .filter_map(|b| b.ebs().and_then(|e| e.volume_id()).map(str::to_string))
            .collect();
        let protection = self
            .client
            .describe_instance_attribute()
            .instance_id(instance_id)
            .attribute(InstanceAttributeName::DisableApiTermination)
            .send()
            .await
            .map_err(|e| {
                failed(
                    &format!("DescribeInstanceAttribute disableApiTermination of {instance_id}"),
                    e,
                )
            })?;
        Ok(Some(InstanceFacts {
            id: instance_id.to_string(),
            vpc_id: instance.vpc_id().map(str::to_string),
            state,
            tags: tag_map(instance.tags()),
            interfaces,
            volumes,
            termination_protection: protection
                .disable_api_termination()
                .and_then(|v| v.value())
                .unwrap_or(false),
        }))
    }

    async fn quarantine_group(
        &self,
        vpc_id: &str,
        name: &str,
    ) -> anyhow::Result<Option<GroupFacts>> {
        let mut pages = self
            .client
            .describe_security_groups()
            .filters(filter("vpc-id", vpc_id))
            .filters(filter("group-name", name))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| failed(&format!("DescribeSecurityGroups {name} in {vpc_id}"), e))?;
            for g in page.security_groups() {
                let managed = tag_map(g.tags())
                    .get(tags::MANAGED)
                    .is_some_and(|v| v == "true");
                if g.group_name() == Some(name) && g.vpc_id() == Some(vpc_id) && managed {
                    return Ok(Some(GroupFacts {
                        id: g.group_id().unwrap_or_default().to_string(),
                        has_rules: !g.ip_permissions().is_empty()
                            || !g.ip_permissions_egress().is_empty(),
                    }));
                }
                if g.group_name() == Some(name) && !managed {
                    anyhow::bail!(
                        "a security group named {name} exists in {vpc_id} ({}) but is not tagged {}=true; \
                         steward will not use a group it did not create: rename it, or tag it after checking it has no rules",
                        g.group_id().unwrap_or_default(),
                        tags::MANAGED
                    );
                }
            }
        }
        Ok(None)
    }

    async fn create_quarantine_group(&self, vpc_id: &str, name: &str) -> anyhow::Result<String> {
        let out = self
            .client
            .create_security_group()
            .group_name(name)
            .vpc_id(vpc_id)
            .description("steward quarantine: no inbound and no outbound rules")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .tags(Tag::builder().key(tags::MANAGED).value("true").build())
                    .tags(Tag::builder().key("Name").value(name).build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| failed(&format!("CreateSecurityGroup {name} in {vpc_id}"), e))?;
        let id = out
            .group_id()
            .ok_or_else(|| anyhow::anyhow!("CreateSecurityGroup returned no group id"))?
            .to_string();
        self.remove_all_rules(&id).await?;
        Ok(id)
    }

    async fn open_group(&self, vpc_id: &str, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self.quarantine_group(vpc_id, name).await?.map(|g| g.id))
    }

    async fn create_open_group(&self, vpc_id: &str, name: &str) -> anyhow::Result<String> {
        let out = self
            .client
            .create_security_group()
            .group_name(name)
            .vpc_id(vpc_id)
            .description("steward quarantine, first step: allows all traffic so tracked flows become untracked")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .tags(Tag::builder().key(tags::MANAGED).value("true").build())
                    .tags(Tag::builder().key("Name").value(name).build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| failed(&format!("CreateSecurityGroup {name} in {vpc_id}"), e))?;
        let id = out
            .group_id()
            .ok_or_else(|| anyhow::anyhow!("CreateSecurityGroup returned no group id"))?
            .to_string();
        let all = || {
            IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                .build()
        };
        self.client
            .authorize_security_group_ingress()
            .group_id(&id)
            .ip_permissions(all())
            .send()
            .await
            .map_err(|e| failed(&format!("AuthorizeSecurityGroupIngress on {id}"), e))?;
        // A new VPC group already allows all IPv4 egress; replace it with the full rule.
        self.remove_egress(&id).await?;
        self.client
            .authorize_security_group_egress()
            .group_id(&id)
            .ip_permissions(all())
            .send()
            .await
            .map_err(|e| failed(&format!("AuthorizeSecurityGroupEgress on {id}"), e))?;
        Ok(id)
    }

    async fn remove_all_rules(&self, group_id: &str) -> anyhow::Result<()> {
        let out = self
            .client
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
            .map_err(|e| failed(&format!("DescribeSecurityGroups {group_id}"), e))?;
        let Some(group) = out.security_groups().first() else {
            anyhow::bail!("security group {group_id} vanished while steward was preparing it");
        };
        if !group.ip_permissions_egress().is_empty() {
            self.client
                .revoke_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(Some(group.ip_permissions_egress().to_vec()))
                .send()
                .await
                .map_err(|e| failed(&format!("RevokeSecurityGroupEgress on {group_id}"), e))?;
        }
        if !group.ip_permissions().is_empty() {
            self.client
                .revoke_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(Some(group.ip_permissions().to_vec()))
                .send()
                .await
                .map_err(|e| failed(&format!("RevokeSecurityGroupIngress on {group_id}"), e))?;
        }
        Ok(())
    }

    async fn set_interface_groups(
        &self,
        interface_id: &str,
        group_ids: &[String],
    ) -> anyhow::Result<()> {
        self.client
            .modify_network_interface_attribute()
            .network_interface_id(interface_id)
            .set_groups(Some(group_ids.to_vec()))
            .send()
            .await
            .map_err(|e| {
                failed(
                    &format!("ModifyNetworkInterfaceAttribute groups of {interface_id}"),
                    e,
                )
            })?;
        Ok(())
    }

    async fn tag(&self, resource_id: &str, key: &str, value: &str) -> anyhow::Result<()> {
        self.client
            .create_tags()
            .resources(resource_id)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .map_err(|e| failed(&format!("CreateTags {key} on {resource_id}"), e))?;
        Ok(())
    }

    async fn untag(&self, resource_id: &str, key: &str) -> anyhow::Result<()> {
        self.client
            .delete_tags()
            .resources(resource_id)
            .tags(Tag::builder().key(key).build())
            .send()
            .await
            .map_err(|e| failed(&format!("DeleteTags {key} on {resource_id}"), e))?;
        Ok(())
    }

    async fn enable_termination_protection(&self, instance_id: &str) -> anyhow::Result<()> {
        self.client
            .modify_instance_attribute()
            .instance_id(instance_id)
            .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .map_err(|e| {
                failed(
                    &format!("ModifyInstanceAttribute disableApiTermination on {instance_id}"),
                    e,
                )
            })?;
        Ok(())
    }

    async fn snapshot(
        &self,
        volume_id: &str,
        instance_id: &str,
        finding_id: &str,
    ) -> anyhow::Result<String> {
        let out = self
            .client
            .create_snapshot()
            .volume_id(volume_id)
            .description(format!("steward forensic snapshot of {volume_id} ({instance_id}) for GuardDuty finding {finding_id}"))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .tags(Tag::builder().key(tags::FINDING).value(finding_id).build())
                    .tags(Tag::builder().key(tags::MANAGED).value("true").build())
                    .tags(Tag::builder().key("steward:instance").value(instance_id).build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| failed(&format!("CreateSnapshot of {volume_id}"), e))?;
        Ok(out.snapshot_id().unwrap_or_default().to_string())
    }

    async fn forensic_snapshots(
        &self,
        volume_ids: &[String],
    ) -> anyhow::Result<Vec<ForensicSnapshot>> {
        let mut found = Vec::new();
        if volume_ids.is_empty() {
            return Ok(found);
        }
        let mut pages = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .filters(
                Filter::builder()
                    .name("tag-key")
                    .values(tags::FINDING)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("volume-id")
                    .set_values(Some(volume_ids.to_vec()))
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| failed("DescribeSnapshots of the forensic snapshots", e))?;
            for s in page.snapshots() {
                let t = tag_map(s.tags());
                let (Some(volume), Some(finding)) = (s.volume_id(), t.get(tags::FINDING)) else {
                    continue;
                };
                if volume_ids.iter().any(|v| v == volume) {
                    found.push(ForensicSnapshot {
                        snapshot_id: s.snapshot_id().unwrap_or_default().to_string(),
                        volume_id: volume.to_string(),
                        finding_id: finding.clone(),
                    });
                }
            }
        }
        Ok(found)
    }
}
