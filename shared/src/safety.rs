//! The safety invariants every function that changes resources shares:
//! run modes (live, dry-run, kill switch), `steward:exempt`, environment
//! allow-lists and the blast-radius limit.

use std::collections::HashMap;
use std::fmt;

use crate::tags;

/// Whether this process may change governed resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Live,
    /// `STEWARD_DRY_RUN=true`: decide, log and notify; change nothing.
    DryRun,
    /// `STEWARD_DISABLED=true`: the kill switch; decide, log and notify; change nothing.
    Disabled,
}

impl RunMode {
    /// True when governed resources may be changed.
    pub fn may_change(self) -> bool {
        self == RunMode::Live
    }

    /// The marker put in front of notifications that changed nothing.
    pub fn marker(self) -> Option<&'static str> {
        match self {
            RunMode::Live => None,
            RunMode::DryRun => Some("DRY RUN"),
            RunMode::Disabled => Some("DISABLED"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Live => "live",
            RunMode::DryRun => "dry-run",
            RunMode::Disabled => "disabled",
        }
    }
}

impl fmt::Display for RunMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True when the resource's tags carry `steward:exempt=true` (case-insensitive value).
pub fn is_exempt(tags: &HashMap<String, String>) -> bool {
    tags.get(tags::EXEMPT)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Whether a cost-driven action may touch a resource with these tags: its
/// `env` must be readable and in the allowed list. Untagged is never allowed.
pub fn env_allows_cost_action(tags: &HashMap<String, String>, allowed: &[String]) -> bool {
    match tags.get(tags::ENV).map(|v| v.trim()) {
        Some(env) if !env.is_empty() => allowed.iter().any(|a| a == env),
        _ => false,
    }
}

/// Whether security containment may touch a resource: `*` allows every
/// environment; untagged resources follow `include_untagged`.
pub fn env_allows_containment(
    tags: &HashMap<String, String>,
    allowed: &[String],
    include_untagged: bool,
) -> bool {
    match tags.get(tags::ENV).map(|v| v.trim()) {
        Some(env) if !env.is_empty() => allowed.iter().any(|a| a == "*" || a == env),
        _ => include_untagged,
    }
}

/// A run that would change more resources than the policy allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlastRadiusExceeded {
    pub planned: usize,
    pub limit: u32,
}

impl fmt::Display for BlastRadiusExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this run would change {} resources, more than [limits] max_changes_per_run = {}; nothing was changed. \
             Check the triggering event, then raise the limit in the policy if the change is intended",
            self.planned, self.limit
        )
    }
}

impl std::error::Error for BlastRadiusExceeded {}

/// Checks the number of resources a run would change against the limit.
pub fn check_blast_radius(planned: usize, limit: u32) -> Result<(), BlastRadiusExceeded> {
    if planned > limit as usize {
        Err(BlastRadiusExceeded { planned, limit })
    } else {
        Ok(())
    }
}

/// The HIGH alert for a run stopped by the blast-radius limit, built in one
/// place for every function: `summary` says what would have changed, `items`
/// lists the resources, `first_step` says what to check first.
pub fn blast_radius_notice(
    category: crate::notify::Category,
    exceeded: &BlastRadiusExceeded,
    summary: String,
    items: Vec<String>,
    first_step: &str,
) -> crate::notify::Notification {
    let mut n = crate::notify::Notification::new(
        crate::notify::Severity::High,
        category,
        "blast-radius",
        summary,
    );
    n.details.push(exceeded.to_string());
    n.items = items;
    n.next_steps.push(first_step.to_string());
    n.next_steps.push(
        "If it is intended, raise [limits] max_changes_per_run and replay the event or run.".into(),
    );
    n.facts
        .insert("plannedChanges".into(), exceeded.planned.to_string());
    n.facts
        .insert("maxChangesPerRun".into(), exceeded.limit.to_string());
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn exempt_is_case_insensitive_true_only() {
        assert!(is_exempt(&tags(&[("steward:exempt", "TRUE")])));
        assert!(!is_exempt(&tags(&[("steward:exempt", "no")])));
        assert!(!is_exempt(&tags(&[])));
    }

    #[test]
    fn cost_actions_need_a_readable_allowed_env() {
        let dev = vec!["dev".to_string()];
        assert!(env_allows_cost_action(&tags(&[("env", "dev")]), &dev));
        assert!(!env_allows_cost_action(&tags(&[("env", "prod")]), &dev));
        assert!(!env_allows_cost_action(&tags(&[]), &dev));
        assert!(!env_allows_cost_action(&tags(&[("env", " ")]), &dev));
    }

    #[test]
    fn containment_includes_untagged_by_default() {
        let all = vec!["*".to_string()];
        assert!(env_allows_containment(&tags(&[]), &all, true));
        assert!(env_allows_containment(
            &tags(&[("env", "prod")]),
            &all,
            true
        ));
        assert!(!env_allows_containment(
            &tags(&[("env", "prod")]),
            &["dev".to_string()],
            true
        ));
    }

    #[test]
    fn blast_radius() {
        assert!(check_blast_radius(200, 200).is_ok());
        let e = check_blast_radius(201, 200).unwrap_err();
        assert!(e.to_string().contains("nothing was changed"));
    }
}
