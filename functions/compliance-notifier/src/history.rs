//! What the notifier remembers between invocations, kept in the idempotency
//! table through `Steward::once` (writes) and the store's `get` (reads), so
//! dry-run and the kill switch write nothing:
//!
//! - per rule and resource, the notifiable changes of the flapping window:
//!   `flap_changes` slot records (`state#compliance-notifier#flap#<subject>#<n>`),
//!   each holding one change's de-duplication key and kept for the window, so
//!   the live slots are the recent changes;
//! - per rule and resource, the flapping announcement
//!   (`state#compliance-notifier#flapping#<subject>`), kept for the window;
//! - per day, the digest's counts (`state#compliance-notifier#digest-counts#<YYYY-MM-DD>`),
//!   read back by the next day's digest.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use steward_shared::idempotency::keys;
use steward_shared::{Once, Steward};

use crate::model::ComplianceChange;
use crate::plan::History;
use crate::FUNCTION_NAME;

/// How long a day's digest counts are kept (read the next day).
pub const DIGEST_COUNTS_KEEP: Duration = Duration::from_secs(3 * 86_400);

fn slot_key(change: &ComplianceChange, slot: u32) -> String {
    keys::state(
        FUNCTION_NAME,
        &format!("flap#{}#{slot}", change.subject_key()),
    )
}

fn flapping_key(change: &ComplianceChange) -> String {
    keys::state(FUNCTION_NAME, &format!("flapping#{}", change.subject_key()))
}

fn digest_key(day: NaiveDate) -> String {
    keys::state(FUNCTION_NAME, &format!("digest-counts#{day}"))
}

/// Reads the change history of the change's rule and resource.
pub async fn read(
    steward: &Steward,
    change: &ComplianceChange,
    flap_changes: u32,
) -> anyhow::Result<History> {
    let mut history = History::default();
    let Some(store) = steward.idempotency.as_ref() else {
        return Ok(history);
    };
    // The slots and the flapping marker in one batched read.
    let mut keys: Vec<String> = (0..flap_changes)
        .map(|slot| slot_key(change, slot))
        .collect();
    keys.push(flapping_key(change));
    let mut records = store.get_many(&keys).await?;
    let flapping = records.pop().flatten();
    for record in records.into_iter().flatten() {
        if let (true, Some(key)) = (record.done, record.result) {
            history.recent.push(key);
        }
    }
    history.flapping_announced = flapping.is_some_and(|r| r.done);
    Ok(history)
}

/// Records a notified change in a free slot (once: a retried change is not counted twice).
pub async fn record_change(
    steward: &Steward,
    change: &ComplianceChange,
    history: &History,
    flap_changes: u32,
    window: Duration,
) -> anyhow::Result<()> {
    let key = change.dedupe_key();
    if history.recent.contains(&key) {
        return Ok(());
    }
    for slot in 0..flap_changes {
        let outcome = steward
            .once(&slot_key(change, slot), window, || async {
                Ok(key.clone())
            })
            .await?;
        match outcome {
            Once::Ran(_) => return Ok(()),
            Once::AlreadyDone(Some(k)) if k == key => return Ok(()),
            Once::AlreadyDone(_) => continue,
        }
    }
    tracing::warn!(subject = %change.subject_key(), "every flapping slot is taken; the change was notified but not counted");
    Ok(())
}

/// Remembers that the flapping message was sent for this rule and resource.
pub async fn mark_flapping(
    steward: &Steward,
    change: &ComplianceChange,
    window: Duration,
) -> anyhow::Result<()> {
    steward
        .once(&flapping_key(change), window, || async {
            Ok(change.dedupe_key())
        })
        .await?;
    Ok(())
}

/// The counts remembered by the digest of `day`, if any.
pub async fn digest_counts(
    steward: &Steward,
    day: NaiveDate,
) -> anyhow::Result<Option<BTreeMap<String, u64>>> {
    let Some(store) = steward.idempotency.as_ref() else {
        return Ok(None);
    };
    let Some(record) = store.get(&digest_key(day)).await? else {
        return Ok(None);
    };
    match record.result.as_deref().map(serde_json::from_str) {
        Some(Ok(counts)) => Ok(Some(counts)),
        Some(Err(e)) => {
            tracing::warn!(error = %e, %day, "the remembered digest counts are unreadable; the digest shows no change since yesterday");
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Remembers the counts of `day` for the next digest (the first run of a day wins).
pub async fn remember_digest_counts(
    steward: &Steward,
    day: NaiveDate,
    counts: &BTreeMap<String, u64>,
) -> anyhow::Result<()> {
    let json = serde_json::to_string(counts)?;
    steward
        .once(&digest_key(day), DIGEST_COUNTS_KEEP, || async { Ok(json) })
        .await?;
    Ok(())
}
