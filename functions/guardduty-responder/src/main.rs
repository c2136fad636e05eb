//! Lambda entry point of the GuardDuty responder: builds the clients once,
//! then hands every finding to the library.

use std::sync::Arc;

use guardduty_responder::handler::{AwsApis, DynamoHistory, History, NoHistory, Responder};
use guardduty_responder::FUNCTION_NAME;
use steward_shared::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::serve(FUNCTION_NAME, |steward| {
        let history: Arc<dyn History> = match &steward.settings.idempotency_table {
            Some(table) => Arc::new(DynamoHistory::new(steward.aws.base(), table.clone())),
            None => Arc::new(NoHistory),
        };
        let apis = AwsApis::new(steward.aws.clone());
        Responder::new(steward, apis, history)
    })
    .await
}
