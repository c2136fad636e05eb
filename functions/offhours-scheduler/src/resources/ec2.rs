//! EC2 instances: stopped and started in batches (many ids per call, see
//! [`super::batch`]: a batch rejected for one id is split until that id is
//! isolated, a throttled batch is retried whole). Instances in an Auto Scaling group are left to their group.
//! Hibernation when planned, falling back to a plain stop when AWS refuses.

/// The IAM actions this file calls.
pub const PERMISSIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:StopInstances",
    "ec2:StartInstances",
    // Starting an instance whose EBS volumes use a customer managed key:
    // EC2 creates a KMS grant with the caller's rights.
    "kms:CreateGrant",
    "ec2:CreateTags",
];

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Filter, InstanceStateName};
use steward_shared::aws::partition_of;
use steward_shared::sdk::{describe_brief, sdk_error_brief};

use super::batch::{isolate, BatchFailure};
use super::{ScheduledResource, StopItem, Target};
use crate::model::{ItemResult, Kind, Power, Resource};

/// The tag AWS puts on instances launched by an Auto Scaling group.
pub const ASG_TAG: &str = "aws:autoscaling:groupName";

pub struct Ec2Instances {
    client: aws_sdk_ec2::Client,
    arn_prefix: String,
}

impl Ec2Instances {
    pub fn new(config: &SdkConfig, target: &Target) -> Ec2Instances {
        Ec2Instances {
            client: crate::calls::counted_client!(aws_sdk_ec2, config),
            arn_prefix: format!(
                "arn:{}:ec2:{}:{}:instance/",
                partition_of(&target.region),
                target.region,
                target.account
            ),
        }
    }

    async fn stop_ids(&self, ids: Vec<String>, hibernate: bool) -> Result<(), BatchFailure> {
        self.client
            .stop_instances()
            .set_instance_ids(Some(ids))
            .set_hibernate(hibernate.then_some(true))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| BatchFailure::from_sdk("StopInstances", &e))
    }
}

#[async_trait::async_trait]
impl ScheduledResource for Ec2Instances {
    fn kind(&self) -> Kind {
        Kind::Ec2Instance
    }

    async fn list(&self) -> anyhow::Result<Vec<Resource>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .set_values(Some(
                        ["pending", "running", "stopping", "stopped"]
                            .map(String::from)
                            .to_vec(),
                    ))
                    .build(),
            )
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error_brief("DescribeInstances", e))?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(id) = instance.instance_id() else {
                    continue;
                };
                let tags = steward_shared::tags::to_map(
                    instance.tags().iter().map(|t| (t.key(), t.value())),
                );
                let power = match instance.state().and_then(|s| s.name()) {
                    Some(InstanceStateName::Running) => Power::Running,
                    Some(InstanceStateName::Stopped) => Power::Stopped,
                    Some(other) => Power::Busy(other.as_str().to_string()),
                    None => Power::Busy("unknown".into()),
                };
                let mut r = Resource::new(
                    Kind::Ec2Instance,
                    id,
                    format!("{}{id}", self.arn_prefix),
                    tags,
                    power,
                );
                if let Some(group) = r.tags.get(ASG_TAG) {
                    r.owner_skip = Some(format!(
                        "belongs to Auto Scaling group {group}; the group is scheduled instead"
                    ));
                }
                r.changed_at = last_user_change(
                    instance.state_transition_reason(),
                    instance
                        .launch_time()
                        .filter(|_| r.power == Power::Running)
                        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
                );
                r.hibernation_configured = instance
                    .hibernation_options()
                    .and_then(|h| h.configured())
                    .unwrap_or(false);
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn stop(&self, batch: &[StopItem<'_>]) -> Vec<ItemResult> {
        let plain: Vec<String> = batch
            .iter()
            .filter(|i| !i.hibernate)
            .map(|i| i.resource.id.clone())
            .collect();
        let hibernate: Vec<String> = batch
            .iter()
            .filter(|i| i.hibernate)
            .map(|i| i.resource.id.clone())
            .collect();
        let mut results = isolate(plain, |ids| self.stop_ids(ids, false)).await;
        for r in isolate(hibernate, |ids| self.stop_ids(ids, true)).await {
            match r.result {
                Ok(()) => results.push(r),
                Err(e) => {
                    // AWS refuses hibernation when the instance cannot (yet) hibernate: stop it plainly.
                    tracing::warn!(instance = %r.id, error = %e, "hibernation refused; stopping without hibernation");
                    results.push(match self.stop_ids(vec![r.id.clone()], false).await {
                        Ok(()) => ItemResult::ok(&r.id),
                        Err(e2) => ItemResult::failed(&r.id, format!("{e}; then {}", e2.message)),
                    });
                }
            }
        }
        results
    }

    async fn start(&self, batch: &[&Resource]) -> Vec<ItemResult> {
        let ids = batch.iter().map(|r| r.id.clone()).collect();
        isolate(ids, |ids| async move {
            self.client
                .start_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| BatchFailure::from_sdk("StartInstances", &e))
        })
        .await
    }

    async fn tag(&self, resource: &Resource, key: &str, value: &str) -> Result<(), String> {
        self.client
            .create_tags()
            .resources(&resource.id)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe_brief("CreateTags", &e))
    }
}

/// The last user change AWS reports for an instance: the time in a
/// `User initiated (YYYY-MM-DD HH:MM:SS GMT)` state-transition reason (a
/// stop or start by an API call or the console) and, for a running instance,
/// its `LaunchTime` (which every start resets), whichever is later.
pub fn last_user_change(
    reason: Option<&str>,
    launched: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let from_reason = reason.and_then(|r| {
        let inner = r
            .trim()
            .strip_prefix("User initiated (")?
            .strip_suffix(')')?;
        let stamp = inner
            .trim()
            .trim_end_matches("GMT")
            .trim_end_matches("UTC")
            .trim();
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|t| t.and_utc())
    });
    from_reason.max(launched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_user_change_is_read_from_aws_evidence_only() {
        use chrono::TimeZone;
        let at = |h, m| chrono::Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0).unwrap();
        assert_eq!(
            last_user_change(Some("User initiated (2026-11-20 19:07:00 GMT)"), None),
            Some(at(19, 7))
        );
        assert_eq!(
            last_user_change(
                Some("User initiated (2026-11-20 19:07:00 UTC)"),
                Some(at(7, 0))
            ),
            Some(at(19, 7))
        );
        assert_eq!(last_user_change(Some(""), Some(at(19, 9))), Some(at(19, 9)));
        for odd in [
            "Server.ScheduledStop",
            "User initiated",
            "User initiated (yesterday)",
            "User initiated (2026-13-40 99:99:99 GMT)",
            "User initiated (\u{0}",
        ] {
            assert_eq!(last_user_change(Some(odd), None), None, "{odd}");
        }
    }
}
