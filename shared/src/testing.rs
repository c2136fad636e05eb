//! In-memory twins of the adapters and small helpers for tests (feature
//! `testing`): a publisher that keeps what it was given, an idempotency store
//! with the same claim semantics as the DynamoDB one, a `Steward` for tests in
//! one call, and `tags(...)`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::aws::AwsContext;
use crate::idempotency::{Claim, IdempotencyStore, Lease, Record};
use crate::notify::{Publish, Rendered};
use crate::policy::Policy;
use crate::policy_store::PolicyStore;
use crate::safety::RunMode;
use crate::settings::{PolicySource, Settings};
use crate::Steward;

/// A tag map from pairs.
pub fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A sorted tag map from pairs.
pub fn sorted_tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A publisher that keeps every rendered message; `fail` makes the next publishes fail.
#[derive(Default)]
pub struct MemoryPublisher {
    pub sent: Mutex<Vec<Rendered>>,
    pub fail: Mutex<bool>,
}

impl MemoryPublisher {
    pub fn subjects(&self) -> Vec<String> {
        self.sent
            .lock()
            .map(|s| s.iter().map(|r| r.subject.clone()).collect())
            .unwrap_or_default()
    }

    pub fn count(&self) -> usize {
        self.sent.lock().map(|s| s.len()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Publish for MemoryPublisher {
    async fn publish(&self, rendered: &Rendered) -> anyhow::Result<Option<String>> {
        if *self.fail.lock().map_err(|_| anyhow::anyhow!("poisoned"))? {
            anyhow::bail!("publishing failed (injected)");
        }
        let mut sent = self.sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        sent.push(rendered.clone());
        Ok(Some(format!("message-{}", sent.len())))
    }
}

#[derive(Debug, Clone)]
struct Entry {
    done: bool,
    owner: String,
    result: Option<String>,
    expires_at: i64,
}

/// An idempotency store in memory, with the DynamoDB store's claim rules.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
    /// Sets of strings (`add_members`) by key, with their expiry.
    sets: Mutex<HashMap<String, (std::collections::BTreeSet<String>, i64)>>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl MemoryStore {
    /// Seeds the claim a killed attempt leaves behind.
    pub fn seed_abandoned_claim(&self, key: &str, expires_at: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                key.to_string(),
                Entry {
                    done: false,
                    owner: "killed-attempt".into(),
                    result: None,
                    expires_at,
                },
            );
        }
    }

    /// Every key with a record (claimed or done), sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .entries
            .lock()
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// The keys currently recorded as done.
    pub fn done_keys(&self) -> Vec<String> {
        self.entries
            .lock()
            .map(|e| {
                e.iter()
                    .filter(|(_, v)| v.done)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim(&self, key: &str, lease: Duration) -> anyhow::Result<Claim> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let now = now();
        if let Some(e) = entries.get(key) {
            if e.expires_at >= now {
                return Ok(if e.done {
                    Claim::Done(e.result.clone())
                } else {
                    Claim::HeldByOther {
                        until: e.expires_at,
                    }
                });
            }
        }
        let claim = Lease::new_owner(key);
        entries.insert(
            key.to_string(),
            Entry {
                done: false,
                owner: claim.owner.clone(),
                result: None,
                expires_at: now + lease.as_secs() as i64,
            },
        );
        Ok(Claim::Acquired(claim))
    }

    async fn renew(&self, lease: &Lease, by: Duration) -> anyhow::Result<()> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        match entries.get_mut(&lease.key) {
            Some(e) if e.owner == lease.owner && !e.done => {
                e.expires_at = now() + by.as_secs() as i64;
                Ok(())
            }
            _ => anyhow::bail!("idempotency claim {} was taken over", lease.key),
        }
    }

    async fn complete(
        &self,
        lease: &Lease,
        keep: Duration,
        result: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        match entries.get_mut(&lease.key) {
            Some(e) if e.owner == lease.owner => {
                e.done = true;
                e.result = result.map(str::to_string);
                e.expires_at = now() + keep.as_secs() as i64;
                Ok(())
            }
            _ => anyhow::bail!("idempotency claim {} was taken over", lease.key),
        }
    }

    async fn release(&self, lease: &Lease) -> anyhow::Result<()> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if entries
            .get(&lease.key)
            .is_some_and(|e| e.owner == lease.owner && !e.done)
        {
            entries.remove(&lease.key);
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<Record>> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(entries
            .get(key)
            .filter(|e| e.expires_at > now())
            .map(|e| Record {
                done: e.done,
                result: e.result.clone(),
                expires_at: e.expires_at,
            }))
    }

    async fn put_state(&self, key: &str, value: &str, keep: Duration) -> anyhow::Result<()> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        entries.insert(
            key.to_string(),
            Entry {
                done: false,
                owner: "state".into(),
                result: Some(value.to_string()),
                expires_at: now() + keep.as_secs() as i64,
            },
        );
        Ok(())
    }

    async fn reserve(&self, key: &str, n: u64, limit: u64, keep: Duration) -> anyhow::Result<bool> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let now = now();
        let used = entries
            .get(key)
            .filter(|e| e.expires_at >= now)
            .and_then(|e| e.result.as_deref())
            .and_then(|r| r.parse::<u64>().ok());
        let total = used.unwrap_or(0).saturating_add(n);
        if total > limit {
            return Ok(false);
        }
        let expires_at = match used {
            Some(_) => entries.get(key).map(|e| e.expires_at).unwrap_or(now),
            None => now + keep.as_secs() as i64,
        };
        entries.insert(
            key.to_string(),
            Entry {
                done: false,
                owner: "budget".into(),
                result: Some(total.to_string()),
                expires_at,
            },
        );
        Ok(true)
    }

    async fn give_back(&self, key: &str, n: u64) -> anyhow::Result<bool> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let now = now();
        let Some(entry) = entries.get_mut(key).filter(|e| e.expires_at >= now) else {
            return Ok(n == 0);
        };
        let used = entry
            .result
            .as_deref()
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(0);
        if used < n {
            return Ok(false);
        }
        entry.result = Some((used - n).to_string());
        Ok(true)
    }

    async fn add_members(
        &self,
        key: &str,
        members: &[String],
        keep: Duration,
    ) -> anyhow::Result<std::collections::BTreeSet<String>> {
        let mut sets = self.sets.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let now = now();
        let before = sets
            .get(key)
            .filter(|(_, expires_at)| *expires_at >= now)
            .cloned();
        let mut set = before.map(|(set, _)| set).unwrap_or_default();
        let old = set.clone();
        if !members.is_empty() {
            set.extend(members.iter().cloned());
            sets.insert(key.to_string(), (set, now + keep.as_secs() as i64));
        }
        Ok(old)
    }

    async fn remove_members(&self, key: &str, members: &[String]) -> anyhow::Result<()> {
        let mut sets = self.sets.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some((set, _)) = sets.get_mut(key) {
            for m in members {
                set.remove(m);
            }
        }
        Ok(())
    }

    async fn members(&self, key: &str) -> anyhow::Result<std::collections::BTreeSet<String>> {
        let sets = self.sets.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(sets
            .get(key)
            .filter(|(_, expires_at)| *expires_at >= now())
            .map(|(set, _)| set.clone())
            .unwrap_or_default())
    }
}

/// A `Steward` for in-process tests: a fixed policy, the given mode, in-memory
/// publisher and store, and an AWS configuration pointing at `endpoint` (or a
/// closed local port when no AWS is needed).
pub struct TestSteward {
    pub steward: Arc<Steward>,
    pub publisher: Arc<MemoryPublisher>,
    pub store: Arc<MemoryStore>,
}

/// Builds a [`TestSteward`] in one call.
pub fn steward(function_name: &str, policy: Policy, mode: RunMode) -> TestSteward {
    steward_at(
        function_name,
        policy,
        mode,
        "http://127.0.0.1:9",
        "123456789012",
    )
}

/// Like [`steward`], with the AWS endpoint and own account given.
pub fn steward_at(
    function_name: &str,
    policy: Policy,
    mode: RunMode,
    endpoint: &str,
    account: &str,
) -> TestSteward {
    let base = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "testing",
                    "testing",
                    None,
                    None,
                    "steward-tests",
                ),
            ),
        )
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws::https_client())
        .build();
    let aws = AwsContext::new(
        base,
        account.to_string(),
        "us-east-1".into(),
        Some("steward-member".into()),
        function_name,
    );
    let publisher = Arc::new(MemoryPublisher::default());
    let store = Arc::new(MemoryStore::default());
    let settings = Settings {
        function_name: function_name.to_string(),
        topic_arn: Some("arn:aws:sns:us-east-1:123456789012:steward".into()),
        policy_source: PolicySource::BuiltIn,
        mode,
        idempotency_table: Some("steward-idempotency".into()),
        member_role: Some("steward-member".into()),
        work_queue: None,
        copy_queue: None,
    };
    let steward = Steward {
        settings,
        aws,
        policy: PolicyStore::fixed(policy),
        publisher: publisher.clone(),
        idempotency: Some(store.clone()),
    };
    TestSteward {
        steward: Arc::new(steward),
        publisher,
        store,
    }
}
