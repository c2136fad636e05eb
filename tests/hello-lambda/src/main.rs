//! The hello-world Rust Lambda the cold-start benchmark compares every
//! function with: the Runtime API loop and nothing else (it echoes its
//! event). Built in release like the functions (`make release`) and started
//! the same way by `steward-coldstart`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
