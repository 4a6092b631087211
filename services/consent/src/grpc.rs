//! The gRPC adapter: every RPC answers UNIMPLEMENTED until this service's issue lands.

use mcr_proto::consent::v1::consent_server::Consent;

/// The `mcr.consent.v1.Consent` handlers.
#[derive(Debug)]
pub(crate) struct ConsentApi;

#[tonic::async_trait]
impl Consent for ConsentApi {}
