//! Local token verification: signature against the issuer's published keys,
//! algorithm allow-list (EdDSA only), issuer, audience, time, revocation.
//! No call to identity per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use futures::future::BoxFuture;
use mcr_proto::identity::v1::JsonWebKey;
use serde::Deserialize;

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
    // Decompressed once per key: decompressing a point per token would
    // halve throughput (jsonwebtoken does that on every decode).
    keys: RwLock<HashMap<String, VerifyingKey>>,
    // Tokens whose signature, issuer and audience already verified, by
    // signature. A session presents one token for minutes, so most calls
    // skip the ~40 µs Ed25519 check; times and revocation are still checked
    // on every call, and a key change empties the cache.
    verified: RwLock<HashMap<String, Arc<VerifiedToken>>>,
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
        Self {
            inner: Arc::new(Inner {
                config,
                keys: RwLock::new(HashMap::new()),
                verified: RwLock::new(HashMap::new()),
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
        let usable: HashMap<String, VerifyingKey> = keys
            .iter()
            .filter(|key| key.kty == "OKP" && key.crv == "Ed25519" && !key.kid.is_empty())
            .filter_map(|key| {
                let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(&key.x).ok()?.try_into().ok()?;
                Some((key.kid.clone(), VerifyingKey::from_bytes(&bytes).ok()?))
            })
            .collect();
        match self.inner.keys.write() {
            Ok(mut current) => *current = usable,
            Err(poisoned) => *poisoned.into_inner() = usable,
        }
        match self.inner.verified.write() {
            Ok(mut verified) => verified.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
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

    /// Verifies `token` with the keys held now: signature, issuer and
    /// audience (cached per token), then times and revocation (every call).
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.signed_claims(token)?;
        let config = &self.inner.config;
        let now = unix_now();
        let leeway = i64::try_from(config.leeway_seconds).unwrap_or(i64::MAX);
        if now > claims.exp.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        if claims.nbf > now.saturating_add(leeway) {
            return Err(AuthError::NotYetValid);
        }
        if let Some(session_id) = &claims.sid
            && self.inner.revocations.is_revoked(session_id)
        {
            return Err(AuthError::Revoked);
        }
        Principal::from_claims(claims).ok_or(AuthError::InvalidClaims)
    }

    /// The claims of `token` once its header (`alg` EdDSA, `kid` known),
    /// signature, issuer and audience check out. Claims are not read before
    /// the signature verifies.
    fn signed_claims(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let signature_part = token.rsplit('.').next().unwrap_or_default();
        let cached = {
            let verified = match self.inner.verified.read() {
                Ok(verified) => verified,
                Err(poisoned) => poisoned.into_inner(),
            };
            verified
                .get(signature_part)
                .filter(|hit| hit.token == token)
                .cloned()
        };
        if let Some(hit) = cached {
            return Ok(hit.claims.clone());
        }
        let mut parts = token.split('.');
        let (Some(header_part), Some(claims_part), Some(signature_part), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header: Header = decode_json(header_part).ok_or(AuthError::Malformed)?;
        // `none`, HMAC and every other algorithm: refused before any key is touched.
        if header.alg != "EdDSA" {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let signature_bytes: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature_part)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(AuthError::BadSignature)?;
        let signed_length = header_part.len() + 1 + claims_part.len();
        {
            let keys = match self.inner.keys.read() {
                Ok(keys) => keys,
                Err(poisoned) => poisoned.into_inner(),
            };
            let key = keys.get(&kid).ok_or(AuthError::UnknownKey)?;
            key.verify_strict(
                &token.as_bytes()[..signed_length],
                &Signature::from_bytes(&signature_bytes),
            )
            .map_err(|_| AuthError::BadSignature)?;
        }
        let claims: AccessClaims = decode_json(claims_part).ok_or(AuthError::InvalidClaims)?;
        let config = &self.inner.config;
        if claims.iss != config.issuer {
            return Err(AuthError::WrongIssuer);
        }
        if claims.aud != config.audience {
            return Err(AuthError::WrongAudience);
        }
        let mut verified = match self.inner.verified.write() {
            Ok(verified) => verified,
            Err(poisoned) => poisoned.into_inner(),
        };
        if verified.len() >= VERIFIED_CACHE_CAPACITY {
            let now = unix_now();
            verified.retain(|_, entry| entry.claims.exp > now);
            if verified.len() >= VERIFIED_CACHE_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(
            signature_part.to_owned(),
            Arc::new(VerifiedToken {
                token: token.to_owned(),
                claims: claims.clone(),
            }),
        );
        Ok(claims)
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

/// Tokens remembered at most; past this, expired ones are dropped (or all).
const VERIFIED_CACHE_CAPACITY: usize = 100_000;

struct VerifiedToken {
    token: String,
    claims: AccessClaims,
}

/// The JOSE header fields a verifier needs.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
