//! Carrying out restore drills: the drill records (kept in the idempotency
//! table through its state API, written before the restore call), the
//! driver that starts a drill and checks it (observe, one pure step, delete
//! what the step says), the scheduled `dr-drill` job (never waits: each
//! invocation starts or checks, and the job's 15-minute schedule brings the
//! next check), the sweep's backstop for drills left open by a crash, and
//! the CLI's polling loop.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_shared::entry::Invocation;
use steward_shared::failure::BadEvent;
use steward_shared::idempotency::{keys, IdempotencyStore};
use steward_shared::policy::Snapshots;
use steward_shared::trigger::ScheduledRun;
use steward_shared::Policy;

use crate::clients::Connect;
use crate::drill::{self, DrillRecord, Leftover, Next, RestoreRequest};
use crate::handler::Copier;
use crate::model::{DatabaseKey, Kind};
use crate::plan::VerifiedCopy;
use crate::{drill_report, sweep, FUNCTION_NAME};

/// How long drill records are kept (longer than a quarter, so the job knows
/// when a database was last drilled).
pub const KEEP: Duration = Duration::from_secs(400 * 86_400);

/// The drill records in the idempotency table.
pub struct DrillBook<'a> {
    pub store: &'a dyn IdempotencyStore,
}

fn drill_key(drill_id: &str) -> String {
    keys::state(FUNCTION_NAME, &format!("drill#{drill_id}"))
}

fn latest_key(db: &DatabaseKey) -> String {
    keys::state(
        FUNCTION_NAME,
        &format!(
            "drill-latest#{}#{}#{}#{}",
            db.account, db.region, db.kind, db.id
        ),
    )
}

impl DrillBook<'_> {
    /// The drill recorded under this id.
    pub async fn get(&self, drill_id: &str) -> anyhow::Result<Option<DrillRecord>> {
        let Some(record) = self.store.get(&drill_key(drill_id)).await? else {
            return Ok(None);
        };
        let Some(value) = record.result else {
            return Ok(None);
        };
        serde_json::from_str(&value)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("drill record {drill_id} is unreadable: {e}"))
    }

    /// The latest drill of a database.
    pub async fn latest(&self, db: &DatabaseKey) -> anyhow::Result<Option<DrillRecord>> {
        match self.store.get(&latest_key(db)).await? {
            Some(r) => match r.result {
                Some(id) => self.get(&id).await,
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Writes the record and makes it its database's latest drill.
    pub async fn save(&self, record: &DrillRecord) -> anyhow::Result<()> {
        self.store
            .put_state(
                &drill_key(&record.drill_id),
                &serde_json::to_string(record)?,
                KEEP,
            )
            .await?;
        self.store
            .put_state(&latest_key(&record.database), &record.drill_id, KEEP)
            .await
    }
}

/// How a start went.
#[derive(Debug)]
pub enum Start {
    /// Dry-run or the kill switch: what would be restored.
    Planned(Box<(DrillRecord, RestoreRequest)>),
    /// Recorded, then the restore was called (a failed call is recorded in the drill).
    Started(DrillRecord),
    /// A retry of the same run found its drill recorded already.
    Existing(DrillRecord),
}

/// Starts and checks drills.
pub struct Driver<'a> {
    pub connect: &'a dyn Connect,
    /// `None` in dry-run and kill-switch mode: nothing is written.
    pub book: Option<DrillBook<'a>>,
    pub cfg: &'a Snapshots,
    pub session: &'a str,
    pub check_every_seconds: i64,
}

impl Driver<'_> {
    /// Plans the drill of `db` from its DR copy, records it, then calls the restore.
    pub async fn start(
        &self,
        db: &DatabaseKey,
        copy: &VerifiedCopy,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Start> {
        let rds = self
            .connect
            .drill(&db.account, &self.cfg.dr_region, self.session)
            .await?;
        let facts = rds
            .copy_facts(copy.snapshot.kind, &copy.snapshot.id)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!("DR copy {} disappeared before the drill", copy.snapshot.id)
            })?;
        let id = drill::drill_id(db, run_id, now);
        let (mut record, request) =
            drill::plan_drill(db, facts, &id, self.cfg, self.check_every_seconds, now);
        let Some(book) = &self.book else {
            tracing::info!(drill = %id, database = %db, "would start a restore drill; changing nothing");
            return Ok(Start::Planned(Box::new((record, request))));
        };
        if let Some(existing) = book.get(&id).await? {
            return Ok(Start::Existing(existing));
        }
        // Recorded before the restore call: the sweep deletes only what a record names.
        book.save(&record).await?;
        tracing::info!(drill = %id, database = %db, copy = %record.copy.id, identifier = %request.identifier, "restore drill started");
        if let Err(e) = rds.restore(&request).await {
            tracing::error!(drill = %id, error = %format!("{e:#}"), "the restore call failed");
            record.failed = true;
            record
                .problems
                .push(format!("the restore call failed: {e:#}"));
            record.state = drill::DrillState::Deleting;
            book.save(&record).await?;
        }
        Ok(Start::Started(record))
    }

    /// One check: observe, step, delete what the step says (then observe
    /// again, so an instant deletion reports at once); saves the record.
    pub async fn check(
        &self,
        mut record: DrillRecord,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(DrillRecord, Next)> {
        let rds = self
            .connect
            .drill(&record.database.account, &record.dr_region, self.session)
            .await?;
        let mut next = Next::Wait;
        for _ in 0..4 {
            let seen = rds
                .observe(
                    record.copy.kind,
                    &record.restored_id,
                    record.member_id.as_deref(),
                )
                .await?;
            next = drill::step(&mut record, &seen, now);
            match next {
                Next::Wait | Next::Report => break,
                Next::DeleteMember => {
                    if let Some(member) = record.member_id.clone() {
                        self.save(&record).await?;
                        rds.delete_instance(&member).await?;
                    }
                }
                Next::DeletePrimary => {
                    self.save(&record).await?;
                    match record.copy.kind {
                        Kind::Instance => rds.delete_instance(&record.restored_id).await?,
                        Kind::Cluster => rds.delete_cluster(&record.restored_id).await?,
                    }
                }
            }
        }
        self.save(&record).await?;
        tracing::info!(drill = %record.drill_id, state = ?record.state, next = ?next, "restore drill checked");
        Ok((record, next))
    }

    async fn save(&self, record: &DrillRecord) -> anyhow::Result<()> {
        match &self.book {
            Some(book) => book.save(record).await,
            None => Ok(()),
        }
    }
}

/// The in-scope databases and their verified DR copies, in every target account.
pub async fn databases(
    connect: &dyn Connect,
    policy: &Policy,
    own_account: &str,
    own_region: &str,
    session: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<BTreeMap<DatabaseKey, (bool, Vec<VerifiedCopy>)>> {
    let cfg = &policy.snapshots;
    let (accounts, regions) = sweep::scope_of(policy, own_account, own_region);
    let mut facts = Vec::new();
    for account in &accounts {
        facts.push(sweep::gather(connect, account, &regions, &cfg.dr_region, session).await?);
    }
    let (rows, plans) = sweep::status(&facts, cfg, now);
    let mut all: BTreeMap<DatabaseKey, (bool, Vec<VerifiedCopy>)> = BTreeMap::new();
    for row in rows {
        all.insert(row.database, (row.database_exists, Vec::new()));
    }
    for plan in plans {
        for (key, copies) in plan.copies {
            all.entry(key)
                .or_insert((false, Vec::new()))
                .1
                .extend(copies);
        }
    }
    Ok(all)
}

/// The database a drill names: `DB` or `ACCOUNT/REGION/DB`; it must be
/// known (in scope or with DR copies) and unambiguous.
pub fn find<'a>(
    all: &'a BTreeMap<DatabaseKey, (bool, Vec<VerifiedCopy>)>,
    name: &str,
) -> Result<(&'a DatabaseKey, &'a Vec<VerifiedCopy>), BadEvent> {
    let matches: Vec<_> = all
        .iter()
        .filter(|(k, _)| k.id == name || format!("{}/{}/{}", k.account, k.region, k.id) == name)
        .collect();
    match matches.as_slice() {
        [(key, (_, copies))] => Ok((key, copies)),
        [] => Err(BadEvent::new(format!(
            "database {name:?} is not an in-scope database and has no DR copy (check its env tag against snapshots.environments and [targets])"
        ))),
        _ => Err(BadEvent::new(format!(
            "database {name:?} exists in several accounts or regions: name it ACCOUNT/REGION/{name}"
        ))),
    }
}

/// The `dr-drill` job: checks every open drill of the in-scope databases
/// (or of the named one) and starts one drill: the named database's, or the
/// first in-scope database not drilled for a quarter (one new drill per
/// invocation, so drills are staggered across the 15-minute runs).
pub async fn job(
    copier: &Copier,
    run: &ScheduledRun,
    database: Option<&str>,
    policy: &Policy,
    invocation: &mut Invocation,
) -> anyhow::Result<Value> {
    let cfg = &policy.snapshots;
    if !cfg.enabled || cfg.dr_region.is_empty() {
        return Ok(
            json!({"job": run.job, "disabled": "snapshots.enabled is false or snapshots.dr_region is empty"}),
        );
    }
    let may_change = copier.steward.mode().may_change();
    let Some(store) = copier.steward.idempotency.as_deref() else {
        anyhow::bail!("the dr-drill job needs STEWARD_IDEMPOTENCY_TABLE: drills are recorded there before the restore, so later checks and the sweep find them");
    };
    let now = Utc::now();
    let aws = &copier.steward.aws;
    let all = databases(
        copier.connect.as_ref(),
        policy,
        aws.own_account(),
        aws.own_region(),
        &run.id,
        now,
    )
    .await?;
    let reader = DrillBook { store };
    let driver = Driver {
        connect: copier.connect.as_ref(),
        book: may_change.then_some(DrillBook { store }),
        cfg,
        session: &run.id,
        check_every_seconds: drill::CHECK_EVERY_SECONDS,
    };
    let targets: Vec<(&DatabaseKey, &Vec<VerifiedCopy>)> = match database {
        Some(name) => vec![find(&all, name)?],
        None => all
            .iter()
            .filter(|(_, (exists, _))| *exists)
            .map(|(k, (_, c))| (k, c))
            .collect(),
    };
    let (mut started, mut checked, mut reported, mut no_copy) = (vec![], vec![], vec![], vec![]);
    for (key, copies) in targets {
        invocation.metrics.resources_evaluated += 1;
        let latest = reader.latest(key).await?;
        if let Some(open) = latest.clone().filter(DrillRecord::is_open) {
            if !may_change {
                tracing::info!(drill = %open.drill_id, mode = %copier.steward.mode(), "open drill not checked; changing nothing");
                continue;
            }
            let (record, next) = driver.check(open, now).await?;
            checked.push(record.drill_id.clone());
            if next == Next::Report {
                report(copier, &record, policy, invocation).await?;
                reported.push(record.drill_id.clone());
            }
            continue;
        }
        let wanted =
            database.is_some() || (started.is_empty() && drill::is_due(latest.as_ref(), now));
        if !wanted {
            continue;
        }
        let Some(copy) = drill::choose_copy(copies) else {
            tracing::warn!(database = %key, "no available DR copy to drill; the sweep's digest reports the RPO");
            no_copy.push(key.to_string());
            continue;
        };
        match driver.start(key, copy, &run.id, now).await? {
            Start::Planned(planned) => {
                let (record, request) = *planned;
                // Dry-run keeps no de-duplication record and a due database
                // stays due: only a named drill notifies, the 15-minute
                // schedule logs (no message every 15 minutes).
                if database.is_some() {
                    let note = drill_report::would_start(&record, &request);
                    copier
                        .steward
                        .notify_counted(&note, policy, invocation)
                        .await?;
                }
                started.push(record.drill_id);
            }
            Start::Existing(record) => checked.push(record.drill_id),
            Start::Started(record) => {
                invocation.metrics.actions_taken += 1;
                started.push(record.drill_id.clone());
                if record.state != drill::DrillState::Restoring {
                    // The restore call failed: close and report at once.
                    let (record, next) = driver.check(record, now).await?;
                    if next == Next::Report {
                        report(copier, &record, policy, invocation).await?;
                        reported.push(record.drill_id);
                    }
                }
            }
        }
    }
    Ok(json!({
        "job": run.job,
        "mode": copier.steward.mode().as_str(),
        "started": started,
        "checked": checked,
        "reported": reported,
        "no_dr_copy": no_copy,
    }))
}

async fn report(
    copier: &Copier,
    record: &DrillRecord,
    policy: &Policy,
    invocation: &mut Invocation,
) -> anyhow::Result<()> {
    let rto = policy.snapshots.drill_rto_minutes;
    if !drill::passed(record, rto) {
        invocation.metrics.actions_failed += 1;
    }
    let note = drill_report::notice(record, rto);
    copier
        .steward
        .notify_counted(&note, policy, invocation)
        .await?;
    Ok(())
}

/// The sweep's backstop: in the DR region of every account, a database
/// that looks like a drill is checked through its drill (and so deleted
/// and reported) only when [`drill::judge_leftover`] ties it to a drill
/// recorded before the restore; anything else is returned for the digest.
/// Returns (drills closed, lines for review).
pub async fn backstop(
    copier: &Copier,
    accounts: &[String],
    policy: &Policy,
    run_id: &str,
    invocation: &mut Invocation,
) -> (Vec<String>, Vec<String>) {
    let cfg = &policy.snapshots;
    let (mut closed, mut review) = (Vec::new(), Vec::new());
    let Some(store) = copier.steward.idempotency.as_deref() else {
        return (closed, review);
    };
    let may_change = copier.steward.mode().may_change();
    let reader = DrillBook { store };
    let driver = Driver {
        connect: copier.connect.as_ref(),
        book: may_change.then_some(DrillBook { store }),
        cfg,
        session: run_id,
        check_every_seconds: drill::CHECK_EVERY_SECONDS,
    };
    let now = Utc::now();
    for account in accounts {
        let result: anyhow::Result<()> = async {
            let rds = copier.connect.drill(account, &cfg.dr_region, run_id).await?;
            let mut done: HashSet<String> = HashSet::new();
            for candidate in rds.drill_like().await? {
                let record = match candidate.drill_tag.as_deref().filter(|t| drill::is_drill_id(t)) {
                    Some(tag) => reader.get(tag).await?,
                    None => None,
                };
                match drill::judge_leftover(&candidate, record.as_ref(), &cfg.dr_region) {
                    Leftover::Report(why) => {
                        tracing::warn!(database = %candidate.id, why = %why, "drill-like database kept for review");
                        review.push(why);
                    }
                    Leftover::Recorded => {
                        let Some(record) = record else { continue };
                        if !done.insert(record.drill_id.clone()) {
                            continue;
                        }
                        if !record.is_open() {
                            review.push(format!(
                                "{} {} belongs to drill {}, which is closed, yet it exists; not deleted",
                                candidate.kind, candidate.id, record.drill_id
                            ));
                            continue;
                        }
                        if !may_change {
                            continue;
                        }
                        let (record, next) = driver.check(record, now).await?;
                        if next == Next::Report {
                            report(copier, &record, policy, invocation).await?;
                            closed.push(record.drill_id.clone());
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(account = %account, error = %format!("{e:#}"), "drill backstop failed in this account");
            review.push(format!("drill clean-up in {account} failed: {e:#}"));
        }
    }
    (closed, review)
}

/// What `steward dr drill` ends with.
#[derive(Debug)]
pub struct CliOutcome {
    pub record: DrillRecord,
    /// True when the drill closed (reported) before the timeout.
    pub finished: bool,
    pub passed: bool,
}

/// How the CLI waits: a check every `poll`, up to `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub poll: Duration,
    pub timeout: Duration,
}

/// `steward dr drill DB`: the same start and checks, polling every `poll`
/// until the drill closes or `timeout` passes (then the drill stays open for
/// the `dr-drill` job and the sweep).
pub async fn run_cli(
    connect: &dyn Connect,
    store: &dyn IdempotencyStore,
    policy: &Policy,
    own_account: &str,
    own_region: &str,
    name: &str,
    polling: Polling,
) -> anyhow::Result<CliOutcome> {
    let Polling { poll, timeout } = polling;
    let cfg = &policy.snapshots;
    let now = Utc::now();
    let session = format!("steward-cli-drill-{}", now.format("%Y%m%dT%H%M%S%.f"));
    let all = databases(connect, policy, own_account, own_region, &session, now).await?;
    let (key, copies) = find(&all, name).map_err(anyhow::Error::msg)?;
    let driver = Driver {
        connect,
        book: Some(DrillBook { store }),
        cfg,
        session: &session,
        check_every_seconds: poll.as_secs().max(1) as i64,
    };
    let book = DrillBook { store };
    let mut record = match book.latest(key).await?.filter(DrillRecord::is_open) {
        Some(open) => open,
        None => {
            let copy = drill::choose_copy(copies).ok_or_else(|| {
                anyhow::anyhow!(
                    "{key} has no available DR copy in {} to restore",
                    cfg.dr_region
                )
            })?;
            match driver.start(key, copy, &session, now).await? {
                Start::Started(r) | Start::Existing(r) => r,
                Start::Planned(p) => p.0,
            }
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (checked, next) = driver.check(record, Utc::now()).await?;
        record = checked;
        if next == Next::Report {
            let passed = drill::passed(&record, cfg.drill_rto_minutes);
            return Ok(CliOutcome {
                record,
                finished: true,
                passed,
            });
        }
        if tokio::time::Instant::now() + poll > deadline {
            return Ok(CliOutcome {
                record,
                finished: false,
                passed: false,
            });
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use steward_shared::testing::MemoryStore;

    use super::*;
    use crate::drill::{CopyFacts, DrillCandidate, DrillState, Restored, Seen};
    use crate::drill_rds::DrillRds;
    use crate::kms::Keys;
    use crate::model::{Class, Snapshot};
    use crate::rds::Rds;

    /// The DR region of one account: one restorable copy, a drill database
    /// that exists from the restore call until its deletion.
    #[derive(Clone, Default)]
    struct FakeDr {
        store: Arc<MemoryStore>,
        fail_restore: bool,
        /// What happened, in order ("restore recorded=true", "delete ...").
        calls: Arc<Mutex<Vec<String>>>,
        exists: Arc<Mutex<bool>>,
    }

    #[async_trait]
    impl DrillRds for FakeDr {
        async fn copy_facts(&self, kind: Kind, id: &str) -> anyhow::Result<Option<CopyFacts>> {
            Ok(Some(CopyFacts {
                kind,
                id: id.to_string(),
                arn: format!("arn:aws:rds:us-west-2:123456789012:snapshot:{id}"),
                engine: "postgres".into(),
                engine_version: "16.3".into(),
                allocated_storage: 20,
                encrypted: true,
            }))
        }
        async fn restore(&self, request: &RestoreRequest) -> anyhow::Result<()> {
            let drill_id = request
                .tags
                .iter()
                .find(|(k, _)| k == drill::DRILL_TAG)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let recorded = DrillBook {
                store: self.store.as_ref(),
            }
            .get(&drill_id)
            .await?
            .is_some();
            self.calls
                .lock()
                .unwrap()
                .push(format!("restore recorded={recorded}"));
            if self.fail_restore {
                anyhow::bail!("RestoreDBInstanceFromDBSnapshot: InsufficientDBInstanceCapacity");
            }
            *self.exists.lock().unwrap() = true;
            Ok(())
        }
        async fn observe(&self, _: Kind, _: &str, _: Option<&str>) -> anyhow::Result<Seen> {
            let exists = *self.exists.lock().unwrap();
            Ok(Seen {
                primary: exists.then(|| Restored {
                    status: "available".into(),
                    engine: "postgres".into(),
                    engine_version: "16.3".into(),
                    allocated_storage: 20,
                    encrypted: true,
                    publicly_accessible: false,
                }),
                member: None,
            })
        }
        async fn delete_instance(&self, id: &str) -> anyhow::Result<()> {
            self.calls.lock().unwrap().push(format!("delete {id}"));
            *self.exists.lock().unwrap() = false;
            Ok(())
        }
        async fn delete_cluster(&self, id: &str) -> anyhow::Result<()> {
            self.delete_instance(id).await
        }
        async fn drill_like(&self) -> anyhow::Result<Vec<DrillCandidate>> {
            Ok(Vec::new())
        }
    }

    #[async_trait]
    impl Connect for FakeDr {
        async fn rds(&self, _: &str, _: &str, _: &str) -> anyhow::Result<Box<dyn Rds>> {
            anyhow::bail!("not used by drills")
        }
        async fn keys(&self, _: &str, _: &str, _: &str) -> anyhow::Result<Box<dyn Keys>> {
            anyhow::bail!("not used by drills")
        }
        async fn drill(&self, _: &str, _: &str, _: &str) -> anyhow::Result<Box<dyn DrillRds>> {
            Ok(Box::new(self.clone()))
        }
    }

    fn db() -> DatabaseKey {
        DatabaseKey {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            kind: Kind::Instance,
            id: "orders".into(),
        }
    }

    fn copy() -> VerifiedCopy {
        let now = Utc::now();
        VerifiedCopy {
            snapshot: Snapshot {
                kind: Kind::Instance,
                id: "dr-orders-abc".into(),
                arn: "arn:aws:rds:us-west-2:123456789012:snapshot:dr-orders-abc".into(),
                account: "123456789012".into(),
                region: "us-west-2".into(),
                database: "orders".into(),
                snapshot_type: "manual".into(),
                status: "available".into(),
                encrypted: true,
                created: Some(now),
                original_created: Some(now),
                source: None,
                source_region: None,
                tags: Default::default(),
            },
            database: db(),
            source_arn: "arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-1".into(),
            source_time: now,
            class: Class::Daily,
        }
    }

    fn cfg() -> Snapshots {
        Snapshots {
            dr_region: "us-west-2".into(),
            dr_kms_key: "alias/dr".into(),
            ..Snapshots::default()
        }
    }

    fn driver<'a>(fake: &'a FakeDr, cfg: &'a Snapshots) -> Driver<'a> {
        Driver {
            connect: fake,
            book: Some(DrillBook {
                store: fake.store.as_ref(),
            }),
            cfg,
            session: "run-1",
            check_every_seconds: drill::CHECK_EVERY_SECONDS,
        }
    }

    #[tokio::test]
    async fn the_drill_is_recorded_before_the_restore_call_and_a_retry_restores_nothing() {
        let fake = FakeDr::default();
        let cfg = cfg();
        let d = driver(&fake, &cfg);
        let now = Utc::now();
        let Start::Started(record) = d.start(&db(), &copy(), "run-1", now).await.unwrap() else {
            panic!("started");
        };
        assert_eq!(
            *fake.calls.lock().unwrap(),
            vec!["restore recorded=true".to_string()]
        );
        let book = DrillBook {
            store: fake.store.as_ref(),
        };
        assert_eq!(book.latest(&db()).await.unwrap(), Some(record.clone()));
        assert!(matches!(
            d.start(&db(), &copy(), "run-1", now).await.unwrap(),
            Start::Existing(_)
        ));
        assert_eq!(fake.calls.lock().unwrap().len(), 1, "no second restore");

        let (closed, next) = d.check(record, Utc::now()).await.unwrap();
        assert_eq!(next, Next::Report);
        assert_eq!(closed.state, DrillState::Reported);
        assert!(drill::passed(&closed, cfg.drill_rto_minutes));
        assert_eq!(
            fake.calls.lock().unwrap().last().cloned(),
            Some(format!("delete {}", closed.restored_id))
        );
        assert_eq!(book.latest(&db()).await.unwrap(), Some(closed));
    }

    #[tokio::test]
    async fn a_failed_restore_call_is_recorded_as_failed_and_reported_without_a_delete() {
        let fake = FakeDr {
            fail_restore: true,
            ..FakeDr::default()
        };
        let cfg = cfg();
        let d = driver(&fake, &cfg);
        let Start::Started(record) = d.start(&db(), &copy(), "run-1", Utc::now()).await.unwrap()
        else {
            panic!("started");
        };
        assert!(record.failed);
        assert!(record.problems[0].contains("InsufficientDBInstanceCapacity"));
        let (closed, next) = d.check(record, Utc::now()).await.unwrap();
        assert_eq!(next, Next::Report);
        assert!(!drill::passed(&closed, cfg.drill_rto_minutes));
        assert_eq!(fake.calls.lock().unwrap().len(), 1, "nothing to delete");
    }

    #[tokio::test]
    async fn dry_run_plans_and_writes_nothing() {
        let fake = FakeDr::default();
        let cfg = cfg();
        let d = Driver {
            book: None,
            ..driver(&fake, &cfg)
        };
        assert!(matches!(
            d.start(&db(), &copy(), "run-1", Utc::now()).await.unwrap(),
            Start::Planned(_)
        ));
        assert!(fake.calls.lock().unwrap().is_empty());
        assert!(fake.store.keys().is_empty());
    }
}
