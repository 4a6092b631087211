//! The `mcr-audit` binary: the append-only, hash-chained access log.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mcr_runtime::run::<mcr_audit::AuditService>().await
}
