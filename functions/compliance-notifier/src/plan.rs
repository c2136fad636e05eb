//! The pure decisions: which compliance changes are notified, at what
//! severity, when a resource is flapping, and what a digest says compared
//! with yesterday. No SDK types and no clock: facts and `now` come in.

use std::collections::BTreeMap;

use steward_shared::notify::Severity;
use steward_shared::policy::Compliance;

use crate::model::{ComplianceChange, ComplianceState, RuleCount};

/// What a compliance change means for the security team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// To NON_COMPLIANT from anything else (or from nothing).
    NonCompliant,
    /// To COMPLIANT or NOT_APPLICABLE from NON_COMPLIANT.
    Recovered,
    /// Logged only (INSUFFICIENT_DATA, or a change between non-failing states).
    LogOnly,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::NonCompliant => "noncompliant",
            Transition::Recovered => "recovered",
            Transition::LogOnly => "logged",
        }
    }
}

/// Classifies a change by its old and new compliance states.
pub fn classify(old: Option<ComplianceState>, new: ComplianceState) -> Transition {
    use ComplianceState::*;
    match (old, new) {
        (Some(NonCompliant), NonCompliant) => Transition::LogOnly,
        (_, NonCompliant) => Transition::NonCompliant,
        (Some(NonCompliant), Compliant | NotApplicable) => Transition::Recovered,
        _ => Transition::LogOnly,
    }
}

/// True when `pattern` (`*` matches any run of characters, everything else literally) matches `name`.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == name;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The severity of a NON_COMPLIANT (or flapping) message for `rule`: the first
/// matching `rule_severities` pattern, else `default_severity`.
pub fn rule_severity(policy: &Compliance, rule: &str) -> Severity {
    policy
        .rule_severities
        .iter()
        .find(|r| glob_matches(&r.pattern, rule))
        .map(|r| r.severity)
        .unwrap_or(policy.default_severity)
}

/// The per-resource change history as read from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// De-duplication keys of the notifiable changes recorded in the window.
    pub recent: Vec<String>,
    /// True when this resource was already announced as flapping in the window.
    pub flapping_announced: bool,
}

/// What to do with a notifiable change, given the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlapDecision {
    /// Notify it and record it in the history.
    Notify,
    /// More than `flap_changes` in the window: send the one flapping message.
    AnnounceFlapping { changes: usize },
    /// Flapping already announced in this window: log only.
    Suppress { changes: usize },
}

/// Decides between a normal message, the one flapping message and silence.
/// `change_key` is this change's de-duplication key (a retried change is not counted twice).
pub fn flap_decision(history: &History, change_key: &str, flap_changes: u32) -> FlapDecision {
    let counted = history.recent.iter().any(|k| k == change_key);
    let changes = history.recent.len() + usize::from(!counted);
    if changes <= flap_changes as usize {
        FlapDecision::Notify
    } else if history.flapping_announced {
        FlapDecision::Suppress { changes }
    } else {
        FlapDecision::AnnounceFlapping { changes }
    }
}

/// The message a change gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeMessage {
    NonCompliant { severity: Severity },
    Recovered,
    Flapping { severity: Severity, changes: usize },
}

/// The whole decision for one change: `None` means logged only.
pub fn plan_change(
    change: &ComplianceChange,
    history: &History,
    policy: &Compliance,
) -> (Transition, Option<ChangeMessage>, Option<FlapDecision>) {
    let transition = classify(change.old_state, change.new_state);
    if transition == Transition::LogOnly {
        return (transition, None, None);
    }
    let severity = rule_severity(policy, &change.rule);
    let decision = flap_decision(history, &change.dedupe_key(), policy.flap_changes);
    let message = match (decision, transition) {
        (FlapDecision::Notify, Transition::NonCompliant) => {
            Some(ChangeMessage::NonCompliant { severity })
        }
        (FlapDecision::Notify, _) => Some(ChangeMessage::Recovered),
        (FlapDecision::AnnounceFlapping { changes }, _) => {
            Some(ChangeMessage::Flapping { severity, changes })
        }
        (FlapDecision::Suppress { .. }, _) => None,
    };
    (transition, message, Some(decision))
}

/// One digest line: a rule still failing in an account and region, or one that recovered since yesterday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestLine {
    pub key: String,
    pub account: String,
    pub region: String,
    pub rule: String,
    pub count: u64,
    /// Change since yesterday; `None` when yesterday's counts are unknown.
    pub delta: Option<i64>,
    pub first_resources: Vec<String>,
}

/// The digest's lines: today's counts (largest first) compared with
/// yesterday's, then yesterday's rules that are now at zero.
pub fn digest_lines(
    counts: &[RuleCount],
    yesterday: Option<&BTreeMap<String, u64>>,
    resources_shown: usize,
) -> Vec<DigestLine> {
    let mut lines: Vec<DigestLine> = counts
        .iter()
        .filter(|c| !c.resources.is_empty())
        .map(|c| {
            let count = c.resources.len() as u64;
            let key = c.key();
            DigestLine {
                delta: yesterday.map(|y| count as i64 - y.get(&key).copied().unwrap_or(0) as i64),
                key,
                account: c.account.clone(),
                region: c.region.clone(),
                rule: c.rule.clone(),
                count,
                first_resources: c.resources.iter().take(resources_shown).cloned().collect(),
            }
        })
        .collect();
    lines.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    if let Some(y) = yesterday {
        for (key, before) in y {
            if *before > 0 && !lines.iter().any(|l| &l.key == key) {
                let mut parts = key.splitn(3, '/');
                let account = parts.next().unwrap_or_default().to_string();
                let region = parts.next().unwrap_or_default().to_string();
                let rule = parts.next().unwrap_or_default().to_string();
                lines.push(DigestLine {
                    key: key.clone(),
                    account,
                    region,
                    rule,
                    count: 0,
                    delta: Some(-(*before as i64)),
                    first_resources: Vec::new(),
                });
            }
        }
    }
    lines
}

/// Today's counts, remembered for tomorrow's digest.
pub fn counts_to_remember(counts: &[RuleCount]) -> BTreeMap<String, u64> {
    counts
        .iter()
        .filter(|c| !c.resources.is_empty())
        .map(|c| (c.key(), c.resources.len() as u64))
        .collect()
}

/// The digest's severity: INFO unless a target could not be read (MEDIUM).
pub fn digest_severity(failures: usize) -> Severity {
    if failures > 0 {
        Severity::Medium
    } else {
        Severity::Info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_shared::policy::RuleSeverity;
    use ComplianceState::*;

    fn change(old: Option<ComplianceState>, new: ComplianceState, at: &str) -> ComplianceChange {
        ComplianceChange {
            event_id: "e".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            rule: "s3-bucket-public-read-prohibited".into(),
            rule_arn: None,
            resource_type: "AWS::S3::Bucket".into(),
            resource_id: "logs".into(),
            new_state: new,
            old_state: old,
            recorded: at.into(),
            annotation: None,
        }
    }

    #[test]
    fn transitions() {
        assert_eq!(
            classify(Some(Compliant), NonCompliant),
            Transition::NonCompliant
        );
        assert_eq!(classify(None, NonCompliant), Transition::NonCompliant);
        assert_eq!(
            classify(Some(InsufficientData), NonCompliant),
            Transition::NonCompliant
        );
        assert_eq!(
            classify(Some(NonCompliant), Compliant),
            Transition::Recovered
        );
        assert_eq!(
            classify(Some(NonCompliant), NotApplicable),
            Transition::Recovered
        );
        assert_eq!(
            classify(Some(NonCompliant), InsufficientData),
            Transition::LogOnly
        );
        assert_eq!(
            classify(Some(Compliant), InsufficientData),
            Transition::LogOnly
        );
        assert_eq!(classify(None, Compliant), Transition::LogOnly);
        assert_eq!(
            classify(Some(NotApplicable), Compliant),
            Transition::LogOnly
        );
        assert_eq!(
            classify(Some(NonCompliant), NonCompliant),
            Transition::LogOnly
        );
    }

    #[test]
    fn globs() {
        assert!(glob_matches("s3-*", "s3-bucket-public-read-prohibited"));
        assert!(glob_matches("*public*", "s3-bucket-public-read-prohibited"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "abc"));
        assert!(!glob_matches("a*b*c", "acb"));
        assert!(!glob_matches("ab*ba", "aba"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(!glob_matches("iam-*", "s3-bucket"));
    }

    #[test]
    fn first_matching_pattern_wins() {
        let mut policy = Compliance::default();
        assert_eq!(rule_severity(&policy, "anything"), Severity::Medium);
        policy.rule_severities = vec![
            RuleSeverity {
                pattern: "s3-bucket-public-*".into(),
                severity: Severity::Critical,
            },
            RuleSeverity {
                pattern: "s3-*".into(),
                severity: Severity::High,
            },
            RuleSeverity {
                pattern: "*-tagged".into(),
                severity: Severity::Low,
            },
        ];
        assert_eq!(
            rule_severity(&policy, "s3-bucket-public-read-prohibited"),
            Severity::Critical
        );
        assert_eq!(
            rule_severity(&policy, "s3-bucket-versioning-enabled"),
            Severity::High
        );
        assert_eq!(rule_severity(&policy, "ec2-tagged"), Severity::Low);
        assert_eq!(
            rule_severity(&policy, "iam-password-policy"),
            Severity::Medium
        );
    }

    #[test]
    fn flapping_gives_one_message_then_silence() {
        let policy = Compliance {
            flap_changes: 2,
            ..Compliance::default()
        };
        let c1 = change(Some(Compliant), NonCompliant, "t1");
        let mut history = History::default();
        let (_, m, _) = plan_change(&c1, &history, &policy);
        assert_eq!(
            m,
            Some(ChangeMessage::NonCompliant {
                severity: Severity::Medium
            })
        );
        history.recent.push(c1.dedupe_key());
        // A retry of the same change is not counted twice.
        assert_eq!(
            plan_change(&c1, &history, &policy).2,
            Some(FlapDecision::Notify)
        );
        let c2 = change(Some(NonCompliant), Compliant, "t2");
        assert_eq!(
            plan_change(&c2, &history, &policy).1,
            Some(ChangeMessage::Recovered)
        );
        history.recent.push(c2.dedupe_key());
        let c3 = change(Some(Compliant), NonCompliant, "t3");
        assert_eq!(
            plan_change(&c3, &history, &policy).1,
            Some(ChangeMessage::Flapping {
                severity: Severity::Medium,
                changes: 3
            })
        );
        history.flapping_announced = true;
        let c4 = change(Some(NonCompliant), Compliant, "t4");
        assert_eq!(plan_change(&c4, &history, &policy).1, None);
        // INSUFFICIENT_DATA never counts.
        let c5 = change(Some(NonCompliant), InsufficientData, "t5");
        assert_eq!(
            plan_change(&c5, &History::default(), &policy),
            (Transition::LogOnly, None, None)
        );
    }

    #[test]
    fn digest_compares_with_yesterday() {
        let rc = |rule: &str, n: usize| RuleCount {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            rule: rule.into(),
            resources: (0..n).map(|i| format!("r{i}")).collect(),
        };
        let today = vec![rc("a", 1), rc("b", 3), rc("empty", 0)];
        let lines = digest_lines(&today, None, 2);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].rule, "b");
        assert_eq!(lines[0].first_resources, vec!["r0", "r1"]);
        assert_eq!(lines[0].delta, None);
        let yesterday = BTreeMap::from([
            ("123456789012/us-east-1/a".to_string(), 3u64),
            ("123456789012/us-east-1/gone".to_string(), 2u64),
        ]);
        let lines = digest_lines(&today, Some(&yesterday), 2);
        let delta = |rule: &str| lines.iter().find(|l| l.rule == rule).unwrap().delta;
        assert_eq!(delta("a"), Some(-2));
        assert_eq!(delta("b"), Some(3));
        assert_eq!(delta("gone"), Some(-2));
        assert_eq!(counts_to_remember(&today).len(), 2);
        assert_eq!(digest_severity(0), Severity::Info);
        assert_eq!(digest_severity(1), Severity::Medium);
    }
}
