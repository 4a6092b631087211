//! Access-token verification for every My Care Record service.
//!
//! Identity signs short-lived EdDSA JWTs; every other service verifies them
//! locally with [`TokenVerifier`] — signature against identity's cached JWKS,
//! issuer, audience, expiry, an algorithm allow-list of exactly EdDSA (so
//! `alg: none` and HMAC-with-the-public-key are refused), and revocations
//! followed from NATS. [`AuthLayer`] puts the verified [`Principal`] in each
//! request; handlers then check scopes with [`Principal::require_scope`].
//! As every service runs it ([`AuthLayer::for_service`]) the layer also puts
//! each refused token on the audit trail ([`RefusalAudit`]) and holds each
//! verified caller to its service's `auth.caller_limits` ([`CallerLimits`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod claims;
pub mod client;
pub mod error;
pub mod jwks;
pub mod layer;
pub mod limits;
pub mod refusals;
pub mod revocation;
pub mod service;
pub mod signing;
pub mod verifier;

#[cfg(test)]
mod layer_tests;
#[cfg(test)]
mod verifier_proptests;
#[cfg(test)]
mod verifier_tests;

pub use claims::{AccessClaims, Principal, PrincipalKind, default_scopes_for_role, scopes};
pub use client::ServiceTokens;
pub use error::AuthError;
pub use layer::{AuthLayer, Authenticated, principal};
pub use limits::{CallerLimits, RateSettings};
pub use refusals::RefusalAudit;
pub use revocation::{RevocationList, follow_revocations};
pub use service::verifier_for_service;
pub use signing::{SigningError, SigningKeyPair};
pub use verifier::{KeySource, TokenVerifier, VerifierConfig};
