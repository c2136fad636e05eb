//! What a scheduler run at an instant would do, changing nothing: the same
//! targets, listing, planner and blast-radius check the function uses.
//! `steward plan` prints it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use steward_shared::aws::AwsContext;
use steward_shared::{safety, Policy};

use crate::plan::{Malformed, Planned, Window};
use crate::run::{self, AwsFleet};
use crate::targets::{self, Organization};

/// The plan of one target as `steward plan` shows it.
#[derive(Debug, Serialize)]
pub struct TargetPreview {
    pub account: String,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub evaluated: usize,
    pub already_in_state: usize,
    pub items: Vec<Planned>,
    pub malformed: Vec<Malformed>,
}

/// The whole preview.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub window: Window,
    pub changes: usize,
    /// Set when the run would be refused by the blast-radius limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    pub targets: Vec<TargetPreview>,
}

/// Plans a run at `at` in the policy's targets, changing nothing.
pub async fn preview(
    aws: &AwsContext,
    policy: &Policy,
    at: DateTime<Utc>,
) -> anyhow::Result<Preview> {
    let window = Window::ending_at(at, policy);
    let org = aws_sdk_organizations::Client::new(aws.base());
    let org_ref: Option<&dyn Organization> = if policy.targets.organizational_units.is_empty() {
        None
    } else {
        Some(&org)
    };
    let targets = targets::resolve(policy, aws.own_account(), aws.own_region(), org_ref).await?;
    let fleet = AwsFleet { aws: aws.clone() };
    let session = format!("plan-{}", at.timestamp());
    let plans = run::plan_targets(
        &fleet,
        &targets,
        policy,
        window,
        &session,
        &Default::default(),
    )
    .await;
    let mut out = Vec::new();
    let mut changes = 0;
    for p in plans {
        match p.result {
            Ok((plan, _)) => {
                changes += plan.changes();
                out.push(TargetPreview {
                    account: p.target.account,
                    region: p.target.region,
                    error: None,
                    evaluated: plan.evaluated,
                    already_in_state: plan.already,
                    items: plan.items,
                    malformed: plan.malformed,
                });
            }
            Err(e) => out.push(TargetPreview {
                account: p.target.account,
                region: p.target.region,
                error: Some(format!("{e:#}")),
                evaluated: 0,
                already_in_state: 0,
                items: vec![],
                malformed: vec![],
            }),
        }
    }
    let blocked = safety::check_blast_radius(changes, policy.limits.max_changes_per_run)
        .err()
        .map(|e| e.to_string());
    Ok(Preview {
        window,
        changes,
        blocked,
        targets: out,
    })
}
