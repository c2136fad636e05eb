//! The AWS Config adapter: reports evaluations (`PutEvaluations` in batches
//! of 100 with the event's result token), reads the rule's earlier results,
//! and reads configuration history (oversized items, and the tags a resource
//! had before a tagging call). The evaluations themselves are decided in
//! `plan.rs`.

use std::collections::HashMap;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use steward_shared::sdk::sdk_error;

use crate::events::parse_config_item;
use crate::model::{ConfigItem, Evaluation};

/// The IAM actions this adapter calls.
pub const PERMISSIONS: &[&str] = &[
    "config:PutEvaluations",
    "config:GetComplianceDetailsByConfigRule",
    "config:GetResourceConfigHistory",
];

/// The Config calls the rule needs, for one account and region.
#[async_trait::async_trait]
pub trait ConfigApi: Send + Sync {
    /// Reports evaluations in batches of 100; returns how many Config rejected.
    async fn put_evaluations(
        &self,
        result_token: &str,
        evaluations: &[Evaluation],
    ) -> anyhow::Result<usize>;
    /// (resource type, resource id) of every resource the rule has results for.
    async fn reported_resources(&self, rule_name: &str) -> anyhow::Result<Vec<(String, String)>>;
    /// The latest configuration item of a resource (for oversized notifications).
    async fn latest_item(
        &self,
        resource_type: &str,
        resource_id: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Option<ConfigItem>>;
    /// The tags of the newest configuration item recorded before `before`,
    /// or `None` when Config recorded none.
    async fn tags_before(
        &self,
        resource_type: &str,
        resource_id: &str,
        before: DateTime<Utc>,
    ) -> anyhow::Result<Option<HashMap<String, String>>>;
}

/// The SDK adapter.
pub struct AwsConfig {
    client: aws_sdk_config::Client,
}

impl AwsConfig {
    pub fn new(config: &SdkConfig) -> AwsConfig {
        AwsConfig {
            client: aws_sdk_config::Client::new(config),
        }
    }
}

#[async_trait::async_trait]
impl ConfigApi for AwsConfig {
    async fn put_evaluations(
        &self,
        result_token: &str,
        evaluations: &[Evaluation],
    ) -> anyhow::Result<usize> {
        use aws_sdk_config::types::{ComplianceType, Evaluation as SdkEvaluation};
        let mut failed = 0;
        for batch in evaluations.chunks(100) {
            let mut request = self.client.put_evaluations().result_token(result_token);
            for e in batch {
                request = request.evaluations(
                    SdkEvaluation::builder()
                        .compliance_resource_type(&e.resource_type)
                        .compliance_resource_id(&e.resource_id)
                        .compliance_type(ComplianceType::from(e.verdict.as_str()))
                        .annotation(&e.annotation)
                        .ordering_timestamp(aws_smithy_types::DateTime::from_millis(
                            e.ordering.timestamp_millis(),
                        ))
                        .build()?,
                );
            }
            let output = request
                .send()
                .await
                .map_err(|e| sdk_error("config:PutEvaluations", e))?;
            for f in output.failed_evaluations() {
                tracing::error!(
                    resource_id = f.compliance_resource_id(),
                    resource_type = f.compliance_resource_type(),
                    "Config rejected an evaluation"
                );
            }
            failed += output.failed_evaluations().len();
        }
        Ok(failed)
    }

    async fn reported_resources(&self, rule_name: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .get_compliance_details_by_config_rule()
            .config_rule_name(rule_name)
            .compliance_types(aws_sdk_config::types::ComplianceType::Compliant)
            .compliance_types(aws_sdk_config::types::ComplianceType::NonCompliant)
            .limit(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("config:GetComplianceDetailsByConfigRule", e))?;
            for result in page.evaluation_results() {
                let qualifier = result
                    .evaluation_result_identifier()
                    .and_then(|i| i.evaluation_result_qualifier());
                if let Some(q) = qualifier {
                    if let (Some(t), Some(id)) = (q.resource_type(), q.resource_id()) {
                        out.push((t.to_string(), id.to_string()));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn latest_item(
        &self,
        resource_type: &str,
        resource_id: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Option<ConfigItem>> {
        let result = self
            .client
            .get_resource_config_history()
            .resource_type(aws_sdk_config::types::ResourceType::from(resource_type))
            .resource_id(resource_id)
            .later_time(aws_smithy_types::DateTime::from_millis(
                at.timestamp_millis() + 1000,
            ))
            .limit(1)
            .send()
            .await;
        let output = match result {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_discovered_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(sdk_error("config:GetResourceConfigHistory", e)),
        };
        let Some(item) = output.configuration_items().first() else {
            return Ok(None);
        };
        // Build the same JSON shape the change notification carries, and parse it with the same code.
        let json = serde_json::json!({
            "resourceType": item.resource_type().map(|t| t.as_str()),
            "resourceId": item.resource_id(),
            "ARN": item.arn(),
            "configurationItemStatus": item.configuration_item_status().map(|s| s.as_str()),
            "configurationItemCaptureTime": item
                .configuration_item_capture_time()
                .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            "tags": item.tags(),
        });
        Ok(Some(parse_config_item(&json).map_err(|e| {
            anyhow::anyhow!("GetResourceConfigHistory item: {e}")
        })?))
    }

    async fn tags_before(
        &self,
        resource_type: &str,
        resource_id: &str,
        before: DateTime<Utc>,
    ) -> anyhow::Result<Option<HashMap<String, String>>> {
        let result = self
            .client
            .get_resource_config_history()
            .resource_type(aws_sdk_config::types::ResourceType::from(resource_type))
            .resource_id(resource_id)
            .later_time(aws_smithy_types::DateTime::from_millis(
                before.timestamp_millis() - 1,
            ))
            .limit(1)
            .send()
            .await;
        let output = match result {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_discovered_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(sdk_error("config:GetResourceConfigHistory", e)),
        };
        Ok(output
            .configuration_items()
            .first()
            .map(|item| item.tags().cloned().unwrap_or_default()))
    }
}
