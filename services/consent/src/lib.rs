//! Opt-outs, permissions, care relationships, restrictions, break-glass and Decide.
//!
//! The RPCs of `mcr.consent.v1.Consent` are specified in `proto/`; until this
//! service's issue lands they answer UNIMPLEMENTED (see the README's status table).
#![forbid(unsafe_code)]

pub mod domain;
mod grpc;

use mcr_proto::consent::v1::consent_server::{self, ConsentServer};
use mcr_runtime::{McrService, ServiceContext, ServiceSpec, StartupError};

/// The consent service, as the runtime runs it.
#[derive(Debug)]
pub struct ConsentService;

impl McrService for ConsentService {
    type Config = ();

    const SPEC: ServiceSpec = ServiceSpec {
        name: "consent",
        config_section: "consent",
        grpc_service_name: consent_server::SERVICE_NAME,
        default_grpc_port: 50053,
        default_admin_port: 9103,
    };

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let server = ConsentServer::new(grpc::ConsentApi)
            .max_decoding_message_size(context.max_message_bytes());
        Ok(tonic::service::Routes::new(server))
    }
}
