//! Identity's own settings (`[identity]`, `MCR_IDENTITY__*`).

use secrecy::SecretString;
use serde::Deserialize;

/// Settings of the identity service. Issuer and audience are shared with the
/// verifiers and live in the runtime's `[auth]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IdentityConfig {
    /// Lifetime of an access token. Also the bound on how long a revoked
    /// session's tokens could be accepted by a verifier that missed the event.
    pub access_token_ttl_seconds: u64,
    /// Lifetime of a sign-in session (its refresh tokens): a clinical shift.
    pub session_ttl_seconds: u64,
    /// Lifetime of a service token.
    pub service_token_ttl_seconds: u64,
    /// Consecutive failed sign-ins that lock an account.
    pub lockout_threshold: u32,
    /// How long a lock lasts.
    pub lockout_seconds: u64,
    /// How long a signing key signs before the next takes over.
    pub key_rotation_interval_seconds: u64,
    /// How long verifiers may cache the JWKS; a new key is published this long before it signs.
    pub jwks_max_age_seconds: u32,
    /// How often each replica checks whether a key rotation is due.
    pub key_check_interval_ms: u64,
    /// The first administrator, created at first start when no user exists.
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// External OpenID Connect issuers whose ID tokens ExchangeExternalToken accepts.
    pub external_issuers: Vec<ExternalIssuer>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_seconds: 300,
            session_ttl_seconds: 12 * 60 * 60,
            service_token_ttl_seconds: 300,
            lockout_threshold: 5,
            lockout_seconds: 15 * 60,
            key_rotation_interval_seconds: 30 * 24 * 60 * 60,
            jwks_max_age_seconds: 300,
            key_check_interval_ms: 30_000,
            bootstrap_admin: None,
            external_issuers: Vec::new(),
        }
    }
}

/// The first administrator. The password comes from configuration (a
/// Kubernetes Secret) and is never printed.
#[derive(Debug, Clone, Deserialize)]
pub struct BootstrapAdmin {
    /// Sign-in name.
    pub username: String,
    /// Initial password (12-128 characters).
    pub password: SecretString,
    /// The platform operator's organisation code, created with the admin.
    pub organisation_code: String,
    /// The platform operator's name.
    pub organisation_name: String,
}

/// An external OpenID Connect issuer.
#[derive(Debug, Clone, Deserialize)]
pub struct ExternalIssuer {
    /// Its `iss`.
    pub issuer: String,
    /// The `aud` its ID tokens must carry (our client id there).
    pub audience: String,
    /// Its JWK Set as JSON (`{"keys": [...]}`), as published at its `jwks_uri`.
    pub jwks_json: String,
}
