//! The security team's message about one finding (category `guardduty`):
//! what happened, to which resource, where, how severe, what steward did
//! (with results) and what is left to the team, with the console link.

use chrono::SecondsFormat;
use steward_shared::notify::{Category, Notification, Severity};
use steward_shared::tags::{self, TagMap};
use steward_shared::RunMode;

use crate::events::{Finding, Target};
use crate::plan::{explain, Band, Hold, REVOKE_POLICY_NAME};

/// What the responder did about a finding's resource.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Steps done (live) or that would be done (dry-run, kill switch).
    pub steps: Vec<String>,
    /// Steps that failed, with the error.
    pub failures: Vec<String>,
    /// Why nothing was contained, when nothing was.
    pub hold: Option<Hold>,
    /// The containment was complete already (an earlier delivery did it).
    pub already: Option<String>,
    /// The resource's current tags (read from AWS, else from the finding).
    pub tags: TagMap,
    /// Forensic snapshot ids taken now.
    pub snapshots: Vec<String>,
}

impl Outcome {
    pub fn held(hold: Hold, tags: TagMap) -> Outcome {
        Outcome {
            hold: Some(hold),
            tags,
            ..Outcome::default()
        }
    }

    /// One word for logs, the response and `additionalContext`.
    pub fn status(&self, mode: RunMode) -> &'static str {
        if !self.failures.is_empty() {
            "failed"
        } else if self.already.is_some() {
            "already-contained"
        } else if self.hold.is_some() {
            "not-contained"
        } else if !self.steps.is_empty() {
            if mode.may_change() {
                "contained"
            } else {
                "would-contain"
            }
        } else {
            "not-contained"
        }
    }

    /// True when containment steps ran, would run, or failed (always notified).
    pub fn acted(&self) -> bool {
        !self.steps.is_empty() || !self.failures.is_empty()
    }
}

/// The resource as the message names it: kind, label and ARN.
pub fn resource_of(finding: &Finding) -> (&'static str, String, String) {
    let p = finding.partition();
    let (account, region) = (&finding.account_id, &finding.region);
    match finding.target() {
        Target::Instance { instance_id } => (
            "EC2 instance",
            instance_id.clone(),
            format!("arn:{p}:ec2:{region}:{account}:instance/{instance_id}"),
        ),
        Target::UserKey {
            user,
            access_key_id,
        } => (
            "IAM user access key",
            format!("{access_key_id} of user {user}"),
            format!("arn:{p}:iam::{account}:user/{user}"),
        ),
        Target::RoleSession {
            role,
            access_key_id,
        } => (
            "role session credentials",
            format!("{access_key_id} of role {role}"),
            format!("arn:{p}:iam::{account}:role/{role}"),
        ),
        Target::OtherCredentials {
            user_type,
            user,
            access_key_id,
        } => (
            "credentials",
            format!(
                "{} ({user_type}{})",
                access_key_id.unwrap_or_else(|| "unknown key".into()),
                user.map(|u| format!(" {u}")).unwrap_or_default()
            ),
            finding.arn.clone().unwrap_or_default(),
        ),
        Target::S3Bucket { name } => ("S3 bucket", name.clone(), format!("arn:{p}:s3:::{name}")),
        Target::Other { resource_type } => (
            "resource",
            resource_type,
            finding.arn.clone().unwrap_or_else(|| {
                format!(
                    "arn:{p}:guardduty:{region}:{account}:finding/{}",
                    finding.id
                )
            }),
        ),
    }
}

/// What is left to the team, by target and outcome.
fn next_steps(finding: &Finding, outcome: &Outcome, mode: RunMode) -> Vec<String> {
    let mut steps = Vec::new();
    let account = &finding.account_id;
    let region = &finding.region;
    if !outcome.failures.is_empty() {
        steps.push("Containment failed part-way: the event is retried; if it keeps failing, contain by hand and check the member role's EC2/IAM permissions.".into());
    }
    if !mode.may_change() && outcome.acted() {
        steps.push(format!("steward ran in {mode} mode and changed nothing: contain by hand if the finding is real."));
    }
    let contained = outcome.hold.is_none() && (outcome.acted() || outcome.already.is_some());
    match finding.target() {
        Target::Instance { instance_id } if contained => {
            steps.push("Investigate from the forensic snapshots (tagged steward:finding) rather than by logging in to the instance.".into());
            steps.push("Connections already open before containment (for example an SSH session or a reverse shell) may continue: security groups do not cut tracked connections. Stop the instance or add a deny network ACL if that matters.".into());
            steps.push("Rotate any credentials the instance or its role could reach, and check CloudTrail for what the instance role did.".into());
            steps.push(format!(
                "When the instance is clean (or the finding is a false positive): `steward quarantine release {instance_id} --account {account} --region {region}` restores its security groups, its target groups and its place in its Auto Scaling group; termination protection and snapshots stay until you remove them."
            ));
        }
        Target::Instance { .. } => {
            steps.push("Review the finding in the console and decide whether to isolate the instance by hand.".into());
        }
        Target::UserKey {
            user,
            access_key_id,
        } if contained => {
            steps.push(format!("Check CloudTrail for everything {access_key_id} did, then delete the key and issue a new one to {user}."));
            steps.push(format!(
                "Undo (false positive): `aws iam update-access-key --user-name {user} --access-key-id {access_key_id} --status Active`."
            ));
        }
        Target::UserKey { user, .. } => {
            steps.push(format!("Decide whether to deactivate the key of {user} by hand, and check CloudTrail for its use."));
        }
        Target::RoleSession { role, .. } if contained => {
            steps.push(format!("Find where the credentials of role {role} leaked (an instance profile, a CI runner, a laptop) and close it; new sessions still work."));
            steps.push(format!(
                "Undo when it is safe: `aws iam delete-role-policy --role-name {role} --policy-name {REVOKE_POLICY_NAME}` (sessions issued after the cutoff were never affected)."
            ));
        }
        Target::RoleSession { role, .. } => {
            steps.push(format!("Consider revoking the active sessions of role {role} (IAM console, Revoke active sessions)."));
        }
        Target::OtherCredentials { .. } => {
            steps.push("steward does not contain root or federated credentials: rotate or disable them by hand and review CloudTrail.".into());
        }
        Target::S3Bucket { name } => {
            steps.push(format!("Review access to bucket {name} (bucket policy, ACLs, Block Public Access) and CloudTrail data events."));
        }
        Target::Other { .. } => {
            steps.push("Review the finding in the console: steward contains EC2 instances and IAM credentials only.".into());
        }
    }
    steps.push(format!("Finding in the console: {}", finding.console_url()));
    steps
}

/// The CRITICAL alert when the hourly containment cap stops containment
/// (de-duplicated per clock hour by `dedupe_key`).
pub fn cap_alert(max_per_hour: u32, finding: &Finding, dedupe_key: String) -> Notification {
    let mut n = Notification::new(
        Severity::Critical,
        Category::Guardduty,
        "containment-cap",
        format!("containment paused: more than {max_per_hour} containments in the last hour"),
    );
    n.details.push(format!(
        "steward contained {max_per_hour} resources in the last hour ([containment] max_per_hour = {max_per_hour}) and stopped containing; every finding is still notified."
    ));
    n.details.push(format!(
        "First finding not contained: {} ({}) in account {}, {}",
        finding.finding_type, finding.id, finding.account_id, finding.region
    ));
    n.next_steps.push("Check whether this is an attack on many resources or a misfiring detection; contain by hand what must be contained.".into());
    n.next_steps.push("Containment resumes by itself as the hour's containments age out; raise [containment] max_per_hour if the volume is expected.".into());
    n.account = finding.account_id.clone();
    n.region = finding.region.clone();
    n.dedupe_key = dedupe_key;
    n
}

/// Builds the notification about a finding.
pub fn notification(
    finding: &Finding,
    band: Band,
    outcome: &Outcome,
    mode: RunMode,
    dedupe_key: String,
) -> Notification {
    let (kind, label, arn) = resource_of(finding);
    let status = outcome.status(mode);
    let headline = match status {
        "failed" => "containment FAILED",
        "already-contained" => "already contained",
        "contained" => "contained",
        "would-contain" => "would contain",
        _ => "notified only",
    };
    let severity = if outcome.failures.is_empty() {
        band.severity()
    } else {
        band.severity().max(Severity::High)
    };
    let what = match (status, &outcome.hold) {
        ("failed", _) => "containment-failed",
        ("contained" | "would-contain", _) => "contained",
        ("already-contained", _) => "already-contained",
        (_, Some(Hold::Unverified { .. })) => "unverified",
        (_, Some(Hold::Sample)) => "sample",
        _ => "finding",
    };
    let headline = match what {
        "unverified" => "UNVERIFIED, notified only",
        "sample" => "sample finding, notified only",
        _ => headline,
    };
    let short_label = match finding.target() {
        Target::UserKey { access_key_id, .. } | Target::RoleSession { access_key_id, .. } => {
            access_key_id
        }
        _ => label.clone(),
    };
    let mut n = Notification::new(
        severity,
        Category::Guardduty,
        what,
        format!("{short_label} {headline}: {}", finding.finding_type),
    );
    let env = outcome
        .tags
        .get(tags::ENV)
        .cloned()
        .filter(|v| !v.trim().is_empty());
    let project = outcome
        .tags
        .get(tags::PROJECT)
        .cloned()
        .filter(|v| !v.trim().is_empty());
    let title = finding
        .title
        .as_deref()
        .unwrap_or(&finding.finding_type)
        .trim()
        .trim_end_matches('.')
        .to_string();
    n.details.push(format!(
        "What happened: {title}. In short: {}.",
        explain(&finding.finding_type)
    ));
    n.details.push(format!(
        "Finding: {} ({})",
        finding.finding_type, finding.id
    ));
    n.details.push(format!("Resource: {kind} {label}"));
    n.details.push(format!(
        "Account: {} | Region: {}",
        finding.account_id, finding.region
    ));
    n.details.push(format!(
        "Environment: {} | Project: {}",
        env.as_deref().unwrap_or("untagged"),
        project.as_deref().unwrap_or("untagged")
    ));
    n.details
        .push(format!("Severity: {band} ({:.1})", finding.severity));
    n.details.push(format!(
        "First seen: {} | Last seen: {} | Count: {}",
        finding
            .first_seen()
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        finding
            .last_seen()
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        finding.count()
    ));
    match (&outcome.hold, &outcome.already) {
        (_, Some(already)) => n.details.push(format!("Containment: {already}")),
        (Some(hold), None) => n.details.push(format!("Containment: {}", hold.reason())),
        (None, None) if outcome.acted() => n.details.push(format!(
            "Containment: {}",
            if mode.may_change() {
                "steward acted (see the actions below)"
            } else {
                "steward would act (see below); nothing was changed"
            }
        )),
        (None, None) => {}
    }
    n.details
        .push(format!("Console: {}", finding.console_url()));
    // The actions are few (one per interface and volume at most), so they are
    // listed in full with the details rather than as summarized resource items.
    if outcome.acted() {
        n.details.push(if mode.may_change() {
            "Actions taken:".into()
        } else {
            "Actions steward would take:".into()
        });
        for s in &outcome.steps {
            n.details.push(if mode.may_change() {
                format!("- done: {s}")
            } else {
                format!("- {s}")
            });
        }
        for f in &outcome.failures {
            n.details.push(format!("- FAILED: {f}"));
        }
    }
    n.next_steps = next_steps(finding, outcome, mode);
    n.account = finding.account_id.clone();
    n.region = finding.region.clone();
    n.environment = env;
    if !arn.is_empty() {
        n.related_resources.push(arn.clone());
    }
    n.thread_id = if arn.is_empty() {
        finding.id.clone()
    } else {
        arn
    };
    n.dedupe_key = dedupe_key;
    n.facts.insert("findingId".into(), finding.id.clone());
    n.facts
        .insert("findingType".into(), finding.finding_type.clone());
    n.facts
        .insert("severityScore".into(), format!("{:.1}", finding.severity));
    n.facts.insert("band".into(), band.to_string());
    n.facts.insert("count".into(), finding.count().to_string());
    n.facts.insert(
        "firstSeen".into(),
        finding
            .first_seen()
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    n.facts.insert(
        "lastSeen".into(),
        finding
            .last_seen()
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    n.facts.insert("consoleUrl".into(), finding.console_url());
    n.facts.insert(
        "resourceType".into(),
        finding.resource.resource_type.clone(),
    );
    n.facts.insert("resource".into(), label);
    n.facts.insert("containment".into(), status.to_string());
    if let Some(p) = project {
        n.facts.insert("project".into(), p);
    }
    if !outcome.snapshots.is_empty() {
        n.facts
            .insert("forensicSnapshots".into(), outcome.snapshots.join(","));
    }
    n
}
