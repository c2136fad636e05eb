//! At-most-once records (SPEC section 5). Notifications and non-repeatable
//! actions are claimed in the DynamoDB table of `STEWARD_IDEMPOTENCY_TABLE`
//! before they run. A claim has an owner token and a short lease that the
//! attempt renews while it works, so a crashed attempt's claim lapses within
//! about a minute and the retry takes it over. A live claim held by another
//! attempt means "retry later", never "already done". `complete` and
//! `release` are conditional on the owner, so a late attempt cannot mark done
//! (or drop) work that another attempt took over.
//!
//! The key format and the table schema live here and nowhere else. Expiry is
//! lazy in DynamoDB, so `expires_at` is compared in the write condition itself.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use crate::sdk::{describe, sdk_error};

/// How long a claim lives unless its owner renews it.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often a working attempt renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);
/// The most keys one `BatchGetItem` may ask for.
const BATCH_GET_MAX: usize = 100;
/// How often keys DynamoDB left unprocessed are asked again before giving up.
const BATCH_GET_RETRIES: u32 = 5;

/// A claim this attempt holds: the key and the owner token that proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub owner: String,
}

impl Lease {
    /// A lease on `key` with a fresh owner token.
    pub fn new_owner(key: &str) -> Lease {
        Lease {
            key: key.to_string(),
            owner: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This attempt owns the work; renew while working, then `complete` or `release`.
    Acquired(Lease),
    /// The work was done already (its recorded result, if any).
    Done(Option<String>),
    /// Another live attempt holds the claim until this epoch second: retry later.
    HeldByOther { until: i64 },
}

/// A record kept under a key: its state and, for done work, the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub done: bool,
    pub result: Option<String>,
    pub expires_at: i64,
}

/// Builds the table keys; functions never format keys themselves.
pub mod keys {
    /// A notification, once per function and de-duplication key.
    pub fn notification(function_name: &str, dedupe_key: &str) -> String {
        format!("notify#{function_name}#{dedupe_key}")
    }

    /// A non-repeatable action, once per function and action key.
    pub fn action(function_name: &str, action_key: &str) -> String {
        format!("action#{function_name}#{action_key}")
    }

    /// A state record a function keeps between invocations (for example a counter or a run budget).
    pub fn state(function_name: &str, name: &str) -> String {
        format!("state#{function_name}#{name}")
    }
}

/// A store of at-most-once records.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` with a lease of `lease`; a lapsed claim or an expired record is taken over.
    async fn claim(&self, key: &str, lease: Duration) -> anyhow::Result<Claim>;
    /// Extends this attempt's lease; fails when another attempt took the claim over.
    async fn renew(&self, lease: &Lease, by: Duration) -> anyhow::Result<()>;
    /// Marks the work done, kept for `keep`, with an optional result for later claims.
    /// Fails when this attempt no longer owns the claim.
    async fn complete(
        &self,
        lease: &Lease,
        keep: Duration,
        result: Option<&str>,
    ) -> anyhow::Result<()>;
    /// Drops this attempt's claim so a retry does the work (no-op when not the owner).
    async fn release(&self, lease: &Lease) -> anyhow::Result<()>;
    /// Reads a record that has not expired.
    async fn get(&self, key: &str) -> anyhow::Result<Option<Record>>;
    /// Reads many records at once, in the order of `keys` (`None` where a
    /// record is missing or expired). The DynamoDB store reads up to 100
    /// keys per `BatchGetItem`; a store without a batch read reads one by one.
    async fn get_many(&self, keys: &[String]) -> anyhow::Result<Vec<Option<Record>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }
    /// Writes a state value (a `keys::state` key, never a claim) kept for
    /// `keep`, replacing the previous value; `get` reads it back as `result`.
    async fn put_state(&self, key: &str, value: &str, keep: Duration) -> anyhow::Result<()> {
        let _ = (key, value, keep);
        anyhow::bail!("this idempotency store keeps no state values")
    }
    /// Reserves `n` units of a budget of `limit` kept under `key` (a
    /// `keys::state` key), atomically: `true` when granted (the units are
    /// taken), `false` when taking them would pass the limit (nothing is
    /// taken). The record lives for `keep` after its first reservation.
    async fn reserve(&self, key: &str, n: u64, limit: u64, keep: Duration) -> anyhow::Result<bool> {
        let _ = (key, n, limit, keep);
        anyhow::bail!("this idempotency store keeps no budgets")
    }
    /// Gives back `n` units reserved with [`reserve`](Self::reserve) under
    /// `key` (work that did not happen), atomically and only while at least
    /// `n` are reserved: `true` when given back, `false` when the budget
    /// holds fewer (nothing changes).
    async fn give_back(&self, key: &str, n: u64) -> anyhow::Result<bool> {
        let _ = (key, n);
        anyhow::bail!("this idempotency store keeps no budgets")
    }
    /// Adds `members` to the set of strings kept under `key` (a
    /// `keys::state` key), atomically; adding a member twice is harmless.
    /// Returns the set as it was just before this addition, so concurrent
    /// callers each see a different "before" and exactly one of them sees
    /// the set become complete. The record lives for `keep` after its last
    /// addition.
    async fn add_members(
        &self,
        key: &str,
        members: &[String],
        keep: Duration,
    ) -> anyhow::Result<BTreeSet<String>> {
        let _ = (key, members, keep);
        anyhow::bail!("this idempotency store keeps no sets")
    }
    /// Removes `members` from the set under `key`, atomically (absent ones are ignored).
    async fn remove_members(&self, key: &str, members: &[String]) -> anyhow::Result<()> {
        let _ = (key, members);
        anyhow::bail!("this idempotency store keeps no sets")
    }
    /// The set kept under `key` (empty when there is none or it expired).
    async fn members(&self, key: &str) -> anyhow::Result<BTreeSet<String>> {
        let _ = key;
        anyhow::bail!("this idempotency store keeps no sets")
    }
}

fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
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

    fn fail<E, R>(
        &self,
        operation: &str,
        e: aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> anyhow::Error
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        anyhow::anyhow!(
            "idempotency table {}: {}; check that the table exists with partition key `pk` (string) and the function may read and write it",
            self.table,
            describe(operation, &e)
        )
    }

    async fn read(&self, key: &str) -> anyhow::Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", e))?;
        Ok(out.item().cloned())
    }
}

fn record_of(item: &HashMap<String, AttributeValue>) -> Record {
    Record {
        done: item
            .get("status")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|s| s == "DONE"),
        result: item.get("result").and_then(|v| v.as_s().ok()).cloned(),
        expires_at: item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

fn is_condition_failure<R>(e: &aws_sdk_dynamodb::error::SdkError<impl ConditionCheck, R>) -> bool {
    e.as_service_error()
        .is_some_and(ConditionCheck::is_condition_failure)
}

/// The DynamoDB write errors that can report a failed condition.
trait ConditionCheck {
    fn is_condition_failure(&self) -> bool;
}

impl ConditionCheck for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn is_condition_failure(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionCheck for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn is_condition_failure(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionCheck for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn is_condition_failure(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim(&self, key: &str, lease: Duration) -> anyhow::Result<Claim> {
        let now = now_epoch();
        let claim = Lease::new_owner(key);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("status", AttributeValue::S("IN_PROGRESS".into()))
            .item("owner", AttributeValue::S(claim.owner.clone()))
            .item(
                "expires_at",
                AttributeValue::N((now + lease.as_secs() as i64).to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired(claim)),
            Err(e) if is_condition_failure(&e) => {
                let Some(item) = self.read(key).await? else {
                    // Deleted between the write and the read: the next claim will take it.
                    return Ok(Claim::HeldByOther { until: now });
                };
                let record = record_of(&item);
                Ok(if record.done {
                    Claim::Done(record.result)
                } else {
                    Claim::HeldByOther {
                        until: record.expires_at,
                    }
                })
            }
            Err(e) => Err(self.fail("PutItem", e)),
        }
    }

    async fn renew(&self, lease: &Lease, by: Duration) -> anyhow::Result<()> {
        let until = now_epoch() + by.as_secs() as i64;
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(lease.key.clone()))
            .update_expression("SET expires_at = :until")
            .condition_expression("#o = :owner AND #s = :in_progress")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":owner", AttributeValue::S(lease.owner.clone()))
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .send()
            .await
            .map_err(|e| {
                if is_condition_failure(&e) {
                    anyhow::anyhow!(
                        "idempotency claim {} was taken over by another attempt; stopping this one",
                        lease.key
                    )
                } else {
                    self.fail("UpdateItem", e)
                }
            })?;
        Ok(())
    }

    async fn complete(
        &self,
        lease: &Lease,
        keep: Duration,
        result: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(lease.key.clone()))
            .item("status", AttributeValue::S("DONE".into()))
            .item("owner", AttributeValue::S(lease.owner.clone()))
            .item(
                "expires_at",
                AttributeValue::N((now_epoch() + keep.as_secs() as i64).to_string()),
            )
            .condition_expression("#o = :owner")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(lease.owner.clone()));
        if let Some(r) = result {
            request = request.item("result", AttributeValue::S(r.to_string()));
        }
        request.send().await.map_err(|e| {
            if is_condition_failure(&e) {
                anyhow::anyhow!(
                    "idempotency claim {} was taken over by another attempt before this one finished; its work may be repeated by that attempt",
                    lease.key
                )
            } else {
                self.fail("PutItem", e)
            }
        })?;
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> anyhow::Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(lease.key.clone()))
            .condition_expression("#s = :in_progress AND #o = :owner")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .expression_attribute_values(":owner", AttributeValue::S(lease.owner.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(self.fail("DeleteItem", e)),
        }
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<Record>> {
        Ok(self
            .read(key)
            .await?
            .map(|item| record_of(&item))
            .filter(|r| r.expires_at > now_epoch()))
    }

    async fn get_many(&self, keys: &[String]) -> anyhow::Result<Vec<Option<Record>>> {
        let mut found: HashMap<String, Record> = HashMap::new();
        let mut unique: Vec<&String> = keys.iter().collect();
        unique.sort_unstable();
        unique.dedup();
        for chunk in unique.chunks(BATCH_GET_MAX) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(
                        chunk
                            .iter()
                            .map(|k| {
                                HashMap::from([(
                                    "pk".to_string(),
                                    AttributeValue::S(k.to_string()),
                                )])
                            })
                            .collect(),
                    ))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| anyhow::anyhow!("BatchGetItem request: {e}"))?,
            );
            let mut attempt = 0u32;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| self.fail("BatchGetItem", e))?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some(key) = item.get("pk").and_then(|v| v.as_s().ok()) {
                        found.insert(key.clone(), record_of(item));
                    }
                }
                // Keys DynamoDB did not get to (throughput, response size) are asked again, with backoff.
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
                if pending.is_some() {
                    attempt += 1;
                    if attempt > BATCH_GET_RETRIES {
                        anyhow::bail!(
                            "idempotency table {}: BatchGetItem left keys unprocessed after {BATCH_GET_RETRIES} retries; the table is throttled, try again later",
                            self.table
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        let now = now_epoch();
        Ok(keys
            .iter()
            .map(|k| found.get(k).filter(|r| r.expires_at > now).cloned())
            .collect())
    }

    async fn put_state(&self, key: &str, value: &str, keep: Duration) -> anyhow::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("status", AttributeValue::S("STATE".into()))
            .item("result", AttributeValue::S(value.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((now_epoch() + keep.as_secs() as i64).to_string()),
            )
            .send()
            .await
            .map_err(|e| self.fail("PutItem", e))?;
        Ok(())
    }

    async fn reserve(&self, key: &str, n: u64, limit: u64, keep: Duration) -> anyhow::Result<bool> {
        if n > limit {
            return Ok(false);
        }
        let now = now_epoch();
        // An expired budget (lazy TTL) counts as empty: start it again at n.
        let fresh = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("status", AttributeValue::S("BUDGET".into()))
            .item("used", AttributeValue::N(n.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((now + keep.as_secs() as i64).to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match fresh {
            Ok(_) => return Ok(true),
            Err(e) if is_condition_failure(&e) => {}
            Err(e) => return Err(self.fail("PutItem", e)),
        }
        let added = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .update_expression("SET used = used + :n")
            .condition_expression("attribute_exists(used) AND used <= :room")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .expression_attribute_values(":room", AttributeValue::N((limit - n).to_string()))
            .send()
            .await;
        match added {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.fail("UpdateItem", e)),
        }
    }

    async fn give_back(&self, key: &str, n: u64) -> anyhow::Result<bool> {
        if n == 0 {
            return Ok(true);
        }
        let returned = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .update_expression("SET used = used - :n")
            .condition_expression("attribute_exists(used) AND used >= :n AND expires_at >= :now")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now_epoch().to_string()))
            .send()
            .await;
        match returned {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.fail("UpdateItem", e)),
        }
    }

    async fn add_members(
        &self,
        key: &str,
        members: &[String],
        keep: Duration,
    ) -> anyhow::Result<BTreeSet<String>> {
        if members.is_empty() {
            return self.members(key).await;
        }
        // An expired set (lazy TTL) is dropped first, then added to afresh.
        for _ in 0..2 {
            let now = now_epoch();
            let added = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(key.to_string()))
                .update_expression(
                    "ADD #m :m SET #s = if_not_exists(#s, :set), expires_at = :until",
                )
                .condition_expression("attribute_not_exists(pk) OR expires_at >= :now")
                .expression_attribute_names("#m", "members")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":m", AttributeValue::Ss(members.to_vec()))
                .expression_attribute_values(":set", AttributeValue::S("SET".into()))
                .expression_attribute_values(
                    ":until",
                    AttributeValue::N((now + keep.as_secs() as i64).to_string()),
                )
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .send()
                .await;
            match added {
                Ok(out) => {
                    return Ok(out
                        .attributes()
                        .and_then(|a| a.get("members"))
                        .and_then(|v| v.as_ss().ok())
                        .map(|ss| ss.iter().cloned().collect())
                        .unwrap_or_default())
                }
                Err(e) if is_condition_failure(&e) => {
                    let dropped = self
                        .client
                        .delete_item()
                        .table_name(&self.table)
                        .key("pk", AttributeValue::S(key.to_string()))
                        .condition_expression("expires_at < :now")
                        .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                        .send()
                        .await;
                    match dropped {
                        Ok(_) => {}
                        Err(e) if is_condition_failure(&e) => {}
                        Err(e) => return Err(self.fail("DeleteItem", e)),
                    }
                }
                Err(e) => return Err(self.fail("UpdateItem", e)),
            }
        }
        anyhow::bail!(
            "idempotency table {}: the set {key} kept expiring while being added to; try again",
            self.table
        )
    }

    async fn remove_members(&self, key: &str, members: &[String]) -> anyhow::Result<()> {
        if members.is_empty() {
            return Ok(());
        }
        let removed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .update_expression("DELETE #m :m")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#m", "members")
            .expression_attribute_values(":m", AttributeValue::Ss(members.to_vec()))
            .send()
            .await;
        match removed {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(self.fail("UpdateItem", e)),
        }
    }

    async fn members(&self, key: &str) -> anyhow::Result<BTreeSet<String>> {
        let Some(item) = self.read(key).await? else {
            return Ok(BTreeSet::new());
        };
        if record_of(&item).expires_at < now_epoch() {
            return Ok(BTreeSet::new());
        }
        Ok(item
            .get("members")
            .and_then(|v| v.as_ss().ok())
            .map(|ss| ss.iter().cloned().collect())
            .unwrap_or_default())
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
        return Err(sdk_error(
            &format!("idempotency table {table}: CreateTable"),
            e,
        ));
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
        .map_err(|e| sdk_error(&format!("idempotency table {table}: UpdateTimeToLive"), e))?;
    Ok(())
}

/// Seeds the claim an attempt leaves when it is killed mid-work (tests and drills):
/// an `IN_PROGRESS` record with a foreign owner whose lease ends at `expires_at`.
pub async fn seed_abandoned_claim(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    expires_at: i64,
) -> anyhow::Result<()> {
    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(key.to_string()))
        .item("status", AttributeValue::S("IN_PROGRESS".into()))
        .item("owner", AttributeValue::S("killed-attempt".into()))
        .item("expires_at", AttributeValue::N(expires_at.to_string()))
        .send()
        .await
        .map_err(|e| sdk_error(&format!("idempotency table {table}: PutItem"), e))?;
    Ok(())
}
