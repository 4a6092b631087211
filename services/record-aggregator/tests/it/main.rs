//! Integration tests of mcr-record-aggregator against the real PostgreSQL,
//! NATS and Redis, with identity, patient-index and consent running in-process.

// A panic is how a test reports a failure.
#![allow(clippy::unwrap_used)]

mod cache_encryption;
mod fhir;
mod hostile;
mod ingest;
mod invalidation;
mod support;
mod views;

use mcr_runtime::McrService;

const BINARY: &str = env!("CARGO_BIN_EXE_mcr-record-aggregator");

#[tokio::test]
async fn binary_serves_health_reflection_metrics_and_stops_on_sigterm() {
    mcr_testkit::binary::assert_binary_lifecycle(
        BINARY,
        &mcr_record_aggregator::RecordAggregatorService::SPEC,
    )
    .await;
}

#[tokio::test]
async fn binary_without_nats_is_not_serving_and_says_why() {
    mcr_testkit::binary::assert_not_serving_without_nats(
        BINARY,
        &mcr_record_aggregator::RecordAggregatorService::SPEC,
    )
    .await;
}
