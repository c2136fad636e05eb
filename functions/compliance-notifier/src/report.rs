//! What the security team reads: the message of a compliance change (the
//! rule, the resource and its tags, the annotation, console links, what to
//! do), the one flapping message, and the daily digest.

use std::collections::BTreeSet;

use steward_shared::notify::{Category, Notification, Severity, MULTIPLE};

use crate::model::{ComplianceChange, DigestFacts, ResourceTags};
use crate::plan::{ChangeMessage, DigestLine};

/// Resources named per digest line before the rest is counted.
pub const DIGEST_RESOURCES_SHOWN: usize = 3;

/// Percent-encodes a URL component (everything but unreserved characters).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The Config console page of a rule.
pub fn rule_link(region: &str, rule: &str) -> String {
    format!(
        "https://{r}.console.aws.amazon.com/config/home?region={r}#/rules/details?configRuleName={}",
        encode(rule),
        r = encode(region)
    )
}

/// The Config console page of a resource (its compliance and configuration timeline).
pub fn resource_link(region: &str, resource_type: &str, resource_id: &str) -> String {
    format!(
        "https://{r}.console.aws.amazon.com/config/home?region={r}#/resources/details?resourceId={}&resourceType={}",
        encode(resource_id),
        encode(resource_type),
        r = encode(region)
    )
}

/// The tags as text; says when and why they are unknown.
pub fn tags_text(tags: &ResourceTags) -> String {
    match tags {
        ResourceTags::Known(t) if t.is_empty() => "none".to_string(),
        ResourceTags::Known(t) => t
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", "),
        ResourceTags::Unknown(why) => format!("unknown ({why})"),
    }
}

/// The message of a notifiable change.
pub fn change_notification(
    change: &ComplianceChange,
    message: &ChangeMessage,
    tags: &ResourceTags,
    environment: Option<String>,
) -> Notification {
    let resource = change.resource_label();
    let (severity, what, summary) = match message {
        ChangeMessage::NonCompliant { severity } => (
            *severity,
            "noncompliant",
            format!("{resource} is NON_COMPLIANT with {}", change.rule),
        ),
        ChangeMessage::Recovered => (
            Severity::Info,
            "recovered",
            format!(
                "{resource} is {} again with {}",
                change.new_state, change.rule
            ),
        ),
        ChangeMessage::Flapping { severity, changes } => (
            *severity,
            "flapping",
            format!(
                "{resource} is flapping on {} ({changes} changes)",
                change.rule
            ),
        ),
    };
    let mut n = Notification::new(severity, Category::Compliance, what, summary);
    n.details.push(format!("Rule: {}", change.rule));
    n.details.push(format!(
        "Resource: {resource} in account {} ({})",
        change.account, change.region
    ));
    n.details.push(format!(
        "Compliance: {} -> {} (recorded {})",
        change
            .old_state
            .map(|s| s.as_str())
            .unwrap_or("not evaluated before"),
        change.new_state,
        change.recorded
    ));
    n.details.push(format!("Tags: {}", tags_text(tags)));
    n.details.push(format!(
        "Annotation: {}",
        change
            .annotation
            .as_deref()
            .unwrap_or("(the rule gave none)")
    ));
    n.details.push(format!(
        "Rule in the console: {}",
        rule_link(&change.region, &change.rule)
    ));
    n.details.push(format!(
        "Resource in the console: {}",
        resource_link(&change.region, &change.resource_type, &change.resource_id)
    ));
    n.next_steps = match message {
        ChangeMessage::NonCompliant { .. } => vec![
            format!("Fix {resource} as the annotation and the rule's description say, or ask its owner to."),
            "If the resource is meant to be this way, record an exception (narrow the rule's scope) instead of ignoring the message.".into(),
            "steward sends a recovery message when Config records it COMPLIANT again.".into(),
        ],
        ChangeMessage::Recovered => vec!["Nothing to do: the resource is compliant again.".into()],
        ChangeMessage::Flapping { .. } => vec![
            "The resource keeps changing between compliant and non-compliant; steward stays silent about it until the flapping window has passed.".into(),
            "Find what changes it back and forth (a deployment, a scheduled job, two tools fighting) in the resource's Config timeline, and fix the cause.".into(),
        ],
    };
    if matches!(tags, ResourceTags::Unknown(_)) {
        n.next_steps.push(
            "The resource's tags could not be read: look them up in the console to find its owner."
                .into(),
        );
    }
    n.account = change.account.clone();
    n.region = change.region.clone();
    n.environment = environment;
    let resource_arn = change
        .resource_id
        .starts_with("arn:")
        .then(|| change.resource_id.clone());
    n.related_resources = resource_arn
        .iter()
        .chain(change.rule_arn.iter())
        .cloned()
        .collect();
    n.thread_id = resource_arn.unwrap_or_else(|| {
        format!(
            "config:{}:{}:{}/{}",
            change.account, change.region, change.resource_type, change.resource_id
        )
    });
    n.dedupe_key = match message {
        ChangeMessage::Flapping { .. } => format!("flapping#{}", change.dedupe_key()),
        _ => change.dedupe_key(),
    };
    n = n
        .fact("rule", &change.rule)
        .fact("resourceType", &change.resource_type)
        .fact("resourceId", &change.resource_id)
        .fact("newCompliance", change.new_state.as_str())
        .fact(
            "oldCompliance",
            change.old_state.map(|s| s.as_str()).unwrap_or("NONE"),
        )
        .fact("resultRecordedTime", &change.recorded)
        .fact("tags", tags_text(tags))
        .fact("eventId", &change.event_id);
    if let ChangeMessage::Flapping { changes, .. } = message {
        n = n.fact("changesInWindow", changes.to_string());
    }
    n
}

fn delta_text(delta: Option<i64>) -> String {
    match delta {
        None => "no count from yesterday".to_string(),
        Some(0) => "unchanged since yesterday".to_string(),
        Some(d) if d > 0 => format!("+{d} since yesterday"),
        Some(d) => format!("{d} since yesterday"),
    }
}

/// The daily digest.
pub fn digest_notification(facts: &DigestFacts, lines: &[DigestLine]) -> Notification {
    let failing: Vec<&DigestLine> = lines.iter().filter(|l| l.count > 0).collect();
    let resources: u64 = failing.iter().map(|l| l.count).sum();
    let summary = if failing.is_empty() {
        format!("compliance digest {}: nothing is non-compliant", facts.day)
    } else {
        format!(
            "compliance digest {}: {resources} non-compliant resources in {} rules",
            facts.day,
            failing.len()
        )
    };
    let severity = crate::plan::digest_severity(facts.failures.len());
    let mut n = Notification::new(severity, Category::Compliance, "digest", summary);
    n.details.push(format!(
        "Source: AWS Config DescribeComplianceByConfigRule and GetComplianceDetailsByConfigRule in {} targets (account x region).",
        facts.targets.len()
    ));
    if facts.yesterday.is_none() {
        n.details.push(
            "Yesterday's counts are not known (first digest, or none ran yesterday): no change is shown."
                .into(),
        );
    }
    for f in &facts.failures {
        n.details.push(format!(
            "Could not read account {} ({}): {}",
            f.account, f.region, f.error
        ));
    }
    n.items = lines
        .iter()
        .map(|l| {
            let mut line = format!(
                "{} {} {}: {} non-compliant ({})",
                l.account,
                l.region,
                l.rule,
                l.count,
                delta_text(l.delta)
            );
            if !l.first_resources.is_empty() {
                line.push_str(&format!(": {}", l.first_resources.join(", ")));
                let shown = l.first_resources.len() as u64;
                if l.count > shown {
                    line.push_str(&format!(" and {} more", l.count - shown));
                }
            }
            line
        })
        .collect();
    n.next_steps = if failing.is_empty() {
        vec!["Nothing to do.".into()]
    } else {
        vec![
            "Work down the list from the top: fix the resources or record exceptions.".into(),
            "A count that grew since yesterday is new drift; ask the owners of those resources."
                .into(),
        ]
    };
    if !facts.failures.is_empty() {
        n.next_steps.push(
            "Check that the member role exists in the accounts that could not be read and allows the Config read actions."
                .into(),
        );
    }
    let accounts: BTreeSet<&str> = facts.targets.iter().map(|(a, _)| a.as_str()).collect();
    let regions: BTreeSet<&str> = facts.targets.iter().map(|(_, r)| r.as_str()).collect();
    n.account = single_or_multiple(&accounts);
    n.region = single_or_multiple(&regions);
    n.thread_id = facts.run_id.clone();
    n.dedupe_key = format!("digest#{}", facts.day);
    n.fact("day", facts.day.to_string())
        .fact("nonCompliantResources", resources.to_string())
        .fact("nonCompliantRules", failing.len().to_string())
        .fact("targetsFailed", facts.failures.len().to_string())
}

fn single_or_multiple(values: &BTreeSet<&str>) -> String {
    match values.iter().next() {
        Some(one) if values.len() == 1 => one.to_string(),
        _ => MULTIPLE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ComplianceState;

    #[test]
    fn links_are_encoded() {
        let l = resource_link("us-east-1", "AWS::S3::Bucket", "a b&c");
        assert!(l.contains("resourceId=a%20b%26c"), "{l}");
        assert!(l.contains("resourceType=AWS%3A%3AS3%3A%3ABucket"), "{l}");
    }

    #[test]
    fn unknown_tags_are_said() {
        let change = ComplianceChange {
            event_id: "e".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            rule: "r".into(),
            rule_arn: None,
            resource_type: "AWS::EC2::Instance".into(),
            resource_id: "i-1".into(),
            new_state: ComplianceState::NonCompliant,
            old_state: None,
            recorded: "t".into(),
            annotation: None,
        };
        let n = change_notification(
            &change,
            &ChangeMessage::NonCompliant {
                severity: Severity::High,
            },
            &ResourceTags::Unknown("Config has no record of it".into()),
            None,
        );
        assert_eq!(n.severity, Severity::High);
        assert!(n
            .details
            .contains(&"Tags: unknown (Config has no record of it)".to_string()));
        assert_eq!(n.event_type(), "steward.compliance.noncompliant");
    }
}
