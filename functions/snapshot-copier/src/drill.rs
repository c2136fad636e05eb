//! The DR restore drill as pure decisions (`now` passed in, no SDK types):
//! which DR copy to restore, the restore request, and one step of the drill
//! per check. A drill restores the newest available DR copy of a database
//! into a throwaway database in the DR region (Aurora: a cluster plus one
//! instance), waits for it across checks (a restore can take longer than a
//! Lambda may run), verifies engine, engine version and storage against the
//! copy, deletes it and reports the time to restore against the RTO.
//!
//! States: `Restoring` (pending: keep waiting; available: verify, then
//! delete; failed, missing or never available: delete what exists and
//! report HIGH) -> `Deleting` (the member instance first, then the cluster
//! or instance; gone: report) -> `Reported`.
//!
//! The time to restore is measured from the restore call to the first check
//! that observed `available`, so it is accurate to the check interval: the
//! restore finished after the last check that saw it pending.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use steward_shared::policy::Snapshots;
use steward_shared::tags;

use crate::model::{DatabaseKey, Kind};
use crate::plan::VerifiedCopy;

/// Every drill database's identifier starts with this.
pub const DRILL_PREFIX: &str = "steward-drill-";
/// The tag naming the drill a throwaway database belongs to (SPEC section 4).
pub const DRILL_TAG: &str = "steward:drill";
/// How often the scheduled `dr-drill` job checks an open drill (seconds).
pub const CHECK_EVERY_SECONDS: i64 = 15 * 60;
/// A database is drilled again when its last drill is older than this.
pub const QUARTER_DAYS: i64 = 91;
/// A restore not available after this long is given up (deleted, HIGH).
pub const GIVE_UP_HOURS: i64 = 24;

/// Statuses in which a restore has failed for good.
const FAILED_STATUSES: [&str; 9] = [
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-credentials",
    "storage-full",
    "inaccessible-encryption-credentials",
    "restore-error",
];

/// The DR copy a drill restores, as RDS describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyFacts {
    pub kind: Kind,
    pub id: String,
    pub arn: String,
    pub engine: String,
    pub engine_version: String,
    /// GiB (instance snapshots; Aurora reports no meaningful size).
    pub allocated_storage: i32,
    pub encrypted: bool,
}

/// Where a drill is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrillState {
    /// The restore was requested (or is about to be): waiting for `available`.
    Restoring,
    /// Verified or failed: the throwaway database is being deleted.
    Deleting,
    /// Deleted and reported: closed.
    Reported,
}

/// A drill as recorded in the idempotency table, before the restore call
/// and after every check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    pub drill_id: String,
    pub database: DatabaseKey,
    pub dr_region: String,
    pub copy: CopyFacts,
    /// The restored instance, or the restored Aurora cluster.
    pub restored_id: String,
    /// The Aurora cluster's one instance.
    pub member_id: Option<String>,
    /// When the restore was called.
    pub restore_called: DateTime<Utc>,
    /// The last check that saw the restore not yet available.
    pub last_pending: Option<DateTime<Utc>>,
    /// The first check that saw it available.
    pub available_at: Option<DateTime<Utc>>,
    pub state: DrillState,
    /// True when the restore failed or its verification found a mismatch.
    pub failed: bool,
    /// What failed or did not match, for the report.
    pub problems: Vec<String>,
    /// Seconds between checks, for the accuracy of the time to restore.
    pub check_every_seconds: i64,
}

impl DrillRecord {
    pub fn is_open(&self) -> bool {
        self.state != DrillState::Reported
    }

    /// The identifiers the drill created (cluster and member, or instance).
    pub fn identifiers(&self) -> Vec<&str> {
        let mut ids = vec![self.restored_id.as_str()];
        ids.extend(self.member_id.as_deref());
        ids
    }
}

/// The drill's id: the start time and a hash of the database and the run
/// that started it (a retried run finds the same drill), lower-case letters,
/// digits and hyphens, so `steward-drill-<id>` is a valid RDS identifier.
pub fn drill_id(database: &DatabaseKey, run_id: &str, now: DateTime<Utc>) -> String {
    let seed = format!(
        "{}/{}/{}/{}#{run_id}",
        database.account, database.region, database.kind, database.id
    );
    let hash: String = Sha256::digest(seed.as_bytes())
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{hash}", now.format("%Y%m%d%H%M"))
}

/// True when `id` could be a drill id (as read back from a tag).
pub fn is_drill_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 40
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The newest available verified DR copy of a database.
pub fn choose_copy(copies: &[VerifiedCopy]) -> Option<&VerifiedCopy> {
    copies
        .iter()
        .filter(|c| c.snapshot.is_available())
        .max_by(|a, b| (a.source_time, &a.snapshot.id).cmp(&(b.source_time, &b.snapshot.id)))
}

/// True when the database is due a drill: never drilled, or its last drill
/// was started more than a quarter ago.
pub fn is_due(last: Option<&DrillRecord>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|r| !r.is_open() && now - r.restore_called > Duration::days(QUARTER_DAYS))
}

/// What the adapter asks RDS for.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreRequest {
    pub kind: Kind,
    /// The DR copy's identifier (in the DR region).
    pub copy_id: String,
    pub engine: String,
    pub identifier: String,
    /// Aurora: the instance created in the restored cluster.
    pub member: Option<String>,
    pub instance_class: String,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    /// Always false: a drill database is never reachable from the internet.
    pub publicly_accessible: bool,
    pub tags: Vec<(String, String)>,
}

/// The record of a new drill (to be written before the restore call) and
/// its restore request.
pub fn plan_drill(
    database: &DatabaseKey,
    copy: CopyFacts,
    drill_id: &str,
    cfg: &Snapshots,
    check_every_seconds: i64,
    now: DateTime<Utc>,
) -> (DrillRecord, RestoreRequest) {
    let identifier = format!("{DRILL_PREFIX}{drill_id}");
    let member = (copy.kind == Kind::Cluster).then(|| format!("{identifier}-1"));
    let instance_class = match copy.kind {
        Kind::Instance => cfg.drill_instance_class.clone(),
        Kind::Cluster => cfg.drill_aurora_instance_class.clone(),
    };
    let request = RestoreRequest {
        kind: copy.kind,
        copy_id: copy.id.clone(),
        engine: copy.engine.clone(),
        identifier: identifier.clone(),
        member: member.clone(),
        instance_class,
        subnet_group: Some(cfg.drill_subnet_group.trim().to_string()).filter(|s| !s.is_empty()),
        security_groups: cfg.drill_security_groups.clone(),
        publicly_accessible: false,
        tags: vec![
            (tags::MANAGED.to_string(), "true".to_string()),
            (DRILL_TAG.to_string(), drill_id.to_string()),
        ],
    };
    let record = DrillRecord {
        drill_id: drill_id.to_string(),
        database: database.clone(),
        dr_region: cfg.dr_region.clone(),
        copy,
        restored_id: identifier,
        member_id: member,
        restore_called: now,
        last_pending: None,
        available_at: None,
        state: DrillState::Restoring,
        failed: false,
        problems: Vec::new(),
        check_every_seconds,
    };
    (record, request)
}

/// The restored database as one check observes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub status: String,
    pub engine: String,
    pub engine_version: String,
    pub allocated_storage: i32,
    pub encrypted: bool,
    pub publicly_accessible: bool,
}

/// What one check saw: the restored instance or cluster, and for Aurora the
/// status of its member instance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seen {
    pub primary: Option<Restored>,
    pub member: Option<String>,
}

/// What the check does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing now: the next check goes on.
    Wait,
    /// Delete the Aurora member instance.
    DeleteMember,
    /// Delete the restored instance or cluster.
    DeletePrimary,
    /// Everything is gone: send the report.
    Report,
}

fn is_failed(status: &str) -> bool {
    FAILED_STATUSES.contains(&status)
}

/// Differences between the restored database and the copy it came from.
pub fn verify(copy: &CopyFacts, restored: &Restored) -> Vec<String> {
    let mut problems = Vec::new();
    if !restored.engine.eq_ignore_ascii_case(&copy.engine) {
        problems.push(format!(
            "engine {} differs from the copy's {}",
            restored.engine, copy.engine
        ));
    }
    if restored.engine_version != copy.engine_version {
        problems.push(format!(
            "engine version {} differs from the copy's {}",
            restored.engine_version, copy.engine_version
        ));
    }
    // Aurora storage grows on demand: its reported size says nothing.
    if copy.kind == Kind::Instance && restored.allocated_storage < copy.allocated_storage {
        problems.push(format!(
            "allocated storage {} GiB is less than the copy's {} GiB",
            restored.allocated_storage, copy.allocated_storage
        ));
    }
    if restored.encrypted != copy.encrypted {
        problems.push(format!(
            "storage encrypted={} but the copy is encrypted={}",
            restored.encrypted, copy.encrypted
        ));
    }
    if restored.publicly_accessible {
        problems.push("the drill database is publicly accessible".into());
    }
    problems
}

fn fail(record: &mut DrillRecord, why: String) {
    record.failed = true;
    record.problems.push(why);
    record.state = DrillState::Deleting;
}

/// One step of the drill for what a check saw at `now`; updates the record.
pub fn step(record: &mut DrillRecord, seen: &Seen, now: DateTime<Utc>) -> Next {
    if record.state == DrillState::Restoring {
        let member_ready =
            record.member_id.is_none() || seen.member.as_deref() == Some("available");
        match &seen.primary {
            None => fail(
                record,
                format!(
                    "the restored database {} does not exist: the restore call failed or it was deleted",
                    record.restored_id
                ),
            ),
            Some(p) if is_failed(&p.status) => fail(
                record,
                format!("the restore ended in status {}", p.status),
            ),
            Some(p) if record.member_id.is_some() && seen.member.as_deref().is_some_and(is_failed) => {
                let status = seen.member.clone().unwrap_or_default();
                let _ = p;
                fail(record, format!("the Aurora instance ended in status {status}"))
            }
            Some(p) if record.member_id.is_some() && seen.member.is_none() && p.status == "available" => fail(
                record,
                "the restored Aurora cluster has no drill instance (its creation failed)".into(),
            ),
            Some(p) if p.status == "available" && member_ready => {
                record.available_at = Some(now);
                let problems = verify(&record.copy, p);
                if !problems.is_empty() {
                    record.failed = true;
                    record.problems.extend(problems);
                }
                record.state = DrillState::Deleting;
            }
            Some(_) => {
                if now - record.restore_called > Duration::hours(GIVE_UP_HOURS) {
                    fail(
                        record,
                        format!("not available {GIVE_UP_HOURS} h after the restore call; given up"),
                    );
                } else {
                    record.last_pending = Some(now);
                    return Next::Wait;
                }
            }
        }
    }
    if record.state == DrillState::Deleting {
        if let Some(member) = &seen.member {
            return if member == "deleting" {
                Next::Wait
            } else {
                Next::DeleteMember
            };
        }
        if let Some(primary) = &seen.primary {
            return if primary.status == "deleting" {
                Next::Wait
            } else {
                Next::DeletePrimary
            };
        }
        record.state = DrillState::Reported;
    }
    Next::Report
}

/// The measured time to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// From the restore call to the first check that saw it available.
    pub minutes: i64,
    /// From the restore call to the last check that saw it pending (the
    /// restore finished between the two).
    pub earliest_minutes: i64,
    pub rto_minutes: u32,
    pub within_rto: bool,
}

/// The time to restore against the RTO, once the drill saw `available`.
pub fn timing(record: &DrillRecord, rto_minutes: u32) -> Option<Timing> {
    let available = record.available_at?;
    let minutes = (available - record.restore_called)
        .num_seconds()
        .div_euclid(60);
    let earliest = record
        .last_pending
        .map(|t| (t - record.restore_called).num_seconds().div_euclid(60))
        .unwrap_or(0);
    Some(Timing {
        minutes,
        earliest_minutes: earliest,
        rto_minutes,
        within_rto: minutes <= i64::from(rto_minutes),
    })
}

/// True when the drill passed: restored, verified, within the RTO and deleted.
pub fn passed(record: &DrillRecord, rto_minutes: u32) -> bool {
    record.state == DrillState::Reported
        && !record.failed
        && timing(record, rto_minutes).is_some_and(|t| t.within_rto)
}

/// A database in the DR region that carries the drill tag or prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillCandidate {
    pub kind: Kind,
    pub id: String,
    pub account: String,
    pub region: String,
    /// Its `steward:drill` value, when it has one.
    pub drill_tag: Option<String>,
}

/// What the sweep does with a drill-like database.
#[derive(Debug, Clone, PartialEq)]
pub enum Leftover {
    /// A recorded drill's database: the sweep checks the drill (and so
    /// deletes and reports it).
    Recorded,
    /// Anything else: reported, never deleted.
    Report(String),
}

/// Decides from the real state and the record written before the restore,
/// never from the tags alone: the identifier has the drill prefix and is one
/// the record names, its `steward:drill` value names that record, and it is
/// in the DR region (the record's and the policy's) of the record's account.
pub fn judge_leftover(
    candidate: &DrillCandidate,
    record: Option<&DrillRecord>,
    dr_region: &str,
) -> Leftover {
    let report = |why: &str| {
        Leftover::Report(format!(
            "{} {} in {}/{} carries the drill tags but {why}; not deleted",
            candidate.kind, candidate.id, candidate.account, candidate.region
        ))
    };
    if !candidate.id.starts_with(DRILL_PREFIX) {
        return report("its identifier has no steward-drill- prefix");
    }
    let Some(tag) = candidate.drill_tag.as_deref().filter(|t| is_drill_id(t)) else {
        return report("its steward:drill tag is missing or malformed");
    };
    let Some(record) = record else {
        return report(&format!("no drill {tag} was recorded"));
    };
    if record.drill_id != tag {
        return report("its steward:drill value names another drill");
    }
    if !record.identifiers().contains(&candidate.id.as_str()) {
        return report(&format!("drill {tag} restored another database"));
    }
    if candidate.region != dr_region || record.dr_region != dr_region {
        return report("it is not in the DR region");
    }
    if candidate.account != record.database.account {
        return report(&format!("drill {tag} ran in another account"));
    }
    Leftover::Recorded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cfg() -> Snapshots {
        Snapshots {
            dr_region: "us-west-2".into(),
            dr_kms_key: "alias/dr".into(),
            drill_subnet_group: "drill-subnets".into(),
            drill_security_groups: vec!["sg-0123".into()],
            ..Snapshots::default()
        }
    }

    fn db(kind: Kind) -> DatabaseKey {
        DatabaseKey {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            kind,
            id: "orders".into(),
        }
    }

    fn copy(kind: Kind) -> CopyFacts {
        CopyFacts {
            kind,
            id: "dr-orders-abc".into(),
            arn: "arn:aws:rds:us-west-2:123456789012:snapshot:dr-orders-abc".into(),
            engine: if kind == Kind::Instance {
                "postgres"
            } else {
                "aurora-postgresql"
            }
            .into(),
            engine_version: "16.3".into(),
            allocated_storage: 50,
            encrypted: true,
        }
    }

    fn restored(status: &str, kind: Kind) -> Restored {
        let c = copy(kind);
        Restored {
            status: status.into(),
            engine: c.engine,
            engine_version: c.engine_version,
            allocated_storage: if kind == Kind::Instance { 50 } else { 1 },
            encrypted: true,
            publicly_accessible: false,
        }
    }

    fn started(kind: Kind) -> DrillRecord {
        plan_drill(
            &db(kind),
            copy(kind),
            "202612011200-abcdef0123",
            &cfg(),
            900,
            at("2026-12-01T12:00:00Z"),
        )
        .0
    }

    fn seen(status: &str) -> Seen {
        Seen {
            primary: Some(restored(status, Kind::Instance)),
            member: None,
        }
    }

    #[test]
    fn the_request_is_small_private_tagged_and_placed_by_the_policy() {
        let (record, request) = plan_drill(
            &db(Kind::Instance),
            copy(Kind::Instance),
            "202612011200-abcdef0123",
            &cfg(),
            900,
            at("2026-12-01T12:00:00Z"),
        );
        assert_eq!(request.identifier, "steward-drill-202612011200-abcdef0123");
        assert_eq!(record.restored_id, request.identifier);
        assert_eq!(request.instance_class, "db.t4g.micro");
        assert!(!request.publicly_accessible);
        assert_eq!(request.subnet_group.as_deref(), Some("drill-subnets"));
        assert_eq!(request.security_groups, vec!["sg-0123".to_string()]);
        assert!(request
            .tags
            .contains(&("steward:managed".into(), "true".into())));
        assert!(request
            .tags
            .contains(&("steward:drill".into(), "202612011200-abcdef0123".into())));
        assert_eq!(request.member, None);
        assert_eq!(record.state, DrillState::Restoring);
        assert!(record.is_open());
    }

    #[test]
    fn aurora_restores_a_cluster_and_one_instance_of_the_aurora_class() {
        let (record, request) = plan_drill(
            &db(Kind::Cluster),
            copy(Kind::Cluster),
            "202612011200-abcdef0123",
            &cfg(),
            900,
            at("2026-12-01T12:00:00Z"),
        );
        assert_eq!(
            request.member.as_deref(),
            Some("steward-drill-202612011200-abcdef0123-1")
        );
        assert_eq!(request.instance_class, "db.t4g.medium");
        assert_eq!(record.identifiers().len(), 2);
    }

    #[test]
    fn drill_ids_are_stable_per_run_and_valid_identifiers() {
        let now = at("2026-12-01T12:00:00Z");
        let a = drill_id(&db(Kind::Instance), "run-1", now);
        assert_eq!(a, drill_id(&db(Kind::Instance), "run-1", now));
        assert_ne!(a, drill_id(&db(Kind::Instance), "run-2", now));
        assert!(is_drill_id(&a));
        let identifier = format!("{DRILL_PREFIX}{a}");
        assert!(identifier.len() <= 63 && !identifier.contains("--"));
        assert!(!is_drill_id("Bad Id"));
        assert!(!is_drill_id(""));
    }

    #[test]
    fn pending_keeps_waiting_and_remembers_the_check() {
        let mut r = started(Kind::Instance);
        let t = at("2026-12-01T12:15:00Z");
        assert_eq!(step(&mut r, &seen("creating"), t), Next::Wait);
        assert_eq!(r.last_pending, Some(t));
        assert_eq!(r.state, DrillState::Restoring);
    }

    #[test]
    fn available_and_matching_is_deleted_then_reported_as_passed() {
        let mut r = started(Kind::Instance);
        step(&mut r, &seen("creating"), at("2026-12-01T12:15:00Z"));
        let t = at("2026-12-01T12:30:00Z");
        assert_eq!(step(&mut r, &seen("available"), t), Next::DeletePrimary);
        assert_eq!(r.available_at, Some(t));
        assert_eq!(r.state, DrillState::Deleting);
        assert!(!r.failed);
        assert_eq!(step(&mut r, &seen("deleting"), t), Next::Wait);
        assert_eq!(step(&mut r, &Seen::default(), t), Next::Report);
        assert_eq!(r.state, DrillState::Reported);
        let timing = timing(&r, 60).unwrap();
        assert_eq!((timing.earliest_minutes, timing.minutes), (15, 30));
        assert!(timing.within_rto);
        assert!(passed(&r, 60));
    }

    #[test]
    fn over_the_rto_is_not_a_pass() {
        let mut r = started(Kind::Instance);
        step(&mut r, &seen("available"), at("2026-12-01T13:15:00Z"));
        step(&mut r, &Seen::default(), at("2026-12-01T13:15:00Z"));
        let t = timing(&r, 60).unwrap();
        assert_eq!(t.minutes, 75);
        assert!(!t.within_rto);
        assert!(!passed(&r, 60));
    }

    #[test]
    fn a_verification_mismatch_fails_and_still_deletes() {
        let mut r = started(Kind::Instance);
        let mut wrong = seen("available");
        if let Some(p) = wrong.primary.as_mut() {
            p.engine_version = "15.1".into();
            p.encrypted = false;
            p.allocated_storage = 20;
            p.publicly_accessible = true;
        }
        assert_eq!(
            step(&mut r, &wrong, at("2026-12-01T12:15:00Z")),
            Next::DeletePrimary
        );
        assert!(r.failed);
        assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
        step(&mut r, &Seen::default(), at("2026-12-01T12:20:00Z"));
        assert!(!passed(&r, 60));
    }

    #[test]
    fn a_failed_restore_deletes_what_exists_and_fails() {
        let mut r = started(Kind::Instance);
        assert_eq!(
            step(
                &mut r,
                &seen("incompatible-restore"),
                at("2026-12-01T12:15:00Z")
            ),
            Next::DeletePrimary
        );
        assert!(r.failed);
        assert!(r.problems[0].contains("incompatible-restore"));
        assert_eq!(r.available_at, None);
        assert_eq!(timing(&r, 60), None);
    }

    #[test]
    fn a_missing_restore_fails_and_is_reported_at_once() {
        let mut r = started(Kind::Instance);
        assert_eq!(
            step(&mut r, &Seen::default(), at("2026-12-01T12:15:00Z")),
            Next::Report
        );
        assert!(r.failed);
        assert_eq!(r.state, DrillState::Reported);
    }

    #[test]
    fn a_restore_never_available_is_given_up() {
        let mut r = started(Kind::Instance);
        assert_eq!(
            step(&mut r, &seen("creating"), at("2026-12-02T12:01:00Z")),
            Next::DeletePrimary
        );
        assert!(r.failed);
    }

    #[test]
    fn aurora_waits_for_its_instance_then_deletes_it_before_the_cluster() {
        let mut r = started(Kind::Cluster);
        let cluster = |status: &str, member: Option<&str>| Seen {
            primary: Some(restored(status, Kind::Cluster)),
            member: member.map(str::to_string),
        };
        let t = at("2026-12-01T12:15:00Z");
        assert_eq!(
            step(&mut r, &cluster("available", Some("creating")), t),
            Next::Wait
        );
        assert_eq!(
            step(&mut r, &cluster("available", Some("available")), t),
            Next::DeleteMember
        );
        assert!(!r.failed, "{:?}", r.problems);
        assert_eq!(
            step(&mut r, &cluster("available", Some("deleting")), t),
            Next::Wait
        );
        assert_eq!(
            step(&mut r, &cluster("available", None), t),
            Next::DeletePrimary
        );
        assert_eq!(step(&mut r, &Seen::default(), t), Next::Report);
        assert!(passed(&r, 60));
    }

    #[test]
    fn aurora_without_its_instance_or_with_a_failed_one_fails() {
        let mut r = started(Kind::Cluster);
        let t = at("2026-12-01T12:15:00Z");
        let no_member = Seen {
            primary: Some(restored("available", Kind::Cluster)),
            member: None,
        };
        assert_eq!(step(&mut r, &no_member, t), Next::DeletePrimary);
        assert!(r.failed);
        let mut r = started(Kind::Cluster);
        let failed_member = Seen {
            primary: Some(restored("available", Kind::Cluster)),
            member: Some("incompatible-parameters".into()),
        };
        assert_eq!(step(&mut r, &failed_member, t), Next::DeleteMember);
        assert!(r.failed);
    }

    #[test]
    fn a_reported_drill_stays_reported() {
        let mut r = started(Kind::Instance);
        step(&mut r, &Seen::default(), at("2026-12-01T12:15:00Z"));
        assert_eq!(
            step(&mut r, &Seen::default(), at("2026-12-01T12:30:00Z")),
            Next::Report
        );
        assert_eq!(r.problems.len(), 1);
    }

    #[test]
    fn due_when_never_drilled_or_a_quarter_ago_and_closed() {
        let now = at("2026-12-01T12:00:00Z");
        assert!(is_due(None, now));
        let mut r = started(Kind::Instance);
        assert!(!is_due(Some(&r), at("2027-06-01T12:00:00Z")), "open");
        r.state = DrillState::Reported;
        assert!(!is_due(Some(&r), at("2027-01-01T12:00:00Z")));
        assert!(is_due(Some(&r), at("2027-03-15T12:00:00Z")));
    }

    fn candidate(id: &str, tag: Option<&str>, region: &str) -> DrillCandidate {
        DrillCandidate {
            kind: Kind::Instance,
            id: id.into(),
            account: "123456789012".into(),
            region: region.into(),
            drill_tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn a_leftover_is_cleaned_only_when_prefix_record_and_region_agree() {
        let r = started(Kind::Instance);
        let id = r.restored_id.clone();
        let good = candidate(&id, Some(&r.drill_id), "us-west-2");
        assert_eq!(
            judge_leftover(&good, Some(&r), "us-west-2"),
            Leftover::Recorded
        );
        for (c, record) in [
            (
                candidate("orders-copy", Some(&r.drill_id), "us-west-2"),
                Some(&r),
            ),
            (candidate(&id, None, "us-west-2"), Some(&r)),
            (candidate(&id, Some(&r.drill_id), "us-west-2"), None),
            (
                candidate(&id, Some("202612011200-ffffffffff"), "us-west-2"),
                Some(&r),
            ),
            (
                candidate("steward-drill-other", Some(&r.drill_id), "us-west-2"),
                Some(&r),
            ),
            (candidate(&id, Some(&r.drill_id), "us-east-1"), Some(&r)),
        ] {
            assert!(
                matches!(judge_leftover(&c, record, "us-west-2"), Leftover::Report(_)),
                "{c:?}"
            );
        }
        let mut other_account = good.clone();
        other_account.account = "210987654321".into();
        assert!(matches!(
            judge_leftover(&other_account, Some(&r), "us-west-2"),
            Leftover::Report(_)
        ));
    }
}
