//! What the security team reads about a rotation: the `rotated` message
//! (INFO), the `not-rotated` message of dry-run and the kill switch (MEDIUM),
//! and the `failed` message of every failed step or refusal (HIGH). Each
//! names the secret, the step, the token and the strategy, never a value.

use sha2::{Digest, Sha256};
use steward_shared::notify::{Category, Notification, Severity};
use steward_shared::RunMode;

/// Where the secret lives and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subject {
    pub account: String,
    pub region: String,
    pub arn: String,
    pub name: String,
    /// The secret's `env` tag, when it has one.
    pub environment: Option<String>,
}

/// The step a message is about.
pub(crate) struct StepRef<'a> {
    pub step: &'a str,
    pub token: &'a str,
    pub strategy: Option<&'a str>,
}

/// The secret's name from an ARN (`...:secret:NAME-AbCdEf`) or the id itself.
pub(crate) fn secret_name(secret_id: &str) -> String {
    match secret_id.split_once(":secret:") {
        Some((_, rest)) => match rest.rsplit_once('-') {
            Some((name, suffix)) if suffix.len() == 6 && !name.is_empty() => name.to_string(),
            _ => rest.to_string(),
        },
        None => secret_id.to_string(),
    }
}

fn fill(n: &mut Notification, subject: &Subject, at: &StepRef<'_>) {
    n.account = subject.account.clone();
    n.region = subject.region.clone();
    n.environment = subject.environment.clone();
    if subject.arn.starts_with("arn:") {
        n.related_resources.push(subject.arn.clone());
    }
    n.thread_id = subject.arn.clone();
    n.facts.insert("secretName".into(), subject.name.clone());
    n.facts.insert("step".into(), at.step.to_string());
    n.facts
        .insert("clientRequestToken".into(), at.token.to_string());
    if let Some(s) = at.strategy {
        n.facts.insert("strategy".into(), s.to_string());
    }
}

/// The rotation finished: `user` on `endpoint` now logs in with AWSCURRENT;
/// `previous_user` (alternating users) keeps its password until its next turn.
pub(crate) fn rotated(
    subject: &Subject,
    at: &StepRef<'_>,
    user: &str,
    endpoint: &str,
    previous_user: Option<&str>,
) -> Notification {
    let mut n = Notification::new(
        Severity::Info,
        Category::Rotation,
        "rotated",
        format!(
            "secret {} rotated ({})",
            subject.name,
            at.strategy.unwrap_or("unknown strategy")
        ),
    );
    n.details.push(format!(
        "The credentials of user {user:?} on {endpoint} were rotated; AWSCURRENT is now version {} and logs in.",
        at.token
    ));
    if let Some(previous) = previous_user {
        n.details.push(format!(
            "User {previous:?} (now AWSPREVIOUS) keeps its password until the next rotation."
        ));
    }
    fill(&mut n, subject, at);
    n.dedupe_key = format!("{}#{}#rotated", subject.arn, at.token);
    n
}

/// Dry-run or the kill switch stopped the step after the checks.
pub(crate) fn not_run(
    subject: &Subject,
    at: &StepRef<'_>,
    mode: RunMode,
    variable: &str,
    reason: &str,
) -> Notification {
    let mut n = Notification::new(
        Severity::Medium,
        Category::Rotation,
        "not-rotated",
        format!("rotation of secret {} not run ({})", subject.name, mode),
    );
    n.details.push(reason.to_string());
    n.next_steps.push(format!(
        "Unset {variable} on the function, then rotate the secret again."
    ));
    fill(&mut n, subject, at);
    n
}

/// A step failed or was refused; `reason` says why and what to do.
pub(crate) fn failed(subject: &Subject, at: &StepRef<'_>, reason: &str) -> Notification {
    let mut n = Notification::new(
        Severity::High,
        Category::Rotation,
        "failed",
        format!("rotation of secret {} failed at {}", subject.name, at.step),
    );
    n.details.push(format!("Reason: {reason}"));
    n.details.push(
        "The secret's AWSCURRENT version was not changed by this step; the database keeps a credential the secret records."
            .into(),
    );
    n.next_steps.push(
        "Fix the cause named above; Secrets Manager retries the step, or rotate the secret again."
            .into(),
    );
    n.next_steps
        .push("Check the function's logs for this token for the full sequence.".into());
    fill(&mut n, subject, at);
    let digest = Sha256::digest(reason.as_bytes());
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    n.dedupe_key = format!("{}#{}#{}#{short}", subject.arn, at.token, at.step);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_arns() {
        assert_eq!(
            secret_name("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app-AbCdEf"),
            "prod/app"
        );
        assert_eq!(secret_name("prod/app"), "prod/app");
    }

    #[test]
    fn failures_are_high_and_keyed_by_reason() {
        let subject = Subject {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf".into(),
            name: "app".into(),
            environment: None,
        };
        let at = StepRef {
            step: "setSecret",
            token: "tok",
            strategy: Some("single-user"),
        };
        let a = failed(&subject, &at, "one reason");
        let b = failed(&subject, &at, "another reason");
        assert_eq!(a.severity, Severity::High);
        assert_ne!(a.dedupe_key, b.dedupe_key);
        assert_eq!(a.facts["step"], "setSecret");
    }
}
