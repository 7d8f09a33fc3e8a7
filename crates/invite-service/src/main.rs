use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    invite_service::cli::run().await
}
