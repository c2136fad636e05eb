//! The environment contract (SPEC section 4): every variable a function reads,
//! parsed once at start with errors that say what to fix.

use std::collections::HashMap;

use crate::safety::RunMode;

/// Names of the environment variables steward reads.
pub mod vars {
    pub const TOPIC_ARN: &str = "STEWARD_TOPIC_ARN";
    pub const POLICY: &str = "STEWARD_POLICY";
    pub const DISABLED: &str = "STEWARD_DISABLED";
    pub const DRY_RUN: &str = "STEWARD_DRY_RUN";
    pub const IDEMPOTENCY_TABLE: &str = "STEWARD_IDEMPOTENCY_TABLE";
    pub const MEMBER_ROLE: &str = "STEWARD_MEMBER_ROLE";
    pub const WORK_QUEUE: &str = "STEWARD_WORK_QUEUE";
    pub const COPY_QUEUE: &str = "STEWARD_COPY_QUEUE";
}

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// No `STEWARD_POLICY`: the built-in defaults.
    BuiltIn,
    /// A TOML file on disk (for example bundled with the function).
    File(String),
    /// An SSM parameter, re-read after five minutes.
    Ssm(String),
}

/// The parsed environment of one function process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub function_name: String,
    pub topic_arn: Option<String>,
    pub policy_source: PolicySource,
    pub mode: RunMode,
    pub idempotency_table: Option<String>,
    pub member_role: Option<String>,
    pub work_queue: Option<String>,
    /// The snapshot copier's queue of copies waiting for capacity.
    pub copy_queue: Option<String>,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env(function_name: &str) -> Result<Settings, String> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Settings::from_map(function_name, &vars)
    }

    /// Reads settings from a map of variables (the testable core of `from_env`).
    pub fn from_map(
        function_name: &str,
        vars: &HashMap<String, String>,
    ) -> Result<Settings, String> {
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let flag = |name: &str| -> Result<bool, String> {
            match get(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("false") | Some("0") | Some("no") => Ok(false),
                Some("true") | Some("1") | Some("yes") => Ok(true),
                Some(other) => Err(format!(
                    "{name}={other:?} is not a boolean: set it to `true` or `false`"
                )),
            }
        };
        let disabled = flag(vars::DISABLED)?;
        let dry_run = flag(vars::DRY_RUN)?;
        let mode = if disabled {
            RunMode::Disabled
        } else if dry_run {
            RunMode::DryRun
        } else {
            RunMode::Live
        };
        let policy_source = match get(vars::POLICY) {
            None => PolicySource::BuiltIn,
            Some(v) => match v.strip_prefix("ssm:") {
                Some("") => {
                    return Err(format!(
                        "{}=ssm: names no parameter: use ssm:/parameter/name",
                        vars::POLICY
                    ))
                }
                Some(name) => PolicySource::Ssm(name.to_string()),
                None => PolicySource::File(v),
            },
        };
        let topic_arn = get(vars::TOPIC_ARN);
        if let Some(arn) = &topic_arn {
            if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
                return Err(format!(
                    "{}={arn:?} is not an SNS topic ARN",
                    vars::TOPIC_ARN
                ));
            }
        }
        Ok(Settings {
            function_name: function_name.to_string(),
            topic_arn,
            policy_source,
            mode,
            idempotency_table: get(vars::IDEMPOTENCY_TABLE),
            member_role: get(vars::MEMBER_ROLE),
            work_queue: get(vars::WORK_QUEUE),
            copy_queue: get(vars::COPY_QUEUE),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kill_switch_wins_over_dry_run() {
        let s = Settings::from_map(
            "f",
            &map(&[(vars::DISABLED, "TRUE"), (vars::DRY_RUN, "true")]),
        )
        .unwrap();
        assert_eq!(s.mode, RunMode::Disabled);
        let s = Settings::from_map("f", &map(&[(vars::DRY_RUN, "true")])).unwrap();
        assert_eq!(s.mode, RunMode::DryRun);
        let s = Settings::from_map("f", &map(&[])).unwrap();
        assert_eq!(s.mode, RunMode::Live);
    }

    #[test]
    fn bad_flag_is_an_error() {
        let err = Settings::from_map("f", &map(&[(vars::DRY_RUN, "maybe")])).unwrap_err();
        assert!(err.contains("STEWARD_DRY_RUN"));
    }

    #[test]
    fn policy_sources() {
        let s = Settings::from_map("f", &map(&[(vars::POLICY, "ssm:/steward/policy")])).unwrap();
        assert_eq!(s.policy_source, PolicySource::Ssm("/steward/policy".into()));
        let s = Settings::from_map("f", &map(&[(vars::POLICY, "/opt/policy.toml")])).unwrap();
        assert_eq!(
            s.policy_source,
            PolicySource::File("/opt/policy.toml".into())
        );
        assert!(Settings::from_map("f", &map(&[(vars::TOPIC_ARN, "topic")])).is_err());
    }
}
