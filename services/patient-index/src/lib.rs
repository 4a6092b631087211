//! The region's master patient index.
//!
//! The RPCs of `mcr.patient_index.v1.PatientIndex` are specified in `proto/`; until this
//! service's issue lands they answer UNIMPLEMENTED (see the README's status table).
#![forbid(unsafe_code)]

pub mod domain;
mod grpc;

use mcr_proto::patient_index::v1::patient_index_server::{self, PatientIndexServer};
use mcr_runtime::{McrService, ServiceContext, ServiceSpec, StartupError};

/// The patient-index service, as the runtime runs it.
#[derive(Debug)]
pub struct PatientIndexService;

impl McrService for PatientIndexService {
    type Config = ();

    const SPEC: ServiceSpec = ServiceSpec {
        name: "patient-index",
        config_section: "patient_index",
        grpc_service_name: patient_index_server::SERVICE_NAME,
        default_grpc_port: 50052,
        default_admin_port: 9102,
    };

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let server = PatientIndexServer::new(grpc::PatientIndexApi)
            .max_decoding_message_size(context.max_message_bytes());
        Ok(tonic::service::Routes::new(server))
    }
}
