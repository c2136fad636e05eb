//! Lambda entry point of the off-hours scheduler: builds the clients once,
//! then hands every event to the library.

use offhours_scheduler::Scheduler;
use offhours_scheduler::FUNCTION_NAME;
use steward_shared::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::serve(FUNCTION_NAME, Scheduler::from_steward).await
}
