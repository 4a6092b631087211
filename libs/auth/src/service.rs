//! The verifier every service except identity builds at start-up.

use std::sync::Arc;

use mcr_runtime::ServiceContext;
use mcr_runtime::settings::AuthSettings;

use crate::error::AuthError;
use crate::jwks::IdentityJwks;
use crate::revocation::follow_revocations;
use crate::verifier::{TokenVerifier, VerifierConfig};

impl From<&AuthSettings> for VerifierConfig {
    fn from(settings: &AuthSettings) -> Self {
        Self {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway_seconds: settings.leeway_seconds,
        }
    }
}

/// A verifier fetching identity's JWKS (`auth.identity_url`) on first use and
/// on every unknown `kid`, and following revocations from NATS for as long
/// as the service runs. Keys are fetched lazily, so a service starts and
/// serves health checks while identity is still starting.
pub fn verifier_for_service<C>(context: &ServiceContext<C>) -> Result<TokenVerifier, AuthError> {
    let auth = &context.settings.runtime.auth;
    let jwks = IdentityJwks::with_client_tls(
        &auth.identity_url,
        &context.settings.runtime.grpc.client_tls,
    )?;
    let verifier = TokenVerifier::new(VerifierConfig::from(auth), Some(Arc::new(jwks)));
    context.tasks.spawn(follow_revocations(
        context.nats.clone(),
        verifier.revocations().clone(),
        context.shutdown.clone(),
    ));
    Ok(verifier)
}
