//! Why a token was refused, mapped to a gRPC status in one place.

/// Why a token was refused. Messages never contain the token.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `authorization: Bearer …` metadata.
    #[error(
        "no access token: send `authorization: Bearer <token>` metadata (sign in with identity's Authenticate)"
    )]
    MissingToken,
    /// The token is not a well-formed JWT.
    #[error("the access token is malformed")]
    Malformed,
    /// The header names an algorithm other than EdDSA (including `none` and HMAC).
    #[error("the access token's algorithm is not accepted; only EdDSA-signed tokens are")]
    AlgorithmNotAllowed,
    /// The header has no `kid`, or names a key the issuer does not publish.
    #[error("the access token was signed with an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the access token's signature is invalid")]
    BadSignature,
    /// Past `exp`.
    #[error("the access token has expired; refresh it or sign in again")]
    Expired,
    /// Before `nbf`.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// Another issuer.
    #[error("the access token was issued by another issuer")]
    WrongIssuer,
    /// Another audience.
    #[error("the access token is for another audience")]
    WrongAudience,
    /// Claims missing or inconsistent.
    #[error("the access token's claims are incomplete")]
    InvalidClaims,
    /// The session was revoked.
    #[error("the session of this access token was revoked; sign in again")]
    Revoked,
    /// The signing keys could not be fetched.
    #[error("signing keys are unavailable: {0}")]
    KeysUnavailable(String),
    /// This service calls others but has no service account configured.
    #[error(
        "no service account configured: set auth.client_id and auth.client_secret (MCR_AUTH__CLIENT_ID, MCR_AUTH__CLIENT_SECRET)"
    )]
    NoServiceCredentials,
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        let message = error.to_string();
        match error {
            AuthError::MissingToken
            | AuthError::Malformed
            | AuthError::AlgorithmNotAllowed
            | AuthError::UnknownKey
            | AuthError::BadSignature
            | AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::WrongIssuer
            | AuthError::WrongAudience
            | AuthError::InvalidClaims
            | AuthError::Revoked => tonic::Status::unauthenticated(message),
            AuthError::KeysUnavailable(_) | AuthError::NoServiceCredentials => {
                tonic::Status::unavailable(message)
            }
        }
    }
}
