//! Verifying ID tokens of configured external OpenID Connect issuers (as a
//! national identity provider issues) against each issuer's own JWKS.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::ExternalIssuer;
use crate::error::IdentityError;

/// Asymmetric algorithms only: an HMAC "signature" would be forgeable by
/// anyone holding the issuer's public key.
const ACCEPTED_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// ID tokens are small; refuse anything bigger before parsing it.
const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

struct TrustedIssuer {
    issuer: String,
    audience: String,
    keys: JwkSet,
}

/// The configured external issuers and their keys.
pub struct ExternalIssuers {
    trusted: Vec<TrustedIssuer>,
}

impl std::fmt::Debug for ExternalIssuers {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let issuers: Vec<&str> = self
            .trusted
            .iter()
            .map(|trusted| trusted.issuer.as_str())
            .collect();
        formatter
            .debug_struct("ExternalIssuers")
            .field("issuers", &issuers)
            .finish()
    }
}

#[derive(Deserialize)]
struct IdTokenClaims {
    iss: String,
    sub: String,
}

impl ExternalIssuers {
    /// Parses each issuer's JWKS; a bad one fails start-up naming the issuer.
    pub fn from_config(issuers: &[ExternalIssuer]) -> Result<Self, String> {
        let trusted = issuers
            .iter()
            .map(|issuer| {
                let keys: JwkSet = serde_json::from_str(&issuer.jwks_json).map_err(|error| {
                    format!(
                        "invalid settings: identity.external_issuers ({}): jwks_json: {error}",
                        issuer.issuer
                    )
                })?;
                Ok(TrustedIssuer {
                    issuer: issuer.issuer.clone(),
                    audience: issuer.audience.clone(),
                    keys,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { trusted })
    }

    /// Whether `issuer` is configured (for validating "issuer|subject" mappings).
    pub fn is_configured(&self, issuer: &str) -> bool {
        self.trusted.iter().any(|trusted| trusted.issuer == issuer)
    }

    /// Verifies `id_token` and returns its "issuer|subject".
    pub fn verify(&self, id_token: &str) -> Result<String, IdentityError> {
        if id_token.is_empty() || id_token.len() > MAX_ID_TOKEN_BYTES {
            return Err(IdentityError::invalid(
                "id_token",
                "must be a compact JWT of at most 16 KiB",
            ));
        }
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| {
            IdentityError::Unauthenticated(
                "the ID token is malformed or uses an unaccepted algorithm".to_owned(),
            )
        })?;
        if !ACCEPTED_ALGORITHMS.contains(&header.alg) {
            return Err(IdentityError::Unauthenticated(format!(
                "ID tokens signed with {:?} are not accepted",
                header.alg
            )));
        }
        let kid = header.kid.ok_or_else(|| {
            IdentityError::Unauthenticated("the ID token names no signing key (kid)".to_owned())
        })?;
        let unknown = || {
            IdentityError::Unauthenticated(
                "the ID token's issuer or signing key is not configured here".to_owned(),
            )
        };
        let (trusted, jwk) = self
            .trusted
            .iter()
            .find_map(|trusted| trusted.keys.find(&kid).map(|jwk| (trusted, jwk)))
            .ok_or_else(unknown)?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| unknown())?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&trusted.issuer]);
        validation.set_audience(&[&trusted.audience]);
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<IdTokenClaims>(id_token, &key, &validation)
            .map_err(|error| {
                IdentityError::Unauthenticated(format!("the ID token was refused: {error}"))
            })?
            .claims;
        Ok(format!("{}|{}", claims.iss, claims.sub))
    }
}
