//! The gRPC adapter: every RPC answers UNIMPLEMENTED until this service's issue lands.

use mcr_proto::identity::v1::identity_server::Identity;

/// The `mcr.identity.v1.Identity` handlers.
#[derive(Debug)]
pub(crate) struct IdentityApi;

#[tonic::async_trait]
impl Identity for IdentityApi {}
