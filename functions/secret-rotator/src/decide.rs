//! The rotation's pure decisions: whether a step may run for this token
//! (rotation enabled, token a version, already `AWSCURRENT`, `AWSPENDING`
//! present), which strategy the secret uses and so which user the pending
//! version names, whether pending and current are consistent, and how the
//! connection is secured.

use std::collections::BTreeMap;

use crate::credentials::{partner_username, DbCredentials, SslSetting};

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// What `DescribeSecret` says about the secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretFacts {
    pub arn: String,
    pub name: String,
    pub rotation_enabled: bool,
    /// Version id -> staging labels.
    pub versions: BTreeMap<String, Vec<String>>,
    /// The secret's `env` tag (for the notification's `environment`).
    pub environment: Option<String>,
}

impl SecretFacts {
    /// The version carrying a label.
    pub fn version_with(&self, label: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, labels)| labels.iter().any(|l| l == label))
            .map(|(id, _)| id.as_str())
    }

    fn has(&self, token: &str, label: &str) -> bool {
        self.versions
            .get(token)
            .is_some_and(|labels| labels.iter().any(|l| l == label))
    }
}

/// Whether a step has work to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The token is the pending version: run the step.
    Proceed,
    /// The token is already `AWSCURRENT`: the rotation finished. `stale_pending`
    /// is true when the `AWSPENDING` label is still on it (finishSecret clears it).
    AlreadyCurrent { stale_pending: bool },
}

/// The checks Secrets Manager's protocol asks for before every step.
pub fn gate(facts: &SecretFacts, token: &str) -> Result<Gate, String> {
    if !facts.rotation_enabled {
        return Err(format!(
            "rotation is not enabled on secret {}; enable it (rotate-secret with a rotation function and schedule) before rotating",
            facts.name
        ));
    }
    if !facts.versions.contains_key(token) {
        return Err(format!(
            "token {token} is not a version of secret {}; Secrets Manager stages the version before it invokes the function",
            facts.name
        ));
    }
    if facts.has(token, AWSCURRENT) {
        return Ok(Gate::AlreadyCurrent {
            stale_pending: facts.has(token, AWSPENDING),
        });
    }
    if !facts.has(token, AWSPENDING) {
        return Err(format!(
            "version {token} of secret {} is not staged as AWSPENDING (it may belong to an earlier rotation); start a new rotation",
            facts.name
        ));
    }
    Ok(Gate::Proceed)
}

/// How the secret rotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// The user changes its own password.
    SingleUser,
    /// The master secret's user changes the password of `<user>` or `<user>_clone`, in turn.
    AlternatingUsers { master_arn: String },
}

impl Strategy {
    pub fn of(current: &DbCredentials) -> Strategy {
        match &current.masterarn {
            Some(arn) => Strategy::AlternatingUsers {
                master_arn: arn.clone(),
            },
            None => Strategy::SingleUser,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Strategy::SingleUser => "single-user",
            Strategy::AlternatingUsers { .. } => "alternating-users",
        }
    }

    /// The user the next version names.
    pub fn pending_username(&self, current: &DbCredentials) -> Result<String, String> {
        match self {
            Strategy::SingleUser => Ok(current.username.clone()),
            Strategy::AlternatingUsers { .. } => {
                partner_username(&current.username).map_err(|e| e.0)
            }
        }
    }
}

/// Checks that the pending version may be set from the current one: the
/// same host, and the user the strategy expects.
pub fn check_pending(
    current: &DbCredentials,
    pending: &DbCredentials,
    strategy: &Strategy,
) -> Result<(), String> {
    if !current.host.eq_ignore_ascii_case(&pending.host) {
        return Err(format!(
            "the AWSPENDING host {} differs from the AWSCURRENT host {}; refusing to change a password on another server. \
             Remove the AWSPENDING version and rotate again",
            pending.host, current.host
        ));
    }
    let expected = strategy.pending_username(current)?;
    if pending.username != expected {
        return Err(match strategy {
            Strategy::SingleUser => format!(
                "the AWSPENDING username {:?} differs from the AWSCURRENT username {:?}; the single-user strategy changes one user's password",
                pending.username, current.username
            ),
            Strategy::AlternatingUsers { .. } => format!(
                "the AWSPENDING username {:?} is not the alternating partner {:?} of the AWSCURRENT user {:?}",
                pending.username, expected, current.username
            ),
        });
    }
    Ok(())
}

/// Checks that the master secret may act on the pending version's server.
pub fn check_master(master: &DbCredentials, pending: &DbCredentials) -> Result<(), String> {
    if !master.host.eq_ignore_ascii_case(&pending.host) {
        return Err(format!(
            "the master secret's host {} differs from the AWSPENDING host {}; point masterarn at the master secret of the same server",
            master.host, pending.host
        ));
    }
    Ok(())
}

/// How a database connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS with certificate and host name verification; no plain-text fallback.
    Verified,
    /// Plain TCP (the secret says `ssl: false`, or the policy allows it).
    Plain,
}

/// `ssl` true requires TLS; false allows plain; absent follows `[rotation] require_tls`.
pub fn tls_mode(ssl: SslSetting, policy_requires_tls: bool) -> TlsMode {
    match ssl {
        SslSetting::Required => TlsMode::Verified,
        SslSetting::Disabled => TlsMode::Plain,
        SslSetting::Unset if policy_requires_tls => TlsMode::Verified,
        SslSetting::Unset => TlsMode::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(enabled: bool, versions: &[(&str, &[&str])]) -> SecretFacts {
        SecretFacts {
            arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-x".into(),
            name: "app".into(),
            rotation_enabled: enabled,
            versions: versions
                .iter()
                .map(|(id, l)| (id.to_string(), l.iter().map(|s| s.to_string()).collect()))
                .collect(),
            environment: None,
        }
    }

    fn creds(user: &str, host: &str, master: Option<&str>) -> DbCredentials {
        let master = master
            .map(|m| format!(r#","masterarn":"{m}""#))
            .unwrap_or_default();
        DbCredentials::parse(
            &format!(r#"{{"host":"{host}","username":"{user}","password":"p"{master}}}"#),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn gate_follows_the_protocol() {
        let f = facts(true, &[("old", &["AWSCURRENT"]), ("tok", &["AWSPENDING"])]);
        assert_eq!(gate(&f, "tok"), Ok(Gate::Proceed));
        assert!(gate(&f, "missing").unwrap_err().contains("not a version"));
        let f = facts(false, &[("old", &["AWSCURRENT"]), ("tok", &["AWSPENDING"])]);
        assert!(gate(&f, "tok")
            .unwrap_err()
            .contains("rotation is not enabled"));
        let f = facts(true, &[("old", &["AWSPREVIOUS"]), ("tok", &["AWSCURRENT"])]);
        assert_eq!(
            gate(&f, "tok"),
            Ok(Gate::AlreadyCurrent {
                stale_pending: false
            })
        );
        assert!(gate(&f, "old")
            .unwrap_err()
            .contains("not staged as AWSPENDING"));
        let f = facts(true, &[("tok", &["AWSCURRENT", "AWSPENDING"])]);
        assert_eq!(
            gate(&f, "tok"),
            Ok(Gate::AlreadyCurrent {
                stale_pending: true
            })
        );
        assert_eq!(f.version_with(AWSCURRENT), Some("tok"));
    }

    #[test]
    fn pending_must_match_host_and_user() {
        let single = Strategy::SingleUser;
        assert!(check_pending(
            &creds("app", "db", None),
            &creds("app", "DB", None),
            &single
        )
        .is_ok());
        assert!(check_pending(
            &creds("app", "db", None),
            &creds("app", "other", None),
            &single
        )
        .unwrap_err()
        .contains("host"));
        assert!(check_pending(
            &creds("app", "db", None),
            &creds("admin", "db", None),
            &single
        )
        .unwrap_err()
        .contains("single-user"));
        let current = creds("app", "db", Some("arn:master"));
        let alt = Strategy::of(&current);
        assert_eq!(alt.as_str(), "alternating-users");
        assert!(check_pending(&current, &creds("app_clone", "db", None), &alt).is_ok());
        assert!(check_pending(&current, &creds("app", "db", None), &alt)
            .unwrap_err()
            .contains("partner"));
        assert!(
            check_master(&creds("postgres", "other", None), &creds("app", "db", None)).is_err()
        );
    }

    #[test]
    fn tls_rules() {
        assert_eq!(tls_mode(SslSetting::Required, false), TlsMode::Verified);
        assert_eq!(tls_mode(SslSetting::Disabled, true), TlsMode::Plain);
        assert_eq!(tls_mode(SslSetting::Unset, true), TlsMode::Verified);
        assert_eq!(tls_mode(SslSetting::Unset, false), TlsMode::Plain);
    }
}
