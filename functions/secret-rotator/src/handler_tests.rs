//! The handler's flow over in-memory adapters: which calls each step makes
//! and, above all, which it never makes (no database change on a host
//! mismatch, no write in dry-run).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::json;
use steward_shared::aws::AwsContext;
use steward_shared::notify::{Publish, Rendered};
use steward_shared::policy_store::PolicyStore;
use steward_shared::settings::Settings;
use steward_shared::{Policy, Steward};

use super::*;

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
    writes: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl SecretsApi for FakeSecrets {
    async fn describe(&self, _: &str) -> anyhow::Result<SecretFacts> {
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

    async fn set_password(
        &self,
        admin: &DbCredentials,
        user: &str,
        password: &str,
        target: &Target,
        o: &ConnectOptions,
    ) -> anyhow::Result<()> {
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

#[derive(Default, Clone)]
struct Sent(Arc<Mutex<Vec<String>>>);

#[async_trait::async_trait]
impl Publish for Sent {
    async fn publish(&self, rendered: &Rendered) -> anyhow::Result<Option<String>> {
        self.0.lock().unwrap().push(rendered.subject.clone());
        Ok(None)
    }
}

struct Fakes {
    secrets: Arc<FakeSecrets>,
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
    Sent,
    Arc<FakeSecrets>,
    Arc<FakeDatabase>,
) {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = Settings::from_map(FUNCTION_NAME, &vars).unwrap();
    let aws = AwsContext::new(
        aws_config::SdkConfig::builder().build(),
        "123456789012".into(),
        "us-east-1".into(),
        None,
        FUNCTION_NAME,
    );
    let sent = Sent::default();
    let steward = Steward {
        settings,
        aws,
        policy: PolicyStore::fixed(Policy::default()),
        publisher: Arc::new(sent.clone()),
        idempotency: None,
    };
    let secrets = Arc::new(FakeSecrets {
        master,
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
        SecretRotator::new(Arc::new(steward), fakes),
        sent,
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
    assert_eq!(sent.0.lock().unwrap().len(), 1);
    assert!(sent.0.lock().unwrap()[0].contains("INFO rotation: secret app rotated"));
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
    let sent = sent.0.lock().unwrap();
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
    assert!(sent
        .0
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.contains("(DISABLED)")));
}
