//! Secrets Manager secrets: created by `CreateSecret`, tagged with
//! `TagResource`.

use std::collections::BTreeMap;
use std::sync::Arc;

use steward_shared::sdk::sdk_error;

use super::{state, Entry, Scope, TaggedResource};
use crate::model::{IdsAt, ResourceState, ResourceType, TagCalls};

pub const TYPE: ResourceType = ResourceType {
    kind: "secret",
    config_type: "AWS::SecretsManager::Secret",
    label: "secret",
    create_call: "CreateSecret",
    ids: IdsAt::FirstOf(&[
        "/responseElements/aRN",
        "/responseElements/arn",
        "/responseElements/ARN",
        "/requestParameters/name",
    ]),
    tag_calls: TagCalls::SecretsManager,
};

pub const PERMISSIONS: &[&str] = &[
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecrets",
    "secretsmanager:TagResource",
];

pub const ENTRY: Entry = Entry {
    kind: &TYPE,
    build: |scope| Arc::new(Secrets::new(scope)),
    permissions: PERMISSIONS,
};

/// The SDK adapter.
pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
}

impl Secrets {
    pub fn new(scope: &Scope<'_>) -> Secrets {
        Secrets {
            client: aws_sdk_secretsmanager::Client::new(scope.config),
        }
    }
}

#[async_trait::async_trait]
impl TaggedResource for Secrets {
    fn kind(&self) -> &'static ResourceType {
        &TYPE
    }

    async fn read(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        for id in ids {
            match self.client.describe_secret().secret_id(id).send().await {
                Ok(secret) => {
                    if secret.deleted_date().is_some() {
                        continue;
                    }
                    let arn = secret.arn().unwrap_or(id).to_string();
                    out.push(state(
                        &TYPE,
                        &arn,
                        arn.clone(),
                        arn.clone(),
                        secret.tags().iter().map(|t| (t.key(), t.value())),
                    ));
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) => {}
                Err(e) => return Err(sdk_error("secretsmanager:DescribeSecret", e)),
            }
        }
        Ok(out)
    }

    async fn list(&self) -> anyhow::Result<Vec<ResourceState>> {
        let mut out = Vec::new();
        let mut pages = self.client.list_secrets().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("secretsmanager:ListSecrets", e))?;
            for secret in page.secret_list() {
                let Some(arn) = secret.arn() else { continue };
                out.push(state(
                    &TYPE,
                    arn,
                    arn.to_string(),
                    arn.to_string(),
                    secret.tags().iter().map(|t| (t.key(), t.value())),
                ));
            }
        }
        Ok(out)
    }

    async fn add_tags(
        &self,
        resource: &ResourceState,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let mut request = self.client.tag_resource().secret_id(&resource.arn);
        for (k, v) in tags {
            request = request.tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build(),
            );
        }
        request
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:TagResource", e))?;
        Ok(())
    }
}
