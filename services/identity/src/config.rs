//! Identity's own settings (`[identity]`, `MCR_IDENTITY__*`).

use std::collections::BTreeMap;

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
    /// Service accounts created (or brought up to date) at every start, keyed
    /// by account name; `_` in a name reads as `-`, so the environment form
    /// `MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__RECORD_AGGREGATOR__CLIENT_ID`
    /// names the account `record-aggregator`.
    pub bootstrap_service_accounts: BTreeMap<String, BootstrapServiceAccount>,
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
            bootstrap_service_accounts: BTreeMap::new(),
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

/// A service account declared in settings, so a platform's own services
/// (and Kubernetes, which holds the secret in a Secret) need no administrator
/// to create them by hand.
#[derive(Debug, Clone, Deserialize)]
pub struct BootstrapServiceAccount {
    /// `svc-` then 1-60 of a-z, 0-9 and `-`, e.g. `svc-record-aggregator`.
    pub client_id: String,
    /// At least 32 characters (only its SHA-256 is stored, so it must be
    /// too long to guess); never printed.
    pub client_secret: SecretString,
    /// The organisation the account acts for; created (as the platform
    /// operator) when missing.
    pub organisation_code: String,
    /// The organisation's name if it has to be created.
    #[serde(default)]
    pub organisation_name: Option<String>,
    /// The scopes it may be granted: a list, or one string separated by
    /// spaces or commas (the environment form).
    pub scopes: ScopeList,
}

/// Scopes as a TOML list or as one string (`"index:read index:write"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ScopeList {
    /// `["index:read", "index:write"]`
    List(Vec<String>),
    /// `"index:read index:write"` or `"index:read,index:write"`
    Joined(String),
}

impl ScopeList {
    /// The scopes one by one.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            ScopeList::List(scopes) => scopes.clone(),
            ScopeList::Joined(joined) => joined
                .split(|character: char| character == ',' || character.is_whitespace())
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_a_list_or_as_one_string() {
        let listed: Result<BootstrapServiceAccount, _> = serde_json::from_str(
            r#"{"client_id": "svc-consent", "client_secret": "x", "organisation_code": "MCR001",
                "scopes": ["index:read", "consent:decide"]}"#,
        );
        let joined: Result<BootstrapServiceAccount, _> = serde_json::from_str(
            r#"{"client_id": "svc-consent", "client_secret": "x", "organisation_code": "MCR001",
                "scopes": "index:read, consent:decide"}"#,
        );
        for account in [listed, joined] {
            let scopes = account.map(|account| account.scopes.to_vec()).ok();
            assert_eq!(
                scopes,
                Some(vec!["index:read".to_owned(), "consent:decide".to_owned()])
            );
        }
    }

    #[test]
    fn the_secret_never_prints() {
        let account: Result<BootstrapServiceAccount, _> = serde_json::from_str(
            r#"{"client_id": "svc-consent", "client_secret": "very secret value", "organisation_code": "MCR001", "scopes": "index:read"}"#,
        );
        let printed = format!("{account:?}");
        assert!(!printed.contains("very secret value"), "{printed}");
    }
}
