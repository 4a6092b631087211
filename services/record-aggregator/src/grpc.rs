//! The gRPC adapter: every RPC answers UNIMPLEMENTED until this service's issue lands.

use mcr_proto::records::v1::record_aggregator_server::RecordAggregator;

/// The `mcr.records.v1.RecordAggregator` handlers.
#[derive(Debug)]
pub(crate) struct RecordAggregatorApi;

#[tonic::async_trait]
impl RecordAggregator for RecordAggregatorApi {}
