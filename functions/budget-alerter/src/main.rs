//! Lambda entry point of the budget alerter: builds the clients once, then
//! hands every event to the library.

use budget_alerter::Alerter;
use budget_alerter::FUNCTION_NAME;
use steward_shared::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    entry::serve(FUNCTION_NAME, Alerter::from_steward).await
}
