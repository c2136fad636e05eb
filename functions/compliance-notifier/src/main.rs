//! Lambda entry point of the compliance notifier: builds the clients once,
//! then hands every event to the library.

use compliance_notifier::FUNCTION_NAME;
use compliance_notifier::{AwsConfigApis, ComplianceNotifier};
use steward_shared::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::serve(FUNCTION_NAME, |steward| {
        let apis = AwsConfigApis::new(steward.aws.clone());
        ComplianceNotifier::new(steward, apis)
    })
    .await
}
