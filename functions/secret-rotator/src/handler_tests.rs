//! The handler's flow over in-memory adapters (the Secrets Manager and
//! database ports; the publisher and store come from `steward_shared::testing`):
//! which calls each step makes and, above all, which it never makes (no
//! database change on a host mismatch, a refused master or a privileged
//! target, no write in dry-run).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::json;
use steward_shared::testing::{self, MemoryPublisher};
use steward_shared::Policy;

use super::*;
use crate::database::Database;
use crate::model::ConnectOptions;
use crate::model::{RoleFacts, RoleRights};
use steward_shared::RunMode;

const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf";
const MASTER: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf";
const TOKEN: &str = "11111111-2222-3333-4444-555555555555";

/// A version's staging labels and value.
type Version = (Vec<String>, Option<String>);

#[derive(Default)]
struct FakeSecrets {
    /// Version id -> labels and value.
    versions: Mutex<BTreeMap<String, Version>>,
    master: Option<String>,
    /// The master secret carries `steward:rotation-master=true`.
    master_tagged: bool,
    writes: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl SecretsApi for FakeSecrets {
    async fn describe(&self, id: &str) -> anyhow::Result<SecretFacts> {
        if id == MASTER {
            return Ok(SecretFacts {
                arn: MASTER.into(),
                name: "master".into(),
                rotation_master: self.master_tagged,
                ..SecretFacts::default()
            });
        }
        let versions = self.versions.lock().unwrap();
        Ok(SecretFacts {
            arn: ARN.into(),
            name: "app".into(),
            rotation_enabled: true,
            versions: versions
                .iter()
                .map(|(k, (l, _))| (k.clone(), l.clone()))
                .collect(),
            environment: Some("prod".into()),
            ..SecretFacts::default()
        })
    }

    async fn value(
        &self,
        id: &str,
        version: Option<&str>,
        stage: &str,
    ) -> anyhow::Result<Option<String>> {
        if id == MASTER {
            return Ok(self.master.clone());
        }
        let versions = self.versions.lock().unwrap();
        Ok(versions
            .iter()
            .find(|(k, (labels, _))| {
                version.is_none_or(|v| v == k.as_str()) && labels.iter().any(|l| l == stage)
            })
            .and_then(|(_, (_, value))| value.clone()))
    }

    async fn random_password(&self, length: u32, _: &str) -> anyhow::Result<String> {
        Ok("N".repeat(length as usize))
    }

    async fn put_pending(
        &self,
        _: &str,
        token: &str,
        value: &str,
        _: Option<&str>,
    ) -> anyhow::Result<()> {
        self.writes.lock().unwrap().push(format!("put {token}"));
        let mut versions = self.versions.lock().unwrap();
        versions
            .entry(token.into())
            .or_insert((vec![AWSPENDING.into()], None))
            .1 = Some(value.into());
        Ok(())
    }

    async fn move_current(&self, _: &str, token: &str, from: Option<&str>) -> anyhow::Result<()> {
        self.writes.lock().unwrap().push(format!("current {token}"));
        let mut versions = self.versions.lock().unwrap();
        for (id, (labels, _)) in versions.iter_mut() {
            labels.retain(|l| l != AWSPREVIOUS);
            if Some(id.as_str()) == from {
                labels.retain(|l| l != AWSCURRENT);
                labels.push(AWSPREVIOUS.into());
            }
            if id == token {
                labels.push(AWSCURRENT.into());
            }
        }
        Ok(())
    }

    async fn clear_pending(&self, _: &str, token: &str) -> anyhow::Result<()> {
        let mut versions = self.versions.lock().unwrap();
        if let Some((labels, _)) = versions.get_mut(token) {
            labels.retain(|l| l != AWSPENDING);
        }
        Ok(())
    }
}

#[derive(Default)]
struct FakeDatabase {
    passwords: Mutex<HashMap<String, String>>,
    /// Roles with superuser rights.
    superusers: Mutex<Vec<String>>,
    changes: Mutex<Vec<(String, String, Target)>>,
}

#[async_trait::async_trait]
impl Database for FakeDatabase {
    async fn login(&self, c: &DbCredentials, _: &ConnectOptions) -> anyhow::Result<Login> {
        let ok = self
            .passwords
            .lock()
            .unwrap()
            .get(&c.username)
            .map(String::as_str)
            == Some(c.password());
        Ok(if ok { Login::Accepted } else { Login::Refused })
    }

    async fn test(&self, c: &DbCredentials, o: &ConnectOptions) -> anyhow::Result<()> {
        match self.login(c, o).await? {
            Login::Accepted => Ok(()),
            Login::Refused => anyhow::bail!("refused"),
        }
    }

    async fn role_facts(
        &self,
        _: &DbCredentials,
        roles: &[&str],
        _: &ConnectOptions,
    ) -> anyhow::Result<Vec<RoleFacts>> {
        let superusers = self.superusers.lock().unwrap();
        let passwords = self.passwords.lock().unwrap();
        Ok(roles
            .iter()
            .map(|r| RoleFacts {
                role: passwords.contains_key(*r).then(|| RoleRights {
                    name: r.to_string(),
                    superuser: superusers.iter().any(|s| s == r),
                    ..RoleRights::default()
                }),
                member_of: vec![],
            })
            .collect())
    }

    async fn set_password(
        &self,
        admin: &DbCredentials,
        pending: &DbCredentials,
        target: &Target,
        o: &ConnectOptions,
    ) -> anyhow::Result<()> {
        let (user, password) = (pending.username.as_str(), pending.password());
        anyhow::ensure!(
            self.login(admin, o).await? == Login::Accepted,
            "admin refused"
        );
        self.changes
            .lock()
            .unwrap()
            .push((admin.username.clone(), user.into(), target.clone()));
        self.passwords
            .lock()
            .unwrap()
            .insert(user.into(), password.into());
        Ok(())
    }
}

struct Fakes {
    secrets: Arc<dyn SecretsApi>,
    database: Arc<FakeDatabase>,
}

#[async_trait::async_trait]
impl Apis for Fakes {
    async fn secrets(&self, _: &str, _: &str, _: &str) -> anyhow::Result<Arc<dyn SecretsApi>> {
        Ok(self.secrets.clone())
    }
    fn database(&self) -> Arc<dyn Database> {
        self.database.clone()
    }
}

fn value(user: &str, host: &str, password: &str, master: bool) -> String {
    let mut v = json!({"engine": "postgres", "host": host, "port": 5432, "username": user, "password": password, "ssl": false});
    if master {
        v["masterarn"] = json!(MASTER);
    }
    v.to_string()
}

fn rotator(
    vars: &[(&str, &str)],
    current: String,
    master: Option<String>,
) -> (
    SecretRotator<Fakes>,
    Arc<MemoryPublisher>,
    Arc<FakeSecrets>,
    Arc<FakeDatabase>,
) {
    let mode = match vars.first() {
        Some(("STEWARD_DISABLED", _)) => RunMode::Disabled,
        Some(("STEWARD_DRY_RUN", _)) => RunMode::DryRun,
        _ => RunMode::Live,
    };
    // The fixtures say `ssl: false`: the policy allows plain connections.
    let mut policy = Policy::default();
    policy.rotation.require_tls = false;
    let test = testing::steward(crate::FUNCTION_NAME, policy, mode);
    let secrets = Arc::new(FakeSecrets {
        master,
        master_tagged: true,
        ..FakeSecrets::default()
    });
    secrets
        .versions
        .lock()
        .unwrap()
        .insert("old".into(), (vec![AWSCURRENT.into()], Some(current)));
    secrets
        .versions
        .lock()
        .unwrap()
        .insert(TOKEN.into(), (vec![AWSPENDING.into()], None));
    let database = Arc::new(FakeDatabase::default());
    let fakes = Fakes {
        secrets: secrets.clone(),
        database: database.clone(),
    };
    (
        SecretRotator::new(test.steward, fakes),
        test.publisher,
        secrets,
        database,
    )
}

fn event(step: &str) -> Value {
    json!({"Step": step, "SecretId": ARN, "ClientRequestToken": TOKEN})
}

#[tokio::test]
async fn single_user_flow_changes_the_password_once() {
    let (r, sent, secrets, db) = rotator(&[], value("app", "db", "old-pw", false), None);
    db.passwords
        .lock()
        .unwrap()
        .insert("app".into(), "old-pw".into());
    for step in [
        "createSecret",
        "setSecret",
        "testSecret",
        "finishSecret",
        "setSecret",
    ] {
        r.invoke(event(step), "req").await.unwrap();
    }
    assert_eq!(db.passwords.lock().unwrap()["app"], "N".repeat(32));
    assert_eq!(
        db.changes.lock().unwrap().len(),
        1,
        "the repeated setSecret found the token already current"
    );
    assert_eq!(
        secrets.writes.lock().unwrap().clone(),
        [format!("put {TOKEN}"), format!("current {TOKEN}")]
    );
    assert_eq!(sent.count(), 1);
    assert!(sent.subjects()[0].contains("INFO rotation: secret app rotated"));
}

#[tokio::test]
async fn host_mismatch_never_touches_the_database() {
    let (r, sent, secrets, db) = rotator(&[], value("app", "db", "old-pw", false), None);
    db.passwords
        .lock()
        .unwrap()
        .insert("app".into(), "old-pw".into());
    secrets.versions.lock().unwrap().get_mut(TOKEN).unwrap().1 =
        Some(value("app", "elsewhere", "new-pw", false));
    let err = r.invoke(event("setSecret"), "req").await.unwrap_err();
    assert!(
        format!("{err:#}").contains("AWSPENDING host elsewhere differs"),
        "{err:#}"
    );
    assert!(db.changes.lock().unwrap().is_empty());
    let sent = sent.subjects();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].starts_with("[steward] HIGH rotation:") && !sent[0].contains("new-pw"),
        "{}",
        sent[0]
    );
}

#[tokio::test]
async fn alternating_users_create_the_clone_through_the_master() {
    let (r, _, _, db) = rotator(
        &[],
        value("app", "db", "old-pw", true),
        Some(value("postgres", "db", "master-pw", false)),
    );
    db.passwords
        .lock()
        .unwrap()
        .insert("postgres".into(), "master-pw".into());
    db.passwords
        .lock()
        .unwrap()
        .insert("app".into(), "old-pw".into());
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        r.invoke(event(step), "req").await.unwrap();
    }
    let changes = db.changes.lock().unwrap().clone();
    assert_eq!(
        changes,
        [(
            "postgres".to_string(),
            "app_clone".to_string(),
            Target::CreateLike { like: "app".into() }
        )]
    );
    assert_eq!(
        db.passwords.lock().unwrap()["app"],
        "old-pw",
        "the previous user keeps working"
    );
}

#[tokio::test]
async fn kill_switch_writes_nothing() {
    let (r, sent, secrets, db) = rotator(
        &[("STEWARD_DISABLED", "true")],
        value("app", "db", "old-pw", false),
        None,
    );
    db.passwords
        .lock()
        .unwrap()
        .insert("app".into(), "old-pw".into());
    for step in ["createSecret", "setSecret", "finishSecret"] {
        let err = r.invoke(event(step), "req").await.unwrap_err();
        assert!(
            format!("{err:#}").contains("STEWARD_DISABLED is set"),
            "{err:#}"
        );
    }
    assert!(secrets.writes.lock().unwrap().is_empty());
    assert!(db.changes.lock().unwrap().is_empty());
    assert!(sent.subjects().iter().all(|s| s.contains("(DISABLED)")));
}

/// A master rotation set up with the partner named `partner` (the attack
/// writes `username` so that its partner is the victim).
async fn master_attack(
    current_user: &str,
    tagged: bool,
    superuser: &str,
) -> (
    String,
    Arc<FakeDatabase>,
    Arc<FakeSecrets>,
    Arc<MemoryPublisher>,
) {
    let (r, sent, secrets, db) = rotator(
        &[],
        value(current_user, "db", "old-pw", true),
        Some(value("postgres", "db", "master-pw", false)),
    );
    let secrets = {
        // Rebuild with the tag as asked (the helper tags the master by default).
        let fresh = FakeSecrets {
            master: secrets.master.clone(),
            master_tagged: tagged,
            ..FakeSecrets::default()
        };
        *fresh.versions.lock().unwrap() = secrets.versions.lock().unwrap().clone();
        Arc::new(fresh)
    };
    let r = SecretRotator::new(
        r.steward.clone(),
        Fakes {
            secrets: secrets.clone(),
            database: db.clone(),
        },
    );
    {
        let mut passwords = db.passwords.lock().unwrap();
        passwords.insert("postgres".into(), "master-pw".into());
        passwords.insert("admin".into(), "admin-pw".into());
        passwords.insert(current_user.into(), "old-pw".into());
    }
    db.superusers
        .lock()
        .unwrap()
        .extend(["postgres".to_string(), superuser.to_string()]);
    r.invoke(event("createSecret"), "req").await.unwrap();
    let err = r.invoke(event("setSecret"), "req").await.unwrap_err();
    (format!("{err:#}"), db, secrets, sent)
}

#[tokio::test]
async fn a_master_login_never_changes_the_master_or_a_superuser() {
    // The partner of "postgres_clone" is "postgres", the master's own user.
    let (err, db, _, sent) = master_attack("postgres_clone", true, "admin").await;
    assert!(err.contains("master's own user"), "{err}");
    assert!(db.changes.lock().unwrap().is_empty());
    assert_eq!(db.passwords.lock().unwrap()["postgres"], "master-pw");
    assert!(sent.subjects().iter().any(|s| s.contains("HIGH rotation")));
    // The partner of "admin_clone" is "admin", another superuser.
    let (err, db, _, _) = master_attack("admin_clone", true, "admin").await;
    assert!(err.contains("\"admin\" has superuser rights"), "{err}");
    assert!(db.changes.lock().unwrap().is_empty());
    assert_eq!(db.passwords.lock().unwrap()["admin"], "admin-pw");
}

#[tokio::test]
async fn a_master_secret_nobody_allowed_is_never_used() {
    let (err, db, _, _) = master_attack("app", false, "admin").await;
    assert!(
        err.contains("is not allowed as master credentials"),
        "{err}"
    );
    assert!(db.changes.lock().unwrap().is_empty());
}

#[tokio::test]
async fn exempt_secrets_are_refused_before_any_write() {
    let (r, sent, secrets, db) = rotator(&[], value("app", "db", "old-pw", false), None);
    let exempt = Arc::new(FakeSecrets::default());
    *exempt.versions.lock().unwrap() = secrets.versions.lock().unwrap().clone();
    let r = SecretRotator::new(
        r.steward.clone(),
        Fakes {
            secrets: Arc::new(ExemptSecrets(exempt.clone())),
            database: db.clone(),
        },
    );
    let err = r.invoke(event("createSecret"), "req").await.unwrap_err();
    assert!(
        format!("{err:#}").contains("steward:exempt=true"),
        "{err:#}"
    );
    assert!(exempt.writes.lock().unwrap().is_empty());
    assert!(sent.subjects()[0].contains("HIGH rotation"));
}

/// The same secret, tagged `steward:exempt=true`.
struct ExemptSecrets(Arc<FakeSecrets>);

#[async_trait::async_trait]
impl SecretsApi for ExemptSecrets {
    async fn describe(&self, id: &str) -> anyhow::Result<SecretFacts> {
        let mut facts = self.0.describe(id).await?;
        facts.exempt = true;
        Ok(facts)
    }
    async fn value(&self, id: &str, v: Option<&str>, s: &str) -> anyhow::Result<Option<String>> {
        self.0.value(id, v, s).await
    }
    async fn random_password(&self, l: u32, e: &str) -> anyhow::Result<String> {
        self.0.random_password(l, e).await
    }
    async fn put_pending(&self, a: &str, t: &str, v: &str, r: Option<&str>) -> anyhow::Result<()> {
        self.0.put_pending(a, t, v, r).await
    }
    async fn move_current(&self, a: &str, t: &str, f: Option<&str>) -> anyhow::Result<()> {
        self.0.move_current(a, t, f).await
    }
    async fn clear_pending(&self, a: &str, t: &str) -> anyhow::Result<()> {
        self.0.clear_pending(a, t).await
    }
}
