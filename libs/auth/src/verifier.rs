//! Local token verification: signature against the issuer's published keys,
//! algorithm allow-list (EdDSA only), issuer, audience, time, revocation.
//! No call to identity per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcr_proto::identity::v1::JsonWebKey;

use crate::claims::{AccessClaims, Principal};
use crate::error::AuthError;
use crate::revocation::RevocationList;

/// What a verifier checks tokens against.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
}

/// Where a verifier gets the issuer's public keys (JWKS).
pub trait KeySource: Send + Sync + 'static {
    /// The keys the issuer publishes now.
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<JsonWebKey>, AuthError>>;
}

/// Verifies access tokens; cheap to clone and share.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: VerifierConfig,
    validation: Validation,
    keys: RwLock<HashMap<String, DecodingKey>>,
    revocations: RevocationList,
    key_source: Option<Arc<dyn KeySource>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenVerifier")
            .field("issuer", &self.inner.config.issuer)
            .field("audience", &self.inner.config.audience)
            .finish_non_exhaustive()
    }
}

/// An unknown `kid` triggers at most one JWKS fetch per this interval, so a
/// flood of forged tokens cannot turn into a flood of calls to identity.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(2);

impl TokenVerifier {
    /// A verifier with no keys yet; `key_source` (when given) is asked on an unknown `kid`.
    pub fn new(config: VerifierConfig, key_source: Option<Arc<dyn KeySource>>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.leeway = config.leeway_seconds;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.required_spec_claims = ["exp", "nbf", "iss", "aud", "sub"]
            .iter()
            .map(|claim| claim.to_string())
            .collect();
        Self {
            inner: Arc::new(Inner {
                config,
                validation,
                keys: RwLock::new(HashMap::new()),
                revocations: RevocationList::default(),
                key_source,
                last_refresh: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The sessions this verifier refuses.
    pub fn revocations(&self) -> &RevocationList {
        &self.inner.revocations
    }

    /// Replaces the trusted keys with `keys` (Ed25519 JWKs). Keys of another
    /// type are skipped: they could never verify an EdDSA token anyway.
    pub fn set_keys(&self, keys: &[JsonWebKey]) {
        let usable: HashMap<String, DecodingKey> = keys
            .iter()
            .filter(|key| key.kty == "OKP" && key.crv == "Ed25519" && !key.kid.is_empty())
            .filter_map(|key| {
                Some((
                    key.kid.clone(),
                    DecodingKey::from_ed_components(&key.x).ok()?,
                ))
            })
            .collect();
        match self.inner.keys.write() {
            Ok(mut current) => *current = usable,
            Err(poisoned) => *poisoned.into_inner() = usable,
        }
    }

    /// How many keys are trusted now.
    pub fn key_count(&self) -> usize {
        match self.inner.keys.read() {
            Ok(keys) => keys.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// Fetches the keys from the key source now.
    pub async fn refresh_keys(&self) -> Result<(), AuthError> {
        let Some(source) = &self.inner.key_source else {
            return Ok(());
        };
        let keys = source.fetch().await?;
        self.set_keys(&keys);
        *self.inner.last_refresh.lock().await = Some(Instant::now());
        Ok(())
    }

    /// Verifies `token` with the keys held now.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| match error.kind() {
            // `alg: none` and unknown algorithm names fail header parsing.
            jsonwebtoken::errors::ErrorKind::Json(_) => AuthError::AlgorithmNotAllowed,
            _ => AuthError::Malformed,
        })?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let claims = {
            let keys = match self.inner.keys.read() {
                Ok(keys) => keys,
                Err(poisoned) => poisoned.into_inner(),
            };
            let key = keys.get(&kid).ok_or(AuthError::UnknownKey)?;
            jsonwebtoken::decode::<AccessClaims>(token, key, &self.inner.validation)
                .map_err(|error| classify(&error))?
                .claims
        };
        if let Some(session_id) = &claims.sid
            && self.inner.revocations.is_revoked(session_id)
        {
            return Err(AuthError::Revoked);
        }
        Principal::from_claims(claims).ok_or(AuthError::InvalidClaims)
    }

    /// Verifies `token`; on an unknown `kid` (a key rotated in since the last
    /// fetch) refreshes the keys once and tries again.
    pub async fn verify_refreshing(&self, token: &str) -> Result<Principal, AuthError> {
        match self.verify(token) {
            Err(AuthError::UnknownKey) if self.inner.key_source.is_some() => {
                let mut last_refresh = self.inner.last_refresh.lock().await;
                let recently = last_refresh.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL);
                if !recently {
                    if let Some(source) = &self.inner.key_source {
                        let keys = source.fetch().await?;
                        self.set_keys(&keys);
                    }
                    *last_refresh = Some(Instant::now());
                }
                drop(last_refresh);
                self.verify(token)
            }
            other => other,
        }
    }
}

fn classify(error: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::AlgorithmNotAllowed
        }
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => AuthError::InvalidClaims,
        _ => AuthError::Malformed,
    }
}
