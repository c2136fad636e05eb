//! The AWS Config adapter (the port `ConfigApi` and its SDK implementation),
//! reached in the resource's account through the member role:
//!
//! - a resource's tags, from its latest configuration item
//!   (`GetResourceConfigHistory`, limit 1): Config records the tags of every
//!   resource type it evaluates, so one call covers them all without a
//!   per-service tagging client;
//! - the digest's queries: the rules with non-compliant resources
//!   (`DescribeComplianceByConfigRule`) and those resources
//!   (`GetComplianceDetailsByConfigRule`), both paginated.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_config::types::{ComplianceType, ResourceType};
use steward_shared::aws::AwsContext;
use steward_shared::sdk::sdk_error;

/// The IAM actions this adapter calls (in the hub account and, through the
/// member role, in member accounts).
pub const PERMISSIONS: &[&str] = &[
    "config:GetResourceConfigHistory",
    "config:DescribeComplianceByConfigRule",
    "config:GetComplianceDetailsByConfigRule",
];

/// What the notifier reads from AWS Config in one account and region.
#[async_trait::async_trait]
pub trait ConfigApi: Send + Sync {
    /// The tags of the resource's latest configuration item; `None` when Config has no item.
    async fn resource_tags(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> anyhow::Result<Option<BTreeMap<String, String>>>;
    /// The names of the rules that have at least one non-compliant resource.
    async fn noncompliant_rules(&self) -> anyhow::Result<Vec<String>>;
    /// The non-compliant resources of a rule, as `TYPE ID`.
    async fn noncompliant_resources(&self, rule: &str) -> anyhow::Result<Vec<String>>;
}

/// Builds the adapter for an account and region (the member role outside the hub account).
#[async_trait::async_trait]
pub trait Apis: Send + Sync {
    async fn config(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn ConfigApi>>;
}

/// The SDK adapters, reached through the shared AWS context.
pub struct AwsConfigApis {
    aws: AwsContext,
}

impl AwsConfigApis {
    pub fn new(aws: AwsContext) -> AwsConfigApis {
        AwsConfigApis { aws }
    }
}

#[async_trait::async_trait]
impl Apis for AwsConfigApis {
    async fn config(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> anyhow::Result<Arc<dyn ConfigApi>> {
        let config = self.aws.config_for(account, region, event_id).await?;
        Ok(Arc::new(AwsConfig {
            client: aws_sdk_config::Client::new(&config),
        }))
    }
}

/// AWS Config through the SDK.
pub struct AwsConfig {
    client: aws_sdk_config::Client,
}

#[async_trait::async_trait]
impl ConfigApi for AwsConfig {
    async fn resource_tags(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> anyhow::Result<Option<BTreeMap<String, String>>> {
        let out = self
            .client
            .get_resource_config_history()
            .resource_type(ResourceType::from(resource_type))
            .resource_id(resource_id)
            .limit(1)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_discovered_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(sdk_error("GetResourceConfigHistory", e)),
        };
        Ok(out.configuration_items().first().map(|item| {
            item.tags()
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<BTreeMap<_, _>>()
                })
                .unwrap_or_default()
        }))
    }

    async fn noncompliant_rules(&self) -> anyhow::Result<Vec<String>> {
        let mut rules = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_compliance_by_config_rule()
                .compliance_types(ComplianceType::NonCompliant)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("DescribeComplianceByConfigRule", e))?;
            for c in out.compliance_by_config_rules() {
                let failing = c
                    .compliance()
                    .and_then(|c| c.compliance_type())
                    .is_some_and(|t| *t == ComplianceType::NonCompliant);
                if let (true, Some(name)) = (failing, c.config_rule_name()) {
                    rules.push(name.to_string());
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(rules)
    }

    async fn noncompliant_resources(&self, rule: &str) -> anyhow::Result<Vec<String>> {
        let mut resources = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_compliance_details_by_config_rule()
                .config_rule_name(rule)
                .compliance_types(ComplianceType::NonCompliant)
                .limit(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("GetComplianceDetailsByConfigRule", e))?;
            for r in out.evaluation_results() {
                if let Some(q) = r
                    .evaluation_result_identifier()
                    .and_then(|i| i.evaluation_result_qualifier())
                {
                    resources.push(format!(
                        "{} {}",
                        q.resource_type().unwrap_or("resource"),
                        q.resource_id().unwrap_or("(unknown id)")
                    ));
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(resources)
    }
}
