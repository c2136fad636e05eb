//! `make demo`: a small organization on the local AWS, real-shaped events
//! driven through the built function binaries, and what the security team's
//! inbox received. Each function has its own section file.

mod budget;
mod compliance;
mod drill;
mod guardduty;
mod offhours;
mod rotation;
mod snapshots;
mod tagging;

use serde_json::Value;

use crate::inbox::Inbox;
use crate::moto::Moto;
use crate::runtime_api::Function;
use crate::{function_binary, unique};

/// What every section shares: the emulator, the security team's topic and
/// inbox, the idempotency table and a policy file.
pub struct DemoStack {
    pub moto: Moto,
    pub inbox: Inbox,
    pub table: String,
    pub policy_path: std::path::PathBuf,
    /// How many SNS publishes were already shown.
    shown: std::sync::atomic::AtomicUsize,
    /// Each function's IAM user keys when IAM enforcement is on.
    pub function_keys: std::collections::BTreeMap<String, crate::least_privilege::Keys>,
}

/// The demo organization's policy.
pub const DEMO_POLICY: &str = r#"# The demo organization: the hub account is the dev account.
[tagging.account_environments]
"123456789012" = "dev"
"111111111111" = "prod"
"#;

impl DemoStack {
    pub async fn start() -> anyhow::Result<DemoStack> {
        DemoStack::start_with(None).await
    }

    /// The demo organization with moto's IAM enforcement on: each function
    /// runs as an IAM user holding only its hub role's actions (less the
    /// `(function, action)` pairs in `without`).
    pub async fn start_enforcing(without: &[(&str, &str)]) -> anyhow::Result<DemoStack> {
        DemoStack::start_with(Some(without)).await
    }

    async fn start_with(enforcing: Option<&[(&str, &str)]>) -> anyhow::Result<DemoStack> {
        let moto = Moto::start().await?;
        let function_keys = match enforcing {
            Some(without) => {
                let declared = crate::functions::declared_permissions();
                let functions: Vec<&str> = declared.keys().copied().collect();
                crate::least_privilege::create_users(&moto, &functions, without).await?
            }
            None => Default::default(),
        };
        let config = moto.config();
        let inbox = Inbox::create(&config, "steward-security").await?;
        let table = "steward-idempotency".to_string();
        steward_shared::idempotency::create_table(&aws_sdk_dynamodb::Client::new(&config), &table)
            .await?;
        let dir = std::env::temp_dir().join(unique("steward-demo"));
        std::fs::create_dir_all(&dir)?;
        let policy_path = dir.join("policy.toml");
        std::fs::write(&policy_path, DEMO_POLICY)?;
        if enforcing.is_some() {
            crate::least_privilege::switch_on(&moto).await?;
        }
        Ok(DemoStack {
            moto,
            inbox,
            table,
            policy_path,
            shown: Default::default(),
            function_keys,
        })
    }

    /// The environment of a function in the demo, plus `extra`.
    pub fn function_env(&self, name: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.moto.env();
        if let Some((key, secret)) = self.function_keys.get(name) {
            env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY");
            env.push(("AWS_ACCESS_KEY_ID".into(), key.clone()));
            env.push(("AWS_SECRET_ACCESS_KEY".into(), secret.clone()));
        }
        env.push(("STEWARD_TOPIC_ARN".into(), self.inbox.topic_arn.clone()));
        env.push(("STEWARD_IDEMPOTENCY_TABLE".into(), self.table.clone()));
        env.push(("STEWARD_MEMBER_ROLE".into(), "steward-member".into()));
        env.push((
            "STEWARD_POLICY".into(),
            self.policy_path.display().to_string(),
        ));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// Starts a built function under the Runtime API emulator.
    pub async fn function(&self, name: &str, extra: &[(&str, &str)]) -> anyhow::Result<Function> {
        Function::start(
            &function_binary(name),
            name,
            &self.function_env(name, extra),
        )
        .await
    }

    /// The SNS publishes since the last call, as (subject, email text, chat JSON).
    pub async fn new_notifications(&self) -> anyhow::Result<Vec<(String, String, Value)>> {
        let all: Vec<Value> =
            serde_json::from_str(&self.moto.get("/_steward/sns/published").await?)?;
        let start = self
            .shown
            .swap(all.len(), std::sync::atomic::Ordering::SeqCst);
        let mut out = Vec::new();
        for p in all.iter().skip(start) {
            let body: Value = serde_json::from_str(p["message"].as_str().unwrap_or("{}"))?;
            let chat: Value = serde_json::from_str(body["sqs"].as_str().unwrap_or("null"))?;
            out.push((
                p["subject"].as_str().unwrap_or_default().to_string(),
                body["email"].as_str().unwrap_or_default().to_string(),
                chat,
            ));
        }
        let _ = self.inbox.drain().await?;
        Ok(out)
    }
}

/// Prints a section heading.
pub fn heading(title: &str) {
    println!("\n\x1b[1m== {title}\x1b[0m");
}

/// Prints one step of a section.
pub fn step(text: &str) {
    println!("  - {text}");
}

/// Prints a notification as an email subscriber reads it.
pub fn show_email(subject: &str, text: &str) {
    println!("\n  +-- email to the security team ------------------------------------");
    println!("  | Subject: {subject}");
    println!("  |");
    for line in text.lines() {
        println!("  | {line}");
    }
    println!("  +-------------------------------------------------------------------");
}

/// Prints the chat JSON (as Slack or Teams receive it through Amazon Q Developer).
pub fn show_chat(chat: &Value) {
    println!("\n  chat JSON (sqs, lambda and https subscribers):");
    let text = serde_json::to_string_pretty(chat).unwrap_or_default();
    for line in text.lines() {
        println!("    {line}");
    }
}

/// Runs every section; a failing section is reported and the others still run.
pub async fn run() -> anyhow::Result<()> {
    println!("steward demo: a small organization on a local AWS emulator (moto), real-shaped events, the built Lambda binaries.");
    let stack = DemoStack::start().await?;
    println!(
        "local AWS at {} | security topic {}",
        stack.moto.endpoint, stack.inbox.topic_arn
    );
    run_sections(&stack, SECTIONS).await
}

/// Every section, by the function it shows, in the demo's order.
pub const SECTIONS: &[&str] = &[
    "tag-enforcer",
    "offhours-scheduler",
    "secret-rotator",
    "guardduty-responder",
    "compliance-notifier",
    "budget-alerter",
    "snapshot-copier",
    "dr-drill",
];

/// Runs the sections of these functions; a failing section is reported and
/// the others still run.
pub async fn run_sections(stack: &DemoStack, functions: &[&str]) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for function in functions {
        let outcome = match *function {
            "tag-enforcer" => tagging::run(stack).await,
            "offhours-scheduler" => offhours::run(stack).await,
            "secret-rotator" => rotation::run(stack).await,
            "guardduty-responder" => guardduty::run(stack).await,
            "compliance-notifier" => compliance::run(stack).await,
            "budget-alerter" => budget::run(stack).await,
            "snapshot-copier" => snapshots::run(stack).await,
            // The snapshot copier's restore drill (its own section).
            "dr-drill" => drill::run(stack).await,
            other => Err(anyhow::anyhow!("the demo has no section for {other}")),
        };
        if let Err(e) = outcome {
            failed.push(format!("{function}: {e:#}"));
        }
    }
    if failed.is_empty() {
        println!("\ndemo finished: every section ran.");
        Ok(())
    } else {
        anyhow::bail!("demo sections failed:\n  {}", failed.join("\n  "))
    }
}
