//! Demo section: the secret rotator rotating a PostgreSQL password held in
//! Secrets Manager against a real PostgreSQL over verified TLS, through the
//! built binary, then showing that the database accepts the new password and
//! refuses the old one. Passwords are never printed.

use std::time::Instant;

use aws_sdk_secretsmanager::Client as SecretsManager;
use serde_json::{json, Value};

use super::{heading, show_email, step, DemoStack};
use crate::moto::HUB_ACCOUNT;
use crate::postgres::Postgres;
use crate::unique;

const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

async fn value(sm: &SecretsManager, arn: &str, stage: &str) -> anyhow::Result<Value> {
    let out = sm
        .get_secret_value()
        .secret_id(arn)
        .version_stage(stage)
        .send()
        .await?;
    Ok(serde_json::from_str(out.secret_string().unwrap_or("{}"))?)
}

async fn logs_in(pg: &Postgres, credentials: &Value) -> anyhow::Result<&'static str> {
    let ok = pg
        .can_login(
            credentials["username"].as_str().unwrap_or_default(),
            credentials["password"].as_str().unwrap_or_default(),
            "postgres",
        )
        .await?;
    Ok(if ok { "accepted" } else { "refused" })
}

/// Stages a rotation as Secrets Manager does (RotateSecret labels the new
/// version AWSPENDING, then would invoke the function; moto cannot, so that
/// part fails and the demo drives the four steps itself).
async fn stage(sm: &SecretsManager, arn: &str) -> anyhow::Result<String> {
    let token = uuid::Uuid::new_v4().to_string();
    let result = sm
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
    if let Err(e) = result {
        let text = aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string();
        if !text.contains("Resource not found for ARN") {
            anyhow::bail!("RotateSecret: {text}");
        }
    }
    Ok(token)
}

pub async fn run(stack: &DemoStack) -> anyhow::Result<()> {
    heading("secret-rotator: PostgreSQL credentials rotate every 90 days without downtime");
    let pg = Postgres::start_with_tls().await?;
    let ca = pg
        .tls
        .as_ref()
        .map(|t| t.ca_cert.display().to_string())
        .unwrap_or_default();
    step(&format!("a real PostgreSQL runs on 127.0.0.1:{} with TLS (certificate from a CA made for this demo)", pg.port));
    pg.setup_sql(
        "ALTER ROLE postgres WITH PASSWORD 'demo-master-Pa55word'; CREATE ROLE orders_reader NOLOGIN; \
         CREATE ROLE orders_app WITH LOGIN PASSWORD 'demo-initial-Pa55word' IN ROLE orders_reader; \
         CREATE ROLE orders_api WITH LOGIN PASSWORD 'demo-api-Pa55word' IN ROLE orders_reader;",
    )
    .await?;
    let policy_path = stack
        .policy_path
        .with_file_name(format!("{}.toml", unique("rotation-policy")));
    std::fs::write(
        &policy_path,
        format!(
            "{}\n[rotation]\nca_bundle = \"{ca}\"\nconnect_timeout_seconds = 3\n",
            super::DEMO_POLICY
        ),
    )?;
    let policy = policy_path.display().to_string();
    let config = stack.moto.config();
    let sm = SecretsManager::new(&config);
    let base = json!({"engine": "postgres", "host": "127.0.0.1", "port": pg.port, "dbname": "postgres", "ssl": true});
    let mut single = base.clone();
    single["username"] = json!("orders_app");
    single["password"] = json!("demo-initial-Pa55word");
    let arn = sm
        .create_secret()
        .name("prod/orders/postgres")
        .secret_string(single.to_string())
        .send()
        .await?
        .arn()
        .unwrap_or_default()
        .to_string();
    step("secret prod/orders/postgres holds {engine, host, port, username: orders_app, password, dbname, ssl: true}");

    let mut f = stack
        .function("secret-rotator", &[("STEWARD_POLICY", policy.as_str())])
        .await?;
    let before = value(&sm, &arn, "AWSCURRENT").await?;
    let token = stage(&sm, &arn).await?;
    step(&format!("Secrets Manager starts a rotation (90-day schedule): version {token} is staged as AWSPENDING"));
    let started = Instant::now();
    for name in STEPS {
        let mut e = crate::event("secretsmanager-create-secret.json");
        e["Step"] = json!(name);
        e["SecretId"] = json!(arn);
        e["ClientRequestToken"] = json!(token);
        let out = f.invoke(&e).await?.response();
        step(&format!(
            "{name}: {}",
            out["result"].as_str().unwrap_or("?")
        ));
    }
    let elapsed = started.elapsed();
    let after = value(&sm, &arn, "AWSCURRENT").await?;
    step(&format!(
        "the four steps through the Lambda Runtime API took {} ms (new password: {} characters, never printed)",
        elapsed.as_millis(),
        after["password"].as_str().map(str::len).unwrap_or(0)
    ));
    step(&format!(
        "the database {} the new AWSCURRENT password of orders_app",
        logs_in(&pg, &after).await?
    ));
    step(&format!(
        "the database {} the old password (now AWSPREVIOUS)",
        logs_in(&pg, &before).await?
    ));
    let connections = pg
        .server_log()
        .lines()
        .filter(|l| {
            l.contains("user=orders_app")
                && l.contains("steward-secret-rotator")
                && l.contains("SSL enabled")
        })
        .count();
    step(&format!("the server log shows {connections} verified-TLS connections from the rotator, and no password"));
    for (subject, text, _) in stack.new_notifications().await? {
        show_email(&subject, &text);
    }

    heading("secret-rotator: alternating users (the API's credential keeps working during the rotation)");
    let master_arn = sm
        .create_secret()
        .name("prod/orders/postgres-master")
        .secret_string({
            let mut m = base.clone();
            m["username"] = json!("postgres");
            m["password"] = json!("demo-master-Pa55word");
            m.to_string()
        })
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("steward:rotation-master")
                .value("true")
                .build(),
        )
        .send()
        .await?
        .arn()
        .unwrap_or_default()
        .to_string();
    step("the master secret prod/orders/postgres-master is tagged steward:rotation-master=true: the only master steward may use");
    let mut api = base.clone();
    api["username"] = json!("orders_api");
    api["password"] = json!("demo-api-Pa55word");
    api["masterarn"] = json!(master_arn);
    let api_arn = sm
        .create_secret()
        .name("prod/orders/api")
        .secret_string(api.to_string())
        .send()
        .await?
        .arn()
        .unwrap_or_default()
        .to_string();
    for round in 1..=2 {
        let before = value(&sm, &api_arn, "AWSCURRENT").await?;
        let token = stage(&sm, &api_arn).await?;
        let mut still_working = true;
        for name in STEPS {
            let mut e = crate::event("secretsmanager-create-secret.json");
            e["Step"] = json!(name);
            e["SecretId"] = json!(api_arn);
            e["ClientRequestToken"] = json!(token);
            f.invoke(&e).await?.response();
            still_working &=
                logs_in(&pg, &value(&sm, &api_arn, "AWSCURRENT").await?).await? == "accepted";
        }
        let after = value(&sm, &api_arn, "AWSCURRENT").await?;
        step(&format!(
            "rotation {round}: AWSCURRENT moved from user {} to user {}; AWSCURRENT logged in after every step: {}; the previous user is still {}",
            before["username"].as_str().unwrap_or("?"),
            after["username"].as_str().unwrap_or("?"),
            if still_working { "yes" } else { "NO" },
            logs_in(&pg, &before).await?
        ));
    }
    let _ = stack.new_notifications().await?;

    heading("secret-rotator: a failed rotation alerts the security team and changes nothing");
    pg.setup_sql("ALTER ROLE orders_app WITH PASSWORD 'changed-by-hand-Pa55word'")
        .await?;
    let token = stage(&sm, &arn).await?;
    step("someone changed orders_app's password by hand; the secret no longer matches");
    for name in ["createSecret", "setSecret"] {
        let mut e = crate::event("secretsmanager-create-secret.json");
        e["Step"] = json!(name);
        e["SecretId"] = json!(arn);
        e["ClientRequestToken"] = json!(token);
        match f.invoke(&e).await? {
            crate::runtime_api::Outcome::Response(out) => step(&format!(
                "{name}: {}",
                out["result"].as_str().unwrap_or("?")
            )),
            crate::runtime_api::Outcome::Error(err) => step(&format!(
                "{name} failed (Secrets Manager will retry): {}",
                err["errorMessage"].as_str().unwrap_or("?")
            )),
        }
    }
    if let Some((subject, text, _)) = stack
        .new_notifications()
        .await?
        .into_iter()
        .find(|(s, _, _)| s.contains("HIGH"))
    {
        show_email(&subject, &text);
    }
    Ok(())
}
