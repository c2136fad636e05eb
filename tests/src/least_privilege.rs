//! The emulator with IAM enforcement on, for the least-privilege test: one
//! IAM user per function holding exactly the actions of that function's hub
//! role in `infra/template.yaml` (resources widened to `*` and conditions
//! dropped: moto denies resource-scoped allows outside S3, SQS, IAM and STS
//! and evaluates no conditions), an administrator user for the harness's own
//! setup, and the record of every authorization moto made
//! (`tools/moto_ext_iam_enforcement.py`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::moto::Moto;
use crate::templates::hub_role_actions;

/// An access key and its secret.
pub type Keys = (String, String);

/// The harness's own user: everything, for setting up resources.
const SETUP_USER: &str = "steward-test-setup";

/// Where moto authorizes an operation under another name than IAM does:
/// (IAM's action, moto's names for the same permission). AWS Budgets'
/// `DescribeBudget(s)` and `DescribeNotificationsForBudget` need
/// `budgets:ViewBudget`; moto checks the operation names.
const MOTO_NAMES: &[(&str, &[&str])] = &[(
    "budgets:ViewBudget",
    &[
        "budgets:DescribeBudget",
        "budgets:DescribeBudgets",
        "budgets:DescribeNotificationsForBudget",
    ],
)];

/// The actions to grant a user so that moto allows what IAM would allow.
fn as_moto_checks(actions: Vec<String>) -> Vec<String> {
    let mut out = actions.clone();
    for action in &actions {
        if let Some((_, names)) = MOTO_NAMES.iter().find(|(iam, _)| iam == action) {
            out.extend(names.iter().map(|n| n.to_string()));
        }
    }
    out
}

async fn user_with(
    iam: &aws_sdk_iam::Client,
    name: &str,
    actions: &[String],
) -> anyhow::Result<Keys> {
    iam.create_user().user_name(name).send().await?;
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    });
    iam.put_user_policy()
        .user_name(name)
        .policy_name("least-privilege")
        .policy_document(policy.to_string())
        .send()
        .await?;
    let key = iam.create_access_key().user_name(name).send().await?;
    let key = key
        .access_key()
        .ok_or_else(|| anyhow::anyhow!("CreateAccessKey returned no key"))?;
    Ok((
        key.access_key_id().to_string(),
        key.secret_access_key().to_string(),
    ))
}

/// Creates the setup user (the harness signs with it from now on) and one
/// user per function with its hub role's actions, less the `(function,
/// action)` pairs in `without`. Returns each function's keys. Enforcement
/// is not on yet: see [`switch_on`].
pub async fn create_users(
    moto: &Moto,
    functions: &[&str],
    without: &[(&str, &str)],
) -> anyhow::Result<BTreeMap<String, Keys>> {
    let iam = aws_sdk_iam::Client::new(&moto.config());
    let mut keys = BTreeMap::new();
    for function in functions {
        let actions: Vec<String> = as_moto_checks(
            hub_role_actions(function)
                .into_iter()
                .filter(|a| !without.contains(&(function, a.as_str())))
                .collect(),
        );
        let user = format!("steward-test-{function}");
        keys.insert(
            function.to_string(),
            user_with(&iam, &user, &actions).await?,
        );
    }
    let (key, secret) = user_with(&iam, SETUP_USER, &["*".to_string()]).await?;
    moto.use_keys(&key, &secret);
    Ok(keys)
}

/// Every later request is authenticated and authorized by moto.
pub async fn switch_on(moto: &Moto) -> anyhow::Result<()> {
    moto.post(
        "/_steward/iam/enforce",
        &serde_json::json!({"enabled": true}),
    )
    .await?;
    Ok(())
}

/// One authorization moto made.
#[derive(Debug, Clone, Deserialize)]
pub struct Decision {
    pub key: Option<String>,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
}

/// Every authorization since the emulator started.
pub async fn decisions(moto: &Moto) -> anyhow::Result<Vec<Decision>> {
    Ok(serde_json::from_str(
        &moto.get("/_steward/iam/decisions").await?,
    )?)
}
