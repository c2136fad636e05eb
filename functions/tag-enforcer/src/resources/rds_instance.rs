//! RDS DB instances: created by `CreateDBInstance`, tagged with
//! `AddTagsToResource` on the instance ARN.

use std::collections::BTreeMap;
use std::sync::Arc;

use steward_shared::sdk::sdk_error;

use super::{state, Entry, Scope, TaggedResource};
use crate::model::{IdsAt, ResourceState, ResourceType, TagCalls};

pub const TYPE: ResourceType = ResourceType {
    kind: "rds-instance",
    config_type: "AWS::RDS::DBInstance",
    label: "RDS DB instance",
    create_call: "CreateDBInstance",
    ids: IdsAt::FirstOf(&[
        "/responseElements/dBInstanceIdentifier",
        "/requestParameters/dBInstanceIdentifier",
    ]),
    tag_calls: TagCalls::Rds {
        arn_segment: ":db:",
    },
};

pub const PERMISSIONS: &[&str] = &["rds:DescribeDBInstances", "rds:AddTagsToResource"];

pub const ENTRY: Entry = Entry {
    kind: &TYPE,
    build: |scope| Arc::new(RdsInstances::new(scope)),
    permissions: PERMISSIONS,
};

/// The SDK adapter.
pub struct RdsInstances {
    client: aws_sdk_rds::Client,
}

impl RdsInstances {
    pub fn new(scope: &Scope<'_>) -> RdsInstances {
        RdsInstances {
            client: aws_sdk_rds::Client::new(scope.config),
        }
    }

    async fn describe(&self, id: Option<&str>) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_db_instances()
            .set_db_instance_identifier(id.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
                {
                    return Ok(out)
                }
                Err(e) => return Err(sdk_error("rds:DescribeDBInstances", e)),
            };
            for db in page.db_instances() {
                let (Some(name), Some(arn)) = (db.db_instance_identifier(), db.db_instance_arn())
                else {
                    continue;
                };
                out.push(state(
                    &TYPE,
                    name,
                    arn.to_string(),
                    db.dbi_resource_id().unwrap_or(name).to_string(),
                    db.tag_list().iter().map(|t| (t.key(), t.value())),
                ));
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl TaggedResource for RdsInstances {
    fn kind(&self) -> &'static ResourceType {
        &TYPE
    }

    async fn read(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.describe(Some(id)).await?);
        }
        Ok(out)
    }

    async fn list(&self) -> anyhow::Result<Vec<ResourceState>> {
        self.describe(None).await
    }

    async fn add_tags(
        &self,
        resource: &ResourceState,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        add_tags_to_resource(&self.client, &resource.arn, tags).await
    }
}

/// RDS `AddTagsToResource` on an ARN (instances and clusters).
pub(crate) async fn add_tags_to_resource(
    client: &aws_sdk_rds::Client,
    arn: &str,
    tags: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let mut request = client.add_tags_to_resource().resource_name(arn);
    for (k, v) in tags {
        request = request.tags(aws_sdk_rds::types::Tag::builder().key(k).value(v).build());
    }
    request
        .send()
        .await
        .map_err(|e| sdk_error("rds:AddTagsToResource", e))?;
    Ok(())
}
