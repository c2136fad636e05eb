//! The scheduled `findings-sweep` (SPEC section 4): in every target region,
//! the non-archived findings at or above the lower bound of the containment
//! band updated within `containment.sweep_lookback_minutes`, listed with
//! paginated `ListFindings` and read with `GetFindings` (50 ids a call), each
//! handled exactly as if its event had arrived (idempotent with it).

use chrono::Duration as Minutes;
use serde_json::{json, Value};
use steward_shared::observability::Metrics;
use steward_shared::trigger::ScheduledRun;

use crate::clients::Apis;
use crate::events;
use crate::guardduty::SweepQuery;
use crate::handler::Responder;
use crate::plan::{self, Verification};

impl<A: Apis> Responder<A> {
    /// The findings sweep: every target region's recent findings at or above
    /// the containment band, each handled as if its event had arrived.
    pub(crate) async fn sweep(
        &self,
        run: &ScheduledRun,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Value> {
        let policy = self.steward.policy.current().await;
        let own = self.steward.aws.own_account().to_string();
        let mut regions = policy.targets.regions.clone();
        if regions.is_empty() {
            regions.push(self.steward.aws.own_region().to_string());
        }
        let lowest = plan::thresholds(&policy.containment, "").contain;
        let since =
            run.time - Minutes::minutes(i64::from(policy.containment.sweep_lookback_minutes));
        let query = SweepQuery {
            min_severity: lowest.lower_bound(),
            updated_since_ms: since.timestamp_millis(),
        };
        let (mut handled, mut failures) = (Vec::new(), Vec::new());
        for region in &regions {
            let gd = self.apis.guardduty(&own, region, &run.id).await?;
            let Some(detector) = gd.detector().await? else {
                tracing::warn!(region = %region, "no GuardDuty detector in this region; nothing to sweep");
                continue;
            };
            let ids = gd.list_findings(&detector, &query).await?;
            for detail in gd.get_findings(&detector, &ids).await? {
                let id = detail["id"].as_str().unwrap_or_default().to_string();
                let result = match events::parse_detail(&detail) {
                    Ok(f) => {
                        self.respond(
                            &format!("sweep-{}", run.id),
                            &f,
                            &Verification::Verified,
                            metrics,
                        )
                        .await
                    }
                    Err(e) => Err(anyhow::anyhow!(
                        "GuardDuty's finding could not be read: {e}"
                    )),
                };
                match result {
                    Ok(out) => handled.push(out),
                    Err(e) => failures.push(format!("{id}: {e:#}")),
                }
            }
        }
        let summary =
            json!({"job": run.job, "regions": regions, "findings": handled, "failures": failures});
        if !failures.is_empty() {
            anyhow::bail!(
                "findings sweep: {} finding(s) failed ({}); the retry will try again",
                failures.len(),
                failures.join("; ")
            );
        }
        Ok(summary)
    }
}
