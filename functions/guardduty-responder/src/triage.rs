//! Triage, as pure functions: the severity band of a finding, the policy's
//! notify and contain thresholds for its type (with per-prefix overrides),
//! and the notification key that makes a repeated finding notify again only
//! when its band rises or a new `renotify_after_hours` window starts.

use std::fmt;

use chrono::{DateTime, Utc};
use steward_shared::notify::Severity;
use steward_shared::policy::Containment;

/// GuardDuty severity bands (LOW < 4.0 <= MEDIUM < 7.0 <= HIGH < 9.0 <= CRITICAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Band {
    Low,
    Medium,
    High,
    Critical,
}

impl Band {
    pub const ALL: [Band; 4] = [Band::Low, Band::Medium, Band::High, Band::Critical];

    /// The band of a severity number.
    pub fn of(severity: f64) -> Band {
        if severity >= 9.0 {
            Band::Critical
        } else if severity >= 7.0 {
            Band::High
        } else if severity >= 4.0 {
            Band::Medium
        } else {
            Band::Low
        }
    }

    pub fn parse(s: &str) -> Option<Band> {
        match s.trim().to_ascii_uppercase().as_str() {
            "LOW" => Some(Band::Low),
            "MEDIUM" => Some(Band::Medium),
            "HIGH" => Some(Band::High),
            "CRITICAL" => Some(Band::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Band::Low => "LOW",
            Band::Medium => "MEDIUM",
            Band::High => "HIGH",
            Band::Critical => "CRITICAL",
        }
    }

    /// The notification severity of a finding in this band.
    pub fn severity(self) -> Severity {
        match self {
            Band::Low => Severity::Low,
            Band::Medium => Severity::Medium,
            Band::High => Severity::High,
            Band::Critical => Severity::Critical,
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lowest bands that are notified and contained for one finding type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub notify: Band,
    pub contain: Band,
}

/// The thresholds for a finding type: the policy's bands, replaced by those of
/// the longest matching `[[containment.overrides]]` prefix. (The policy is
/// validated at load, so unknown band names cannot occur; they fall back to the defaults.)
pub fn thresholds(policy: &Containment, finding_type: &str) -> Thresholds {
    let mut t = Thresholds {
        notify: Band::parse(&policy.notify_min_band).unwrap_or(Band::Low),
        contain: Band::parse(&policy.contain_min_band).unwrap_or(Band::High),
    };
    let best = policy
        .overrides
        .iter()
        .filter(|o| finding_type.starts_with(&o.prefix))
        .max_by_key(|o| o.prefix.len());
    if let Some(o) = best {
        if let Some(b) = o.notify_min_band.as_deref().and_then(Band::parse) {
            t.notify = b;
        }
        if let Some(b) = o.contain_min_band.as_deref().and_then(Band::parse) {
            t.contain = b;
        }
    }
    t
}

/// The renotify window a moment falls in: windows of `hours` aligned to the
/// epoch; `hours = 0` makes every update of the finding its own window.
pub fn window(at: DateTime<Utc>, hours: u32) -> i64 {
    if hours == 0 {
        at.timestamp()
    } else {
        at.timestamp().div_euclid(hours as i64 * 3600)
    }
}

/// The notification key of a finding in a band and window: the same finding
/// delivered again, or updated with a higher count, maps to the same key and is
/// not notified twice; a higher band or a new window gives a new key.
pub fn notification_key(finding_id: &str, band: Band, window: i64) -> String {
    format!("gd#{finding_id}#{}#{window}", band.as_str())
}

/// The keys whose earlier notification makes this one redundant: the same
/// finding in a higher band within the same window (the band fell).
pub fn higher_band_keys(finding_id: &str, band: Band, window: i64) -> Vec<String> {
    Band::ALL
        .iter()
        .filter(|b| **b > band)
        .map(|b| notification_key(finding_id, *b, window))
        .collect()
}

/// A one-line explanation of a finding type, from its threat purpose (the part before `:`).
pub fn explain(finding_type: &str) -> &'static str {
    let purpose = finding_type.split(':').next().unwrap_or_default();
    match purpose {
        "Backdoor" => "the resource appears compromised and is being controlled by, or talking to, an attacker",
        "Behavior" => "the resource behaves unlike its usual baseline",
        "CryptoCurrency" => "the resource is talking to cryptocurrency infrastructure, often a sign of mining malware",
        "Trojan" => "the resource shows activity of a trojan program",
        "UnauthorizedAccess" => "credentials or the resource are being used by someone who should not",
        "Recon" => "someone is probing the account or the resource for weaknesses",
        "Stealth" => "someone is trying to hide their activity (for example by disabling logging)",
        "PenTest" => "a penetration-testing tool is being used against the account",
        "Policy" => "a setting goes against security best practice",
        "Persistence" => "someone is making sure they keep access",
        "PrivilegeEscalation" => "someone is trying to gain more permissions than they were given",
        "Impact" => "the resource is being used to do harm (for example denial of service or data destruction)",
        "Exfiltration" => "data appears to be leaving the account",
        "Discovery" => "someone is enumerating the account's resources",
        "CredentialAccess" => "someone is trying to steal credentials",
        "DefenseEvasion" => "someone is trying to evade detection",
        "Execution" => "suspicious code is being run",
        "InitialAccess" => "someone may have gained a first foothold",
        "AttackSequence" => "GuardDuty correlated several signals into a likely attack in progress",
        _ => "GuardDuty reported suspicious activity",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_shared::policy::ContainmentOverride;

    #[test]
    fn bands_follow_the_guardduty_ranges() {
        assert_eq!(Band::of(0.1), Band::Low);
        assert_eq!(Band::of(3.9), Band::Low);
        assert_eq!(Band::of(4.0), Band::Medium);
        assert_eq!(Band::of(6.9), Band::Medium);
        assert_eq!(Band::of(7.0), Band::High);
        assert_eq!(Band::of(8.9), Band::High);
        assert_eq!(Band::of(9.0), Band::Critical);
        assert_eq!(Band::of(10.0), Band::Critical);
        assert!(Band::Low < Band::Critical);
    }

    #[test]
    fn longest_override_prefix_wins() {
        let mut policy = Containment::default();
        assert_eq!(
            thresholds(&policy, "Recon:EC2/PortProbeUnprotectedPort"),
            Thresholds {
                notify: Band::Low,
                contain: Band::High
            }
        );
        policy.overrides = vec![
            ContainmentOverride {
                prefix: "Recon:".into(),
                notify_min_band: Some("MEDIUM".into()),
                contain_min_band: None,
            },
            ContainmentOverride {
                prefix: "Recon:EC2/".into(),
                notify_min_band: None,
                contain_min_band: Some("CRITICAL".into()),
            },
        ];
        assert_eq!(
            thresholds(&policy, "Recon:EC2/PortProbeUnprotectedPort"),
            Thresholds {
                notify: Band::Low,
                contain: Band::Critical
            }
        );
        assert_eq!(
            thresholds(&policy, "Recon:IAMUser/MaliciousIPCaller"),
            Thresholds {
                notify: Band::Medium,
                contain: Band::High
            }
        );
        assert_eq!(
            thresholds(&policy, "Backdoor:EC2/C&CActivity.B!DNS"),
            Thresholds {
                notify: Band::Low,
                contain: Band::High
            }
        );
    }

    #[test]
    fn repeated_findings_share_a_key_until_band_or_window_changes() {
        let t0: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
        let t1: DateTime<Utc> = "2026-11-20T18:00:00Z".parse().unwrap();
        let t2: DateTime<Utc> = "2026-11-21T10:00:00Z".parse().unwrap();
        let k0 = notification_key("f1", Band::High, window(t0, 24));
        assert_eq!(k0, notification_key("f1", Band::High, window(t1, 24)));
        assert_ne!(k0, notification_key("f1", Band::Critical, window(t1, 24)));
        assert_ne!(k0, notification_key("f1", Band::High, window(t2, 24)));
        assert_ne!(window(t0, 0), window(t1, 0));
        let higher = higher_band_keys("f1", Band::Medium, 7);
        assert_eq!(
            higher,
            vec!["gd#f1#HIGH#7".to_string(), "gd#f1#CRITICAL#7".to_string()]
        );
        assert!(higher_band_keys("f1", Band::Critical, 7).is_empty());
    }

    #[test]
    fn explanations_by_threat_purpose() {
        assert!(explain("Backdoor:EC2/C&CActivity.B!DNS").contains("attacker"));
        assert!(explain("UnauthorizedAccess:IAMUser/TorIPCaller").contains("credentials"));
        assert_eq!(
            explain("Something:New/Kind"),
            "GuardDuty reported suspicious activity"
        );
    }
}
