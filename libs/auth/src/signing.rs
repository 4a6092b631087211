//! Ed25519 signing keys and token signing. Identity is the only signer; the
//! code lives beside verification so the token format has one owner.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcr_proto::identity::v1::{JsonWebKey, KeyStatus};

use crate::claims::AccessClaims;

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The private key could not be encoded.
    #[error("encoding the signing key failed: {0}")]
    Encoding(String),
    /// Signing failed.
    #[error("signing the token failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// One Ed25519 key pair with its key id.
#[derive(Clone)]
pub struct SigningKeyPair {
    /// Key id, in every token's header.
    pub kid: String,
    /// PKCS#8 DER of the private key; a secret.
    pub private_pkcs8_der: Vec<u8>,
    /// The 32-byte public key.
    pub public_key: [u8; 32],
}

impl std::fmt::Debug for SigningKeyPair {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SigningKeyPair")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKeyPair {
    /// A fresh key pair from the operating system's random source.
    pub fn generate() -> Result<Self, SigningError> {
        let signing_key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let der = signing_key
            .to_pkcs8_der()
            .map_err(|error| SigningError::Encoding(error.to_string()))?;
        Ok(Self {
            kid: uuid::Uuid::new_v4().simple().to_string(),
            private_pkcs8_der: der.as_bytes().to_vec(),
            public_key: signing_key.verifying_key().to_bytes(),
        })
    }

    /// The public half as a JWK.
    pub fn jwk(&self, status: KeyStatus) -> JsonWebKey {
        public_jwk(&self.kid, &self.public_key, status)
    }

    /// Signs `claims` as an EdDSA JWT with this key's `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, SigningError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".to_owned());
        Ok(jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_ed_der(&self.private_pkcs8_der),
        )?)
    }
}

/// An Ed25519 public key as a JWK (RFC 8037).
pub fn public_jwk(kid: &str, public_key: &[u8], status: KeyStatus) -> JsonWebKey {
    JsonWebKey {
        kid: kid.to_owned(),
        kty: "OKP".to_owned(),
        alg: "EdDSA".to_owned(),
        crv: "Ed25519".to_owned(),
        x: URL_SAFE_NO_PAD.encode(public_key),
        y: String::new(),
        key_use: "sig".to_owned(),
        status: status as i32,
        created_at: None,
    }
}
