//! Organisations, professionals, role profiles and the tokens every service verifies.
//!
//! The RPCs of `mcr.identity.v1.Identity` are specified in `proto/`; until this
//! service's issue lands they answer UNIMPLEMENTED (see the README's status table).
#![forbid(unsafe_code)]

mod grpc;

use mcr_proto::identity::v1::identity_server::{self, IdentityServer};
use mcr_runtime::{McrService, ServiceContext, ServiceSpec, StartupError};

/// The identity service, as the runtime runs it.
#[derive(Debug)]
pub struct IdentityService;

impl McrService for IdentityService {
    type Config = ();

    const SPEC: ServiceSpec = ServiceSpec {
        name: "identity",
        config_section: "identity",
        grpc_service_name: identity_server::SERVICE_NAME,
        default_grpc_port: 50051,
        default_admin_port: 9101,
    };

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let server = IdentityServer::new(grpc::IdentityApi)
            .max_decoding_message_size(context.max_message_bytes());
        Ok(tonic::service::Routes::new(server))
    }
}
