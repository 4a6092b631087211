//! The `mcr-record-aggregator` binary: ingests provider record updates and assembles each person's care record.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mcr_runtime::run::<mcr_record_aggregator::RecordAggregatorService>().await
}
