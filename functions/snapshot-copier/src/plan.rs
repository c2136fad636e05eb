//! The pure decisions of the copier, with `now` passed in and no SDK type:
//! whether a snapshot is a source in scope, the deterministic identifier and
//! the tags of its DR copy, which copies fit the capacity, which DR copies
//! retention deletes (checked against the real state, never the tags alone),
//! and each database's recovery point.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, Months, Utc};
use sha2::{Digest, Sha256};
use steward_shared::policy::Snapshots;
use steward_shared::tags::{self, TagMap};

use crate::model::{Class, DatabaseKey, Kind, Snapshot, RETENTION, SOURCE_CREATED};

/// AWS's limit on copy requests in progress per destination region and
/// account (RDS User Guide, "Copying a DB snapshot"); steward's own cap,
/// `snapshots.max_copies_in_flight`, applies below it.
pub const AWS_COPIES_IN_FLIGHT: u32 = 20;

/// The longest a snapshot identifier may be for both kinds (cluster snapshot
/// identifiers allow 63 characters, instance snapshot identifiers 255).
const MAX_IDENTIFIER: usize = 63;

/// AWS allows 50 tags per resource; the copier writes four of its own.
const MAX_CARRIED_TAGS: usize = 46;

/// The parts of an RDS snapshot ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotArn {
    pub region: String,
    pub account: String,
    pub kind: Kind,
    /// The snapshot identifier (automated ones start with `rds:`).
    pub id: String,
}

/// Parses `arn:PARTITION:rds:REGION:ACCOUNT:snapshot|cluster-snapshot:ID`.
pub fn parse_snapshot_arn(arn: &str) -> Option<SnapshotArn> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let [prefix, _partition, service, region, account, resource, id] = parts.as_slice() else {
        return None;
    };
    if *prefix != "arn" || *service != "rds" || region.is_empty() || id.is_empty() {
        return None;
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = match *resource {
        "snapshot" => Kind::Instance,
        "cluster-snapshot" => Kind::Cluster,
        _ => return None,
    };
    Some(SnapshotArn {
        region: region.to_string(),
        account: account.to_string(),
        kind,
        id: id.to_string(),
    })
}

/// The identifier of the DR copy of the snapshot `source_arn`: `dr-`, the
/// source identifier made valid (letters, digits, single hyphens; the
/// automated `rds:` prefix dropped) and a hash of the whole source ARN, so
/// sources with the same name in other accounts or regions never collide.
/// At most 63 characters, starts with a letter, never ends with a hyphen.
pub fn target_identifier(source_arn: &str) -> String {
    let canonical = source_arn.to_ascii_lowercase();
    let name = parse_snapshot_arn(&canonical)
        .map(|a| a.id)
        .unwrap_or_else(|| canonical.clone());
    let name = name.strip_prefix("rds:").unwrap_or(&name);
    let mut body = String::new();
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (body.is_empty() || body.ends_with('-')) {
            continue;
        }
        body.push(c);
    }
    let hash: String = Sha256::digest(canonical.as_bytes())
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect();
    let room = MAX_IDENTIFIER - "dr-".len() - 1 - hash.len();
    let body: String = body.chars().take(room).collect();
    let body = body.trim_end_matches('-');
    if body.is_empty() {
        format!("dr-{hash}")
    } else {
        format!("dr-{body}-{hash}")
    }
}

/// The retention class of the copy of a source: automated snapshots make
/// daily copies (the monthly one is chosen at retention time), everything
/// else manual copies.
pub fn source_class(snapshot_type: &str, id: &str) -> Class {
    if snapshot_type == "automated" || id.starts_with("rds:") {
        Class::Daily
    } else {
        Class::Manual
    }
}

/// Days or months a class keeps a copy, from its source time.
pub fn expiry(class: Class, source_time: DateTime<Utc>, cfg: &Snapshots) -> DateTime<Utc> {
    match class {
        Class::Daily => source_time + Duration::days(i64::from(cfg.retention_days)),
        Class::Manual => source_time + Duration::days(i64::from(cfg.manual_retention_days)),
        Class::Monthly => source_time
            .checked_add_months(Months::new(cfg.monthly_retention_months))
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    }
}

/// True when the snapshot is a DR copy steward made: its identifier is the
/// one derived from its `steward:copied-from` (a tag alone proves nothing).
pub fn is_steward_copy(snapshot: &Snapshot) -> bool {
    snapshot
        .tags
        .get(tags::COPIED_FROM)
        .is_some_and(|from| target_identifier(from) == snapshot.id)
}

/// Whether a database is in scope: its `env` (from the database's tags, or
/// the snapshot's when the database is gone) is in `snapshots.environments`.
/// `steward:exempt` does not stop copies: a copy changes nothing on the
/// database, and one tag must not switch a database's DR off.
pub fn scope(
    snapshot: &Snapshot,
    database_tags: Option<&TagMap>,
    cfg: &Snapshots,
) -> Result<String, String> {
    let (tags, whose) = match database_tags {
        Some(t) => (t, "the database"),
        None => (&snapshot.tags, "the snapshot (its database is gone)"),
    };
    match tags.get(tags::ENV).map(|v| v.trim()) {
        Some(env) if !env.is_empty() => {
            if cfg.environments.iter().any(|e| e == env) {
                Ok(env.to_string())
            } else {
                Err(format!(
                    "env={env} on {whose} is not in snapshots.environments ({})",
                    cfg.environments.join(", ")
                ))
            }
        }
        _ => Err(format!("{whose} has no `env` tag")),
    }
}

/// A copy to make in the DR region.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyOrder {
    pub source: Snapshot,
    pub target_id: String,
    pub kms_key: String,
    pub class: Class,
    pub tags: Vec<(String, String)>,
    /// The source is unencrypted: the copy is encrypted with the DR key.
    pub encrypts: bool,
    pub environment: String,
}

/// What to do with one source snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Copy(Box<CopyOrder>),
    /// The DR copy exists already (a repeated event or sweep).
    Present {
        target_id: String,
    },
    /// Not a source, not in scope, not ready or too old: logged, nothing done.
    Ignore(String),
    /// In scope but cannot be copied safely: reported HIGH.
    Refuse {
        target_id: String,
        why: String,
    },
}

/// The source time of a snapshot: `OriginalSnapshotCreateTime`, else `SnapshotCreateTime`.
pub fn source_time(snapshot: &Snapshot) -> Option<DateTime<Utc>> {
    snapshot.original_created.or(snapshot.created)
}

/// Decides the copy of one source snapshot. `copy_exists` says whether its
/// DR copy (the derived identifier) exists in the DR region.
pub fn decide(
    source: &Snapshot,
    database_tags: Option<&TagMap>,
    copy_exists: bool,
    cfg: &Snapshots,
    now: DateTime<Utc>,
) -> Decision {
    if source.region == cfg.dr_region {
        return Decision::Ignore(
            "the snapshot is in the DR region; copies are never sources".into(),
        );
    }
    if is_steward_copy(source) {
        return Decision::Ignore("the snapshot is a DR copy steward made".into());
    }
    if !matches!(source.snapshot_type.as_str(), "automated" | "manual") {
        return Decision::Ignore(format!(
            "{} snapshots are not copied (only automated and manual)",
            source.snapshot_type
        ));
    }
    let environment = match scope(source, database_tags, cfg) {
        Ok(env) => env,
        Err(why) => return Decision::Ignore(format!("out of scope: {why}")),
    };
    let target_id = target_identifier(&source.arn);
    if copy_exists {
        return Decision::Present { target_id };
    }
    if !source.is_available() {
        return Decision::Ignore(format!(
            "the snapshot is {}, not available yet; the next sweep copies it",
            source.status
        ));
    }
    let class = source_class(&source.snapshot_type, &source.id);
    let Some(time) = source_time(source) else {
        return Decision::Ignore("RDS returned no creation time for the snapshot".into());
    };
    if expiry(class, time, cfg) <= now {
        return Decision::Ignore(format!(
            "older than the {} retention; an expired copy is never made again",
            class.as_str()
        ));
    }
    if source.kind == Kind::Cluster && !source.encrypted {
        return Decision::Refuse {
            target_id,
            why: "the Aurora cluster snapshot is unencrypted, and AWS cannot encrypt a cluster snapshot on copy".into(),
        };
    }
    Decision::Copy(Box::new(CopyOrder {
        tags: copy_tags(source, class, time),
        source: source.clone(),
        target_id,
        kms_key: cfg.dr_kms_key.clone(),
        class,
        encrypts: !source.encrypted,
        environment,
    }))
}

/// The tags of a DR copy: the source's own tags except steward's (so
/// `steward:exempt` is never carried) and AWS-reserved ones, plus the four
/// the copier writes.
pub fn copy_tags(source: &Snapshot, class: Class, time: DateTime<Utc>) -> Vec<(String, String)> {
    let mut carried: Vec<(String, String)> = source
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("steward:") && !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    carried.sort();
    carried.truncate(MAX_CARRIED_TAGS);
    carried.push((tags::COPIED_FROM.into(), source.arn.clone()));
    carried.push((
        SOURCE_CREATED.into(),
        time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ));
    carried.push((RETENTION.into(), class.as_str().into()));
    carried.push((tags::MANAGED.into(), "true".into()));
    carried
}

/// What the DR region can take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    /// Every copy in progress in the DR region, steward's or not.
    pub in_flight: u32,
    /// Manual snapshots in the DR region (instances and clusters).
    pub manual_snapshots: u32,
}

/// Copies to start now and copies that wait.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Admission {
    pub start: Vec<CopyOrder>,
    pub wait: Vec<CopyOrder>,
    /// Some copies wait because the manual-snapshot quota is reached.
    pub quota_reached: bool,
}

/// Admits copies, newest source first, under the lower of steward's cap and
/// AWS's limit on copies in progress, and under the manual-snapshot quota.
pub fn admit(mut orders: Vec<CopyOrder>, capacity: Capacity, cfg: &Snapshots) -> Admission {
    orders.sort_by_key(|o| std::cmp::Reverse(source_time(&o.source)));
    let cap = cfg.max_copies_in_flight.min(AWS_COPIES_IN_FLIGHT);
    let free = cap.saturating_sub(capacity.in_flight) as usize;
    let quota_left = cfg
        .manual_snapshot_quota
        .saturating_sub(capacity.manual_snapshots) as usize;
    let n = free.min(quota_left).min(orders.len());
    let quota_reached = orders.len() > quota_left;
    let wait = orders.split_off(n);
    Admission {
        start: orders,
        wait,
        quota_reached,
    }
}

/// A DR copy that passed every check, with what retention needs.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCopy {
    pub snapshot: Snapshot,
    pub database: DatabaseKey,
    pub source_arn: String,
    /// The source's creation time (the recovery point this copy gives).
    pub source_time: DateTime<Utc>,
    pub class: Class,
}

/// Why a snapshot in the DR region is not a verified steward copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotVerified {
    /// No `steward:copied-from`: not steward's, never touched.
    NotOurs,
    /// Claims to be steward's but fails a check: kept and reported.
    FailsCheck(String),
}

/// Checks a snapshot in the DR region against the real state: a manual
/// snapshot in the DR region, its identifier derived from its
/// `steward:copied-from`, the source fields AWS returns naming that source,
/// and a creation time from RDS (never a tag). `source_times` holds the
/// creation time of source snapshots by lower-case ARN.
pub fn verify(
    copy: &Snapshot,
    dr_region: &str,
    source_times: &HashMap<String, DateTime<Utc>>,
) -> Result<VerifiedCopy, NotVerified> {
    let fail = |why: String| Err(NotVerified::FailsCheck(why));
    let Some(from) = copy.tags.get(tags::COPIED_FROM) else {
        return Err(NotVerified::NotOurs);
    };
    if !copy.is_manual() {
        return fail(format!(
            "it is a {} snapshot, not a manual copy",
            copy.snapshot_type
        ));
    }
    if copy.region != dr_region {
        return fail(format!(
            "it is in {}, not the DR region {dr_region}",
            copy.region
        ));
    }
    let Some(source) = parse_snapshot_arn(from) else {
        return fail(format!(
            "steward:copied-from={from:?} is not an RDS snapshot ARN"
        ));
    };
    if source.kind != copy.kind {
        return fail(format!(
            "steward:copied-from names a {} snapshot",
            source.kind
        ));
    }
    if target_identifier(from) != copy.id {
        return fail(
            "its identifier is not the one steward derives from its steward:copied-from".into(),
        );
    }
    if let Some(field) = &copy.source {
        let names_source =
            field.eq_ignore_ascii_case(from) || field.eq_ignore_ascii_case(&source.id);
        if !names_source {
            return fail(format!("RDS says its source is {field}, not {from}"));
        }
    }
    if let Some(region) = &copy.source_region {
        if region != &source.region {
            return fail(format!(
                "RDS says its source region is {region}, not {}",
                source.region
            ));
        }
    }
    let time = match copy.kind {
        Kind::Instance => copy.original_created,
        // Clusters have no OriginalSnapshotCreateTime: the source's own time
        // while the source exists, else the copy's (never earlier).
        Kind::Cluster => copy
            .source
            .as_ref()
            .and_then(|s| source_times.get(&s.to_ascii_lowercase()).copied())
            .or(copy.created),
    };
    let Some(source_time) = time else {
        return fail("RDS returned no creation time for it".into());
    };
    Ok(VerifiedCopy {
        database: DatabaseKey {
            account: source.account.clone(),
            region: source.region.clone(),
            kind: copy.kind,
            id: copy.database.clone(),
        },
        source_arn: from.clone(),
        source_time,
        class: source_class("", &source.id),
        snapshot: copy.clone(),
    })
}

/// What retention found and decided in the DR region.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RetentionPlan {
    /// Expired copies to delete, with the reason.
    pub delete: Vec<(VerifiedCopy, String)>,
    /// Verified copies per database, oldest first, classes resolved (monthly marked).
    pub copies: BTreeMap<DatabaseKey, Vec<VerifiedCopy>>,
    /// Expired copies kept because they are the newest (available) of their database.
    pub kept_newest: Vec<VerifiedCopy>,
    /// Snapshots that claim to be steward's but fail a check: kept, reported.
    pub failed_checks: Vec<(Snapshot, String)>,
    /// Snapshots in the DR region steward did not make: never touched.
    pub not_ours: usize,
}

/// Decides which DR copies expire. Never deleted: a snapshot that fails a
/// check, anything steward did not make, a copy not `available`, the
/// newest copy of a database and its newest available copy.
pub fn retention(
    dr_snapshots: &[Snapshot],
    source_times: &HashMap<String, DateTime<Utc>>,
    cfg: &Snapshots,
    now: DateTime<Utc>,
) -> RetentionPlan {
    let mut plan = RetentionPlan::default();
    for snapshot in dr_snapshots {
        match verify(snapshot, &cfg.dr_region, source_times) {
            Ok(copy) => plan
                .copies
                .entry(copy.database.clone())
                .or_default()
                .push(copy),
            Err(NotVerified::NotOurs) => plan.not_ours += 1,
            Err(NotVerified::FailsCheck(why)) => plan.failed_checks.push((snapshot.clone(), why)),
        }
    }
    for copies in plan.copies.values_mut() {
        copies
            .sort_by(|a, b| (a.source_time, &a.snapshot.id).cmp(&(b.source_time, &b.snapshot.id)));
        let mut months_seen = std::collections::HashSet::new();
        for copy in copies.iter_mut() {
            if copy.class == Class::Daily {
                let month = (copy.source_time.year(), copy.source_time.month());
                if months_seen.insert(month) {
                    copy.class = Class::Monthly;
                }
            }
        }
        let newest = copies.last().map(|c| c.snapshot.id.clone());
        let newest_available = copies
            .iter()
            .rev()
            .find(|c| c.snapshot.is_available())
            .map(|c| c.snapshot.id.clone());
        for copy in copies.iter() {
            let expires = expiry(copy.class, copy.source_time, cfg);
            if expires > now || !copy.snapshot.is_available() {
                continue;
            }
            let protected = Some(&copy.snapshot.id) == newest.as_ref()
                || Some(&copy.snapshot.id) == newest_available.as_ref();
            if protected {
                plan.kept_newest.push(copy.clone());
            } else {
                let why = format!(
                    "{} copy of a snapshot taken {}, kept until {}",
                    copy.class.as_str(),
                    copy.source_time.to_rfc3339(),
                    expires.to_rfc3339()
                );
                plan.delete.push((copy.clone(), why));
            }
        }
    }
    plan
}

/// One database's recovery point in the DR region.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecoveryPoint {
    pub database: DatabaseKey,
    /// The newest available DR copy.
    pub newest_copy: Option<String>,
    /// When its source was taken (the recovery point).
    pub recovery_point: Option<DateTime<Utc>>,
    pub age_hours: Option<i64>,
    pub past_rpo: bool,
    /// False when the database is gone (its last copies are kept).
    pub database_exists: bool,
}

/// The recovery point of every in-scope database, and of every gone
/// database that still has copies. A database without any available copy,
/// or whose newest is older than `rpo_hours`, is past its RPO.
pub fn recovery_points(
    in_scope: &[DatabaseKey],
    copies: &BTreeMap<DatabaseKey, Vec<VerifiedCopy>>,
    rpo_hours: u32,
    now: DateTime<Utc>,
) -> Vec<RecoveryPoint> {
    let mut keys: Vec<(DatabaseKey, bool)> = in_scope.iter().map(|k| (k.clone(), true)).collect();
    for key in copies.keys() {
        if !in_scope.contains(key) {
            keys.push((key.clone(), false));
        }
    }
    keys.sort();
    keys.into_iter()
        .map(|(key, exists)| {
            let newest = copies.get(&key).and_then(|c| {
                c.iter()
                    .filter(|c| c.snapshot.is_available())
                    .max_by_key(|c| c.source_time)
            });
            let age_hours = newest.map(|c| (now - c.source_time).num_hours());
            let past_rpo = exists && age_hours.is_none_or(|h| h >= i64::from(rpo_hours));
            RecoveryPoint {
                newest_copy: newest.map(|c| c.snapshot.id.clone()),
                recovery_point: newest.map(|c| c.source_time),
                age_hours,
                past_rpo,
                database_exists: exists,
                database: key,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_shared::testing::tags as tag_map;

    const ACCOUNT: &str = "123456789012";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cfg() -> Snapshots {
        Snapshots {
            dr_region: "us-west-2".into(),
            dr_kms_key: "alias/dr".into(),
            ..Snapshots::default()
        }
    }

    fn source(id: &str, kind: Kind, created: &str) -> Snapshot {
        Snapshot {
            kind,
            id: id.into(),
            arn: format!(
                "arn:aws:rds:us-east-1:{ACCOUNT}:{}:{id}",
                kind.arn_resource()
            ),
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
            database: "orders".into(),
            snapshot_type: if id.starts_with("rds:") {
                "automated"
            } else {
                "manual"
            }
            .into(),
            status: "available".into(),
            encrypted: true,
            created: Some(at(created)),
            original_created: Some(at(created)).filter(|_| kind == Kind::Instance),
            source: None,
            source_region: None,
            tags: tag_map(&[
                ("env", "prod"),
                ("steward:exempt", "true"),
                ("team", "data"),
            ]),
        }
    }

    fn copy_of(src: &Snapshot) -> Snapshot {
        let mut c = src.clone();
        c.id = target_identifier(&src.arn);
        c.region = "us-west-2".into();
        c.arn = format!(
            "arn:aws:rds:us-west-2:{ACCOUNT}:{}:{}",
            src.kind.arn_resource(),
            c.id
        );
        c.snapshot_type = "manual".into();
        c.tags = copy_tags(src, Class::Daily, source_time(src).unwrap())
            .into_iter()
            .collect();
        c
    }

    #[test]
    fn target_identifiers_are_valid_deterministic_and_distinct() {
        let a = target_identifier(
            "arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-2026-12-01-03-10",
        );
        assert_eq!(
            a,
            target_identifier(
                "arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-2026-12-01-03-10"
            )
        );
        assert!(a.starts_with("dr-orders-2026-12-01-03-10-"), "{a}");
        let other_account = target_identifier(
            "arn:aws:rds:us-east-1:111111111111:snapshot:rds:orders-2026-12-01-03-10",
        );
        assert_ne!(a, other_account);
        let long = target_identifier(&format!(
            "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{}--x_",
            "a".repeat(300)
        ));
        for id in [a, long] {
            assert!(id.len() <= 63, "{id}");
            assert!(id.starts_with(|c: char| c.is_ascii_lowercase()));
            assert!(!id.ends_with('-') && !id.contains("--"), "{id}");
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        }
    }

    #[test]
    fn an_automated_prod_snapshot_is_copied_with_the_four_tags_and_never_the_exempt_tag() {
        let src = source(
            "rds:orders-2026-12-01-03-10",
            Kind::Instance,
            "2026-12-01T03:10:00Z",
        );
        let Decision::Copy(order) = decide(
            &src,
            Some(&tag_map(&[("env", "prod")])),
            false,
            &cfg(),
            at("2026-12-01T04:00:00Z"),
        ) else {
            panic!("expected a copy");
        };
        assert_eq!(order.class, Class::Daily);
        assert_eq!(order.kms_key, "alias/dr");
        let tags: TagMap = order.tags.into_iter().collect();
        assert_eq!(tags.get("steward:copied-from"), Some(&src.arn));
        assert_eq!(
            tags.get("steward:source-created").map(String::as_str),
            Some("2026-12-01T03:10:00Z")
        );
        assert_eq!(
            tags.get("steward:retention").map(String::as_str),
            Some("daily")
        );
        assert_eq!(
            tags.get("steward:managed").map(String::as_str),
            Some("true")
        );
        assert_eq!(tags.get("team").map(String::as_str), Some("data"));
        assert!(!tags.contains_key("steward:exempt"));
    }

    #[test]
    fn scope_loops_age_and_encryption() {
        let now = at("2026-12-01T04:00:00Z");
        let src = source(
            "rds:orders-2026-12-01-03-10",
            Kind::Instance,
            "2026-12-01T03:10:00Z",
        );
        // A dev database is out of scope, whatever the snapshot says.
        let dev = decide(&src, Some(&tag_map(&[("env", "dev")])), false, &cfg(), now);
        assert!(matches!(dev, Decision::Ignore(ref why) if why.contains("env=dev")));
        // The database is gone: the snapshot's env decides.
        assert!(matches!(
            decide(&src, None, false, &cfg(), now),
            Decision::Copy(_)
        ));
        // An existing copy is found, not made again.
        assert!(matches!(
            decide(&src, None, true, &cfg(), now),
            Decision::Present { .. }
        ));
        // Copies and the DR region are never sources.
        let copy = copy_of(&src);
        let mut copy_elsewhere = copy.clone();
        copy_elsewhere.region = "us-east-1".into();
        assert!(
            matches!(decide(&copy_elsewhere, None, false, &cfg(), now), Decision::Ignore(ref w) if w.contains("DR copy"))
        );
        assert!(
            matches!(decide(&copy, None, false, &cfg(), now), Decision::Ignore(ref w) if w.contains("DR region"))
        );
        // A tag alone does not make a snapshot a copy.
        let mut tagged = src.clone();
        tagged.tags.insert(
            "steward:copied-from".into(),
            "arn:aws:rds:us-east-1:123456789012:snapshot:x".into(),
        );
        assert!(matches!(
            decide(&tagged, None, false, &cfg(), now),
            Decision::Copy(_)
        ));
        // Older than its retention: never copied again.
        let old = decide(&src, None, false, &cfg(), at("2026-12-09T04:00:00Z"));
        assert!(matches!(old, Decision::Ignore(ref w) if w.contains("retention")));
        // Unencrypted: instances are encrypted on copy, clusters refused.
        let mut plain = src.clone();
        plain.encrypted = false;
        assert!(
            matches!(decide(&plain, None, false, &cfg(), now), Decision::Copy(ref o) if o.encrypts)
        );
        let mut cluster = source("rds:shop-2026-12-01", Kind::Cluster, "2026-12-01T03:10:00Z");
        cluster.encrypted = false;
        assert!(matches!(
            decide(&cluster, None, false, &cfg(), now),
            Decision::Refuse { .. }
        ));
    }

    #[test]
    fn admission_respects_the_cap_the_aws_limit_and_the_quota() {
        let now = at("2026-12-01T04:00:00Z");
        let orders: Vec<CopyOrder> = (0..4)
            .map(|i| {
                let src = source(
                    &format!("rds:db{i}-2026-12-01"),
                    Kind::Instance,
                    &format!("2026-12-01T0{i}:00:00Z"),
                );
                match decide(&src, None, false, &cfg(), now) {
                    Decision::Copy(o) => *o,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        let mut c = cfg();
        c.max_copies_in_flight = 3;
        let a = admit(
            orders.clone(),
            Capacity {
                in_flight: 1,
                manual_snapshots: 0,
            },
            &c,
        );
        assert_eq!(
            (a.start.len(), a.wait.len(), a.quota_reached),
            (2, 2, false)
        );
        assert_eq!(a.start[0].source.id, "rds:db3-2026-12-01", "newest first");
        c.max_copies_in_flight = 500;
        let a = admit(
            orders.clone(),
            Capacity {
                in_flight: 18,
                manual_snapshots: 0,
            },
            &c,
        );
        assert_eq!(a.start.len(), 2, "AWS's own limit applies");
        let a = admit(
            orders,
            Capacity {
                in_flight: 0,
                manual_snapshots: 99,
            },
            &cfg(),
        );
        assert_eq!((a.start.len(), a.wait.len(), a.quota_reached), (1, 3, true));
    }

    #[test]
    fn retention_prunes_expired_dailies_and_keeps_monthly_newest_and_foreign() {
        let now = at("2026-12-20T00:00:00Z");
        let days = ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-19"];
        let mut dr: Vec<Snapshot> = days
            .iter()
            .map(|d| {
                copy_of(&source(
                    &format!("rds:orders-{d}"),
                    Kind::Instance,
                    &format!("{d}T03:00:00Z"),
                ))
            })
            .collect();
        let mut foreign = dr[1].clone();
        foreign.id = "someone-elses".into();
        foreign.tags.clear();
        dr.push(foreign);
        let plan = retention(&dr, &HashMap::new(), &cfg(), now);
        let deleted: Vec<&str> = plan
            .delete
            .iter()
            .map(|(c, _)| c.snapshot.source.as_deref().unwrap_or(&c.source_arn))
            .collect();
        assert_eq!(plan.delete.len(), 2, "{deleted:?}");
        assert!(plan.delete.iter().all(|(c, _)| c.class == Class::Daily));
        assert_eq!(plan.not_ours, 1);
        let copies = plan.copies.values().next().unwrap();
        assert_eq!(
            copies[0].class,
            Class::Monthly,
            "the first copy of December is the monthly one"
        );
        // Everything expired: the newest is still kept.
        let plan = retention(&dr, &HashMap::new(), &cfg(), at("2027-06-01T00:00:00Z"));
        assert_eq!(plan.kept_newest.len(), 1);
        assert!(plan.delete.iter().all(|(c, _)| c.snapshot.id != dr[3].id));
    }

    #[test]
    fn retention_never_deletes_a_copy_that_fails_a_check() {
        let now = at("2028-01-01T00:00:00Z");
        let src = source(
            "rds:orders-2026-12-01",
            Kind::Instance,
            "2026-12-01T03:00:00Z",
        );
        let good = copy_of(&src);
        let mut renamed = copy_of(&source(
            "rds:orders-2026-12-02",
            Kind::Instance,
            "2026-12-02T03:00:00Z",
        ));
        renamed.id = "dr-prod-important".into();
        let mut wrong_source = copy_of(&source(
            "rds:orders-2026-12-03",
            Kind::Instance,
            "2026-12-03T03:00:00Z",
        ));
        wrong_source.source = Some("arn:aws:rds:us-east-1:123456789012:snapshot:other".into());
        let mut automated = copy_of(&source(
            "rds:orders-2026-12-04",
            Kind::Instance,
            "2026-12-04T03:00:00Z",
        ));
        automated.snapshot_type = "automated".into();
        let mut no_time = copy_of(&source(
            "rds:orders-2026-12-05",
            Kind::Instance,
            "2026-12-05T03:00:00Z",
        ));
        no_time.original_created = None;
        let newer = copy_of(&source(
            "rds:orders-2027-12-31",
            Kind::Instance,
            "2027-12-31T03:00:00Z",
        ));
        let plan = retention(
            &[
                good.clone(),
                renamed,
                wrong_source,
                automated,
                no_time,
                newer,
            ],
            &HashMap::new(),
            &cfg(),
            now,
        );
        assert_eq!(plan.failed_checks.len(), 4, "{:?}", plan.failed_checks);
        assert_eq!(plan.delete.len(), 1);
        assert_eq!(plan.delete[0].0.snapshot.id, good.id);
    }

    #[test]
    fn cluster_copies_age_from_the_source_while_it_exists() {
        let src = source("shop-release", Kind::Cluster, "2026-08-01T00:00:00Z");
        let mut copy = copy_of(&src);
        copy.created = Some(at("2026-11-30T00:00:00Z"));
        copy.source = Some(src.arn.clone());
        let times = HashMap::from([(src.arn.to_ascii_lowercase(), at("2026-08-01T00:00:00Z"))]);
        let v = verify(&copy, "us-west-2", &times).unwrap();
        assert_eq!(v.source_time, at("2026-08-01T00:00:00Z"));
        assert_eq!(v.class, Class::Manual);
        let v = verify(&copy, "us-west-2", &HashMap::new()).unwrap();
        assert_eq!(
            v.source_time,
            at("2026-11-30T00:00:00Z"),
            "the copy's own time, never a tag"
        );
    }

    #[test]
    fn recovery_points_flag_databases_past_the_rpo() {
        let now = at("2026-12-03T00:00:00Z");
        let fresh = copy_of(&source(
            "rds:orders-2026-12-02",
            Kind::Instance,
            "2026-12-02T12:00:00Z",
        ));
        let plan = retention(&[fresh], &HashMap::new(), &cfg(), now);
        let orders = plan.copies.keys().next().unwrap().clone();
        let billing = DatabaseKey {
            id: "billing".into(),
            ..orders.clone()
        };
        let rows = recovery_points(&[orders.clone(), billing.clone()], &plan.copies, 24, now);
        let row = |k: &DatabaseKey| rows.iter().find(|r| &r.database == k).unwrap().clone();
        assert_eq!(row(&orders).age_hours, Some(12));
        assert!(!row(&orders).past_rpo);
        assert!(row(&billing).past_rpo, "no copy at all is past the RPO");
        let later = recovery_points(
            std::slice::from_ref(&orders),
            &plan.copies,
            24,
            at("2026-12-04T00:00:00Z"),
        );
        assert!(later[0].past_rpo);
        let gone = recovery_points(&[], &plan.copies, 24, at("2026-12-04T00:00:00Z"));
        assert!(!gone[0].database_exists && !gone[0].past_rpo);
    }

    #[test]
    fn arns_parse_strictly() {
        assert!(
            parse_snapshot_arn("arn:aws:rds:us-east-1:123456789012:snapshot:rds:a-b").is_some()
        );
        assert_eq!(
            parse_snapshot_arn("arn:aws:rds:us-east-1:123456789012:snapshot:rds:a")
                .unwrap()
                .id,
            "rds:a"
        );
        for bad in [
            "",
            "arn:aws:rds",
            "arn:aws:ec2:us-east-1:123456789012:snapshot:x",
            "arn:aws:rds:us-east-1:12:snapshot:x",
            "arn:aws:rds:us-east-1:123456789012:db:x",
        ] {
            assert!(parse_snapshot_arn(bad).is_none(), "{bad}");
        }
    }
}
