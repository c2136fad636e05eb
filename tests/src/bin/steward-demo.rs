//! `make demo`: runs every demo section against a fresh local AWS.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match steward_tests::demo::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\n{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
