//! The gRPC adapter: every RPC answers UNIMPLEMENTED until this service's issue lands.

use mcr_proto::audit::v1::audit_server::Audit;

/// The `mcr.audit.v1.Audit` handlers.
#[derive(Debug)]
pub(crate) struct AuditApi;

#[tonic::async_trait]
impl Audit for AuditApi {}
