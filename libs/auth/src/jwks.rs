//! Fetching identity's published keys over gRPC (`GetJwks`).

use std::time::Duration;

use futures::future::BoxFuture;
use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_proto::identity::v1::{GetJwksRequest, JsonWebKey};
use mcr_runtime::tls::ClientTlsSettings;
use tonic::transport::Channel;

use crate::error::AuthError;
use crate::verifier::KeySource;

/// Asks the identity service for its JWKS.
#[derive(Debug, Clone)]
pub struct IdentityJwks {
    client: IdentityClient<Channel>,
}

impl IdentityJwks {
    /// A source talking to identity at `endpoint` (`http://identity:50051`);
    /// connects on first use.
    pub fn new(endpoint: &str) -> Result<Self, AuthError> {
        Self::with_client_tls(endpoint, &ClientTlsSettings::default())
    }

    /// As [`IdentityJwks::new`], with TLS for an `https://` endpoint.
    pub fn with_client_tls(endpoint: &str, tls: &ClientTlsSettings) -> Result<Self, AuthError> {
        let channel = mcr_runtime::tls::endpoint("auth.identity_url", endpoint, tls)
            .map_err(|error| AuthError::KeysUnavailable(format!("invalid settings: {error}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            client: IdentityClient::new(channel),
        })
    }
}

impl KeySource for IdentityJwks {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<JsonWebKey>, AuthError>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let response = client.get_jwks(GetJwksRequest {}).await.map_err(|status| {
                AuthError::KeysUnavailable(format!("identity GetJwks failed: {}", status.message()))
            })?;
            Ok(response.into_inner().keys)
        })
    }
}
