//! The steward policy: one TOML document with a section per concern, built-in
//! defaults for every key, strict validation (unknown keys and wrong types are
//! errors naming the key and the line) and a version hash carried by every
//! notification.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The allowed values of the `env` tag unless the policy says otherwise.
pub const DEFAULT_ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// The whole policy. Every section has defaults, so an empty document is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub targets: Targets,
    pub tagging: Tagging,
    pub offhours: Offhours,
    pub rotation: Rotation,
    pub containment: Containment,
    pub snapshots: Snapshots,
    pub budgets: Budgets,
    pub compliance: Compliance,
    pub notifications: Notifications,
    pub limits: Limits,
    /// Hash of the document this policy was read from (or of the defaults).
    #[serde(skip)]
    pub version: String,
}

impl Default for Policy {
    fn default() -> Self {
        let mut policy = Policy {
            targets: Targets::default(),
            tagging: Tagging::default(),
            offhours: Offhours::default(),
            rotation: Rotation::default(),
            containment: Containment::default(),
            snapshots: Snapshots::default(),
            budgets: Budgets::default(),
            compliance: Compliance::default(),
            notifications: Notifications::default(),
            limits: Limits::default(),
            version: String::new(),
        };
        policy.version = short_hash("built-in defaults");
        policy
    }
}

/// Where steward acts: accounts (or the accounts of organizational units) times regions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    /// Account ids; empty means the function's own account.
    pub accounts: Vec<String>,
    /// Organizational unit ids whose accounts are added to `accounts`.
    pub organizational_units: Vec<String>,
    /// Regions; empty means the function's own region.
    pub regions: Vec<String>,
}

/// Required tags, allowed values and derivable defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tagging {
    /// Tag keys every resource must carry.
    pub required: Vec<String>,
    /// Allowed values per tag key (keys not listed accept any non-empty value).
    pub allowed_values: BTreeMap<String, Vec<String>>,
    /// Account id to environment: fills a missing `env` tag on new resources.
    pub account_environments: BTreeMap<String, String>,
    /// Tag the creator of new resources as `steward:created-by`.
    pub tag_creator: bool,
    /// Add `env` from `account_environments` when it is missing.
    pub add_default_env: bool,
    /// Notify when a new resource lacks required tags.
    pub notify_noncompliant: bool,
}

impl Default for Tagging {
    fn default() -> Self {
        Tagging {
            required: vec!["project".into(), "env".into(), "cost_center".into()],
            allowed_values: BTreeMap::from([(
                "env".to_string(),
                DEFAULT_ENVIRONMENTS.iter().map(|s| s.to_string()).collect(),
            )]),
            account_environments: BTreeMap::new(),
            tag_creator: true,
            add_default_env: true,
            notify_noncompliant: true,
        }
    }
}

/// The schedule module owns the mode; the policy names it.
pub use crate::schedule::ScheduleMode;

/// The off-hours scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Offhours {
    pub enabled: bool,
    /// `env` values whose resources may be stopped or scaled to zero.
    pub environments: Vec<String>,
    /// IANA time zone (or a Cloud Custodian alias) of the default schedule.
    pub timezone: String,
    /// Default schedule in the `steward:offhours` grammar.
    pub default_schedule: String,
    pub mode: ScheduleMode,
    /// Minutes between scheduler runs; transitions in (time - interval, time] are acted on.
    pub interval_minutes: u32,
    /// Dates (YYYY-MM-DD) on which no start transition happens.
    pub holidays: Vec<crate::schedule::Holiday>,
    /// Hibernate EC2 instances that support it instead of stopping them.
    pub hibernate: bool,
    /// Targets processed concurrently by one run.
    pub concurrency: u32,
    /// More targets than this are fanned out through `STEWARD_WORK_QUEUE`.
    pub fan_out_above: u32,
    /// Seconds an RDS restart event waits for the database to become
    /// available before stopping it again (else the digest says so).
    pub restart_wait_seconds: u32,
    /// Allow stopping resources tagged with an allowed `env` in accounts that
    /// `tagging.account_environments` maps to `prod` or `staging` (`false`:
    /// the account is a floor and such resources are skipped and reported).
    pub allow_mixed_accounts: bool,
    /// Work items (fan-out targets, budget stops) older than this are
    /// reported and dropped, never replayed.
    pub max_work_item_age_minutes: u32,
    /// Minutes after a transition during which a stop or start that failed is
    /// retried by the following runs, and how far back a run reaches for the
    /// transitions of missed runs.
    pub catch_up_minutes: u32,
}

/// What the schedule module reads of `[offhours]`.
impl crate::schedule::Defaults for Offhours {
    fn mode(&self) -> ScheduleMode {
        self.mode
    }
    fn timezone(&self) -> &str {
        &self.timezone
    }
    fn default_schedule(&self) -> &str {
        &self.default_schedule
    }
    fn holidays(&self) -> &[crate::schedule::Holiday] {
        &self.holidays
    }
}

impl Default for Offhours {
    fn default() -> Self {
        Offhours {
            enabled: true,
            environments: vec!["dev".into()],
            timezone: "UTC".into(),
            default_schedule: "off=(M-F,19);on=(M-F,7)".into(),
            mode: ScheduleMode::OptOut,
            interval_minutes: 15,
            holidays: Vec::new(),
            hibernate: false,
            concurrency: 8,
            fan_out_above: 4,
            restart_wait_seconds: 600,
            allow_mixed_accounts: false,
            max_work_item_age_minutes: 60,
            catch_up_minutes: 120,
        }
    }
}

/// Database credential rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rotation {
    pub password_length: u32,
    /// Characters never used in generated passwords.
    pub exclude_characters: String,
    /// Require TLS to the database; a floor that a secret's `ssl: false` cannot lower.
    pub require_tls: bool,
    /// PEM file of CA certificates trusted for database TLS (empty: system store).
    pub ca_bundle: String,
    pub connect_timeout_seconds: u32,
    /// Full ARNs of secrets the alternating-users strategy may use as master
    /// (empty: then only secrets tagged `steward:rotation-master=true`).
    pub master_secrets: Vec<String>,
    /// Database roles whose passwords a master login never changes (on top of
    /// the built-in rights check).
    pub protected_roles: Vec<String>,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            password_length: 32,
            exclude_characters: "/@\"'\\`$:;%&?#{}[]()<>|~^,= ".into(),
            require_tls: true,
            ca_bundle: String::new(),
            connect_timeout_seconds: 5,
            master_secrets: Vec::new(),
            protected_roles: Vec::new(),
        }
    }
}

/// GuardDuty triage and containment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Containment {
    pub enabled: bool,
    /// `env` values whose resources may be contained; `*` is every environment.
    pub environments: Vec<String>,
    /// Contain resources without a readable `env` tag.
    pub include_untagged: bool,
    /// Lowest severity band that is notified.
    pub notify_min_band: SeverityBand,
    /// Lowest severity band that is contained.
    pub contain_min_band: SeverityBand,
    /// Per finding-type prefix overrides of the two bands.
    pub overrides: Vec<ContainmentOverride>,
    pub quarantine_group_name: String,
    /// IAM user names whose keys are never deactivated (role names listed here
    /// never have their sessions revoked).
    pub break_glass_users: Vec<String>,
    /// Deny role sessions issued before now when temporary credentials leak.
    pub revoke_role_sessions: bool,
    /// Hours after which an unchanged repeated finding is notified again.
    pub renotify_after_hours: u32,
    /// Snapshot attached EBS volumes for forensics.
    pub snapshot_volumes: bool,
    /// Containments in a rolling hour above which the responder stops
    /// containing and alerts CRITICAL (once an hour).
    pub max_per_hour: u32,
    /// How far back the findings sweep looks (`updatedAt`), in minutes.
    pub sweep_lookback_minutes: u32,
    /// Before the network swap, put an instance that belongs to an Auto
    /// Scaling group in Standby with scale-in protection, so the group does
    /// not terminate it (and its evidence) when isolation fails its health checks.
    pub asg_standby: bool,
    /// Before the network swap, deregister the instance from every
    /// load-balancer target group it is registered in.
    pub deregister_targets: bool,
}

impl Default for Containment {
    fn default() -> Self {
        Containment {
            enabled: true,
            environments: vec!["*".into()],
            include_untagged: true,
            notify_min_band: SeverityBand::Low,
            contain_min_band: SeverityBand::High,
            overrides: Vec::new(),
            quarantine_group_name: "steward-quarantine".into(),
            break_glass_users: Vec::new(),
            revoke_role_sessions: false,
            renotify_after_hours: 24,
            snapshot_volumes: true,
            max_per_hour: 10,
            sweep_lookback_minutes: 90,
            asg_standby: true,
            deregister_targets: true,
        }
    }
}

/// A GuardDuty severity band (LOW < 4.0 <= MEDIUM < 7.0 <= HIGH < 9.0 <=
/// CRITICAL), typed at load: a policy naming another band is refused with
/// the key and the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SeverityBand {
    Low,
    Medium,
    High,
    Critical,
}

impl SeverityBand {
    pub const ALL: [SeverityBand; 4] = [
        SeverityBand::Low,
        SeverityBand::Medium,
        SeverityBand::High,
        SeverityBand::Critical,
    ];

    /// The band of a GuardDuty severity number.
    pub fn of(severity: f64) -> SeverityBand {
        if severity >= 9.0 {
            SeverityBand::Critical
        } else if severity >= 7.0 {
            SeverityBand::High
        } else if severity >= 4.0 {
            SeverityBand::Medium
        } else {
            SeverityBand::Low
        }
    }

    /// Parses a band name (any case, surrounding blanks ignored).
    pub fn parse(s: &str) -> Option<SeverityBand> {
        match s.trim().to_ascii_uppercase().as_str() {
            "LOW" => Some(SeverityBand::Low),
            "MEDIUM" => Some(SeverityBand::Medium),
            "HIGH" => Some(SeverityBand::High),
            "CRITICAL" => Some(SeverityBand::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SeverityBand::Low => "LOW",
            SeverityBand::Medium => "MEDIUM",
            SeverityBand::High => "HIGH",
            SeverityBand::Critical => "CRITICAL",
        }
    }

    /// The lowest severity number in this band.
    pub fn lower_bound(self) -> f64 {
        match self {
            SeverityBand::Low => 0.0,
            SeverityBand::Medium => 4.0,
            SeverityBand::High => 7.0,
            SeverityBand::Critical => 9.0,
        }
    }

    /// The notification severity of a finding in this band.
    pub fn severity(self) -> crate::notify::Severity {
        use crate::notify::Severity;
        match self {
            SeverityBand::Low => Severity::Low,
            SeverityBand::Medium => Severity::Medium,
            SeverityBand::High => Severity::High,
            SeverityBand::Critical => Severity::Critical,
        }
    }
}

impl fmt::Display for SeverityBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding-type prefix with its own bands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainmentOverride {
    pub prefix: String,
    pub notify_min_band: Option<SeverityBand>,
    pub contain_min_band: Option<SeverityBand>,
}

/// Copies of database snapshots in a DR region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Snapshots {
    pub enabled: bool,
    /// Region receiving the copies (empty: disabled).
    pub dr_region: String,
    /// KMS key (ARN or alias) in the DR region for the copies.
    pub dr_kms_key: String,
    /// `env` values whose databases are copied.
    pub environments: Vec<String>,
    /// Days a daily DR copy (of an automated snapshot) is kept.
    pub retention_days: u32,
    /// Months the first DR copy of each UTC month (per database) is kept.
    pub monthly_retention_months: u32,
    /// Days a DR copy of a manual snapshot is kept.
    pub manual_retention_days: u32,
    /// Age in hours of the newest DR copy above which a database is reported HIGH.
    pub rpo_hours: u32,
    /// steward's own cap on copies in progress per destination region
    /// (AWS's own limit applies on top).
    pub max_copies_in_flight: u32,
    /// Manual snapshots allowed per region in the DR region (AWS default
    /// quota 100; DR copies count): at it, steward stops copying and alerts HIGH.
    pub manual_snapshot_quota: u32,
    /// DB subnet group in the DR region a restore drill's throwaway database
    /// is placed in (empty: the account's default VPC).
    pub drill_subnet_group: String,
    /// Security group ids in the DR region given to a drill's database
    /// (empty: the VPC's default group).
    pub drill_security_groups: Vec<String>,
    /// Instance class of a drill's database (the smallest that runs the engine).
    pub drill_instance_class: String,
    /// Instance class of the one instance in a drill's Aurora cluster.
    pub drill_aurora_instance_class: String,
    /// Minutes a restore may take (the RTO): a slower drill is reported HIGH.
    pub drill_rto_minutes: u32,
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots {
            enabled: true,
            dr_region: String::new(),
            dr_kms_key: String::new(),
            environments: vec!["prod".to_string()],
            retention_days: 7,
            monthly_retention_months: 12,
            manual_retention_days: 90,
            rpo_hours: 24,
            max_copies_in_flight: 5,
            manual_snapshot_quota: 100,
            drill_subnet_group: String::new(),
            drill_security_groups: Vec::new(),
            drill_instance_class: "db.t4g.micro".to_string(),
            drill_aurora_instance_class: "db.t4g.medium".to_string(),
            drill_rto_minutes: 60,
        }
    }
}

/// Budget alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budgets {
    /// Stop dev resources when an actual-cost budget is breached.
    pub stop_dev_on_breach: bool,
    /// Cost breakdown lines in an alert.
    pub breakdown_items: u32,
    /// Percent of the budgeted amount the daily check compares actual and
    /// forecast spend against (budgets without a notification are watched too).
    pub thresholds: Vec<u32>,
    /// Severity by how far the amount is over the threshold, in percent of
    /// the threshold: the band with the highest `over_percent` not above it.
    pub bands: Vec<OverBand>,
    /// The highest severity a forecast (not yet spent) alert gets.
    pub forecast_max_severity: crate::notify::Severity,
    /// Severity of a cost anomaly by its total impact in USD: the band with
    /// the highest `min_impact` not above it.
    pub anomaly_bands: Vec<ImpactBand>,
    /// The account whose Cost Explorer answers the breakdowns, forecasts
    /// and anomaly checks (the management account sees the whole
    /// organization), read through the member role; empty: the function's own.
    pub cost_explorer_account: String,
}

/// A severity band of a budget alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverBand {
    pub over_percent: u32,
    pub severity: crate::notify::Severity,
}

/// A severity band of a cost anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactBand {
    pub min_impact: u32,
    pub severity: crate::notify::Severity,
}

impl Default for Budgets {
    fn default() -> Self {
        use crate::notify::Severity;
        Budgets {
            stop_dev_on_breach: false,
            breakdown_items: 10,
            thresholds: vec![80, 100],
            bands: vec![
                OverBand {
                    over_percent: 0,
                    severity: Severity::Medium,
                },
                OverBand {
                    over_percent: 25,
                    severity: Severity::High,
                },
                OverBand {
                    over_percent: 50,
                    severity: Severity::Critical,
                },
            ],
            forecast_max_severity: Severity::Medium,
            anomaly_bands: vec![
                ImpactBand {
                    min_impact: 0,
                    severity: Severity::Low,
                },
                ImpactBand {
                    min_impact: 100,
                    severity: Severity::Medium,
                },
                ImpactBand {
                    min_impact: 1000,
                    severity: Severity::High,
                },
            ],
            cost_explorer_account: String::new(),
        }
    }
}

/// The compliance notifier (AWS Config compliance changes and the daily digest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Compliance {
    /// Severity of a NON_COMPLIANT (and flapping) notification unless a rule pattern says otherwise.
    pub default_severity: crate::notify::Severity,
    /// Per rule-name patterns (`*` matches any run of characters); the first match wins.
    pub rule_severities: Vec<RuleSeverity>,
    /// More notifiable changes than this within `flap_window_hours` make a
    /// resource flapping: one `flapping` message instead of a stream.
    pub flap_changes: u32,
    /// The flapping window, in hours.
    pub flap_window_hours: u32,
}

impl Default for Compliance {
    fn default() -> Self {
        Compliance {
            default_severity: crate::notify::Severity::Medium,
            rule_severities: Vec::new(),
            flap_changes: 4,
            flap_window_hours: 24,
        }
    }
}

/// A Config rule-name pattern with its severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSeverity {
    pub pattern: String,
    pub severity: crate::notify::Severity,
}

/// Notification rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// Items listed in full before a message summarizes the rest as a count.
    pub max_items: u32,
    /// Lowest severity that is published (lower ones are only logged).
    pub min_severity: crate::notify::Severity,
    /// Days an idempotency record is kept.
    pub dedupe_days: u32,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            max_items: 25,
            min_severity: crate::notify::Severity::Info,
            dedupe_days: 7,
        }
    }
}

/// Blast-radius limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// A run that would change more resources than this changes none and alerts HIGH.
    pub max_changes_per_run: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_changes_per_run: 200,
        }
    }
}

/// A policy problem, located at a key (dotted path) and a line of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// All the problems of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        write!(f, "invalid policy: {}", lines.join("; "))
    }
}

impl std::error::Error for PolicyErrors {}

impl Policy {
    /// Parses and validates a policy document.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyErrors> {
        let mut policy: Policy = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_of(text, span.start));
            let mut message = e.message().to_string();
            let key = key_from_serde_message(&message).unwrap_or_else(|| "document".into());
            // Values that check themselves (e.g. a holiday) name their key first.
            if let Some(rest) = message.strip_prefix(&format!("`{key}`: ")) {
                message = rest.to_string();
            }
            PolicyErrors(vec![PolicyError { key, line, message }])
        })?;
        let problems = policy.semantic_problems();
        if !problems.is_empty() {
            let located = problems
                .into_iter()
                .map(|(key, message)| PolicyError {
                    line: line_of_key(text, &key),
                    key,
                    message,
                })
                .collect();
            return Err(PolicyErrors(located));
        }
        policy.version = short_hash(text);
        Ok(policy)
    }

    /// Value checks that the types alone cannot express, as (dotted key, problem).
    pub fn semantic_problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (i, key) in self.tagging.required.iter().enumerate() {
            if key.trim().is_empty() {
                problems.push((
                    format!("tagging.required[{i}]"),
                    "tag keys must not be empty".into(),
                ));
            }
        }
        for (account, env) in &self.tagging.account_environments {
            if !is_account_id(account) {
                problems.push((
                    format!("tagging.account_environments.{account}"),
                    "keys must be 12-digit account ids".into(),
                ));
            }
            if let Some(allowed) = self.tagging.allowed_values.get("env") {
                if !allowed.iter().any(|a| a == env) {
                    problems.push((
                        format!("tagging.account_environments.{account}"),
                        format!(
                            "`{env}` is not an allowed env value ({})",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
        }
        for (i, account) in self.targets.accounts.iter().enumerate() {
            if !is_account_id(account) {
                problems.push((
                    format!("targets.accounts[{i}]"),
                    format!("`{account}` is not a 12-digit account id"),
                ));
            }
        }
        for (i, ou) in self.targets.organizational_units.iter().enumerate() {
            if !(ou.starts_with("ou-") || ou.starts_with("r-")) {
                problems.push((
                    format!("targets.organizational_units[{i}]"),
                    format!("`{ou}` is not an organizational unit id (ou-...) or root id (r-...)"),
                ));
            }
        }
        for (key, value) in [
            ("snapshots.retention_days", self.snapshots.retention_days),
            (
                "snapshots.manual_retention_days",
                self.snapshots.manual_retention_days,
            ),
            ("snapshots.rpo_hours", self.snapshots.rpo_hours),
            (
                "snapshots.max_copies_in_flight",
                self.snapshots.max_copies_in_flight,
            ),
            (
                "snapshots.drill_rto_minutes",
                self.snapshots.drill_rto_minutes,
            ),
        ] {
            if value == 0 {
                problems.push((key.into(), "must be at least 1".into()));
            }
        }
        if self.snapshots.enabled
            && !self.snapshots.dr_region.is_empty()
            && self.snapshots.dr_kms_key.trim().is_empty()
        {
            problems.push((
                "snapshots.dr_kms_key".into(),
                "a DR region needs a KMS key in that region (ARN or alias) for the copies".into(),
            ));
        }
        for (key, class) in [
            (
                "snapshots.drill_instance_class",
                &self.snapshots.drill_instance_class,
            ),
            (
                "snapshots.drill_aurora_instance_class",
                &self.snapshots.drill_aurora_instance_class,
            ),
        ] {
            if !class.starts_with("db.") {
                problems.push((
                    key.into(),
                    "must be an RDS instance class (db.t4g.micro, ...)".into(),
                ));
            }
        }
        for (i, group) in self.snapshots.drill_security_groups.iter().enumerate() {
            if !group.starts_with("sg-") {
                problems.push((
                    format!("snapshots.drill_security_groups[{i}]"),
                    format!("`{group}` is not a security group id (sg-...)"),
                ));
            }
        }
        if self.offhours.interval_minutes == 0 || self.offhours.interval_minutes > 1440 {
            problems.push((
                "offhours.interval_minutes".into(),
                "must be between 1 and 1440".into(),
            ));
        }
        if self.offhours.concurrency == 0 {
            problems.push(("offhours.concurrency".into(), "must be at least 1".into()));
        }
        if self.offhours.restart_wait_seconds > 840 {
            problems.push((
                "offhours.restart_wait_seconds".into(),
                "must be at most 840 (the Lambda timeout is at most 900 s)".into(),
            ));
        }
        if self.offhours.max_work_item_age_minutes == 0 {
            problems.push((
                "offhours.max_work_item_age_minutes".into(),
                "must be at least 1".into(),
            ));
        }
        problems.extend(crate::schedule::policy_problems(&self.offhours));
        if self.rotation.password_length < 16 || self.rotation.password_length > 4096 {
            problems.push((
                "rotation.password_length".into(),
                "must be between 16 and 4096".into(),
            ));
        }
        if self.rotation.connect_timeout_seconds == 0 {
            problems.push((
                "rotation.connect_timeout_seconds".into(),
                "must be at least 1".into(),
            ));
        }
        for (i, rule) in self.compliance.rule_severities.iter().enumerate() {
            if rule.pattern.trim().is_empty() {
                problems.push((
                    format!("compliance.rule_severities[{i}]"),
                    "the pattern must not be empty (use \"*\" for every rule)".into(),
                ));
            }
        }
        if self.compliance.flap_changes == 0 {
            problems.push((
                "compliance.flap_changes".into(),
                "must be at least 1".into(),
            ));
        }
        if self.compliance.flap_window_hours == 0 || self.compliance.flap_window_hours > 720 {
            problems.push((
                "compliance.flap_window_hours".into(),
                "must be between 1 and 720".into(),
            ));
        }
        problems.extend(budget_problems(&self.budgets));
        if self.notifications.max_items == 0 {
            problems.push((
                "notifications.max_items".into(),
                "must be at least 1".into(),
            ));
        }
        if self.limits.max_changes_per_run == 0 {
            problems.push((
                "limits.max_changes_per_run".into(),
                "must be at least 1".into(),
            ));
        }
        problems
    }

    /// The environment configured for an account, if any.
    pub fn environment_of_account(&self, account: &str) -> Option<&str> {
        self.tagging
            .account_environments
            .get(account)
            .map(String::as_str)
    }
}

/// The `[budgets]` section's own checks: thresholds in range, bands that
/// start at zero and rise.
fn budget_problems(b: &Budgets) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if !b.cost_explorer_account.is_empty() && !is_account_id(&b.cost_explorer_account) {
        problems.push((
            "budgets.cost_explorer_account".into(),
            format!(
                "`{}` is not a 12-digit account id (leave it empty for the function's own account)",
                b.cost_explorer_account
            ),
        ));
    }
    for (i, t) in b.thresholds.iter().enumerate() {
        if *t == 0 || *t > 1000 {
            problems.push((
                format!("budgets.thresholds[{i}]"),
                format!("{t} is not a percent between 1 and 1000"),
            ));
        }
    }
    let over: Vec<u32> = b.bands.iter().map(|x| x.over_percent).collect();
    let impact: Vec<u32> = b.anomaly_bands.iter().map(|x| x.min_impact).collect();
    for (key, starts) in [("budgets.bands", over), ("budgets.anomaly_bands", impact)] {
        if starts.first() != Some(&0) || starts.windows(2).any(|w| w[0] >= w[1]) {
            problems.push((
                key.into(),
                "needs at least one band, the first starting at 0, the rest in rising order".into(),
            ));
        }
    }
    problems
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A short, stable hash identifying a policy document.
pub fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    // Bytes, not `str` slicing: an offset inside a multi-byte character must
    // not panic.
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Finds the line where a dotted key (with optional `[i]` indexes) is defined.
///
/// Table keys may themselves contain dots, brackets or any other character
/// (`"x[" = ...` under `[tagging.account_environments]`), so the path is
/// matched against the keys the document really has, longest key first,
/// instead of being split blindly. A key that cannot be found gives `None`
/// (the error is still reported, without a line); nothing here can panic.
fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    let doc = toml_edit::Document::parse(text.to_string()).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut best: Option<std::ops::Range<usize>> = None;
    let mut rest = dotted;
    // After a `.` a key follows, even an empty one (`""` is a valid TOML key).
    let mut key_follows = true;
    while key_follows || !rest.is_empty() {
        if let Some(table) = item.as_table_like() {
            let name = table
                .iter()
                .map(|(key, _)| key)
                .filter(|key| {
                    rest.strip_prefix(key).is_some_and(|after| {
                        after.is_empty() || after.starts_with('.') || after.starts_with('[')
                    })
                })
                .max_by_key(|key| key.len())?;
            let (key, value) = table.get_key_value(name)?;
            best = key.span().or(best);
            item = value;
            rest = rest.get(name.len()..)?;
            key_follows = rest.starts_with('.');
            rest = rest.strip_prefix('.').unwrap_or(rest);
            continue;
        }
        // `[i]`: an element of an array; located as precisely as the
        // document allows (no check needs to go deeper).
        let index = rest
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .and_then(|(digits, _)| digits.parse::<usize>().ok())?;
        if let Some(span) = item
            .as_array()
            .and_then(|a| a.get(index))
            .and_then(|v| v.span())
        {
            best = Some(span);
        }
        break;
    }
    best.map(|span| line_of(text, span.start))
}

fn key_from_serde_message(message: &str) -> Option<String> {
    // serde's messages name the field between backticks: "unknown field
    // `foo`, expected ...". The field may itself contain backticks, so it
    // ends where the message goes on (", expected"), else at the next one.
    let start = message.find('`')? + 1;
    let rest = message.get(start..)?;
    let end = rest.find("`, expected").or_else(|| rest.find('`'))?;
    let key = rest.get(..end)?;
    (!key.is_empty()).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_gives_defaults() {
        let p = Policy::from_toml("").unwrap();
        assert_eq!(p.tagging.required, vec!["project", "env", "cost_center"]);
        assert_eq!(p.limits.max_changes_per_run, 200);
        assert_eq!(p.offhours.timezone, "UTC");
        assert_eq!(p.offhours.environments, vec!["dev"]);
        assert!(!p.version.is_empty());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err =
            Policy::from_toml("[limits]\nmax_changes_per_run = 3\nmax_chagnes = 4\n").unwrap_err();
        let e = &err.0[0];
        assert_eq!(e.key, "max_chagnes");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn wrong_type_names_line() {
        let err = Policy::from_toml("[offhours]\n\nhibernate = \"yes\"\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(3), "{err}");
    }

    #[test]
    fn cost_explorer_account_is_an_account_id_or_empty() {
        let err = Policy::from_toml("[budgets]\ncost_explorer_account = \"payer\"\n").unwrap_err();
        assert_eq!(err.0[0].key, "budgets.cost_explorer_account", "{err}");
        assert_eq!(err.0[0].line, Some(2), "{err}");
        let ok =
            Policy::from_toml("[budgets]\ncost_explorer_account = \"210987654321\"\n").unwrap();
        assert_eq!(ok.budgets.cost_explorer_account, "210987654321");
    }

    #[test]
    fn semantic_errors_are_located() {
        let text = "[tagging.account_environments]\n\"123456789012\" = \"qa\"\n";
        let err = Policy::from_toml(text).unwrap_err();
        let keys: Vec<_> = err.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert!(
            keys.contains(&("tagging.account_environments.123456789012", Some(2))),
            "{keys:?}"
        );
    }

    #[test]
    fn a_holiday_that_is_not_a_date_is_refused_at_its_key() {
        let text = "[offhours]\nholidays = [\"2026-12-25\",\n  \"xmas\"]\n";
        let err = Policy::from_toml(text).unwrap_err();
        let e = &err.0[0];
        assert_eq!(
            (e.key.as_str(), e.line),
            ("offhours.holidays", Some(2)),
            "{err}"
        );
        assert!(
            e.message.contains("xmas") && e.message.contains("YYYY-MM-DD"),
            "{err}"
        );
        let ok = Policy::from_toml("[offhours]\nholidays = [\" 2026-12-25 \"]\n").unwrap();
        assert_eq!(ok.offhours.holidays[0].to_string(), "2026-12-25");
    }

    const EXAMPLE: &str = include_str!("../../infra/policy.example.toml");

    #[test]
    fn example_policy_is_valid_and_states_the_defaults() {
        let mut example = Policy::from_toml(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
        example.version = Policy::default().version;
        assert_eq!(
            example,
            Policy::default(),
            "infra/policy.example.toml must show the built-in defaults"
        );
    }

    #[test]
    fn example_policy_documents_every_key() {
        fn walk(
            prefix: &str,
            defaults: &toml::Value,
            example: &toml::Value,
            missing: &mut Vec<String>,
        ) {
            let toml::Value::Table(table) = defaults else {
                return;
            };
            for (key, child) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match example.get(key) {
                    None => missing.push(path),
                    Some(documented) => walk(&path, child, documented, missing),
                }
            }
        }
        let defaults = toml::Value::try_from(Policy::default()).unwrap();
        let example: toml::Value = toml::from_str(EXAMPLE).unwrap();
        let mut missing = Vec::new();
        walk("", &defaults, &example, &mut missing);
        assert!(
            missing.is_empty(),
            "keys missing from infra/policy.example.toml: {missing:?}"
        );
    }

    #[test]
    fn compliance_severities_are_typed_at_load() {
        let p = Policy::from_toml(
            "[compliance]\nrule_severities = [{pattern = \"s3-*\", severity = \"HIGH\"}]\n",
        )
        .unwrap();
        assert_eq!(
            p.compliance.rule_severities[0].severity,
            crate::notify::Severity::High
        );
        assert_eq!(
            p.compliance.default_severity,
            crate::notify::Severity::Medium
        );
        let err = Policy::from_toml("[compliance]\ndefault_severity = \"URGENT\"\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(2), "{err}");
        let err = Policy::from_toml("[compliance]\nflap_changes = 0\n").unwrap_err();
        assert_eq!(err.0[0].key, "compliance.flap_changes");
    }

    #[test]
    fn containment_bands_are_typed_at_load() {
        let p = Policy::from_toml(
            "[containment]\ncontain_min_band = \"CRITICAL\"\n[[containment.overrides]]\nprefix = \"Recon:\"\nnotify_min_band = \"MEDIUM\"\n",
        )
        .unwrap();
        assert_eq!(p.containment.contain_min_band, SeverityBand::Critical);
        assert_eq!(p.containment.notify_min_band, SeverityBand::Low);
        assert_eq!(
            p.containment.overrides[0].notify_min_band,
            Some(SeverityBand::Medium)
        );
        assert_eq!(p.containment.overrides[0].contain_min_band, None);
        let err =
            Policy::from_toml("[containment]\n\ncontain_min_band = \"SEVERE\"\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(3), "{err}");
        assert!(err.0[0].message.contains("SEVERE"), "{err}");
        let err = Policy::from_toml(
            "[[containment.overrides]]\nprefix = \"Recon:\"\ncontain_min_band = \"high\"\n",
        )
        .unwrap_err();
        assert_eq!(err.0[0].line, Some(3), "{err}");
        assert!(SeverityBand::High > SeverityBand::Medium);
        assert_eq!(SeverityBand::of(7.0), SeverityBand::High);
        assert_eq!(SeverityBand::of(8.9), SeverityBand::High);
    }

    #[test]
    fn containment_keeps_evidence_by_default() {
        let p = Policy::default();
        assert!(p.containment.asg_standby && p.containment.deregister_targets);
        let p = Policy::from_toml("[containment]\nasg_standby = false\n").unwrap();
        assert!(!p.containment.asg_standby && p.containment.deregister_targets);
        assert!(Policy::from_toml("[containment]\nderegister_targets = \"yes\"\n").is_err());
    }

    #[test]
    fn version_changes_with_document() {
        let a = Policy::from_toml("[limits]\nmax_changes_per_run = 3\n").unwrap();
        let b = Policy::from_toml("[limits]\nmax_changes_per_run = 4\n").unwrap();
        assert_ne!(a.version, b.version);
    }
}
