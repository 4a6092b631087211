//! Ingests provider record updates and assembles each person's care record.
//!
//! The RPCs of `mcr.records.v1.RecordAggregator` are specified in `proto/`; until this
//! service's issue lands they answer UNIMPLEMENTED (see the README's status table).
#![forbid(unsafe_code)]

mod grpc;

use mcr_proto::records::v1::record_aggregator_server::{self, RecordAggregatorServer};
use mcr_runtime::{McrService, OptionalDependencies, ServiceContext, ServiceSpec, StartupError};

/// The record-aggregator service, as the runtime runs it.
#[derive(Debug)]
pub struct RecordAggregatorService;

impl McrService for RecordAggregatorService {
    type Config = ();

    const SPEC: ServiceSpec = ServiceSpec {
        name: "record-aggregator",
        config_section: "records",
        grpc_service_name: record_aggregator_server::SERVICE_NAME,
        default_grpc_port: 50054,
        default_admin_port: 9104,
    };

    /// Assembled views are cached in Redis.
    fn optional_dependencies() -> OptionalDependencies {
        OptionalDependencies { redis: true }
    }

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let server = RecordAggregatorServer::new(grpc::RecordAggregatorApi)
            .max_decoding_message_size(context.max_message_bytes());
        Ok(tonic::service::Routes::new(server))
    }
}
