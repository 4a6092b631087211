//! The append-only, hash-chained access log.
//!
//! The RPCs of `mcr.audit.v1.Audit` are specified in `proto/`; until this
//! service's issue lands they answer UNIMPLEMENTED (see the README's status table).
#![forbid(unsafe_code)]

mod grpc;

use mcr_proto::audit::v1::audit_server::{self, AuditServer};
use mcr_runtime::{McrService, ServiceContext, ServiceSpec, StartupError};

/// The audit service, as the runtime runs it.
#[derive(Debug)]
pub struct AuditService;

impl McrService for AuditService {
    type Config = ();

    const SPEC: ServiceSpec = ServiceSpec {
        name: "audit",
        config_section: "audit",
        grpc_service_name: audit_server::SERVICE_NAME,
        default_grpc_port: 50055,
        default_admin_port: 9105,
    };

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let server =
            AuditServer::new(grpc::AuditApi).max_decoding_message_size(context.max_message_bytes());
        Ok(tonic::service::Routes::new(server))
    }
}
