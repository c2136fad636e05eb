//! The rotation's pure decisions (no SDK type, no clock, no I/O): whether a
//! step may run for this token (exempt, rotation enabled, token a version,
//! already `AWSCURRENT`, `AWSPENDING` present), which strategy the secret
//! uses and so which user the pending version names, whether pending and
//! current are consistent, which credential `setSecret` logs in with and
//! which role it changes, whether a master secret is allowed and whether a
//! master login may change a role, and how the connection is secured.

use std::path::PathBuf;
use std::time::Duration;

use steward_shared::policy::Rotation;

use crate::model::{
    partner_username, ConnectOptions, DbCredentials, RoleFacts, RoleRights, SecretFacts,
    SslSetting, Target, TlsMode, AWSCURRENT, AWSPENDING, AWSPREVIOUS, CLONE_SUFFIX,
    ROTATION_MASTER_TAG,
};

/// Whether a step has work to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    /// The token is the pending version: run the step.
    Proceed,
    /// The token is already `AWSCURRENT`: the rotation finished. `stale_pending`
    /// is true when the `AWSPENDING` label is still on it (finishSecret clears it).
    AlreadyCurrent { stale_pending: bool },
}

/// The checks Secrets Manager's protocol asks for before every step, after
/// steward's own: an exempt secret is never rotated.
pub(crate) fn gate(facts: &SecretFacts, token: &str) -> Result<Gate, String> {
    if facts.exempt {
        return Err(format!(
            "secret {} is tagged {}=true: steward does not rotate it and changed nothing. \
             Remove the tag (or turn off rotation on the secret) to settle which is wanted",
            facts.name,
            steward_shared::tags::EXEMPT
        ));
    }
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
pub(crate) enum Strategy {
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
pub(crate) fn check_pending(
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

/// Who `setSecret` logs in as, and which role it changes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SetPlan {
    /// Single user: the user changes its own password, logged in with the
    /// first of these versions the database accepts.
    OwnPassword {
        logins: Vec<(&'static str, DbCredentials)>,
    },
    /// Alternating users: the master secret's user sets the partner's password.
    ThroughMaster { master_arn: String, target: Target },
}

/// The choice of admin credential and target in `setSecret`. `previous` is
/// the `AWSPREVIOUS` value, used only when it names the same user on the
/// same host (an earlier rotation that changed the password but did not finish).
pub(crate) fn plan_set(
    strategy: &Strategy,
    current: &DbCredentials,
    previous: Option<DbCredentials>,
    pending: &DbCredentials,
) -> SetPlan {
    match strategy {
        Strategy::SingleUser => {
            let mut logins = vec![(AWSCURRENT, current.clone())];
            if let Some(previous) = previous {
                if previous.username == pending.username
                    && previous.host.eq_ignore_ascii_case(&pending.host)
                {
                    logins.push((AWSPREVIOUS, previous));
                }
            }
            SetPlan::OwnPassword { logins }
        }
        Strategy::AlternatingUsers { master_arn } => {
            let target = if pending.username.ends_with(CLONE_SUFFIX)
                && pending.username != current.username
            {
                Target::CreateLike {
                    like: current.username.clone(),
                }
            } else {
                Target::Existing
            };
            SetPlan::ThroughMaster {
                master_arn: master_arn.clone(),
                target,
            }
        }
    }
}

/// The error when no version of a single user's credentials logs in.
pub(crate) fn no_login_accepted(current: &DbCredentials, versions_tried: usize) -> String {
    format!(
        "the database at {} refused user {:?} with the {} and with the AWSPENDING one; \
         nothing was changed. Set the user's password to the AWSCURRENT value (ALTER ROLE ... PASSWORD), then retry the rotation",
        current.endpoint(),
        current.username,
        if versions_tried > 1 { "AWSCURRENT and AWSPREVIOUS passwords" } else { "AWSCURRENT password" }
    )
}

/// Checks that the secret named by `masterarn` may serve as master
/// credentials: listed by full ARN in `[rotation] master_secrets`, or, when
/// that list is empty, tagged `steward:rotation-master=true`; and on the
/// pending version's server.
pub(crate) fn check_master(
    master: &SecretFacts,
    credentials: &DbCredentials,
    pending: &DbCredentials,
    rotation: &Rotation,
) -> Result<(), String> {
    if rotation.master_secrets.is_empty() {
        if !master.rotation_master {
            return Err(format!(
                "refused: the master secret {} (masterarn) is not allowed as master credentials; nothing was changed. \
                 Tag it {ROTATION_MASTER_TAG}=true, or list its full ARN in [rotation] master_secrets",
                master.arn
            ));
        }
    } else if !rotation.master_secrets.contains(&master.arn) {
        return Err(format!(
            "refused: the master secret {} (masterarn) is not listed in [rotation] master_secrets; nothing was changed. \
             Add its full ARN to the list if it may act as master credentials",
            master.arn
        ));
    }
    if !credentials.host.eq_ignore_ascii_case(&pending.host) {
        return Err(format!(
            "the master secret's host {} differs from the AWSPENDING host {}; point masterarn at the master secret of the same server",
            credentials.host, pending.host
        ));
    }
    Ok(())
}

/// Why a role may not be changed by a master login, if it may not.
fn privileged(role: &RoleRights) -> Option<String> {
    let mut rights = Vec::new();
    if role.superuser {
        rights.push("superuser");
    }
    if role.create_role {
        rights.push("create-role");
    }
    if role.replication {
        rights.push("replication");
    }
    if role.bypass_rls {
        rights.push("bypass-RLS");
    }
    if role.name == "rds_superuser" {
        rights.push("rds_superuser");
    }
    (!rights.is_empty()).then(|| rights.join(", "))
}

/// Checks, from the database's own catalog, that a login as the master user
/// may change (or create, as a member of `like`) the role `target`: never the
/// master's own user, a role in `[rotation] protected_roles`, or a role with
/// superuser, create-role, replication or bypass-RLS rights directly or
/// through membership (`rds_superuser` included). `like` is the role a new
/// role would be made a member of (with everything it belongs to).
pub(crate) fn check_master_target(
    master_user: &str,
    target_user: &str,
    how: &Target,
    found: &[RoleFacts],
    rotation: &Rotation,
) -> Result<(), String> {
    let Some(target_facts) = found.first() else {
        return Err(format!(
            "the database returned no facts about role {target_user:?}; nothing was changed"
        ));
    };
    let like = match (how, found.get(1)) {
        (Target::CreateLike { like }, Some(facts)) => Some((like.as_str(), facts)),
        (Target::CreateLike { like }, None) => {
            return Err(format!(
                "the database returned no facts about role {like:?}; nothing was changed"
            ))
        }
        (Target::Existing, _) => None,
    };
    check_roles(master_user, target_user, target_facts, like, rotation)
}

/// The roles whose facts [`check_master_target`] needs, in its order.
pub(crate) fn roles_to_check<'a>(target_user: &'a str, how: &'a Target) -> Vec<&'a str> {
    match how {
        Target::Existing => vec![target_user],
        Target::CreateLike { like } => vec![target_user, like.as_str()],
    }
}

fn check_roles(
    master_user: &str,
    target: &str,
    target_facts: &RoleFacts,
    like: Option<(&str, &RoleFacts)>,
    rotation: &Rotation,
) -> Result<(), String> {
    let refuse = |why: String| {
        Err(format!(
            "refused: logged in as the master user {master_user:?}, steward does not change the password of {target:?}: {why}; \
             nothing was changed. Point the secret at an application user (the alternating-users strategy rotates <user> and <user>{CLONE_SUFFIX})"
        ))
    };
    if target == master_user {
        return refuse("it is the master's own user".into());
    }
    let protected = |name: &str| rotation.protected_roles.iter().any(|p| p == name);
    let mut checked: Vec<(&str, &RoleFacts)> = vec![(target, target_facts)];
    checked.extend(like);
    for (name, facts) in checked {
        let how = if name == target {
            String::new()
        } else {
            format!(" (the new role would be a member of {name:?})")
        };
        if protected(name) {
            return refuse(format!(
                "{name:?} is listed in [rotation] protected_roles{how}"
            ));
        }
        if let Some(role) = &facts.role {
            if let Some(rights) = privileged(role) {
                return refuse(format!("{name:?} has {rights} rights{how}"));
            }
        }
        for parent in &facts.member_of {
            if protected(&parent.name) {
                return refuse(format!(
                    "{name:?} is a member of {:?}, listed in [rotation] protected_roles{how}",
                    parent.name
                ));
            }
            if let Some(rights) = privileged(parent) {
                return refuse(format!(
                    "{name:?} is a member of {:?}, which has {rights} rights{how}",
                    parent.name
                ));
            }
        }
    }
    Ok(())
}

/// `ssl` true requires TLS; absent follows `[rotation] require_tls`; false
/// allows plain text only when the policy does not require TLS (the policy is a floor).
pub(crate) fn tls_mode(ssl: SslSetting, policy_requires_tls: bool) -> Result<TlsMode, String> {
    match ssl {
        SslSetting::Required => Ok(TlsMode::Verified),
        SslSetting::Disabled if policy_requires_tls => Err(
            "the secret says \"ssl\": false but [rotation] require_tls = true requires TLS to the database; \
             nothing was changed. Enable TLS on the server and set \"ssl\": true, or set require_tls = false in the policy to allow plain connections"
                .to_string(),
        ),
        SslSetting::Disabled => Ok(TlsMode::Plain),
        SslSetting::Unset if policy_requires_tls => Ok(TlsMode::Verified),
        SslSetting::Unset => Ok(TlsMode::Plain),
    }
}

/// How to connect with these credentials under the policy.
pub(crate) fn connect_options(
    credentials: &DbCredentials,
    rotation: &Rotation,
) -> Result<ConnectOptions, String> {
    Ok(ConnectOptions {
        tls: tls_mode(credentials.ssl, rotation.require_tls)?,
        ca_bundle: (!rotation.ca_bundle.trim().is_empty())
            .then(|| PathBuf::from(rotation.ca_bundle.trim())),
        connect_timeout: Duration::from_secs(u64::from(rotation.connect_timeout_seconds.max(1))),
    })
}

/// A plan's refusal (a `String` naming the problem and what to do) as the step's error.
pub(crate) trait Decided<T> {
    fn decided(self) -> anyhow::Result<T>;
}

impl<T> Decided<T> for Result<T, String> {
    fn decided(self) -> anyhow::Result<T> {
        self.map_err(anyhow::Error::msg)
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
            ..SecretFacts::default()
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
        let mut master = facts(true, &[]);
        master.rotation_master = true;
        assert!(check_master(
            &master,
            &creds("postgres", "other", None),
            &creds("app", "db", None),
            &Rotation::default()
        )
        .unwrap_err()
        .contains("host"));
    }

    #[test]
    fn tls_rules() {
        assert_eq!(tls_mode(SslSetting::Required, false), Ok(TlsMode::Verified));
        assert_eq!(tls_mode(SslSetting::Disabled, false), Ok(TlsMode::Plain));
        assert_eq!(tls_mode(SslSetting::Unset, true), Ok(TlsMode::Verified));
        assert_eq!(tls_mode(SslSetting::Unset, false), Ok(TlsMode::Plain));
        // The policy is a floor: the secret cannot lower it.
        assert!(tls_mode(SslSetting::Disabled, true)
            .unwrap_err()
            .contains("require_tls = false"));
    }

    #[test]
    fn exempt_secrets_are_never_rotated() {
        let mut f = facts(true, &[("old", &["AWSCURRENT"]), ("tok", &["AWSPENDING"])]);
        f.exempt = true;
        assert!(gate(&f, "tok").unwrap_err().contains("steward:exempt=true"));
    }

    #[test]
    fn a_master_secret_must_be_allowed() {
        let mut master = facts(true, &[]);
        master.arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf".into();
        let (m, p) = (creds("postgres", "db", None), creds("app", "db", None));
        let open = Rotation::default();
        assert!(check_master(&master, &m, &p, &open)
            .unwrap_err()
            .contains("rotation-master=true"));
        master.rotation_master = true;
        assert!(check_master(&master, &m, &p, &open).is_ok());
        // A list, when set, is the only way: the tag no longer counts.
        let listed = Rotation {
            master_secrets: vec![
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf".into(),
            ],
            ..Rotation::default()
        };
        assert!(check_master(&master, &m, &p, &listed)
            .unwrap_err()
            .contains("master_secrets"));
        let listed = Rotation {
            master_secrets: vec![master.arn.clone()],
            ..Rotation::default()
        };
        master.rotation_master = false;
        assert!(check_master(&master, &m, &p, &listed).is_ok());
    }

    fn role(name: &str) -> RoleRights {
        RoleRights {
            name: name.into(),
            ..RoleRights::default()
        }
    }

    fn facts_of(name: &str, parents: Vec<RoleRights>) -> RoleFacts {
        RoleFacts {
            role: Some(role(name)),
            member_of: parents,
        }
    }

    #[test]
    fn a_master_login_never_changes_a_privileged_role() {
        let policy = Rotation::default();
        let plain = facts_of("app_clone", vec![role("readers")]);
        assert!(check_roles("postgres", "app_clone", &plain, None, &policy).is_ok());
        assert!(check_roles("postgres", "postgres", &plain, None, &policy)
            .unwrap_err()
            .contains("master's own user"));
        for (field, word) in [
            ("superuser", "superuser"),
            ("create_role", "create-role"),
            ("replication", "replication"),
            ("bypass_rls", "bypass-RLS"),
        ] {
            let mut r = role("admin");
            match field {
                "superuser" => r.superuser = true,
                "create_role" => r.create_role = true,
                "replication" => r.replication = true,
                _ => r.bypass_rls = true,
            }
            let direct = RoleFacts {
                role: Some(r.clone()),
                member_of: vec![],
            };
            assert!(check_roles("postgres", "admin", &direct, None, &policy)
                .unwrap_err()
                .contains(word));
            let through = facts_of("ops", vec![role("x"), r]);
            assert!(check_roles("postgres", "ops", &through, None, &policy)
                .unwrap_err()
                .contains("is a member of \"admin\""));
        }
        let rds = facts_of("ops", vec![role("rds_superuser")]);
        assert!(check_roles("postgres", "ops", &rds, None, &policy)
            .unwrap_err()
            .contains("rds_superuser"));
        let protected = Rotation {
            protected_roles: vec!["billing".into()],
            ..Rotation::default()
        };
        assert!(check_roles(
            "postgres",
            "billing",
            &facts_of("billing", vec![]),
            None,
            &protected
        )
        .unwrap_err()
        .contains("protected_roles"));
        // A new role made a member of a privileged model role is refused too.
        let missing = RoleFacts::default();
        let mut boss = role("boss");
        boss.superuser = true;
        let like = RoleFacts {
            role: Some(boss),
            member_of: vec![],
        };
        assert!(check_roles(
            "postgres",
            "boss_clone",
            &missing,
            Some(("boss", &like)),
            &policy
        )
        .unwrap_err()
        .contains("would be a member of \"boss\""));
        let like = facts_of("app", vec![role("readers")]);
        assert!(check_roles(
            "postgres",
            "app_clone",
            &missing,
            Some(("app", &like)),
            &policy
        )
        .is_ok());
    }

    #[test]
    fn the_roles_read_follow_the_target() {
        let policy = Rotation::default();
        let like = Target::CreateLike { like: "app".into() };
        assert_eq!(roles_to_check("app_clone", &like), ["app_clone", "app"]);
        assert_eq!(roles_to_check("app", &Target::Existing), ["app"]);
        let missing = RoleFacts::default();
        assert!(check_master_target(
            "postgres",
            "app_clone",
            &like,
            std::slice::from_ref(&missing),
            &policy
        )
        .unwrap_err()
        .contains("no facts about role \"app\""));
        let app = facts_of("app", vec![]);
        assert!(
            check_master_target("postgres", "app_clone", &like, &[missing, app], &policy).is_ok()
        );
        assert!(check_master_target("postgres", "app", &Target::Existing, &[], &policy).is_err());
    }

    #[test]
    fn set_secret_plans_its_login_and_target() {
        let current = creds("app", "db", None);
        let pending = creds("app", "db", None);
        let previous = creds("app", "DB", None);
        let SetPlan::OwnPassword { logins } =
            plan_set(&Strategy::SingleUser, &current, Some(previous), &pending)
        else {
            panic!("single-user changes its own password")
        };
        assert_eq!(
            logins.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [AWSCURRENT, AWSPREVIOUS]
        );
        let SetPlan::OwnPassword { logins } = plan_set(
            &Strategy::SingleUser,
            &current,
            Some(creds("other", "db", None)),
            &pending,
        ) else {
            panic!()
        };
        assert_eq!(
            logins.len(),
            1,
            "a previous version of another user is not used"
        );
        let current = creds("app", "db", Some("arn:master"));
        let alt = Strategy::of(&current);
        assert_eq!(
            plan_set(&alt, &current, None, &creds("app_clone", "db", None)),
            SetPlan::ThroughMaster {
                master_arn: "arn:master".into(),
                target: Target::CreateLike { like: "app".into() }
            }
        );
        let current = creds("app_clone", "db", Some("arn:master"));
        assert_eq!(
            plan_set(&alt, &current, None, &creds("app", "db", None)),
            SetPlan::ThroughMaster {
                master_arn: "arn:master".into(),
                target: Target::Existing
            }
        );
    }
}
