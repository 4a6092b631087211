//! The record aggregator exactly as `mcr-record-aggregator` runs it, built
//! with this package so its fault tests can start and kill -9 it.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mcr_runtime::run::<mcr_record_aggregator::RecordAggregatorService>().await
}
