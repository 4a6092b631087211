//! The `mcr-consent` binary: opt-outs, permissions, care relationships, restrictions, break-glass and Decide.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mcr_runtime::run::<mcr_consent::ConsentService>().await
}
