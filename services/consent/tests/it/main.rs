//! Integration tests of mcr-consent against the real PostgreSQL, NATS and
//! Redis, with real identity and patient-index services.

mod batch_relationships;
mod break_glass;
mod changes;
mod decisions;
mod policy;
mod support;
mod validation;

use mcr_runtime::McrService;

const BINARY: &str = env!("CARGO_BIN_EXE_mcr-consent");

#[tokio::test]
async fn binary_serves_health_reflection_metrics_and_stops_on_sigterm() {
    mcr_testkit::binary::assert_binary_lifecycle(BINARY, &mcr_consent::ConsentService::SPEC).await;
}

#[tokio::test]
async fn binary_without_nats_is_not_serving_and_says_why() {
    mcr_testkit::binary::assert_not_serving_without_nats(
        BINARY,
        &mcr_consent::ConsentService::SPEC,
    )
    .await;
}
