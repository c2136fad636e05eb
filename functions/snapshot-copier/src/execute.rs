//! Carrying out copy orders in the DR region: check the DR key and the
//! capacity (copies in flight, the manual-snapshot quota), start the copies
//! that fit and park the rest on the copy queue. Dry-run and the kill switch
//! stop before the first change and report what would be done.

use steward_shared::safety::RunMode;
use steward_shared::Policy;

use crate::clients::Connect;
use crate::kms::KeyCheck;
use crate::model::{Kind, WaitingCopy};
use crate::plan::{self, CopyOrder};
use crate::queue::CopyQueue;
use crate::rds::{CopyOutcome, Rds};
use crate::report::CopyResults;

/// What copy orders are carried out with.
pub struct Executor<'a> {
    pub connect: &'a dyn Connect,
    pub queue: Option<&'a dyn CopyQueue>,
    pub mode: RunMode,
}

impl Executor<'_> {
    /// Checks the DR key and the capacity, then copies what fits and parks
    /// the rest. Dry-run and the kill switch decide and stop.
    pub async fn run(
        &self,
        account: &str,
        dr: &dyn Rds,
        orders: Vec<CopyOrder>,
        policy: &Policy,
        session: &str,
    ) -> anyhow::Result<CopyResults> {
        let cfg = &policy.snapshots;
        let mut results = CopyResults::default();
        if orders.is_empty() {
            return Ok(results);
        }
        let keys = self.connect.keys(account, &cfg.dr_region, session).await?;
        if let KeyCheck::Unusable(why) = keys.check(&cfg.dr_kms_key).await? {
            results.failed.extend(
                orders
                    .iter()
                    .map(|o| (o.source.arn.clone(), "the DR key is unusable".to_string())),
            );
            results.key_missing = Some(why);
            return Ok(results);
        }
        let mut capacity = plan::Capacity::default();
        for kind in [Kind::Instance, Kind::Cluster] {
            for s in dr.snapshots(kind).await? {
                capacity.in_flight += u32::from(s.is_copy_in_progress());
                capacity.manual_snapshots += u32::from(s.is_manual());
            }
        }
        let admission = plan::admit(orders, capacity, cfg);
        if admission.quota_reached {
            results.quota = Some(format!(
                "{} manual snapshots in {} of snapshots.manual_snapshot_quota = {}",
                capacity.manual_snapshots, cfg.dr_region, cfg.manual_snapshot_quota
            ));
        }
        let mut waiting: Vec<CopyOrder> = admission.wait;
        for order in admission.start {
            if order.encrypts {
                results.encrypted_on_copy.push(order.source.arn.clone());
            }
            if !self.mode.may_change() {
                tracing::info!(target_id = %order.target_id, mode = %self.mode, "would copy; changing nothing");
                results.started.push(order.target_id.clone());
                continue;
            }
            match dr.copy(&order).await? {
                CopyOutcome::Started { status } => {
                    tracing::info!(target_id = %order.target_id, source = %order.source.arn, %status, "copy started");
                    results.started.push(order.target_id.clone());
                }
                CopyOutcome::Exists => results.present.push(order.target_id.clone()),
                CopyOutcome::Quota(why) => {
                    results.quota = Some(why);
                    waiting.push(order);
                }
                CopyOutcome::Capacity(why) => {
                    tracing::info!(target_id = %order.target_id, why = %why, "no capacity; the copy waits");
                    waiting.push(order);
                }
                CopyOutcome::KeyUnusable(why) => {
                    results
                        .failed
                        .push((order.source.arn.clone(), "the DR key is unusable".into()));
                    results.key_missing = Some(why);
                }
                CopyOutcome::Refused(why) => results.failed.push((order.source.arn.clone(), why)),
            }
        }
        for order in waiting {
            results.waiting.push(order.target_id.clone());
            let (Some(queue), true) = (self.queue, self.mode.may_change()) else {
                continue;
            };
            let item = WaitingCopy {
                account: order.source.account.clone(),
                region: order.source.region.clone(),
                kind: order.source.kind,
                snapshot_id: order.source.id.clone(),
            };
            match queue.park(&item).await {
                Ok(()) => results.parked += 1,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), target_id = %order.target_id, "could not park the copy; the next sweep makes it")
                }
            }
        }
        Ok(results)
    }
}
