//! GuardDuty itself, behind a narrow trait: the detector of an account and
//! region, `GetFindings` (at most 50 ids a call) and a paginated
//! `ListFindings`. The responder acts on the finding as GuardDuty returns it,
//! never on the event payload, so the SDK finding is turned back into the
//! JSON shape of an EventBridge `detail` and parsed by the same model.

use aws_sdk_guardduty::types::{Condition, FindingCriteria};
use serde_json::{json, Map, Value};
use steward_shared::sdk::sdk_error;

/// The IAM actions this adapter calls (hub account, and member accounts through the member role).
pub const PERMISSIONS: &[&str] = &[
    "guardduty:ListDetectors",
    "guardduty:GetFindings",
    "guardduty:ListFindings",
];

/// GetFindings takes at most this many ids.
pub const GET_BATCH: usize = 50;

/// What the sweep asks `ListFindings` for.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepQuery {
    /// Lowest severity number (the lower bound of `contain_min_band`).
    pub min_severity: f64,
    /// `updatedAt` at or after this epoch millisecond.
    pub updated_since_ms: i64,
}

/// GuardDuty in one account and region.
#[async_trait::async_trait]
pub trait FindingsApi: Send + Sync {
    /// The account's detector in this region, if GuardDuty is on there.
    async fn detector(&self) -> anyhow::Result<Option<String>>;
    /// The findings GuardDuty knows among `ids` (unknown ids are left out),
    /// as `detail` JSON. Calls GetFindings in batches of [`GET_BATCH`].
    async fn get_findings(&self, detector: &str, ids: &[String]) -> anyhow::Result<Vec<Value>>;
    /// Ids of non-archived findings matching the query (every page).
    async fn list_findings(
        &self,
        detector: &str,
        query: &SweepQuery,
    ) -> anyhow::Result<Vec<String>>;
}

/// GuardDuty gave no answer (throttled, a 5xx, a timeout, no connection):
/// worth asking again soon, unlike an answer that refuses or does not parse.
#[derive(Debug)]
pub struct NoAnswer(pub String);

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoAnswer {}

/// The error of a GuardDuty call: [`NoAnswer`] when AWS gave none.
fn call_error<E>(
    operation: &str,
    e: aws_sdk_guardduty::error::SdkError<E, aws_sdk_guardduty::config::http::HttpResponse>,
) -> anyhow::Error
where
    E: aws_sdk_guardduty::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if steward_shared::sdk::is_no_answer(&e) {
        anyhow::Error::new(NoAnswer(steward_shared::sdk::describe(operation, &e)))
    } else {
        sdk_error(operation, e)
    }
}

/// The SDK implementation.
pub struct AwsGuardDuty {
    client: aws_sdk_guardduty::Client,
}

impl AwsGuardDuty {
    pub fn new(config: &aws_config::SdkConfig) -> AwsGuardDuty {
        AwsGuardDuty {
            client: aws_sdk_guardduty::Client::new(config),
        }
    }
}

#[async_trait::async_trait]
impl FindingsApi for AwsGuardDuty {
    async fn detector(&self) -> anyhow::Result<Option<String>> {
        let mut pages = self.client.list_detectors().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_error("ListDetectors", e))?;
            if let Some(id) = page.detector_ids().first() {
                return Ok(Some(id.clone()));
            }
        }
        Ok(None)
    }

    async fn get_findings(&self, detector: &str, ids: &[String]) -> anyhow::Result<Vec<Value>> {
        let mut found = Vec::new();
        for batch in ids.chunks(GET_BATCH) {
            let out = self
                .client
                .get_findings()
                .detector_id(detector)
                .set_finding_ids(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| call_error("GetFindings", e))?;
            found.extend(out.findings().iter().map(finding_json));
        }
        Ok(found)
    }

    async fn list_findings(
        &self,
        detector: &str,
        query: &SweepQuery,
    ) -> anyhow::Result<Vec<String>> {
        let criteria = FindingCriteria::builder()
            .criterion(
                "severity",
                Condition::builder()
                    .greater_than_or_equal(query.min_severity.floor() as i64)
                    .build(),
            )
            .criterion(
                "service.archived",
                Condition::builder().equals("false").build(),
            )
            .criterion(
                "updatedAt",
                Condition::builder()
                    .greater_than_or_equal(query.updated_since_ms)
                    .build(),
            )
            .build();
        let mut pages = self
            .client
            .list_findings()
            .detector_id(detector)
            .finding_criteria(criteria)
            .max_results(50)
            .into_paginator()
            .send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("ListFindings", e))?;
            ids.extend(page.finding_ids().iter().cloned());
        }
        Ok(ids)
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        map.insert(key.into(), json!(v));
    }
}

fn tags(tags: &[aws_sdk_guardduty::types::Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"key": t.key().unwrap_or_default(), "value": t.value().unwrap_or_default()}))
            .collect(),
    )
}

/// The fields steward decides on, from GuardDuty's own finding, in the
/// EventBridge `detail` shape.
pub fn finding_json(f: &aws_sdk_guardduty::types::Finding) -> Value {
    let mut d = Map::new();
    put(&mut d, "id", f.id());
    put(&mut d, "type", f.r#type());
    put(&mut d, "accountId", f.account_id());
    put(&mut d, "region", f.region());
    put(&mut d, "arn", f.arn());
    put(&mut d, "partition", f.partition());
    put(&mut d, "title", f.title());
    put(&mut d, "description", f.description());
    put(&mut d, "createdAt", f.created_at());
    put(&mut d, "updatedAt", f.updated_at());
    if let Some(s) = f.severity() {
        d.insert("severity".into(), json!(s));
    }
    let mut resource = Map::new();
    if let Some(r) = f.resource() {
        put(&mut resource, "resourceType", r.resource_type());
        if let Some(i) = r.instance_details() {
            let mut details = Map::new();
            put(&mut details, "instanceId", i.instance_id());
            put(&mut details, "instanceState", i.instance_state());
            details.insert("tags".into(), tags(i.tags()));
            resource.insert("instanceDetails".into(), Value::Object(details));
        }
        if let Some(k) = r.access_key_details() {
            let mut details = Map::new();
            put(&mut details, "accessKeyId", k.access_key_id());
            put(&mut details, "userName", k.user_name());
            put(&mut details, "userType", k.user_type());
            put(&mut details, "principalId", k.principal_id());
            resource.insert("accessKeyDetails".into(), Value::Object(details));
        }
        let buckets: Vec<Value> = r
            .s3_bucket_details()
            .iter()
            .map(|b| json!({"name": b.name(), "arn": b.arn(), "tags": tags(b.tags())}))
            .collect();
        if !buckets.is_empty() {
            resource.insert("s3BucketDetails".into(), Value::Array(buckets));
        }
    }
    d.insert("resource".into(), Value::Object(resource));
    let mut service = Map::new();
    if let Some(s) = f.service() {
        service.insert("archived".into(), json!(s.archived().unwrap_or(false)));
        if let Some(c) = s.count() {
            service.insert("count".into(), json!(c.max(0)));
        }
        put(&mut service, "eventFirstSeen", s.event_first_seen());
        put(&mut service, "eventLastSeen", s.event_last_seen());
        if let Some(info) = s.additional_info() {
            service.insert(
                "additionalInfo".into(),
                json!({"value": info.value(), "type": info.r#type(), "sample": info_says_sample(info.value())}),
            );
        }
    }
    d.insert("service".into(), Value::Object(service));
    Value::Object(d)
}

/// GetFindings marks a sample in `service.additionalInfo.value` (a JSON string).
fn info_says_sample(value: Option<&str>) -> bool {
    value
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .is_some_and(|v| v.get("sample").and_then(Value::as_bool) == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_mark_is_read_from_the_additional_info_json() {
        assert!(info_says_sample(Some("{\"sample\":true}")));
        assert!(!info_says_sample(Some("{\"sample\":false}")));
        assert!(!info_says_sample(Some("not json")));
        assert!(!info_says_sample(None));
    }
}
