//! The daily sweep, the backstop for lost RDS events: in every target
//! account it reads the source snapshots and databases of the source regions
//! and the snapshots of the DR region, copies what has no DR copy yet,
//! prunes expired copies (blast radius applied to deletions) and sends one
//! recovery-point digest. `recovery_status` is the read-only part that
//! `steward dr status` prints.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_shared::aws::AwsContext;
use steward_shared::entry::Invocation;
use steward_shared::notify::Category;
use steward_shared::policy::Snapshots;
use steward_shared::tags::TagMap;
use steward_shared::trigger::ScheduledRun;
use steward_shared::{safety, Policy};

use crate::clients::{AwsConnect, Connect};
use crate::handler::Copier;
use crate::model::{DatabaseKey, Kind, Snapshot};
use crate::plan::{self, Decision, RecoveryPoint, RetentionPlan};
use crate::report::{self, Batch, CopyResults};

/// What the sweep reads in one account.
#[derive(Debug, Clone, Default)]
pub struct AccountFacts {
    pub account: String,
    /// Snapshots in the source regions.
    pub sources: Vec<Snapshot>,
    /// Databases of the source regions by (region, kind, id).
    pub databases: HashMap<(String, Kind, String), TagMap>,
    /// Snapshots in the DR region.
    pub dr_snapshots: Vec<Snapshot>,
}

/// The accounts (`[targets] accounts`, else the own) and source regions
/// (`[targets] regions`, else the own, never the DR region) the sweep covers.
pub fn scope_of(
    policy: &Policy,
    own_account: &str,
    own_region: &str,
) -> (Vec<String>, Vec<String>) {
    let accounts = if policy.targets.accounts.is_empty() {
        vec![own_account.to_string()]
    } else {
        policy.targets.accounts.clone()
    };
    let regions = if policy.targets.regions.is_empty() {
        vec![own_region.to_string()]
    } else {
        policy.targets.regions.clone()
    };
    let regions = regions
        .into_iter()
        .filter(|r| *r != policy.snapshots.dr_region)
        .collect();
    (accounts, regions)
}

/// Reads one account's sources, databases and DR snapshots.
pub async fn gather(
    connect: &dyn Connect,
    account: &str,
    regions: &[String],
    dr_region: &str,
    session: &str,
) -> anyhow::Result<AccountFacts> {
    let mut facts = AccountFacts {
        account: account.to_string(),
        ..AccountFacts::default()
    };
    for region in regions {
        let rds = connect.rds(account, region, session).await?;
        for db in rds.databases().await? {
            facts
                .databases
                .insert((region.clone(), db.kind, db.id), db.tags);
        }
        for kind in [Kind::Instance, Kind::Cluster] {
            facts.sources.extend(rds.snapshots(kind).await?);
        }
    }
    let dr = connect.rds(account, dr_region, session).await?;
    for kind in [Kind::Instance, Kind::Cluster] {
        facts.dr_snapshots.extend(dr.snapshots(kind).await?);
    }
    Ok(facts)
}

/// Retention per account and the recovery point of every database.
pub fn status(
    facts: &[AccountFacts],
    cfg: &Snapshots,
    now: DateTime<Utc>,
) -> (Vec<RecoveryPoint>, Vec<RetentionPlan>) {
    let mut in_scope = Vec::new();
    let mut copies: BTreeMap<DatabaseKey, Vec<plan::VerifiedCopy>> = BTreeMap::new();
    let mut plans = Vec::new();
    for account in facts {
        for ((region, kind, id), tags) in &account.databases {
            let env = tags.get(steward_shared::tags::ENV).map(|e| e.trim());
            if env.is_some_and(|e| cfg.environments.iter().any(|a| a == e)) {
                in_scope.push(DatabaseKey {
                    account: account.account.clone(),
                    region: region.clone(),
                    kind: *kind,
                    id: id.clone(),
                });
            }
        }
        let source_times: HashMap<String, DateTime<Utc>> = account
            .sources
            .iter()
            .filter_map(|s| Some((s.arn.to_ascii_lowercase(), plan::source_time(s)?)))
            .collect();
        let retention = plan::retention(&account.dr_snapshots, &source_times, cfg, now);
        for (key, list) in &retention.copies {
            copies
                .entry(key.clone())
                .or_default()
                .extend(list.iter().cloned());
        }
        plans.push(retention);
    }
    (
        plan::recovery_points(&in_scope, &copies, cfg.rpo_hours, now),
        plans,
    )
}

/// The recovery point of every database, read-only (the CLI's `dr status`).
pub async fn recovery_status(
    aws: &AwsContext,
    policy: &Policy,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<RecoveryPoint>> {
    let connect = AwsConnect(aws.clone());
    let (accounts, regions) = scope_of(policy, aws.own_account(), aws.own_region());
    let mut facts = Vec::new();
    for account in &accounts {
        facts.push(
            gather(
                &connect,
                account,
                &regions,
                &policy.snapshots.dr_region,
                "dr-status",
            )
            .await?,
        );
    }
    Ok(status(&facts, &policy.snapshots, now).0)
}

/// Runs the sweep.
pub async fn run(
    copier: &Copier,
    run: &ScheduledRun,
    policy: &Policy,
    invocation: &mut Invocation,
) -> anyhow::Result<Value> {
    let cfg = &policy.snapshots;
    if !cfg.enabled || cfg.dr_region.is_empty() {
        tracing::info!("copying is off (snapshots.enabled, snapshots.dr_region); nothing to do");
        return Ok(
            json!({"job": run.job, "disabled": "snapshots.enabled is false or snapshots.dr_region is empty"}),
        );
    }
    // Ages are measured on the clock, never on the event's time: a replayed
    // or forged schedule time cannot make copies expire early.
    let now = Utc::now();
    let aws = &copier.steward.aws;
    let (accounts, regions) = scope_of(policy, aws.own_account(), aws.own_region());
    let mut results = CopyResults::default();
    let mut all_facts = Vec::new();
    for account in &accounts {
        let facts = match gather(
            copier.connect.as_ref(),
            account,
            &regions,
            &cfg.dr_region,
            &run.id,
        )
        .await
        {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(account = %account, error = %format!("{e:#}"), "could not read the account; it is reported, the others go on");
                results
                    .failed
                    .push((format!("account {account}"), format!("{e:#}")));
                continue;
            }
        };
        let present: std::collections::HashSet<&str> =
            facts.dr_snapshots.iter().map(|s| s.id.as_str()).collect();
        let (mut orders, mut refused) = (Vec::new(), Vec::new());
        for source in &facts.sources {
            invocation.metrics.resources_evaluated += 1;
            let tags =
                facts
                    .databases
                    .get(&(source.region.clone(), source.kind, source.database.clone()));
            let exists = present.contains(plan::target_identifier(&source.arn).as_str());
            match plan::decide(source, tags, exists, cfg, now) {
                Decision::Copy(order) => orders.push(*order),
                Decision::Refuse { why, .. } => refused.push((source.clone(), why)),
                Decision::Present { target_id } => results.present.push(target_id),
                Decision::Ignore(why) => {
                    tracing::debug!(snapshot = %source.id, why = %why, "not copied")
                }
            }
        }
        let dr = copier.connect.rds(account, &cfg.dr_region, &run.id).await?;
        let done = copier
            .executor()
            .run(account, dr.as_ref(), orders.clone(), policy, &run.id)
            .await?;
        let batch = Batch {
            account,
            results: &done,
            orders: &orders,
            refused: &refused,
        };
        copier.alert(batch, policy, &run.id, invocation).await?;
        let mut facts = facts;
        if !done.started.is_empty() && copier.steward.mode().may_change() {
            // The digest reports the state after this run's copies.
            facts.dr_snapshots.clear();
            for kind in [Kind::Instance, Kind::Cluster] {
                facts.dr_snapshots.extend(dr.snapshots(kind).await?);
            }
        }
        results
            .failed
            .extend(refused.iter().map(|(s, why)| (s.arn.clone(), why.clone())));
        results.merge(done);
        all_facts.push(facts);
    }
    let (rows, plans) = status(&all_facts, cfg, now);
    let (pruned, mut kept_for_review) = prune(copier, &plans, policy, &run.id, invocation).await?;
    // The backstop for restore drills left open by a crash.
    let (drills_closed, drill_review) =
        crate::drill_run::backstop(copier, &accounts, policy, &run.id, invocation).await;
    kept_for_review.extend(drill_review);
    invocation.metrics.actions_taken += (results.started.len() + pruned.len()) as u64;
    invocation.metrics.actions_failed += results.failed.len() as u64;
    let digest = report::digest(
        &rows,
        &results,
        &pruned,
        &kept_for_review,
        cfg.rpo_hours,
        &cfg.dr_region,
        &run.id,
    );
    let outcome = copier
        .steward
        .notify_counted(&digest, policy, invocation)
        .await?;
    Ok(json!({
        "job": run.job,
        "mode": copier.steward.mode().as_str(),
        "results": results,
        "pruned": pruned,
        "kept_for_review": kept_for_review,
        "recovery_points": rows,
        "digest": outcome.as_str(),
        "drills_closed": drills_closed,
    }))
}

/// Deletes expired copies unless the blast radius is exceeded or the run
/// changes nothing; returns the pruned copies and the lines kept for review.
async fn prune(
    copier: &Copier,
    plans: &[RetentionPlan],
    policy: &Policy,
    run_id: &str,
    invocation: &mut Invocation,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let cfg = &policy.snapshots;
    let mut review: Vec<String> = Vec::new();
    for p in plans {
        review.extend(
            p.failed_checks
                .iter()
                .map(|(s, why)| format!("kept {} (claims to be a steward copy but {why})", s.id)),
        );
    }
    let deletions: Vec<&plan::VerifiedCopy> = plans
        .iter()
        .flat_map(|p| p.delete.iter().map(|(c, _)| c))
        .collect();
    if let Err(exceeded) =
        safety::check_blast_radius(deletions.len(), policy.limits.max_changes_per_run)
    {
        let items = deletions.iter().map(|c| c.snapshot.arn.clone()).collect();
        let mut notice = safety::blast_radius_notice(
            Category::Snapshot,
            &exceeded,
            format!(
                "Retention would delete {} DR copies; none deleted",
                deletions.len()
            ),
            items,
            "Check why so many DR copies expired at once (a policy change to the retention keys?).",
        );
        notice.account = steward_shared::notify::MULTIPLE.into();
        notice.region = cfg.dr_region.clone();
        notice.thread_id = run_id.to_string();
        notice.dedupe_key = format!("blast-radius#{run_id}");
        copier
            .steward
            .notify_counted(&notice, policy, invocation)
            .await?;
        return Ok((Vec::new(), review));
    }
    let mut pruned = Vec::new();
    for copy in deletions {
        if copier.steward.mode().may_change() {
            let dr = copier
                .connect
                .rds(&copy.snapshot.account, &cfg.dr_region, run_id)
                .await?;
            if let Err(e) = dr.delete(copy.snapshot.kind, &copy.snapshot.id).await {
                tracing::error!(copy = %copy.snapshot.id, error = %format!("{e:#}"), "could not delete an expired copy; the next sweep tries again");
                review.push(format!(
                    "could not delete expired {}: {e:#}",
                    copy.snapshot.id
                ));
                continue;
            }
        }
        tracing::info!(copy = %copy.snapshot.id, class = copy.class.as_str(), mode = %copier.steward.mode(), "expired DR copy pruned");
        pruned.push(copy.snapshot.id.clone());
    }
    Ok((pruned, review))
}
