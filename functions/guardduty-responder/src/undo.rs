//! The undo record of an instance containment, kept in steward's own
//! idempotency table in the hub account: each interface's security groups
//! before the swap, the target groups the instance was taken out of, and its
//! Auto Scaling state. steward also tags the same values onto the instance
//! and its interfaces, for the people reading the console; but anyone who may
//! tag the instance (its own role, perhaps the attacker) can rewrite a tag,
//! so `steward quarantine release` acts on this record and reports a tag
//! that disagrees with it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward_shared::idempotency::{keys, IdempotencyStore};

use crate::FUNCTION_NAME;

/// How long a containment's record is kept (a quarantine can last months).
const KEEP: Duration = Duration::from_secs(400 * 86_400);
/// How long a released record is kept, as the trail of the release.
const RELEASED_KEEP: Duration = Duration::from_secs(90 * 86_400);

/// What steward changed on one instance and what it was before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoRecord {
    /// The finding that contained the instance.
    pub finding: String,
    /// Interface id -> its security group ids before the swap.
    pub interfaces: BTreeMap<String, Vec<String>>,
    /// The target-group record (`name/id[:port],...`, as the tag holds it).
    pub target_groups: Option<String>,
    /// The Auto Scaling record (as the `steward:standby` tag holds it).
    pub standby: Option<String>,
    /// When a release undid it (RFC 3339); a released record undoes nothing.
    pub released_at: Option<String>,
}

/// The undo record of one instance in one account and region.
pub struct UndoLog<'a> {
    store: &'a dyn IdempotencyStore,
    key: String,
}

impl<'a> UndoLog<'a> {
    pub fn new(
        store: &'a dyn IdempotencyStore,
        account: &str,
        region: &str,
        instance_id: &str,
    ) -> UndoLog<'a> {
        UndoLog {
            store,
            key: keys::state(
                FUNCTION_NAME,
                &format!("undo#{account}/{region}/{instance_id}"),
            ),
        }
    }

    /// The record of the current containment (`None` when there is none or
    /// it was released). A record that cannot be read is an error, never
    /// "no record".
    pub async fn read(&self) -> anyhow::Result<Option<UndoRecord>> {
        let Some(stored) = self.store.get(&self.key).await? else {
            return Ok(None);
        };
        let Some(text) = stored.result.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let record: UndoRecord = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "steward's undo record {} is not readable ({e}); release by hand",
                self.key
            )
        })?;
        Ok(record.released_at.is_none().then_some(record))
    }

    /// Changes the record of the current containment (a released one starts over).
    pub async fn update(
        &self,
        finding_id: &str,
        change: impl FnOnce(&mut UndoRecord),
    ) -> anyhow::Result<()> {
        let mut record = self.read().await?.unwrap_or_default();
        record.finding = finding_id.to_string();
        change(&mut record);
        self.store
            .put_state(&self.key, &serde_json::to_string(&record)?, KEEP)
            .await
    }

    /// Marks the record released, kept a while as the release's trail.
    pub async fn mark_released(&self, record: &UndoRecord, at: &str) -> anyhow::Result<()> {
        let mut released = record.clone();
        released.released_at = Some(at.to_string());
        self.store
            .put_state(&self.key, &serde_json::to_string(&released)?, RELEASED_KEEP)
            .await
    }
}

/// How a value steward recorded compares with the tag beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement<T> {
    /// Record and tag say the same: undo it.
    Agree(T),
    /// The tag was changed after containment: undo what steward recorded,
    /// and say what the tag claims.
    TagDiffers {
        recorded: T,
        tag: String,
    },
    /// Only the tag: steward did not record it (written by someone else, or
    /// by a containment before records were kept). Not undone unless the
    /// operator trusts the tags.
    TagOnly(String),
    /// Only the record: the tag is gone (removed by someone, or the
    /// containment stopped before writing it). Left as it is and reported.
    RecordOnly(T),
    Neither,
}

/// Compares a recorded value with its tag; `same` decides equality.
pub fn agreement<T>(
    recorded: Option<T>,
    tag: Option<&str>,
    same: impl Fn(&T, &str) -> bool,
) -> Agreement<T> {
    match (recorded, tag) {
        (Some(r), Some(t)) if same(&r, t) => Agreement::Agree(r),
        (Some(r), Some(t)) => Agreement::TagDiffers {
            recorded: r,
            tag: t.to_string(),
        },
        (None, Some(t)) => Agreement::TagOnly(t.to_string()),
        (Some(r), None) => Agreement::RecordOnly(r),
        (None, None) => Agreement::Neither,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_shared::testing::MemoryStore;

    #[tokio::test]
    async fn a_record_is_kept_until_released() {
        let store = MemoryStore::default();
        let log = UndoLog::new(&store, "111122223333", "us-east-1", "i-1");
        assert_eq!(log.read().await.unwrap(), None);
        log.update("f1", |r| {
            r.interfaces.insert("eni-1".into(), vec!["sg-a".into()]);
        })
        .await
        .unwrap();
        log.update("f1", |r| r.standby = Some("protected=false".into()))
            .await
            .unwrap();
        let record = log.read().await.unwrap().unwrap();
        assert_eq!(record.interfaces["eni-1"], vec!["sg-a".to_string()]);
        assert_eq!(record.standby.as_deref(), Some("protected=false"));
        log.mark_released(&record, "2026-12-01T00:00:00Z")
            .await
            .unwrap();
        assert_eq!(
            log.read().await.unwrap(),
            None,
            "a released record undoes nothing"
        );
        let other = UndoLog::new(&store, "111122223333", "us-east-1", "i-2");
        assert_eq!(other.read().await.unwrap(), None);
    }

    #[test]
    fn the_record_decides_and_a_differing_tag_is_named() {
        let same = |r: &String, t: &str| r == t;
        assert_eq!(
            agreement(Some("a".to_string()), Some("a"), same),
            Agreement::Agree("a".to_string())
        );
        assert_eq!(
            agreement(Some("a".to_string()), Some("evil"), same),
            Agreement::TagDiffers {
                recorded: "a".to_string(),
                tag: "evil".into()
            }
        );
        assert_eq!(
            agreement(None::<String>, Some("evil"), same),
            Agreement::TagOnly("evil".into())
        );
        assert_eq!(
            agreement(Some("a".to_string()), None, same),
            Agreement::RecordOnly("a".to_string())
        );
    }
}
