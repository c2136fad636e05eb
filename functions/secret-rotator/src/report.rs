//! What the security team reads about a rotation: the `rotated` message
//! (INFO), the `not-rotated` message of dry-run and the kill switch (MEDIUM),
//! and the `failed` message of every failed step or refusal (HIGH). Each
//! names the secret, the step, the token and the strategy, never a value.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use steward_shared::notify::{Category, Notification, Severity};
use steward_shared::RunMode;

use crate::model::DbCredentials;

/// What a step did, for the response and the logs.
pub(crate) struct StepReport {
    pub result: &'static str,
    pub changed: bool,
}

pub(crate) fn done(result: &'static str, changed: bool) -> anyhow::Result<StepReport> {
    Ok(StepReport { result, changed })
}

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

impl Subject {
    /// What the invocation's `SecretId` says; the function's own account and
    /// region when it is a name, not an ARN.
    pub fn from_id(secret_id: &str, own_account: &str, own_region: &str) -> Subject {
        let (account, region) = crate::events::account_region_of(secret_id)
            .unwrap_or_else(|| (own_account.to_string(), own_region.to_string()));
        Subject {
            account,
            region,
            arn: secret_id.to_string(),
            name: secret_name(secret_id),
            environment: None,
        }
    }

    /// What `DescribeSecret` said: the full ARN, the name and the `env` tag.
    pub fn describe(&mut self, arn: &str, name: &str, environment: Option<&str>) {
        self.arn = arn.to_string();
        self.name = name.to_string();
        self.environment = environment.map(str::to_string);
    }
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

/// The rotation finished: the pending user now logs in with AWSCURRENT; with
/// alternating users the current one (now AWSPREVIOUS) keeps its password.
pub(crate) fn rotated(
    subject: &Subject,
    at: &StepRef<'_>,
    pending: &DbCredentials,
    current: &DbCredentials,
) -> Notification {
    let (user, endpoint) = (&pending.username, pending.endpoint());
    let previous_user = (pending.username != current.username).then_some(&current.username);
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

/// The invocation's response: what the step did, in which mode.
pub(crate) fn response(
    subject: &Subject,
    at: &StepRef<'_>,
    result: &str,
    changed: bool,
    mode: RunMode,
) -> Value {
    json!({
        "secret": subject.name,
        "arn": subject.arn,
        "step": at.step,
        "token": at.token,
        "strategy": at.strategy,
        "result": result,
        "changed": changed,
        "mode": mode.as_str(),
    })
}

/// Dry-run or the kill switch stopped the step after the checks: the
/// notification and the reason (also the step's error).
pub(crate) fn not_run(
    subject: &Subject,
    at: &StepRef<'_>,
    mode: RunMode,
) -> (Notification, String) {
    let variable = match mode {
        RunMode::Disabled => "STEWARD_DISABLED",
        _ => "STEWARD_DRY_RUN",
    };
    let reason = format!(
        "{variable} is set: steward would run {} of secret {} ({}) but changed nothing; the rotation stops here and AWSCURRENT stays valid",
        at.step,
        subject.name,
        at.strategy.unwrap_or("unknown strategy")
    );
    let mut n = Notification::new(
        Severity::Medium,
        Category::Rotation,
        "not-rotated",
        format!("rotation of secret {} not run ({})", subject.name, mode),
    );
    n.details.push(reason.clone());
    n.next_steps.push(format!(
        "Unset {variable} on the function, then rotate the secret again."
    ));
    fill(&mut n, subject, at);
    (n, reason)
}

/// An invocation that did not parse but names a secret: still reported.
pub(crate) fn failed_unparsed(subject: &Subject, payload: &Value, reason: &str) -> Notification {
    let text = |key: &str, default: &str| {
        payload
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let (step, token) = (text("Step", "(none)"), text("ClientRequestToken", ""));
    let at = StepRef {
        step: &step,
        token: &token,
        strategy: None,
    };
    failed(subject, &at, reason)
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
    let digest = Sha256::digest(reason_class(reason).as_bytes());
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    n.dedupe_key = format!("{}#{}#{}#{short}", subject.arn, at.token, at.step);
    n
}

/// What a failure's dedupe key is made of: a transient AWS failure (throttled,
/// a 5xx, no answer) is one class whatever call it hit, since Secrets Manager
/// retries the step; otherwise the part of the reason that names what failed,
/// without the AWS SDK's error details. A step retried through several
/// transient errors is then alerted once (issue 11, found under injected
/// faults: three HIGH alerts for one finishSecret).
fn reason_class(reason: &str) -> &str {
    const TRANSIENT: [&str; 8] = [
        "dispatch failure",
        "response error",
        "timeout",
        "(InternalFailure)",
        "(InternalError)",
        "(InternalServerError)",
        "(ServiceUnavailable)",
        "(Unavailable)",
    ];
    let throttled = steward_shared::sdk::THROTTLING_CODES.iter().any(|code| {
        reason.contains(&format!("service error: {code}")) || reason.contains(&format!("({code})"))
    });
    if throttled || TRANSIENT.iter().any(|marker| reason.contains(marker)) {
        return "transient: AWS throttled the call, failed with a 5xx or did not answer";
    }
    const SDK_DETAILS: [&str; 2] = ["service error", "io error"];
    SDK_DETAILS
        .iter()
        .filter_map(|marker| reason.find(marker))
        .min()
        .map_or(reason, |at| &reason[..at])
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
        // Transient failures of any call of the step: the same alert.
        let throttled = failed(&subject, &at, "finishSecret of secret app failed: GetSecretValue failed: service error: unhandled error (ThrottlingException): Rate exceeded");
        let unavailable = failed(&subject, &at, "finishSecret of secret app failed: UpdateSecretVersionStage failed: service error: unhandled error (ServiceUnavailable)");
        let dropped = failed(&subject, &at, "finishSecret of secret app failed: DescribeSecret failed: dispatch failure: connection closed");
        assert_eq!(throttled.dedupe_key, unavailable.dedupe_key);
        assert_eq!(throttled.dedupe_key, dropped.dedupe_key);
        // A refusal is its own alert, the same for other details of that call.
        let denied = |detail: &str| {
            failed(&subject, &at, &format!("finishSecret of secret app failed: DescribeSecret failed: service error: AccessDeniedException: {detail}"))
        };
        assert_ne!(throttled.dedupe_key, denied("a").dedupe_key);
        assert_eq!(denied("a").dedupe_key, denied("b").dedupe_key);
    }
}
