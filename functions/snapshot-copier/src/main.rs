//! Lambda entry point of the snapshot copier: builds the clients once, then
//! hands every event to the library.

use snapshot_copier::Copier;
use snapshot_copier::FUNCTION_NAME;
use steward_shared::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::serve(FUNCTION_NAME, Copier::from_steward).await
}
