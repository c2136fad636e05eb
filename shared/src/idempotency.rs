//! At-most-once records (SPEC section 5): notifications and non-repeatable
//! actions are claimed in the DynamoDB table of `STEWARD_IDEMPOTENCY_TABLE`
//! before they run, marked done after they succeed, and released when they
//! fail, so a retry does the work again. Expiry is lazy in DynamoDB, so
//! `expires_at` is compared in the write condition itself.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This attempt owns the work; call `complete` or `release`.
    Acquired,
    /// The work was done already (its recorded result, if any).
    Done(Option<String>),
    /// Another attempt is doing it now (or crashed less than the in-progress time ago).
    InProgress,
}

/// A store of at-most-once records.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for `in_progress` (after that a crashed attempt's claim lapses).
    async fn claim(&self, key: &str, in_progress: Duration) -> anyhow::Result<Claim>;
    /// Marks `key` done, kept for `keep`, with an optional result to return to later claims.
    async fn complete(&self, key: &str, keep: Duration, result: Option<&str>)
        -> anyhow::Result<()>;
    /// Drops this attempt's claim so a retry does the work.
    async fn release(&self, key: &str) -> anyhow::Result<()>;
}

/// The DynamoDB table: partition key `pk` (string), expiry attribute `expires_at` (epoch seconds).
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> DynamoStore {
        DynamoStore { client, table }
    }
}

fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

fn dynamo_error<E, R>(
    what: &str,
    table: &str,
    e: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    anyhow::anyhow!(
        "idempotency table {table}: {what} failed: {}; check that the table exists with partition key `pk` (string) and the function may read and write it",
        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
    )
}

#[async_trait::async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim(&self, key: &str, in_progress: Duration) -> anyhow::Result<Claim> {
        let now = now_epoch();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("status", AttributeValue::S("IN_PROGRESS".into()))
            .item(
                "expires_at",
                AttributeValue::N((now + in_progress.as_secs() as i64).to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", AttributeValue::S(key.to_string()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| dynamo_error("GetItem", &self.table, e))?;
                let item = item.item().cloned().unwrap_or_default();
                let status = item.get("status").and_then(|v| v.as_s().ok()).cloned();
                let stored = item.get("result").and_then(|v| v.as_s().ok()).cloned();
                Ok(match status.as_deref() {
                    Some("DONE") => Claim::Done(stored),
                    _ => Claim::InProgress,
                })
            }
            Err(e) => Err(dynamo_error("PutItem", &self.table, e)),
        }
    }

    async fn complete(
        &self,
        key: &str,
        keep: Duration,
        result: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("status", AttributeValue::S("DONE".into()))
            .item(
                "expires_at",
                AttributeValue::N((now_epoch() + keep.as_secs() as i64).to_string()),
            );
        if let Some(r) = result {
            request = request.item("result", AttributeValue::S(r.to_string()));
        }
        request
            .send()
            .await
            .map_err(|e| dynamo_error("PutItem", &self.table, e))?;
        Ok(())
    }

    async fn release(&self, key: &str) -> anyhow::Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .condition_expression("#s = :in_progress")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(dynamo_error("DeleteItem", &self.table, e)),
        }
    }
}

/// Creates the table the way the contract describes (local runs and tests).
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await;
    if let Err(e) = created {
        if e.as_service_error()
            .is_some_and(|s| s.is_resource_in_use_exception())
        {
            return Ok(());
        }
        return Err(dynamo_error("CreateTable", table, e));
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()?,
        )
        .send()
        .await
        .map_err(|e| dynamo_error("UpdateTimeToLive", table, e))?;
    Ok(())
}
