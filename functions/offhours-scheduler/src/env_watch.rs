//! What changed under the scheduler (issue: tag trust): the `env` tag of every
//! resource a run listed is kept per target in the idempotency table (one
//! state record per target, `state#offhours-scheduler#env#ACCOUNT/REGION`, a
//! JSON map from ARN to `env`), and the next run of that target reports the
//! resources whose `env` changed in its digest. The record is rewritten only
//! when something changed, and never in dry-run or under the kill switch.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use steward_shared::idempotency::{keys, IdempotencyStore};

use crate::resources::Target;
use crate::FUNCTION_NAME;

/// How long a target's last seen `env` tags are kept without a run.
const KEEP: Duration = Duration::from_secs(35 * 86_400);

/// One resource whose `env` tag changed since the previous run of its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EnvChange {
    pub arn: String,
    /// `None`: the tag was added since the previous run.
    pub before: Option<String>,
    /// `None`: the tag was removed.
    pub after: Option<String>,
}

impl std::fmt::Display for EnvChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| match v {
            Some(v) => format!("env={v}"),
            None => "no env tag".to_string(),
        };
        write!(
            f,
            "env changed on {}: {} -> {}",
            self.arn,
            show(&self.before),
            show(&self.after)
        )
    }
}

/// The resources whose `env` differs between two runs (pure). Both maps
/// hold every listed resource, `""` for no `env` tag. A resource that was not
/// listed before is new, not changed; one no longer listed is gone.
pub fn compare(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<EnvChange> {
    let value = |v: &str| Some(v.to_string()).filter(|v| !v.trim().is_empty());
    before
        .iter()
        .filter_map(|(arn, old)| {
            let new = after.get(arn)?;
            (new.trim() != old.trim()).then(|| EnvChange {
                arn: arn.clone(),
                before: value(old),
                after: value(new),
            })
        })
        .collect()
}

fn key(target: &Target) -> String {
    keys::state(FUNCTION_NAME, &format!("env#{target}"))
}

/// The previous runs' `env` tags of every target, read in batches before
/// the run plans (a target with no record is absent); `Err` when the table
/// could not be read, so no change is reported this run.
pub struct Previous(Result<BTreeMap<Target, BTreeMap<String, String>>, String>);

impl Previous {
    /// Reads the records of `targets`.
    pub async fn load(store: &dyn IdempotencyStore, targets: &[Target]) -> Previous {
        let keys: Vec<String> = targets.iter().map(key).collect();
        Previous(match store.get_many(&keys).await {
            Ok(records) => Ok(targets
                .iter()
                .zip(records)
                .filter_map(|(target, record)| {
                    let text = record?.result?;
                    let seen = serde_json::from_str::<BTreeMap<String, String>>(&text).ok()?;
                    Some((target.clone(), seen))
                })
                .collect()),
            Err(e) => Err(format!("{e:#}")),
        })
    }

    /// No records (no table, or nothing read yet).
    pub fn none() -> Previous {
        Previous(Ok(BTreeMap::new()))
    }
}

/// Records this run's `env` tags of a target.
pub async fn save(
    store: &dyn IdempotencyStore,
    target: &Target,
    seen: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    store
        .put_state(&key(target), &serde_json::to_string(seen)?, KEEP)
        .await
}

/// The resources of a target whose `env` changed since its previous run;
/// records this run's tags (not in dry-run or under the kill switch). A
/// failing table is logged: the run goes on without the comparison.
pub async fn changes_since_last_run(
    store: Option<&dyn IdempotencyStore>,
    previous: &Previous,
    target: &Target,
    seen: &BTreeMap<String, String>,
    change: bool,
) -> Vec<EnvChange> {
    let Some(store) = store else {
        return Vec::new();
    };
    let previous = match &previous.0 {
        Ok(all) => all.get(target),
        Err(e) => {
            tracing::error!(target = %target, error = %e, "could not read the last seen env tags; changes are not reported this run");
            return Vec::new();
        }
    };
    let changes = previous
        .map(|before| compare(before, seen))
        .unwrap_or_default();
    for c in &changes {
        tracing::warn!(target = %target, resource = %c.arn, change = %c, "env tag changed since the last run");
    }
    if change && previous != Some(seen) {
        if let Err(e) = save(store, target, seen).await {
            tracing::error!(target = %target, error = %format!("{e:#}"), "could not record the env tags seen; the next run compares with older ones");
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reports_changed_and_removed_env_only() {
        let before = map(&[("a", "prod"), ("b", "dev"), ("c", "dev"), ("gone", "dev")]);
        let after = map(&[("a", "dev"), ("b", "dev"), ("c", ""), ("new", "dev")]);
        let changes = compare(&before, &after);
        assert_eq!(
            changes,
            vec![
                EnvChange {
                    arn: "a".into(),
                    before: Some("prod".into()),
                    after: Some("dev".into())
                },
                EnvChange {
                    arn: "c".into(),
                    before: Some("dev".into()),
                    after: None
                },
            ]
        );
        assert_eq!(
            changes[0].to_string(),
            "env changed on a: env=prod -> env=dev"
        );
    }
}
