//! AWS Config custom-rule evaluations: the pure mapping from configuration
//! items and resource listings to evaluations, and the adapter that reports
//! them (`PutEvaluations` in batches of 100 with the event's result token),
//! reads earlier results and fetches oversized items.

use std::collections::BTreeSet;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};

use crate::decide::{evaluate, Requirements};
use crate::events::{parse_config_item, ConfigItem};
use crate::resources::ResourceState;

/// The compliance types the rule reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Compliant,
    NonCompliant,
    NotApplicable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compliant => "COMPLIANT",
            Verdict::NonCompliant => "NON_COMPLIANT",
            Verdict::NotApplicable => "NOT_APPLICABLE",
        }
    }
}

/// One evaluation to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub resource_type: String,
    pub resource_id: String,
    pub verdict: Verdict,
    pub annotation: String,
    pub ordering: DateTime<Utc>,
}

/// Item statuses meaning the resource is gone.
const DELETED: [&str; 3] = [
    "ResourceDeleted",
    "ResourceDeletedNotRecorded",
    "ResourceNotRecorded",
];

/// Evaluates one configuration item (change-triggered and oversized paths).
pub fn evaluate_item(
    item: &ConfigItem,
    event_left_scope: bool,
    requirements: &Requirements,
) -> Evaluation {
    let (verdict, annotation) = if event_left_scope {
        (
            Verdict::NotApplicable,
            "the resource left the rule's scope".to_string(),
        )
    } else if DELETED.contains(&item.status.as_str()) {
        (
            Verdict::NotApplicable,
            format!("the resource is deleted ({})", item.status),
        )
    } else {
        let compliance = evaluate(&item.tags, requirements);
        let verdict = if compliance.is_compliant() {
            Verdict::Compliant
        } else {
            Verdict::NonCompliant
        };
        (verdict, compliance.annotation())
    };
    Evaluation {
        resource_type: item.resource_type.clone(),
        resource_id: item.resource_id.clone(),
        verdict,
        annotation,
        ordering: item.capture_time,
    }
}

/// Periodic evaluation: every listed resource, plus `NOT_APPLICABLE` for the
/// resources the rule reported before that are no longer present.
pub fn periodic_evaluations(
    current: &[ResourceState],
    previously_reported: &[(String, String)],
    requirements: &Requirements,
    time: DateTime<Utc>,
) -> Vec<Evaluation> {
    let mut out = Vec::new();
    let mut present = BTreeSet::new();
    for resource in current {
        let compliance = evaluate(&resource.tags, requirements);
        present.insert((
            resource.r.kind.config_type().to_string(),
            resource.config_id.clone(),
        ));
        out.push(Evaluation {
            resource_type: resource.r.kind.config_type().to_string(),
            resource_id: resource.config_id.clone(),
            verdict: if compliance.is_compliant() {
                Verdict::Compliant
            } else {
                Verdict::NonCompliant
            },
            annotation: compliance.annotation(),
            ordering: time,
        });
    }
    let mut gone = BTreeSet::new();
    for key in previously_reported {
        if !present.contains(key) && gone.insert(key.clone()) {
            out.push(Evaluation {
                resource_type: key.0.clone(),
                resource_id: key.1.clone(),
                verdict: Verdict::NotApplicable,
                annotation: "the resource no longer exists".to_string(),
                ordering: time,
            });
        }
    }
    out
}

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

fn sdk_err<E, R>(
    call: &str,
    e: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    anyhow::anyhow!(
        "{call} failed: {}",
        aws_smithy_types::error::display::DisplayErrorContext(&e)
    )
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
                .map_err(|e| sdk_err("config:PutEvaluations", e))?;
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
            let page = page.map_err(|e| sdk_err("config:GetComplianceDetailsByConfigRule", e))?;
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
            Err(e) => return Err(sdk_err("config:GetResourceConfigHistory", e)),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{ResourceKind, ResourceRef};
    use std::collections::HashMap;
    use steward_shared::Policy;

    fn item(status: &str, tags: &[(&str, &str)]) -> ConfigItem {
        ConfigItem {
            resource_type: "AWS::EC2::Instance".into(),
            resource_id: "i-1".into(),
            arn: None,
            status: status.into(),
            capture_time: "2026-11-20T10:00:00Z".parse().unwrap(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn req() -> Requirements {
        Requirements::from_policy(&Policy::default(), &Default::default()).unwrap()
    }

    #[test]
    fn item_verdicts() {
        let ok = item(
            "OK",
            &[("project", "a"), ("env", "dev"), ("cost_center", "1")],
        );
        assert_eq!(
            evaluate_item(&ok, false, &req()).verdict,
            Verdict::Compliant
        );
        assert_eq!(
            evaluate_item(&ok, true, &req()).verdict,
            Verdict::NotApplicable
        );
        assert_eq!(
            evaluate_item(&item("ResourceDeleted", &[]), false, &req()).verdict,
            Verdict::NotApplicable
        );
        let bad = evaluate_item(&item("OK", &[("env", "qa")]), false, &req());
        assert_eq!(bad.verdict, Verdict::NonCompliant);
        assert_eq!(bad.ordering, ok.capture_time);
    }

    #[test]
    fn periodic_reports_vanished_resources_not_applicable() {
        let current = vec![ResourceState {
            r: ResourceRef {
                kind: ResourceKind::Ec2Instance,
                id: "i-1".into(),
            },
            arn: "arn".into(),
            config_id: "i-1".into(),
            tags: HashMap::new(),
        }];
        let previous = vec![
            ("AWS::EC2::Instance".to_string(), "i-1".to_string()),
            ("AWS::EC2::Instance".to_string(), "i-gone".to_string()),
        ];
        let evals = periodic_evaluations(&current, &previous, &req(), Utc::now());
        assert_eq!(evals.len(), 2);
        assert_eq!(evals[0].verdict, Verdict::NonCompliant);
        assert_eq!(
            (evals[1].resource_id.as_str(), evals[1].verdict),
            ("i-gone", Verdict::NotApplicable)
        );
    }
}
