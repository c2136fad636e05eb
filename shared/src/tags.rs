//! Tag keys steward reads or writes (SPEC section 4), and helpers to turn
//! the SDKs' tag lists into maps.

use std::collections::HashMap;

pub const PROJECT: &str = "project";
pub const ENV: &str = "env";
pub const COST_CENTER: &str = "cost_center";
pub const CREATED_BY: &str = "steward:created-by";
pub const EXEMPT: &str = "steward:exempt";
pub const OFFHOURS: &str = "steward:offhours";
pub const MAID_OFFHOURS: &str = "maid_offhours";
pub const SAVED_CAPACITY: &str = "steward:saved-capacity";
pub const QUARANTINED: &str = "steward:quarantined";
pub const PREVIOUS_GROUPS: &str = "steward:previous-groups";
pub const FINDING: &str = "steward:finding";
pub const MANAGED: &str = "steward:managed";
pub const COPIED_FROM: &str = "steward:copied-from";

/// A resource's tags as a map.
pub type TagMap = HashMap<String, String>;

/// Builds a tag map from (key, value) pairs, skipping pairs without a key.
pub fn to_map<I, K, V>(pairs: I) -> TagMap
where
    I: IntoIterator<Item = (Option<K>, Option<V>)>,
    K: Into<String>,
    V: Into<String>,
{
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k?.into(), v.map(Into::into).unwrap_or_default())))
        .collect()
}
