//! The secret rotator end to end: the built binary under the Lambda Runtime
//! API emulator, a moto Secrets Manager, and a real PostgreSQL started for
//! the test. moto cannot invoke a rotation function, so each rotation is
//! staged the way Secrets Manager stages it (RotateSecret creates the token's
//! version labelled AWSPENDING, then fails to reach the function), and the
//! test drives createSecret, setSecret, testSecret and finishSecret in order,
//! checking after every step that the database accepts exactly the
//! credentials the secret says.

use aws_sdk_secretsmanager::Client as SecretsManager;
use serde_json::{json, Value};
use steward_tests::moto::HUB_ACCOUNT;
use steward_tests::postgres::Postgres;
use steward_tests::runtime_api::{Function, Outcome};
use steward_tests::stack::Stack as SharedStack;
use steward_tests::{event, unique};

const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];
/// The suite's PostgreSQL is plain: the policy allows plain connections
/// (`require_tls = false`), and the secrets say `ssl: false` unless a test says otherwise.
const POLICY: &str = "[rotation]\nrequire_tls = false\nconnect_timeout_seconds = 3\n";
/// The built-in TLS floor (`require_tls = true`).
const TLS_POLICY: &str = "[rotation]\nconnect_timeout_seconds = 3\n";

/// The shared stack (emulator, inbox, idempotency table, policies) plus a
/// real PostgreSQL and a Secrets Manager client.
struct Stack {
    shared: SharedStack,
    pg: Postgres,
    sm: SecretsManager,
}

impl std::ops::Deref for Stack {
    type Target = SharedStack;

    fn deref(&self) -> &SharedStack {
        &self.shared
    }
}

impl Stack {
    async fn new(tls: bool) -> Stack {
        let (shared, pg) = tokio::join!(SharedStack::new(), async {
            if tls {
                Postgres::start_with_tls().await
            } else {
                Postgres::start().await
            }
        });
        let pg = pg.expect("PostgreSQL starts (run `make postgres` if it is missing)");
        let sm = SecretsManager::new(&shared.moto.config());
        Stack { shared, pg, sm }
    }

    /// Starts the built rotator with a policy.
    async fn rotator(&self, policy: &str) -> Function {
        self.rotator_with(policy, &[]).await
    }

    /// Starts the built rotator with a policy and extra variables.
    async fn rotator_with(&self, policy: &str, extra: &[(&str, &str)]) -> Function {
        self.shared.function("secret-rotator", policy, extra).await
    }

    /// A database user with a password (set with statement logging off).
    async fn create_user(&self, user: &str, password: &str, extra: &str) {
        self.pg
            .setup_sql(&format!(
                "CREATE ROLE \"{user}\" WITH LOGIN PASSWORD '{password}' {extra}"
            ))
            .await
            .unwrap();
    }

    fn credentials(&self, user: &str, password: &str, extra: Value) -> Value {
        let mut v = json!({
            "engine": "postgres",
            "host": "127.0.0.1",
            "port": self.pg.port,
            "username": user,
            "password": password,
            "dbname": "postgres",
            "ssl": false,
        });
        for (k, val) in extra.as_object().cloned().unwrap_or_default() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(&k);
            } else {
                v[k] = val;
            }
        }
        v
    }

    async fn create_secret(&self, name: &str, value: &Value) -> String {
        self.create_tagged_secret(name, value, &[]).await
    }

    async fn create_tagged_secret(
        &self,
        name: &str,
        value: &Value,
        tags: &[(&str, &str)],
    ) -> String {
        let tags = tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build()
            })
            .collect();
        let out = self
            .sm
            .create_secret()
            .name(name)
            .secret_string(value.to_string())
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
        out.arn().unwrap().to_string()
    }

    /// A master secret allowed by its tag `steward:rotation-master=true`.
    async fn create_master_secret(&self, name: &str, value: &Value) -> String {
        self.create_tagged_secret(name, value, &[("steward:rotation-master", "true")])
            .await
    }

    /// Stages a rotation the way Secrets Manager does: RotateSecret with the
    /// rotation function and a 90-day schedule creates version `token`
    /// labelled AWSPENDING (and enables rotation), then invokes the function,
    /// which moto cannot do offline; the error is expected.
    async fn stage(&self, arn: &str) -> String {
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .sm
            .rotate_secret()
            .secret_id(arn)
            .client_request_token(&token)
            .rotation_lambda_arn(format!(
                "arn:aws:lambda:us-east-1:{HUB_ACCOUNT}:function:secret-rotator"
            ))
            .rotation_rules(
                aws_sdk_secretsmanager::types::RotationRulesType::builder()
                    .automatically_after_days(90)
                    .build(),
            )
            .send()
            .await;
        if let Err(e) = &result {
            let text = aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string();
            assert!(
                text.contains("Resource not found for ARN"),
                "unexpected RotateSecret error: {text}"
            );
        }
        let d = self
            .sm
            .describe_secret()
            .secret_id(arn)
            .send()
            .await
            .unwrap();
        assert_eq!(d.rotation_enabled(), Some(true));
        assert_eq!(
            d.version_ids_to_stages().unwrap().get(&token).cloned(),
            Some(vec!["AWSPENDING".to_string()])
        );
        token
    }

    async fn value(&self, arn: &str, version: Option<&str>, stage: &str) -> Option<Value> {
        let out = self
            .sm
            .get_secret_value()
            .secret_id(arn)
            .set_version_id(version.map(str::to_string))
            .version_stage(stage)
            .send()
            .await
            .ok()?;
        serde_json::from_str(out.secret_string()?).ok()
    }

    async fn logs_in(&self, credentials: &Value) -> bool {
        self.pg
            .can_login(
                credentials["username"].as_str().unwrap(),
                credentials["password"].as_str().unwrap(),
                "postgres",
            )
            .await
            .expect("the database answers")
    }

    /// The invariant: AWSCURRENT or AWSPENDING logs in (AWSCURRENT when `current_must` is set).
    async fn assert_a_credential_works(
        &self,
        arn: &str,
        token: &str,
        current_must: bool,
        at: &str,
    ) {
        let current = self.value(arn, None, "AWSCURRENT").await.unwrap();
        let current_ok = self.logs_in(&current).await;
        let pending_ok = match self.value(arn, Some(token), "AWSPENDING").await {
            Some(p) => self.logs_in(&p).await,
            None => false,
        };
        if current_must {
            assert!(current_ok, "{at}: AWSCURRENT must log in");
        }
        assert!(
            current_ok || pending_ok,
            "{at}: neither AWSCURRENT nor AWSPENDING logs in"
        );
    }

    /// Every password any version of these secrets ever held.
    async fn secret_values(&self, arns: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for arn in arns {
            let versions = self
                .sm
                .list_secret_version_ids()
                .secret_id(*arn)
                .include_deprecated(true)
                .send()
                .await
                .unwrap();
            for v in versions.versions() {
                let got = self
                    .sm
                    .get_secret_value()
                    .secret_id(*arn)
                    .set_version_id(v.version_id().map(str::to_string))
                    .send()
                    .await;
                if let Ok(got) = got {
                    if let Some(Ok(value)) = got.secret_string().map(serde_json::from_str::<Value>)
                    {
                        out.extend(value["password"].as_str().map(str::to_string));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// No secret value in the function's logs, the notifications or the server's statement log.
    async fn assert_no_leaks(&self, arns: &[&str], logs: &[String]) {
        let values = self.secret_values(arns).await;
        assert!(!values.is_empty());
        let published = self.moto.get("/_steward/sns/published").await.unwrap();
        let server_log = self.pg.server_log();
        assert!(server_log.contains("statement:"), "statement logging is on");
        for value in &values {
            assert!(
                !logs.iter().any(|l| l.contains(value.as_str())),
                "a secret value appears in the function's logs"
            );
            assert!(
                !published.contains(value.as_str()),
                "a secret value appears in a notification"
            );
            assert!(
                !server_log.contains(value.as_str()),
                "a secret value appears in the server log"
            );
        }
    }
}

fn step_event(arn: &str, token: &str, step: &str) -> Value {
    let mut e = event("secretsmanager-create-secret.json");
    e["Step"] = json!(step);
    e["SecretId"] = json!(arn);
    e["ClientRequestToken"] = json!(token);
    e
}

async fn run_step(f: &mut Function, arn: &str, token: &str, step: &str) -> Outcome {
    f.invoke(&step_event(arn, token, step))
        .await
        .expect("the function answers")
}

fn error_message(outcome: Outcome) -> String {
    outcome.error()["errorMessage"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Runs `createSecret`, which must succeed, then `setSecret`, which must
/// fail; returns the failure's message.
async fn set_secret_refusal(f: &mut Function, arn: &str, token: &str) -> String {
    run_step(f, arn, token, "createSecret").await.response();
    error_message(run_step(f, arn, token, "setSecret").await)
}

/// Asserts that a refused rotation left no pending value (`pending_message`
/// names the check) and that the database still takes the `initial` credentials.
async fn assert_nothing_pending_and_database_untouched(
    stack: &Stack,
    arn: &str,
    token: &str,
    initial: &Value,
    pending_message: &str,
) {
    assert!(
        stack.value(arn, Some(token), "AWSPENDING").await.is_none(),
        "{pending_message}"
    );
    assert!(stack.logs_in(initial).await, "the database is untouched");
}

/// The one rotation failure notification the inbox holds.
async fn failure_notice(stack: &Stack, secret: &str, step: &str) -> steward_tests::inbox::Received {
    let received = stack.inbox.drain().await.unwrap();
    let failures: Vec<_> = received
        .into_iter()
        .filter(|m| m.attributes["severity"] == "HIGH")
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "one HIGH notification: {:?}",
        failures.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    let m = failures.into_iter().next().unwrap();
    assert_eq!(m.attributes["category"], "rotation");
    assert!(
        m.subject.contains(secret) && m.subject.contains(step),
        "{}",
        m.subject
    );
    assert_eq!(m.chat["metadata"]["eventType"], "steward.rotation.failed");
    assert_eq!(m.chat["metadata"]["additionalContext"]["step"], step);
    m
}

#[tokio::test]
async fn single_user_rotation_through_the_runtime_api() {
    let stack = Stack::new(false).await;
    stack.create_user("app", "Initial-Pa55word-1", "").await;
    let initial = stack.credentials("app", "Initial-Pa55word-1", json!({}));
    let name = unique("orders-db");
    let arn = stack.create_secret(&name, &initial).await;
    let mut f = stack.rotator(POLICY).await;
    for round in 0..2 {
        let before = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
        let token = stack.stage(&arn).await;
        for step in STEPS {
            let out = run_step(&mut f, &arn, &token, step).await.response();
            assert_eq!(out["step"], step);
            assert_eq!(out["strategy"], "single-user", "{out}");
            assert_eq!(out["changed"], step != "testSecret", "{out}");
            stack
                .assert_a_credential_works(
                    &arn,
                    &token,
                    false,
                    &format!("round {round} after {step}"),
                )
                .await;
        }
        let after = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
        assert_ne!(after["password"], before["password"]);
        assert_eq!(after["username"], "app");
        assert_eq!(after["port"], before["port"], "other keys are kept");
        let password = after["password"].as_str().unwrap();
        assert_eq!(password.len(), 32, "the policy's default length");
        assert!(
            !password
                .chars()
                .any(|c| "/@\"'\\`$:;%&?#{}[]()<>|~^,= ".contains(c)),
            "excluded characters"
        );
        assert!(
            stack.logs_in(&after).await,
            "the database accepts AWSCURRENT"
        );
        assert!(
            !stack.logs_in(&before).await,
            "the database refuses the old password"
        );
        assert_eq!(
            stack.value(&arn, None, "AWSPREVIOUS").await.unwrap()["password"],
            before["password"]
        );
        let d = stack
            .sm
            .describe_secret()
            .secret_id(&arn)
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.version_ids_to_stages().unwrap()[&token],
            vec!["AWSCURRENT".to_string()],
            "AWSPENDING cleared"
        );

        // Secrets Manager delivers at least once: a repeated finishSecret changes nothing.
        let again = run_step(&mut f, &arn, &token, "finishSecret")
            .await
            .response();
        assert_eq!(again["changed"], false, "{again}");
        let received = stack.inbox.drain().await.unwrap();
        assert_eq!(received.len(), 1, "one message per rotation");
        assert_eq!(received[0].attributes["severity"], "INFO");
        assert_eq!(received[0].attributes["category"], "rotation");
        assert_eq!(
            received[0].chat["metadata"]["eventType"],
            "steward.rotation.rotated"
        );
        assert_eq!(received[0].chat["metadata"]["threadId"], arn.as_str());
    }
    // The password reached the server only as a SCRAM verifier.
    let server_log = stack.pg.server_log();
    assert!(
        server_log.contains("ALTER ROLE \"app\" WITH PASSWORD 'SCRAM-SHA-256$4096:"),
        "{server_log}"
    );
    let logs = f.logs();
    assert!(logs.iter().any(|l| l.contains("\"Namespace\":\"Steward\"")));
    assert!(logs
        .iter()
        .filter(|l| l.contains("rotation step done"))
        .all(|l| l.contains("\"event_id\"")));
    stack.assert_no_leaks(&[&arn], &logs).await;
}

#[tokio::test]
async fn alternating_users_keep_awscurrent_working() {
    let stack = Stack::new(false).await;
    stack.pg.setup_sql("ALTER ROLE postgres WITH PASSWORD 'Master-Pa55word-9'; CREATE ROLE orders_reader NOLOGIN; CREATE TABLE orders (id int); GRANT SELECT ON orders TO orders_reader;").await.unwrap();
    stack
        .create_user("app", "Initial-Pa55word-2", "IN ROLE orders_reader")
        .await;
    let master_arn = stack
        .create_master_secret(
            &unique("master"),
            &stack.credentials("postgres", "Master-Pa55word-9", json!({})),
        )
        .await;
    let name = unique("orders-app");
    let arn = stack
        .create_secret(
            &name,
            &stack.credentials(
                "app",
                "Initial-Pa55word-2",
                json!({"masterarn": master_arn}),
            ),
        )
        .await;
    let mut f = stack.rotator(POLICY).await;

    let mut users = Vec::new();
    for round in 0..3 {
        let before = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
        let token = stack.stage(&arn).await;
        for step in STEPS {
            let out = run_step(&mut f, &arn, &token, step).await.response();
            assert_eq!(out["strategy"], "alternating-users", "{out}");
            stack
                .assert_a_credential_works(
                    &arn,
                    &token,
                    true,
                    &format!("round {round} after {step}"),
                )
                .await;
        }
        let after = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
        assert!(stack.logs_in(&after).await);
        // The previous user keeps working until its next turn: no downtime for clients holding it.
        assert!(stack.logs_in(&before).await, "AWSPREVIOUS still logs in");
        assert_eq!(after["masterarn"], master_arn.as_str());
        users.push(after["username"].as_str().unwrap().to_string());
    }
    assert_eq!(users, ["app_clone", "app", "app_clone"]);
    // The clone has the original user's role memberships (and the original's own privileges).
    let admin = stack.pg.admin().await.unwrap();
    let rows = admin
        .query(
            "SELECT r.rolname::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'app_clone' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let roles: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(roles, ["app", "orders_reader"]);
    let clone = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(stack.pg.port)
        .user("app_clone")
        .password(clone["password"].as_str().unwrap())
        .dbname("postgres");
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .simple_query("SELECT count(*) FROM orders")
        .await
        .expect("the clone reads what the original reads");
    stack.assert_no_leaks(&[&arn, &master_arn], &f.logs()).await;
}

#[tokio::test]
async fn crash_after_every_step_and_in_the_middle_of_set_secret_then_resume() {
    let stack = Stack::new(false).await;
    stack.create_user("app", "Initial-Pa55word-3", "").await;
    let name = unique("orders-db");
    let arn = stack
        .create_secret(
            &name,
            &stack.credentials("app", "Initial-Pa55word-3", json!({})),
        )
        .await;
    let mut all_logs = Vec::new();
    // Crash points: after createSecret, setSecret, testSecret, and inside setSecret
    // (the database took the new password but the step never returned).
    for crash_after in [
        "createSecret",
        "setSecret",
        "testSecret",
        "inside setSecret",
    ] {
        let token = stack.stage(&arn).await;
        for step in STEPS {
            // A fresh process per step: the previous one is killed, as a timeout or crash would.
            let mut f = stack.rotator(POLICY).await;
            if crash_after == "inside setSecret" && step == "setSecret" {
                let pending = stack.value(&arn, Some(&token), "AWSPENDING").await.unwrap();
                stack
                    .pg
                    .setup_sql(&format!(
                        "ALTER ROLE app PASSWORD '{}'",
                        pending["password"].as_str().unwrap()
                    ))
                    .await
                    .unwrap();
                all_logs.extend(f.logs());
                break;
            }
            run_step(&mut f, &arn, &token, step).await.response();
            all_logs.extend(f.logs());
            drop(f);
            if step == crash_after {
                break;
            }
        }
        stack
            .assert_a_credential_works(&arn, &token, false, &format!("crashed after {crash_after}"))
            .await;
        // Secrets Manager retries the rotation with the same token, from the start.
        let mut f = stack.rotator(POLICY).await;
        for step in STEPS {
            let out = run_step(&mut f, &arn, &token, step).await.response();
            if step == "setSecret" && crash_after != "createSecret" {
                assert_eq!(
                    out["result"], "AWSPENDING already logs in",
                    "{crash_after}: {out}"
                );
                assert_eq!(out["changed"], false);
            }
            if step == "createSecret" {
                assert_eq!(out["changed"], false, "the pending value is kept: {out}");
            }
            stack
                .assert_a_credential_works(
                    &arn,
                    &token,
                    false,
                    &format!("resuming after {crash_after}, {step}"),
                )
                .await;
        }
        all_logs.extend(f.logs());
        let current = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
        assert!(
            stack.logs_in(&current).await,
            "after resuming from {crash_after}, AWSCURRENT logs in"
        );
    }
    stack.assert_no_leaks(&[&arn], &all_logs).await;
}

#[tokio::test]
async fn failures_are_clear_notified_and_never_lock_out() {
    let mut stack = Stack::new(false).await;
    stack.create_user("app", "Real-Pa55word-4", "").await;
    let mut f = stack.rotator(POLICY).await;

    // Wrong current password: the secret says one thing, the database another.
    let name = unique("wrong-password");
    let arn = stack
        .create_secret(
            &name,
            &stack.credentials("app", "Stale-Pa55word-4", json!({})),
        )
        .await;
    let token = stack.stage(&arn).await;
    let message = set_secret_refusal(&mut f, &arn, &token).await;
    assert!(
        message.contains("refused user \"app\"") && message.contains("nothing was changed"),
        "{message}"
    );
    failure_notice(&stack, &name, "setSecret").await;
    assert!(
        stack
            .pg
            .can_login("app", "Real-Pa55word-4", "postgres")
            .await
            .unwrap(),
        "no lockout"
    );
    // After the operator fixes the database, a new rotation (new token) completes.
    stack
        .pg
        .setup_sql("ALTER ROLE app PASSWORD 'Stale-Pa55word-4'")
        .await
        .unwrap();
    let token = stack.stage(&arn).await;
    for step in STEPS {
        run_step(&mut f, &arn, &token, step).await.response();
    }
    let current = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
    assert!(stack.logs_in(&current).await);
    stack.inbox.drain().await.unwrap();

    // Host mismatch between AWSCURRENT and AWSPENDING.
    let token = stack.stage(&arn).await;
    let mut moved = current.clone();
    moved["host"] = json!("10.0.0.9");
    moved["password"] = json!("Other-Host-Pa55word");
    stack
        .sm
        .put_secret_value()
        .secret_id(&arn)
        .client_request_token(&token)
        .secret_string(moved.to_string())
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    let message = error_message(run_step(&mut f, &arn, &token, "setSecret").await);
    assert!(
        message.contains("AWSPENDING host 10.0.0.9 differs from the AWSCURRENT host 127.0.0.1"),
        "{message}"
    );
    failure_notice(&stack, &name, "setSecret").await;
    assert!(stack.logs_in(&current).await);

    // Database down.
    let token = stack.stage(&arn).await;
    run_step(&mut f, &arn, &token, "createSecret")
        .await
        .response();
    stack.pg.stop();
    let message = error_message(run_step(&mut f, &arn, &token, "setSecret").await);
    assert!(
        message.contains("check that the database is up"),
        "{message}"
    );
    failure_notice(&stack, &name, "setSecret").await;
    stack.pg.start_again().await.unwrap();
    stack
        .assert_a_credential_works(&arn, &token, true, "after the database came back")
        .await;

    // Rotation disabled on the secret.
    let disabled = unique("not-rotating");
    let disabled_arn = stack
        .create_secret(
            &disabled,
            &stack.credentials("app", "Whatever-Pa55word", json!({})),
        )
        .await;
    let message = error_message(
        run_step(
            &mut f,
            &disabled_arn,
            &uuid::Uuid::new_v4().to_string(),
            "createSecret",
        )
        .await,
    );
    assert!(message.contains("rotation is not enabled"), "{message}");
    failure_notice(&stack, &disabled, "createSecret").await;

    // An unknown step.
    let outcome = run_step(
        &mut f,
        &arn,
        &uuid::Uuid::new_v4().to_string(),
        "dropSecret",
    )
    .await
    .error();
    assert_eq!(
        outcome["errorMessage"]
            .as_str()
            .map(|m| m.contains("unknown Step \"dropSecret\"")),
        Some(true),
        "{outcome}"
    );
    failure_notice(&stack, &name, "dropSecret").await;

    // TLS required (the secret says nothing, the policy's default requires it) but the server offers none.
    let tls_name = unique("tls-required");
    let tls_current = stack.credentials(
        "app",
        current["password"].as_str().unwrap(),
        json!({"ssl": null}),
    );
    let tls_arn = stack.create_secret(&tls_name, &tls_current).await;
    let token = stack.stage(&tls_arn).await;
    let mut tls_floor = stack.rotator(TLS_POLICY).await;
    let message = set_secret_refusal(&mut tls_floor, &tls_arn, &token).await;
    assert!(
        message.contains("server does not offer TLS")
            && message.contains("does not fall back to plain text"),
        "{message}"
    );
    failure_notice(&stack, &tls_name, "setSecret").await;
    assert!(stack.logs_in(&tls_current).await, "nothing changed");

    // A server that accepts TCP but never answers: the whole connection is bounded by the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let hang_name = unique("silent-db");
    let hang_arn = stack
        .create_secret(
            &hang_name,
            &stack.credentials("app", "Hanging-Pa55word", json!({"port": silent_port})),
        )
        .await;
    let mut quick = stack
        .rotator("[rotation]\nrequire_tls = false\nconnect_timeout_seconds = 1\n")
        .await;
    let token = stack.stage(&hang_arn).await;
    let message = set_secret_refusal(&mut quick, &hang_arn, &token).await;
    assert!(
        message.contains("did not complete within 2 s")
            && message.contains("connect_timeout_seconds"),
        "{message}"
    );
    failure_notice(&stack, &hang_name, "setSecret").await;
    drop(silent);

    let mut logs = f.logs();
    logs.extend(tls_floor.logs());
    logs.extend(quick.logs());
    stack
        .assert_no_leaks(&[&arn, &disabled_arn, &tls_arn, &hang_arn], &logs)
        .await;
}

#[tokio::test]
async fn tls_rotation_verifies_the_server_against_the_policy_ca_bundle() {
    let stack = Stack::new(true).await;
    stack.create_user("app", "Initial-Pa55word-5", "").await;
    let name = unique("orders-tls");
    let arn = stack
        .create_secret(
            &name,
            &stack.credentials("app", "Initial-Pa55word-5", json!({"ssl": "true"})),
        )
        .await;
    let ca = stack.pg.tls.as_ref().unwrap().ca_cert.display().to_string();

    // Without the CA bundle the system trust store does not know the test CA: a clear error, no plain fallback.
    let mut f = stack.rotator(POLICY).await;
    let token = stack.stage(&arn).await;
    let message = set_secret_refusal(&mut f, &arn, &token).await;
    assert!(
        message.contains("TLS to user \"app\"") && message.contains("ca_bundle"),
        "{message}"
    );
    failure_notice(&stack, &name, "setSecret").await;

    // With the CA bundle in the policy, the rotation completes over verified TLS.
    let mut f = stack
        .rotator(&format!(
            "[rotation]\nca_bundle = \"{ca}\"\nconnect_timeout_seconds = 3\n"
        ))
        .await;
    for step in STEPS {
        run_step(&mut f, &arn, &token, step).await.response();
    }
    let current = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
    assert!(stack.logs_in(&current).await);
    let log = stack.pg.server_log();
    let function_connections: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("connection authorized: user=app") && l.contains("steward-secret-rotator")
        })
        .collect();
    assert!(!function_connections.is_empty(), "{log}");
    assert!(
        function_connections
            .iter()
            .all(|l| l.contains("SSL enabled")),
        "{function_connections:#?}"
    );
    stack.assert_no_leaks(&[&arn], &f.logs()).await;
}

#[tokio::test]
async fn dry_run_and_kill_switch_change_nothing_and_say_so() {
    let stack = Stack::new(false).await;
    stack.create_user("app", "Initial-Pa55word-6", "").await;
    let name = unique("orders-db");
    let initial = stack.credentials("app", "Initial-Pa55word-6", json!({}));
    let arn = stack.create_secret(&name, &initial).await;
    for (var, marker) in [
        ("STEWARD_DRY_RUN", "(DRY RUN)"),
        ("STEWARD_DISABLED", "(DISABLED)"),
    ] {
        let mut f = stack.rotator_with(POLICY, &[(var, "true")]).await;
        let token = stack.stage(&arn).await;
        for step in ["createSecret", "setSecret"] {
            let message = error_message(run_step(&mut f, &arn, &token, step).await);
            assert!(
                message.contains(&format!("{var} is set")) && message.contains("changed nothing"),
                "{message}"
            );
        }
        assert_nothing_pending_and_database_untouched(
            &stack,
            &arn,
            &token,
            &initial,
            "no pending value written",
        )
        .await;
        let received = stack.inbox.drain().await.unwrap();
        assert_eq!(received.len(), 2, "one message per step");
        assert!(received
            .iter()
            .all(|m| m.subject.contains(marker) && m.attributes["category"] == "rotation"));
    }
    assert_eq!(
        stack.idempotency_records().await,
        0,
        "no idempotency records"
    );
}

#[tokio::test]
async fn alternating_users_crash_and_resume_keep_awscurrent_working() {
    let stack = Stack::new(false).await;
    stack
        .pg
        .setup_sql("ALTER ROLE postgres WITH PASSWORD 'Master-Pa55word-7'")
        .await
        .unwrap();
    stack.create_user("api", "Initial-Pa55word-7", "").await;
    let master_arn = stack
        .create_master_secret(
            &unique("master"),
            &stack.credentials("postgres", "Master-Pa55word-7", json!({})),
        )
        .await;
    let arn = stack
        .create_secret(
            &unique("orders-api"),
            &stack.credentials(
                "api",
                "Initial-Pa55word-7",
                json!({"masterarn": master_arn}),
            ),
        )
        .await;
    let mut logs = Vec::new();
    for crash_after in ["createSecret", "setSecret", "testSecret"] {
        let token = stack.stage(&arn).await;
        for step in STEPS {
            let mut f = stack.rotator(POLICY).await;
            run_step(&mut f, &arn, &token, step).await.response();
            logs.extend(f.logs());
            drop(f);
            stack
                .assert_a_credential_works(
                    &arn,
                    &token,
                    true,
                    &format!("{crash_after}: after {step}"),
                )
                .await;
            if step == crash_after {
                break;
            }
        }
        let mut f = stack.rotator(POLICY).await;
        for step in STEPS {
            run_step(&mut f, &arn, &token, step).await.response();
            stack
                .assert_a_credential_works(
                    &arn,
                    &token,
                    true,
                    &format!("resuming after {crash_after}, {step}"),
                )
                .await;
        }
        logs.extend(f.logs());
    }
    let users: Vec<String> = {
        let current = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
        let previous = stack.value(&arn, None, "AWSPREVIOUS").await.unwrap();
        assert!(
            stack.logs_in(&previous).await,
            "the previous user still logs in"
        );
        vec![
            previous["username"].as_str().unwrap().into(),
            current["username"].as_str().unwrap().into(),
        ]
    };
    assert_eq!(
        users,
        ["api", "api_clone"],
        "three rotations: to the clone, back, to the clone again"
    );
    stack.assert_no_leaks(&[&arn, &master_arn], &logs).await;
}

#[tokio::test]
async fn a_secret_in_a_member_account_rotates_through_the_member_role() {
    use steward_tests::stack::MEMBER_ACCOUNT;
    let stack = Stack::new(false).await;
    stack.create_user("app", "Initial-Pa55word-8", "").await;
    let member = stack
        .moto
        .account_config(MEMBER_ACCOUNT, "steward-member")
        .await
        .unwrap();
    let member_stack_sm = SecretsManager::new(&member);
    let created = member_stack_sm
        .create_secret()
        .name(unique("member-db"))
        .secret_string(
            stack
                .credentials("app", "Initial-Pa55word-8", json!({}))
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_string();
    assert!(arn.contains(&format!(":{MEMBER_ACCOUNT}:secret:")), "{arn}");
    // Stage the rotation in the member account, as Secrets Manager would there.
    let token = uuid::Uuid::new_v4().to_string();
    let _ = member_stack_sm
        .rotate_secret()
        .secret_id(&arn)
        .client_request_token(&token)
        .rotation_lambda_arn(format!(
            "arn:aws:lambda:us-east-1:{HUB_ACCOUNT}:function:secret-rotator"
        ))
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(90)
                .build(),
        )
        .send()
        .await;
    let mut f = stack
        .rotator_with(POLICY, &[("STEWARD_MEMBER_ROLE", "steward-member")])
        .await;
    for step in STEPS {
        let out = run_step(&mut f, &arn, &token, step).await.response();
        assert_eq!(out["arn"], arn.as_str(), "{out}");
    }
    // moto 5.2.5 keeps GetSecretValue's default version after UpdateSecretVersionStage: ask for the stage.
    let current = member_stack_sm
        .get_secret_value()
        .secret_id(&arn)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let d = member_stack_sm
        .describe_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        current.version_id(),
        Some(token.as_str()),
        "{:?}",
        d.version_ids_to_stages()
    );
    let value: Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
    assert!(stack.logs_in(&value).await);
    assert!(!stack
        .pg
        .can_login("app", "Initial-Pa55word-8", "postgres")
        .await
        .unwrap());
    let received = stack.inbox.drain().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].attributes["account"], MEMBER_ACCOUNT);
}

// ---- Issue 12: rotation cannot be turned against the databases it guards ----

/// A master (`postgres`, superuser) and its secret, allowed by tag unless `tag` is false.
async fn master_setup(stack: &Stack, tag: bool) -> String {
    stack
        .pg
        .setup_sql("ALTER ROLE postgres WITH PASSWORD 'Master-Pa55word-M'")
        .await
        .unwrap();
    let value = stack.credentials("postgres", "Master-Pa55word-M", json!({}));
    if tag {
        stack.create_master_secret(&unique("master"), &value).await
    } else {
        stack.create_secret(&unique("master"), &value).await
    }
}

/// An attacker's secret: `username` chosen so that its alternating partner is
/// the victim, `masterarn` pointing at the master secret. Runs createSecret
/// and setSecret and returns setSecret's error message.
async fn attack(
    stack: &Stack,
    f: &mut Function,
    username: &str,
    master_arn: &str,
) -> (String, String) {
    let name = unique("attacker");
    let arn = stack
        .create_secret(
            &name,
            &stack.credentials(
                username,
                "Whatever-Pa55word",
                json!({"masterarn": master_arn}),
            ),
        )
        .await;
    let token = stack.stage(&arn).await;
    run_step(f, &arn, &token, "createSecret").await.response();
    let message = error_message(run_step(f, &arn, &token, "setSecret").await);
    failure_notice(stack, &name, "setSecret").await;
    (arn, message)
}

async fn master_still_logs_in(stack: &Stack) {
    assert!(
        stack
            .pg
            .can_login("postgres", "Master-Pa55word-M", "postgres")
            .await
            .unwrap(),
        "the master's password is unchanged"
    );
}

#[tokio::test]
async fn a_partner_named_after_the_masters_own_user_is_refused() {
    let stack = Stack::new(false).await;
    let master_arn = master_setup(&stack, true).await;
    let mut f = stack.rotator(POLICY).await;
    // The partner of "postgres_clone" is "postgres": the master's own user.
    let (arn, message) = attack(&stack, &mut f, "postgres_clone", &master_arn).await;
    assert!(
        message.contains("refused")
            && message.contains("master's own user")
            && message.contains("nothing was changed"),
        "{message}"
    );
    master_still_logs_in(&stack).await;
    let master_value = stack.value(&master_arn, None, "AWSCURRENT").await.unwrap();
    assert!(
        stack.logs_in(&master_value).await,
        "the real master secret still logs in"
    );
    stack.assert_no_leaks(&[&arn, &master_arn], &f.logs()).await;
}

#[tokio::test]
async fn a_partner_with_privileged_rights_is_refused() {
    let stack = Stack::new(false).await;
    let master_arn = master_setup(&stack, true).await;
    stack
        .pg
        .setup_sql(
            "CREATE ROLE admin WITH LOGIN SUPERUSER PASSWORD 'Admin-Pa55word'; \
             CREATE ROLE maker WITH LOGIN CREATEROLE PASSWORD 'Maker-Pa55word'; \
             CREATE ROLE copier WITH LOGIN REPLICATION PASSWORD 'Copier-Pa55word'; \
             CREATE ROLE seer WITH LOGIN BYPASSRLS PASSWORD 'Seer-Pa55word'; \
             CREATE ROLE rds_superuser NOLOGIN; CREATE ROLE dba_group NOLOGIN IN ROLE rds_superuser; \
             CREATE ROLE ops WITH LOGIN PASSWORD 'Ops-Pa55word' IN ROLE dba_group; \
             CREATE ROLE billing WITH LOGIN PASSWORD 'Billing-Pa55word';",
        )
        .await
        .unwrap();
    let mut f = stack
        .rotator(&format!("{POLICY}protected_roles = [\"billing\"]\n"))
        .await;
    let mut arns = vec![master_arn.clone()];
    for (user, victim, password, reason) in [
        ("admin_clone", "admin", "Admin-Pa55word", "superuser"),
        ("maker_clone", "maker", "Maker-Pa55word", "create-role"),
        ("copier_clone", "copier", "Copier-Pa55word", "replication"),
        ("seer_clone", "seer", "Seer-Pa55word", "bypass-RLS"),
        // Through membership: ops -> dba_group -> rds_superuser.
        ("ops_clone", "ops", "Ops-Pa55word", "rds_superuser"),
        (
            "billing_clone",
            "billing",
            "Billing-Pa55word",
            "protected_roles",
        ),
    ] {
        let (arn, message) = attack(&stack, &mut f, user, &master_arn).await;
        arns.push(arn);
        assert!(
            message.contains("refused")
                && message.contains(&format!("{victim:?}"))
                && message.contains(reason),
            "{user}: {message}"
        );
        assert!(
            stack
                .pg
                .can_login(victim, password, "postgres")
                .await
                .unwrap(),
            "{victim}'s password is unchanged"
        );
    }
    // The other way round: the secret names the superuser, whose partner
    // would be created as a member of it. Refused, and no role is created.
    let (arn, message) = attack(&stack, &mut f, "admin", &master_arn).await;
    arns.push(arn);
    assert!(
        message.contains("refused") && message.contains("would be a member of \"admin\""),
        "{message}"
    );
    let admin = stack.pg.admin().await.unwrap();
    let created = admin
        .query("SELECT 1 FROM pg_roles WHERE rolname = 'admin_clone'", &[])
        .await
        .unwrap();
    assert!(created.is_empty(), "no role was created");
    master_still_logs_in(&stack).await;
    let refs: Vec<&str> = arns.iter().map(String::as_str).collect();
    stack.assert_no_leaks(&refs, &f.logs()).await;
}

#[tokio::test]
async fn master_secrets_must_be_allowed_by_the_policy_list_or_the_tag() {
    let stack = Stack::new(false).await;
    let untagged = master_setup(&stack, false).await;
    stack.create_user("app", "Initial-Pa55word-A", "").await;
    let mut f = stack.rotator(POLICY).await;
    // Nobody allowed this master secret: refused, nothing changes.
    let name = unique("orders-app");
    let arn = stack
        .create_secret(
            &name,
            &stack.credentials("app", "Initial-Pa55word-A", json!({"masterarn": untagged})),
        )
        .await;
    let token = stack.stage(&arn).await;
    let message = set_secret_refusal(&mut f, &arn, &token).await;
    assert!(
        message.contains("refused")
            && message.contains("not allowed as master credentials")
            && message.contains("steward:rotation-master=true"),
        "{message}"
    );
    failure_notice(&stack, &name, "setSecret").await;
    master_still_logs_in(&stack).await;
    assert!(stack
        .pg
        .can_login("app", "Initial-Pa55word-A", "postgres")
        .await
        .unwrap());
    let admin = stack.pg.admin().await.unwrap();
    assert!(admin
        .query("SELECT 1 FROM pg_roles WHERE rolname = 'app_clone'", &[])
        .await
        .unwrap()
        .is_empty());

    // A list in the policy replaces the tag: a tagged master that is not listed is refused ...
    let tagged = stack
        .create_master_secret(
            &unique("master"),
            &stack.credentials("postgres", "Master-Pa55word-M", json!({})),
        )
        .await;
    let mut listed_other = stack
        .rotator(&format!("{POLICY}master_secrets = [\"{untagged}\"]\n"))
        .await;
    let name = unique("orders-app");
    let arn2 = stack
        .create_secret(
            &name,
            &stack.credentials("app", "Initial-Pa55word-A", json!({"masterarn": tagged})),
        )
        .await;
    let token = stack.stage(&arn2).await;
    let message = set_secret_refusal(&mut listed_other, &arn2, &token).await;
    assert!(
        message.contains("not listed in [rotation] master_secrets"),
        "{message}"
    );
    failure_notice(&stack, &name, "setSecret").await;

    // ... and the listed one (untagged) is used: the legitimate rotation completes.
    let token = stack.stage(&arn).await;
    for step in STEPS {
        let out = run_step(&mut listed_other, &arn, &token, step)
            .await
            .response();
        assert_eq!(out["strategy"], "alternating-users", "{out}");
        stack
            .assert_a_credential_works(&arn, &token, true, &format!("listed master, after {step}"))
            .await;
    }
    let current = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
    assert_eq!(current["username"], "app_clone");
    assert!(stack.logs_in(&current).await);
    master_still_logs_in(&stack).await;
    let mut logs = f.logs();
    logs.extend(listed_other.logs());
    stack
        .assert_no_leaks(&[&arn, &arn2, &untagged, &tagged], &logs)
        .await;
}

#[tokio::test]
async fn single_user_rotation_of_a_superusers_own_secret_still_completes() {
    let stack = Stack::new(false).await;
    // The RDS master secret: single user, the user has superuser rights.
    let master_arn = master_setup(&stack, false).await;
    let mut f = stack.rotator(POLICY).await;
    let token = stack.stage(&master_arn).await;
    for step in STEPS {
        let out = run_step(&mut f, &master_arn, &token, step).await.response();
        assert_eq!(out["strategy"], "single-user", "{out}");
    }
    let current = stack.value(&master_arn, None, "AWSCURRENT").await.unwrap();
    assert_eq!(current["username"], "postgres");
    assert!(
        stack.logs_in(&current).await,
        "the new master password logs in"
    );
    assert!(!stack
        .pg
        .can_login("postgres", "Master-Pa55word-M", "postgres")
        .await
        .unwrap());
    stack.assert_no_leaks(&[&master_arn], &f.logs()).await;
}

#[tokio::test]
async fn no_secret_or_verifier_in_the_logs_at_debug_and_trace() {
    let stack = Stack::new(false).await;
    let master_arn = master_setup(&stack, true).await;
    stack.create_user("app", "Initial-Pa55word-L", "").await;
    stack.create_user("api", "Initial-Pa55word-L2", "").await;
    let single = stack
        .create_secret(
            &unique("orders-db"),
            &stack.credentials("app", "Initial-Pa55word-L", json!({})),
        )
        .await;
    let alternating = stack
        .create_secret(
            &unique("orders-api"),
            &stack.credentials(
                "api",
                "Initial-Pa55word-L2",
                json!({"masterarn": master_arn}),
            ),
        )
        .await;
    let mut logs = Vec::new();
    for level in ["DEBUG", "TRACE"] {
        let mut f = stack
            .rotator_with(POLICY, &[("AWS_LAMBDA_LOG_LEVEL", level)])
            .await;
        for arn in [&single, &alternating] {
            let token = stack.stage(arn).await;
            for step in STEPS {
                run_step(&mut f, arn, &token, step).await.response();
            }
        }
        let these = f.logs();
        assert!(
            these.iter().any(|l| l.contains("rotation step done")),
            "{level}: the function logged"
        );
        for line in &these {
            assert!(
                !line.contains("SCRAM-SHA-256$"),
                "{level}: a password verifier in the logs: {line}"
            );
            assert!(
                !line.contains("PRIVATE KEY"),
                "{level}: a private key in the logs"
            );
        }
        logs.extend(these);
    }
    stack
        .assert_no_leaks(&[&single, &alternating, &master_arn], &logs)
        .await;
}

#[tokio::test]
async fn an_exempt_secret_is_not_rotated() {
    let stack = Stack::new(false).await;
    stack.create_user("app", "Initial-Pa55word-E", "").await;
    let name = unique("exempt-db");
    let initial = stack.credentials("app", "Initial-Pa55word-E", json!({}));
    let arn = stack
        .create_tagged_secret(&name, &initial, &[("steward:exempt", "true")])
        .await;
    let mut f = stack.rotator(POLICY).await;
    let token = stack.stage(&arn).await;
    let message = error_message(run_step(&mut f, &arn, &token, "createSecret").await);
    assert!(
        message.contains("tagged steward:exempt=true") && message.contains("changed nothing"),
        "{message}"
    );
    failure_notice(&stack, &name, "createSecret").await;
    assert_nothing_pending_and_database_untouched(
        &stack,
        &arn,
        &token,
        &initial,
        "no pending value",
    )
    .await;
}

#[tokio::test]
async fn require_tls_is_a_floor_that_ssl_false_cannot_lower() {
    let stack = Stack::new(false).await;
    stack.create_user("app", "Initial-Pa55word-T", "").await;
    let name = unique("plain-db");
    let initial = stack.credentials("app", "Initial-Pa55word-T", json!({"ssl": false}));
    let arn = stack.create_secret(&name, &initial).await;
    let mut f = stack.rotator(TLS_POLICY).await;
    let token = stack.stage(&arn).await;
    let message = error_message(run_step(&mut f, &arn, &token, "createSecret").await);
    assert!(
        message.contains("\"ssl\": false") && message.contains("require_tls = true"),
        "{message}"
    );
    failure_notice(&stack, &name, "createSecret").await;
    assert_nothing_pending_and_database_untouched(
        &stack,
        &arn,
        &token,
        &initial,
        "no pending value",
    )
    .await;
    // Allowed by the policy, the same secret rotates over plain TCP.
    let mut plain = stack.rotator(POLICY).await;
    for step in STEPS {
        run_step(&mut plain, &arn, &token, step).await.response();
    }
    let current = stack.value(&arn, None, "AWSCURRENT").await.unwrap();
    assert!(stack.logs_in(&current).await);
}
