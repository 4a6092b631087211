//! The binary's life as Kubernetes and operators see it.

use mcr_runtime::McrService;

pub const BINARY: &str = env!("CARGO_BIN_EXE_mcr-audit");

#[tokio::test]
async fn binary_serves_health_reflection_metrics_and_stops_on_sigterm() {
    mcr_testkit::binary::assert_binary_lifecycle(BINARY, &mcr_audit::AuditService::SPEC).await;
}

#[tokio::test]
async fn binary_without_nats_is_not_serving_and_says_why() {
    mcr_testkit::binary::assert_not_serving_without_nats(BINARY, &mcr_audit::AuditService::SPEC)
        .await;
}
