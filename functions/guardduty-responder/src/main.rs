//! Lambda entry point of the GuardDuty responder: builds the clients once,
//! then hands every finding (and every scheduled sweep) to the library.

use guardduty_responder::FUNCTION_NAME;
use guardduty_responder::{AwsApis, Responder};
use steward_shared::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::serve(FUNCTION_NAME, |steward| {
        let apis = AwsApis::new(steward.aws.clone());
        Responder::new(steward, apis)
    })
    .await
}
