//! The stack most end-to-end tests share: a fresh emulator, the security
//! team's topic and inbox, an idempotency table, and a way to start a built
//! function with a policy and extra environment variables.

use std::path::PathBuf;

use crate::inbox::Inbox;
use crate::moto::Moto;
use crate::runtime_api::Function;
use crate::{function_binary, unique};

/// The member account of cross-account tests.
pub const MEMBER_ACCOUNT: &str = "111111111111";
/// The role steward assumes in member accounts.
pub const MEMBER_ROLE: &str = "steward-member";

/// One emulator, one inbox, one idempotency table, and a policy directory.
pub struct Stack {
    pub moto: Moto,
    pub inbox: Inbox,
    pub table: String,
    policy_dir: PathBuf,
}

impl Stack {
    pub async fn new() -> Stack {
        let moto = Moto::start().await.expect("moto starts");
        let config = moto.config();
        let inbox = Inbox::create(&config, &unique("steward-security"))
            .await
            .expect("inbox");
        let table = unique("steward-idempotency");
        steward_shared::idempotency::create_table(&aws_sdk_dynamodb::Client::new(&config), &table)
            .await
            .expect("table");
        let policy_dir = std::env::temp_dir().join(unique("steward-policy"));
        std::fs::create_dir_all(&policy_dir).expect("policy directory");
        Stack {
            moto,
            inbox,
            table,
            policy_dir,
        }
    }

    /// The environment of an operator running the `steward` CLI against this
    /// stack: the emulator's credentials and the hub's idempotency table.
    pub fn operator_env(&self) -> Vec<(String, String)> {
        let mut env = self.moto.env();
        env.push(("STEWARD_IDEMPOTENCY_TABLE".into(), self.table.clone()));
        env
    }

    /// Starts the built function `name` with `policy` and the extra variables
    /// (the topic, the table and the member role are set already).
    pub async fn function(&self, name: &str, policy: &str, extra: &[(&str, &str)]) -> Function {
        let path = self.policy_dir.join(format!("{}.toml", unique("policy")));
        std::fs::write(&path, policy).expect("policy file");
        let mut env = self.moto.env();
        env.push(("STEWARD_TOPIC_ARN".into(), self.inbox.topic_arn.clone()));
        env.push(("STEWARD_IDEMPOTENCY_TABLE".into(), self.table.clone()));
        env.push(("STEWARD_MEMBER_ROLE".into(), MEMBER_ROLE.into()));
        env.push(("STEWARD_POLICY".into(), path.display().to_string()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Function::start(&function_binary(name), name, &env)
            .await
            .expect("function starts")
    }

    /// The SDK configuration of the member account, reached through the
    /// member role as steward reaches it.
    pub async fn member_config(&self) -> aws_config::SdkConfig {
        self.moto
            .account_config(MEMBER_ACCOUNT, MEMBER_ROLE)
            .await
            .expect("the member role can be assumed")
    }

    /// How many records the idempotency table holds.
    pub async fn idempotency_records(&self) -> usize {
        let ddb = aws_sdk_dynamodb::Client::new(&self.moto.config());
        ddb.scan()
            .table_name(&self.table)
            .send()
            .await
            .expect("scan")
            .count() as usize
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.policy_dir);
    }
}
