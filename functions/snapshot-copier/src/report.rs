//! What the team reads: the HIGH alerts (DR key missing, manual-snapshot
//! quota, an unencrypted cluster snapshot that cannot be copied), the note
//! that an unencrypted instance snapshot was encrypted on copy, and the
//! sweep's recovery-point digest, whose table `steward dr status` prints too.

use steward_shared::notify::{Category, Notification, Severity, MULTIPLE};
use steward_shared::policy::Snapshots;

use crate::model::Snapshot;
use crate::plan::{CopyOrder, RecoveryPoint};

/// One account's copy work, for the alerts.
pub struct Batch<'a> {
    pub account: &'a str,
    pub results: &'a CopyResults,
    pub orders: &'a [CopyOrder],
    /// Sources refused (unencrypted clusters), with why.
    pub refused: &'a [(Snapshot, String)],
}

/// The alerts of a copy result: the DR key unusable, the quota reached,
/// instance snapshots encrypted on copy, cluster snapshots refused.
pub fn alerts(batch: &Batch<'_>, cfg: &Snapshots, run_id: &str) -> Vec<Notification> {
    let mut notes = Vec::new();
    if let Some(why) = &batch.results.key_missing {
        notes.push(key_missing(
            batch.account,
            &cfg.dr_region,
            &cfg.dr_kms_key,
            why,
            run_id,
        ));
    }
    if let Some(why) = &batch.results.quota {
        notes.push(quota(
            batch.account,
            &cfg.dr_region,
            why,
            batch.results.waiting.len(),
            run_id,
        ));
    }
    for order in batch
        .orders
        .iter()
        .filter(|o| batch.results.encrypted_on_copy.contains(&o.source.arn))
    {
        notes.push(unencrypted(&order.source, true, &cfg.dr_region));
    }
    for (source, _) in batch.refused {
        notes.push(unencrypted(source, false, &cfg.dr_region));
    }
    notes
}

/// What one run did with copies, for the response and the digest.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopyResults {
    /// Copies requested now (target identifiers).
    pub started: Vec<String>,
    /// Copies that existed already.
    pub present: Vec<String>,
    /// Copies waiting for capacity (parked in the copy queue, or left to the sweep).
    pub waiting: Vec<String>,
    /// Whether the waiting copies were parked in the copy queue.
    pub parked: usize,
    /// (source, why) of copies that failed or were refused.
    pub failed: Vec<(String, String)>,
    /// Instance snapshots that were unencrypted and are encrypted on copy.
    pub encrypted_on_copy: Vec<String>,
    /// Why the DR key cannot be used, when it cannot.
    pub key_missing: Option<String>,
    /// The manual-snapshot quota message, when it was reached.
    pub quota: Option<String>,
}

impl CopyResults {
    pub fn merge(&mut self, other: CopyResults) {
        self.started.extend(other.started);
        self.present.extend(other.present);
        self.waiting.extend(other.waiting);
        self.parked += other.parked;
        self.failed.extend(other.failed);
        self.encrypted_on_copy.extend(other.encrypted_on_copy);
        self.key_missing = self.key_missing.take().or(other.key_missing);
        self.quota = self.quota.take().or(other.quota);
    }
}

fn base(n: &mut Notification, account: &str, region: &str, thread: &str, dedupe: String) {
    n.account = account.to_string();
    n.region = region.to_string();
    n.thread_id = thread.to_string();
    n.dedupe_key = dedupe;
}

/// HIGH: the DR key cannot be used; nothing was copied. One per run.
pub fn key_missing(
    account: &str,
    dr_region: &str,
    key: &str,
    why: &str,
    run_id: &str,
) -> Notification {
    let mut n = Notification::new(
        Severity::High,
        Category::Snapshot,
        "key-missing",
        format!("DR key {key} unusable in {dr_region}; no snapshot copied"),
    );
    n.details.push(format!("DescribeKey: {why}."));
    n.details.push("No copy was attempted; the invocation succeeded and the next sweep copies what is missing.".into());
    n.next_steps.push(format!(
        "Create the key (or fix its alias, state or key policy) in {dr_region} for account {account}, or set snapshots.dr_kms_key to a key there."
    ));
    base(
        &mut n,
        account,
        dr_region,
        run_id,
        format!("key-missing#{run_id}"),
    );
    n.facts.insert("drKmsKey".into(), key.to_string());
    n
}

/// HIGH: the manual-snapshot quota of the DR region is reached.
pub fn quota(
    account: &str,
    dr_region: &str,
    why: &str,
    waiting: usize,
    run_id: &str,
) -> Notification {
    let mut n = Notification::new(
        Severity::High,
        Category::Snapshot,
        "quota",
        format!("Manual snapshot quota reached in {dr_region}; {waiting} DR copies wait"),
    );
    n.details.push(why.to_string());
    n.next_steps.push(format!(
        "Delete manual snapshots nobody needs in {dr_region} (steward prunes only its own expired copies), or raise the RDS quota \"Manual DB snapshots\" (and snapshots.manual_snapshot_quota with it)."
    ));
    base(
        &mut n,
        account,
        dr_region,
        run_id,
        format!("quota#{run_id}"),
    );
    n.facts.insert("waitingCopies".into(), waiting.to_string());
    n
}

/// HIGH for an unencrypted cluster snapshot (not copied); MEDIUM for an
/// unencrypted instance snapshot (copied and encrypted with the DR key).
pub fn unencrypted(source: &Snapshot, copied: bool, dr_region: &str) -> Notification {
    let (severity, summary, step) = if copied {
        (
            Severity::Medium,
            format!(
                "Unencrypted snapshot {} encrypted on its DR copy",
                source.id
            ),
            format!(
                "Encrypt the database {} itself: its own snapshots are still unencrypted.",
                source.database
            ),
        )
    } else {
        (
            Severity::High,
            format!("Unencrypted Aurora snapshot {} not copied to DR", source.id),
            format!(
                "AWS cannot encrypt a cluster snapshot on copy: restore {} into an encrypted cluster (or copy the snapshot with a key in {}) so it has a DR copy.",
                source.database, source.region
            ),
        )
    };
    let mut n = Notification::new(severity, Category::Snapshot, "unencrypted", summary);
    n.details.push(format!(
        "{} snapshot {} of {} in {}.",
        source.kind, source.id, source.database, source.region
    ));
    n.next_steps.push(step);
    n.related_resources.push(source.arn.clone());
    base(
        &mut n,
        &source.account,
        dr_region,
        &source.arn,
        format!("unencrypted#{}", source.arn),
    );
    n
}

/// The recovery-point table: one line per database.
pub fn table(rows: &[RecoveryPoint], rpo_hours: u32) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let state = if !r.database_exists {
                "database gone; last copies kept".to_string()
            } else if r.past_rpo {
                format!("PAST RPO ({rpo_hours} h)")
            } else {
                "ok".to_string()
            };
            match (&r.newest_copy, r.age_hours) {
                (Some(copy), Some(age)) => format!(
                    "{}: newest DR copy {copy}, {age} h old: {state}",
                    r.database
                ),
                _ => format!("{}: no DR copy: {state}", r.database),
            }
        })
        .collect()
}

/// The sweep's digest: INFO, MEDIUM when something failed, HIGH when a
/// database is past its RPO (the table is also in `additionalContext`).
pub fn digest(
    rows: &[RecoveryPoint],
    results: &CopyResults,
    pruned: &[String],
    kept_for_review: &[String],
    rpo_hours: u32,
    dr_region: &str,
    run_id: &str,
) -> Notification {
    let past: Vec<&RecoveryPoint> = rows.iter().filter(|r| r.past_rpo).collect();
    let severity = if !past.is_empty() {
        Severity::High
    } else if !results.failed.is_empty() || results.key_missing.is_some() || results.quota.is_some()
    {
        Severity::Medium
    } else {
        Severity::Info
    };
    let summary = if past.is_empty() {
        format!(
            "DR recovery point: {} databases within {rpo_hours} h; {} copies started",
            rows.iter().filter(|r| r.database_exists).count(),
            results.started.len()
        )
    } else {
        format!(
            "DR recovery point: {} databases past the {rpo_hours} h RPO",
            past.len()
        )
    };
    let mut n = Notification::new(severity, Category::Snapshot, "digest", summary);
    n.details.push(format!(
        "Copies started {}, already present {}, waiting {} ({} parked in the copy queue), failed {}; copies pruned {}.",
        results.started.len(),
        results.present.len(),
        results.waiting.len(),
        results.parked,
        results.failed.len(),
        pruned.len()
    ));
    if let Some(why) = &results.key_missing {
        n.details.push(format!("The DR key is unusable: {why}."));
    }
    if let Some(why) = &results.quota {
        n.details.push(format!("Manual-snapshot quota: {why}."));
    }
    n.items = table(rows, rpo_hours);
    n.items.extend(
        results
            .failed
            .iter()
            .map(|(s, why)| format!("copy of {s} failed: {why}")),
    );
    n.items.extend(kept_for_review.iter().cloned());
    if !past.is_empty() {
        n.next_steps.push(
            "For each database past its RPO: check that its automated backups run and that its snapshots reach the copier (RDS events, the sweep's logs), then run `steward dr status`.".into(),
        );
    }
    if !results.failed.is_empty() {
        n.next_steps
            .push("Read the failed copies above; the next sweep tries them again.".into());
    }
    n.account = MULTIPLE.into();
    n.region = dr_region.to_string();
    n.thread_id = run_id.to_string();
    n.dedupe_key = format!("digest#{run_id}");
    n.facts
        .insert("recoveryPoints".into(), table(rows, rpo_hours).join("\n"));
    n.facts
        .insert("databasesPastRpo".into(), past.len().to_string());
    n.facts.insert("rpoHours".into(), rpo_hours.to_string());
    n.facts
        .insert("copiesStarted".into(), results.started.len().to_string());
    n.facts
        .insert("copiesWaiting".into(), results.waiting.len().to_string());
    n.facts
        .insert("copiesFailed".into(), results.failed.len().to_string());
    n.facts
        .insert("copiesPruned".into(), pruned.len().to_string());
    n
}
