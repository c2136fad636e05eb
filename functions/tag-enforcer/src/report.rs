//! What the security team reads from the tag enforcer: the notice about new
//! resources (what was added, what is still missing), the blast-radius alert,
//! the Config evaluations a dry-run or the kill switch did not report, and
//! the notice about changed governance tags. Built from the plan and the
//! results; nothing here talks to AWS.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use steward_shared::notify::{Category, Notification, Severity};
use steward_shared::safety::{self, BlastRadiusExceeded, RunMode};
use steward_shared::tags;

use crate::model::{ConfigRuleEvent, CreateCall, Creator, Evaluation, ResourceState, TagCall};
use crate::plan::{self, GovernanceChange, ResourcePlan};

/// Who made a call, as the team reads it.
pub fn caller(creator: Option<&Creator>) -> &str {
    creator
        .map(|c| c.by.as_str())
        .unwrap_or("an AWS service or instance role")
}

fn fill_common(
    n: &mut Notification,
    account: &str,
    region: &str,
    event_name: &str,
    event_id: &str,
) {
    n.account = account.to_string();
    n.region = region.to_string();
    n.dedupe_key = event_id.to_string();
    n.facts.insert("eventName".into(), event_name.to_string());
    n.facts
        .insert("cloudTrailEventId".into(), event_id.to_string());
}

/// The HIGH alert when a create call would tag more resources than allowed.
pub fn blast_radius(
    call: &CreateCall,
    exceeded: &BlastRadiusExceeded,
    plans: &[(ResourceState, ResourcePlan)],
) -> Notification {
    let mut n = safety::blast_radius_notice(
        Category::Tagging,
        exceeded,
        format!(
            "{} {} would tag {} resources; limit {}",
            call.event_name, call.event_id, exceeded.planned, exceeded.limit
        ),
        plans.iter().map(|(s, _)| s.arn.clone()).collect(),
        "Check who made this call and why it created so many resources.",
    );
    fill_common(
        &mut n,
        &call.account,
        &call.region,
        &call.event_name,
        &call.event_id,
    );
    n
}

/// The notice about new resources that lack required tags, or whose tagging failed.
pub fn created(
    call: &CreateCall,
    creator: Option<&Creator>,
    plans: &[(ResourceState, ResourcePlan)],
    failures: &[(String, String)],
    labels: &dyn Fn(&str) -> &'static str,
    mode: RunMode,
) -> Notification {
    let who = caller(creator);
    let noncompliant: Vec<&(ResourceState, ResourcePlan)> = plans
        .iter()
        .filter(|(_, p)| !p.compliance.is_compliant())
        .collect();
    let severity = if failures.is_empty() {
        Severity::Low
    } else {
        Severity::Medium
    };
    let summary = match noncompliant.len() {
        0 => format!(
            "tagging failed on {} new resources from {}",
            failures.len(),
            call.event_name
        ),
        1 => format!("1 new resource created by {who} lacks required tags"),
        count => format!("{count} new resources created by {who} lack required tags"),
    };
    let mut n = Notification::new(severity, Category::Tagging, "noncompliant", summary);
    n.details.push(format!(
        "{} created {} in account {} ({}) with {}.",
        who,
        match plans.len() {
            1 => "1 resource".to_string(),
            count => format!("{count} resources"),
        },
        call.account,
        call.region,
        call.event_name
    ));
    if let Some(via) = creator.and_then(|c| c.via.as_deref()) {
        n.details.push(format!("The call was made through {via}."));
    }
    for (state, plan) in &noncompliant {
        let mut line = format!(
            "{} ({}): {}",
            state.arn,
            labels(state.r.kind),
            plan.compliance.annotation()
        );
        if plan.exempt {
            line.push_str(" [steward:exempt, not changed]");
        }
        if !plan.add.is_empty() {
            let added: Vec<String> = plan.add.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let verb = if mode.may_change() {
                "steward added"
            } else {
                "steward would add"
            };
            line.push_str(&format!("; {verb} {}", added.join(", ")));
        }
        n.items.push(line);
        n.related_resources.push(state.arn.clone());
    }
    for (arn, error) in failures {
        n.items.push(format!("{arn}: adding tags failed: {error}"));
    }
    let missing: BTreeSet<String> = noncompliant
        .iter()
        .flat_map(|(_, p)| p.compliance.missing.clone())
        .collect();
    if !missing.is_empty() {
        let missing: Vec<String> = missing.into_iter().collect();
        n.next_steps.push(format!(
            "Ask {who} to add the missing tags: {}.",
            missing.join(", ")
        ));
    }
    if noncompliant
        .iter()
        .any(|(_, p)| !p.compliance.invalid.is_empty())
    {
        n.next_steps
            .push("Correct tag values that are not allowed (see each resource).".into());
    }
    if !failures.is_empty() {
        n.next_steps
            .push("Check the member role's tagging permissions; the event is retried.".into());
    }
    let envs: BTreeSet<String> = plans
        .iter()
        .filter_map(|(s, p)| {
            p.add
                .get(tags::ENV)
                .or_else(|| s.tags.get(tags::ENV))
                .cloned()
        })
        .collect();
    n.thread_id = match noncompliant.as_slice() {
        [(only, _)] => only.arn.clone(),
        _ => call.event_id.clone(),
    };
    n.facts.insert("createdBy".into(), who.to_string());
    fill_common(
        &mut n,
        &call.account,
        &call.region,
        &call.event_name,
        &call.event_id,
    );
    n.environment = match (envs.len(), envs.into_iter().next()) {
        (1, Some(env)) => Some(env),
        _ => None,
    };
    n
}

/// The create call's response.
pub fn created_response(
    call: &CreateCall,
    creator: Option<&Creator>,
    plans: &[(ResourceState, ResourcePlan)],
    applied: &[String],
    mode: RunMode,
    notification: &str,
) -> Value {
    let resources: Vec<Value> = plans
        .iter()
        .map(|(s, p)| {
            json!({
                "arn": s.arn,
                "add": p.add,
                "exempt": p.exempt,
                "compliant": p.compliance.is_compliant(),
                "missing": p.compliance.missing,
                "invalid": p.compliance.invalid.iter().map(|(k, v, _)| format!("{k}={v}")).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "event_id": call.event_id,
        "mode": mode.as_str(),
        "creator": creator.map(|c| c.by.clone()),
        "created_via": creator.and_then(|c| c.via.clone()),
        "tagged": applied,
        "resources": resources,
        "notification": notification,
    })
}

/// What a dry-run or the kill switch would have reported to AWS Config.
pub fn config_not_reported(event: &ConfigRuleEvent, evaluations: &[Evaluation]) -> Notification {
    let counts = plan::verdict_counts(evaluations);
    let counted: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let mut n = Notification::new(
        Severity::Info,
        Category::Tagging,
        "config-not-reported",
        format!(
            "AWS Config rule {} would get {} evaluations; none reported",
            event.rule_name,
            evaluations.len()
        ),
    );
    n.details.push(format!(
        "steward changes nothing in this mode, so no evaluation was sent to AWS Config ({}).",
        counted.join(", ")
    ));
    n.items = evaluations
        .iter()
        .map(|e| {
            format!(
                "{} {}: {} ({})",
                e.resource_type,
                e.resource_id,
                e.verdict.as_str(),
                e.annotation
            )
        })
        .collect();
    n.next_steps.push(
        "Turn dry-run or the kill switch off to report evaluations; Config shows the rule's previous results until then."
            .into(),
    );
    n.account = event.account.clone();
    n.region = event.region.clone();
    n.dedupe_key = event.event_id.clone();
    n.thread_id = event.event_id.clone();
    n.facts.insert("configRule".into(), event.rule_name.clone());
    n
}

/// The notice about changed governance tags: one per tagging call.
pub fn governance_changes(
    call: &TagCall,
    who: &str,
    changes: &[GovernanceChange],
    arns: &[String],
    missing: &[String],
) -> Notification {
    let severity = plan::overall_severity(changes);
    let summary = match changes {
        [only] => match &only.now {
            Some(v) => format!(
                "{who} set {}={v} on {} (was {})",
                only.key,
                only.resource,
                only.previous.short()
            ),
            None => format!(
                "{who} removed {} from {} (was {})",
                only.key,
                only.resource,
                only.previous.short()
            ),
        },
        _ => format!(
            "{who} changed governance tags on {} resources",
            changes
                .iter()
                .map(|c| c.resource.as_str())
                .collect::<BTreeSet<_>>()
                .len()
        ),
    };
    let mut n = Notification::new(severity, Category::Tagging, "tag-changed", summary);
    n.details.push(format!(
        "{who} called {} in account {} ({}) at {}.",
        call.event_name,
        call.account,
        call.region,
        call.event_time.to_rfc3339()
    ));
    for change in changes {
        n.details.push(change.meaning.clone());
        n.items.push(format!(
            "{} {}: {} {} -> {}",
            change.label,
            change.resource,
            change.key,
            change.previous.text(),
            change
                .now
                .as_deref()
                .map(|v| format!("`{v}`"))
                .unwrap_or_else(|| "removed".into())
        ));
    }
    for line in missing {
        n.details.push(line.clone());
    }
    if severity >= Severity::High {
        n.next_steps.push(format!(
            "Confirm with {who} that the change is intended; if not, restore the previous value."
        ));
    } else {
        n.next_steps
            .push("No action needed if the change is intended.".into());
    }
    n.related_resources = arns.to_vec();
    n.thread_id = match arns {
        [only] => only.clone(),
        _ => call.event_id.clone(),
    };
    n.facts.insert("changedBy".into(), who.to_string());
    fill_common(
        &mut n,
        &call.account,
        &call.region,
        &call.event_name,
        &call.event_id,
    );
    let envs: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.key == tags::ENV)
        .filter_map(|c| c.now.as_deref())
        .collect();
    n.environment = match (envs.len(), envs.into_iter().next()) {
        (1, Some(env)) => Some(env.to_string()),
        _ => None,
    };
    n
}

/// The tagging call's response.
pub fn tag_change_response(
    call: &TagCall,
    who: &str,
    n: &Notification,
    changes: &[GovernanceChange],
    notification: &str,
) -> Value {
    json!({
        "event_id": call.event_id,
        "changed_by": who,
        "severity": n.severity.as_str(),
        "changes": changes.iter().map(|c| json!({
            "resource": c.resource,
            "key": c.key,
            "previous": c.previous.text(),
            "now": c.now,
            "severity": c.severity.as_str(),
            "meaning": c.meaning,
        })).collect::<Vec<_>>(),
        "notification": notification,
    })
}

/// The Config event's response.
pub fn config_response(
    event: &ConfigRuleEvent,
    evaluations: &[Evaluation],
    mode: RunMode,
    reported: bool,
) -> Value {
    json!({
        "rule": event.rule_name,
        "mode": mode.as_str(),
        "reported": reported,
        "evaluations": evaluations.iter().map(|e| json!({
            "resource_type": e.resource_type,
            "resource_id": e.resource_id,
            "compliance": e.verdict.as_str(),
            "annotation": e.annotation,
        })).collect::<Vec<_>>(),
    })
}
