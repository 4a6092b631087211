//! The `mcr-identity` binary: organisations, professionals, role profiles and the tokens every service verifies.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mcr_runtime::run::<mcr_identity::IdentityService>().await
}
