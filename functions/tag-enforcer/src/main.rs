//! Lambda entry point of the tag enforcer: builds the clients once, then hands
//! every event to the library.

use steward_shared::entry;
use tag_enforcer::FUNCTION_NAME;
use tag_enforcer::{AwsApis, TagEnforcer};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::serve(FUNCTION_NAME, |steward| {
        let apis = AwsApis::new(steward.aws.clone());
        TagEnforcer::new(steward, apis)
    })
    .await
}
