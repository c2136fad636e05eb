//! The rotation's domain types, shared by the plan, the adapters and the
//! report: the secret's value (PostgreSQL connection facts in Secrets
//! Manager's JSON shape: `engine`, `host`, `port`, `username`, `password`,
//! `dbname`, optional `ssl`, and `masterarn` for the alternating-users
//! strategy), what `DescribeSecret` says about a secret, how a connection is
//! secured, and what the database says about a role's rights.
//! The password is never printed: `Debug` redacts it, and no serializer is
//! offered except `to_secret_string`, which writes the value back to
//! Secrets Manager with every other key kept as it was.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

pub(crate) const AWSCURRENT: &str = "AWSCURRENT";
pub(crate) const AWSPENDING: &str = "AWSPENDING";
pub(crate) const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// Tag a secret carries (`true`) when the alternating-users strategy may use
/// it as master credentials and `[rotation] master_secrets` is empty.
pub(crate) const ROTATION_MASTER_TAG: &str = "steward:rotation-master";

/// What `DescribeSecret` says about a secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SecretFacts {
    pub arn: String,
    pub name: String,
    pub rotation_enabled: bool,
    /// Version id -> staging labels.
    pub versions: BTreeMap<String, Vec<String>>,
    /// The secret's `env` tag (for the notification's `environment`).
    pub environment: Option<String>,
    /// Tagged `steward:exempt=true`: steward never rotates it.
    pub exempt: bool,
    /// Tagged `steward:rotation-master=true`.
    pub rotation_master: bool,
}

impl SecretFacts {
    /// The version carrying a label.
    pub fn version_with(&self, label: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, labels)| labels.iter().any(|l| l == label))
            .map(|(id, _)| id.as_str())
    }

    pub fn has(&self, token: &str, label: &str) -> bool {
        self.versions
            .get(token)
            .is_some_and(|labels| labels.iter().any(|l| l == label))
    }
}

/// How a database connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    /// TLS with certificate and host name verification; no plain-text fallback.
    Verified,
    /// Plain TCP (the secret says `ssl: false` and the policy allows it, or
    /// the secret says nothing and the policy does not require TLS).
    Plain,
}

/// How to reach the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectOptions {
    pub tls: TlsMode,
    /// PEM file of trusted CA certificates; `None`: the system trust store.
    pub ca_bundle: Option<PathBuf>,
    pub connect_timeout: Duration,
}

/// How the role whose password is set comes to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The user exists (or must exist): change its password.
    Existing,
    /// Alternating users: create the user when missing, as a member of
    /// `like` and of every role `like` belongs to.
    CreateLike { like: String },
}

/// The rights of one role as `pg_roles` states them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RoleRights {
    pub name: String,
    pub superuser: bool,
    pub create_role: bool,
    pub replication: bool,
    pub bypass_rls: bool,
}

/// A role and every role it belongs to, directly or through membership
/// (the membership closure from `pg_auth_members`), read before a master
/// login changes or creates a role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RoleFacts {
    /// The role asked about; `None` when it does not exist.
    pub role: Option<RoleRights>,
    /// The roles it is a member of, transitively (itself excluded).
    pub member_of: Vec<RoleRights>,
}

/// PostgreSQL's maximum identifier length in bytes (NAMEDATALEN - 1).
pub(crate) const MAX_IDENTIFIER_BYTES: usize = 63;
/// Suffix of the alternating user's partner.
pub(crate) const CLONE_SUFFIX: &str = "_clone";

/// What the secret says about TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslSetting {
    /// `ssl` true: TLS with certificate verification.
    Required,
    /// `ssl` false: plain connections are allowed.
    Disabled,
    /// `ssl` absent: the policy's `[rotation] require_tls` decides.
    Unset,
}

/// Database credentials read from one version of a secret.
#[derive(Clone, PartialEq)]
pub(crate) struct DbCredentials {
    pub engine: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    password: String,
    pub dbname: String,
    pub ssl: SslSetting,
    /// ARN of the master secret (alternating users).
    pub masterarn: Option<String>,
    /// The whole JSON object, so a new version keeps keys steward does not use.
    raw: Map<String, Value>,
}

impl fmt::Debug for DbCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbCredentials")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("dbname", &self.dbname)
            .field("ssl", &self.ssl)
            .field("masterarn", &self.masterarn)
            .finish()
    }
}

/// A problem with a secret's value; never contains the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ShapeError(pub String);

impl DbCredentials {
    /// Parses a `SecretString`. `what` names the version in errors (for example "AWSCURRENT").
    pub fn parse(secret_string: &str, what: &str) -> Result<DbCredentials, ShapeError> {
        let value: Value = serde_json::from_str(secret_string).map_err(|_| {
            ShapeError(format!(
                "the {what} value is not a JSON object; store {{\"engine\": \"postgres\", \"host\", \"port\", \"username\", \"password\", \"dbname\"}}"
            ))
        })?;
        let Value::Object(raw) = value else {
            return Err(ShapeError(format!("the {what} value is not a JSON object")));
        };
        let text = |key: &str, required: bool| -> Result<Option<String>, ShapeError> {
            match raw.get(key) {
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                None | Some(Value::Null) if !required => Ok(None),
                Some(Value::String(_)) | None | Some(Value::Null) => Err(ShapeError(format!(
                    "the {what} value has no `{key}`; add it to the secret"
                ))),
                Some(_) => Err(ShapeError(format!(
                    "the {what} value's `{key}` must be a string"
                ))),
            }
        };
        let engine = text("engine", false)?.unwrap_or_else(|| "postgres".into());
        if !matches!(
            engine.as_str(),
            "postgres" | "postgresql" | "aurora-postgresql"
        ) {
            return Err(ShapeError(format!(
                "the {what} value's engine is {engine:?}; this function rotates PostgreSQL only (engine \"postgres\")"
            )));
        }
        let host = text("host", true)?.unwrap_or_default();
        let username = text("username", true)?.unwrap_or_default();
        let password = text("password", true)?.unwrap_or_default();
        let dbname = text("dbname", false)?.unwrap_or_else(|| "postgres".into());
        let port = match raw.get("port") {
            None | Some(Value::Null) => Some(5432),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0),
            Some(Value::String(s)) => s.trim().parse::<u16>().ok().filter(|p| *p > 0),
            Some(_) => None,
        }
        .ok_or_else(|| {
            ShapeError(format!(
                "the {what} value's `port` is not a TCP port number"
            ))
        })?;
        let ssl = match raw.get("ssl") {
            None | Some(Value::Null) => SslSetting::Unset,
            Some(Value::Bool(true)) => SslSetting::Required,
            Some(Value::Bool(false)) => SslSetting::Disabled,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => SslSetting::Required,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => SslSetting::Disabled,
            Some(_) => {
                return Err(ShapeError(format!(
                    "the {what} value's `ssl` must be true or false (a boolean or the string \"true\"/\"false\")"
                )))
            }
        };
        let masterarn = text("masterarn", false)?;
        if username.len() > MAX_IDENTIFIER_BYTES {
            return Err(ShapeError(format!(
                "the {what} value's username is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte limit"
            )));
        }
        Ok(DbCredentials {
            engine,
            host,
            port,
            username,
            password,
            dbname,
            ssl,
            masterarn,
            raw,
        })
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The same credentials with another user and password (a new version's value).
    pub fn with_login(&self, username: &str, password: &str) -> DbCredentials {
        let mut next = self.clone();
        next.username = username.to_string();
        next.password = password.to_string();
        next.raw
            .insert("username".into(), Value::String(username.to_string()));
        next.raw
            .insert("password".into(), Value::String(password.to_string()));
        next
    }

    /// The JSON stored in Secrets Manager.
    pub fn to_secret_string(&self) -> String {
        Value::Object(self.raw.clone()).to_string()
    }

    /// `host:port`, for messages.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The partner of a user in the alternating-users strategy: `<user>` and
/// `<user>_clone` take turns. Errors when the clone's name would exceed
/// PostgreSQL's 63-byte limit (it would be silently truncated and never
/// alternate back).
pub(crate) fn partner_username(username: &str) -> Result<String, ShapeError> {
    if let Some(base) = username
        .strip_suffix(CLONE_SUFFIX)
        .filter(|b| !b.is_empty())
    {
        return Ok(base.to_string());
    }
    let clone = format!("{username}{CLONE_SUFFIX}");
    if clone.len() > MAX_IDENTIFIER_BYTES {
        return Err(ShapeError(format!(
            "the alternating user for {username:?} would be {} bytes, over PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte limit; \
             use a username of at most {} bytes",
            clone.len(),
            MAX_IDENTIFIER_BYTES - CLONE_SUFFIX.len()
        )));
    }
    Ok(clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(extra: &str) -> String {
        format!(
            r#"{{"engine":"postgres","host":"db.internal","port":5432,"username":"app","password":"s3cr3t-Value","dbname":"orders"{extra}}}"#
        )
    }

    #[test]
    fn parses_the_secret_shape_and_redacts_the_password() {
        let c =
            DbCredentials::parse(&value(r#","ssl":"true","note":"kept""#), "AWSCURRENT").unwrap();
        assert_eq!(c.host, "db.internal");
        assert_eq!(c.port, 5432);
        assert_eq!(c.ssl, SslSetting::Required);
        assert_eq!(c.password(), "s3cr3t-Value");
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t-Value"), "{debug}");
        let next = c.with_login("app_clone", "n3w");
        let stored: Value = serde_json::from_str(&next.to_secret_string()).unwrap();
        assert_eq!(stored["username"], "app_clone");
        assert_eq!(stored["password"], "n3w");
        assert_eq!(stored["note"], "kept");
    }

    #[test]
    fn ssl_accepts_booleans_and_strings() {
        let parse = |extra: &str| DbCredentials::parse(&value(extra), "AWSCURRENT").map(|c| c.ssl);
        assert_eq!(parse(r#","ssl":true"#), Ok(SslSetting::Required));
        assert_eq!(parse(r#","ssl":false"#), Ok(SslSetting::Disabled));
        assert_eq!(parse(r#","ssl":"FALSE""#), Ok(SslSetting::Disabled));
        assert_eq!(parse(""), Ok(SslSetting::Unset));
        assert!(parse(r#","ssl":"maybe""#).is_err());
    }

    #[test]
    fn errors_name_the_key_never_the_value() {
        let err = DbCredentials::parse(
            r#"{"host":"h","username":"u","port":"x","password":"p4ss"}"#,
            "AWSPENDING",
        )
        .unwrap_err();
        assert!(err.0.contains("`port`"), "{err}");
        assert!(!err.0.contains("p4ss"));
        let err = DbCredentials::parse(r#"{"host":"h","username":"u"}"#, "AWSCURRENT").unwrap_err();
        assert!(err.0.contains("`password`"), "{err}");
        let err = DbCredentials::parse(
            r#"{"engine":"mysql","host":"h","username":"u","password":"p"}"#,
            "AWSCURRENT",
        )
        .unwrap_err();
        assert!(err.0.contains("PostgreSQL only"), "{err}");
        assert!(DbCredentials::parse("not json p4ss", "AWSCURRENT")
            .unwrap_err()
            .0
            .contains("not a JSON object"));
    }

    #[test]
    fn partners_alternate_within_the_name_limit() {
        assert_eq!(partner_username("app").unwrap(), "app_clone");
        assert_eq!(partner_username("app_clone").unwrap(), "app");
        assert_eq!(partner_username("_clone").unwrap(), "_clone_clone");
        let longest = "u".repeat(57);
        assert_eq!(partner_username(&longest).unwrap().len(), 63);
        assert!(partner_username(&"u".repeat(58))
            .unwrap_err()
            .0
            .contains("at most 57 bytes"));
    }
}
