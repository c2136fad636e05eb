//! Carrying out the planned tag additions, one resource at a time: a
//! failure is recorded and the others still go ahead. Dry-run and the kill
//! switch change nothing and only log what they would add.

use steward_shared::entry::Invocation;
use steward_shared::safety::RunMode;

use crate::model::ResourceState;
use crate::plan::ResourcePlan;
use crate::resources::Resources;

/// What was done: the resources tagged, and (resource, error) of the failures.
#[derive(Debug, Default)]
pub struct Applied {
    pub applied: Vec<String>,
    pub failures: Vec<(String, String)>,
}

/// Adds each plan's missing tags to its resource.
pub async fn add_planned_tags(
    api: &Resources,
    plans: &[(ResourceState, ResourcePlan)],
    mode: RunMode,
    inv: &mut Invocation,
) -> Applied {
    let mut done = Applied::default();
    for (state, plan) in plans.iter().filter(|(_, p)| !p.add.is_empty()) {
        if !mode.may_change() {
            tracing::info!(resource = %state.arn, add = ?plan.add, %mode, "would add tags; changing nothing");
            continue;
        }
        match api.add_tags(state, &plan.add).await {
            Ok(()) => {
                tracing::info!(resource = %state.arn, add = ?plan.add, "tags added");
                inv.metrics.actions_taken += 1;
                done.applied.push(state.arn.clone());
            }
            Err(e) => {
                tracing::error!(resource = %state.arn, error = %format!("{e:#}"), "adding tags failed");
                inv.metrics.actions_failed += 1;
                done.failures.push((state.arn.clone(), format!("{e:#}")));
            }
        }
    }
    done
}
