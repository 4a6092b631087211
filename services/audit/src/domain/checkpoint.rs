//! Signed checkpoints of the chain head.
//!
//! A checkpoint says "at `created_at` the chain ended at `sequence` with
//! `head_hash`", signed with the service's Ed25519 key. Deleting the newest
//! events leaves a chain that is internally consistent; the latest checkpoint
//! still names a sequence that no longer exists, so the truncation is found.
//!
//! The signed bytes (the "canonical encoding" of a checkpoint) are:
//! `"mcr.audit.v1.Checkpoint\n"` ‖ sequence (u64, big-endian) ‖ head_hash
//! (32 bytes) ‖ created_at seconds since the epoch (i64, big-endian) ‖
//! created_at nanoseconds (u32, big-endian; a multiple of 1,000, as
//! PostgreSQL keeps microseconds) ‖ length of merkle_root_hash (u32,
//! big-endian; 0 while no Merkle tree is kept) ‖ merkle_root_hash.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::domain::chain::Hash;

const DOMAIN_SEPARATOR: &[u8] = b"mcr.audit.v1.Checkpoint\n";

/// A checkpoint's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointBody {
    /// Last sequence covered.
    pub sequence: u64,
    /// Chain hash at that sequence.
    pub head_hash: Hash,
    /// When taken (microsecond precision).
    pub created_at: OffsetDateTime,
}

/// A checkpoint with its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// What was signed.
    pub body: CheckpointBody,
    /// Ed25519 signature over [`signed_bytes`].
    pub signature: [u8; 64],
    /// Id of the key.
    pub key_id: String,
    /// The key's public half.
    pub public_key: [u8; 32],
}

/// `at` truncated to microseconds, as PostgreSQL stores it.
pub fn to_microseconds(at: OffsetDateTime) -> OffsetDateTime {
    let nanos = at.unix_timestamp_nanos() / 1_000 * 1_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(at)
}

/// The bytes a checkpoint's signature covers (see the module documentation).
pub fn signed_bytes(body: &CheckpointBody) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(DOMAIN_SEPARATOR.len() + 8 + 32 + 8 + 4 + 4);
    bytes.extend_from_slice(DOMAIN_SEPARATOR);
    bytes.extend_from_slice(&body.sequence.to_be_bytes());
    bytes.extend_from_slice(&body.head_hash);
    bytes.extend_from_slice(&body.created_at.unix_timestamp().to_be_bytes());
    bytes.extend_from_slice(&body.created_at.nanosecond().to_be_bytes());
    // No Merkle tree yet: an empty root.
    bytes.extend_from_slice(&0_u32.to_be_bytes());
    bytes
}

/// The id of a public key: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(public_key: &[u8; 32]) -> String {
    Sha256::digest(public_key)[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Signs `body` with `key`.
pub fn sign(key: &SigningKey, body: CheckpointBody) -> SignedCheckpoint {
    let signature = key.sign(&signed_bytes(&body)).to_bytes();
    let public_key = key.verifying_key().to_bytes();
    SignedCheckpoint {
        body,
        signature,
        key_id: key_id(&public_key),
        public_key,
    }
}

/// Whether `signature` over `body` verifies with `public_key`, and that key
/// is one of `trusted` (a key stored beside the checkpoint proves nothing by
/// itself: whoever forged the checkpoint could have stored their own key).
pub fn verify(
    body: &CheckpointBody,
    signature: &[u8],
    public_key: &[u8],
    trusted: &[[u8; 32]],
) -> Result<(), String> {
    let public_key: [u8; 32] = public_key
        .try_into()
        .map_err(|_| "the public key is not 32 bytes".to_owned())?;
    if !trusted.contains(&public_key) {
        return Err(format!(
            "signed with key {}, which is not a key of this service",
            key_id(&public_key)
        ));
    }
    let verifying_key = VerifyingKey::from_bytes(&public_key)
        .map_err(|_| "the public key is not a valid Ed25519 key".to_owned())?;
    let signature =
        Signature::from_slice(signature).map_err(|_| "the signature is not 64 bytes".to_owned())?;
    verifying_key
        .verify(&signed_bytes(body), &signature)
        .map_err(|_| "the signature does not verify".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn body() -> CheckpointBody {
        CheckpointBody {
            sequence: 42,
            head_hash: [9; 32],
            created_at: to_microseconds(
                OffsetDateTime::from_unix_timestamp_nanos(1_790_000_000_123_456_789)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            ),
        }
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_a_trusted_key_only() {
        let signed = sign(&key(), body());
        let trusted = [signed.public_key];
        assert_eq!(
            verify(
                &signed.body,
                &signed.signature,
                &signed.public_key,
                &trusted
            ),
            Ok(())
        );
        let stranger = SigningKey::from_bytes(&[8; 32]);
        let forged = sign(&stranger, body());
        assert!(
            verify(
                &forged.body,
                &forged.signature,
                &forged.public_key,
                &trusted
            )
            .is_err()
        );
    }

    #[test]
    fn any_change_to_the_body_breaks_the_signature() {
        let signed = sign(&key(), body());
        let trusted = [signed.public_key];
        let mut moved = signed.body.clone();
        moved.sequence = 41;
        assert!(verify(&moved, &signed.signature, &signed.public_key, &trusted).is_err());
        let mut rehashed = signed.body.clone();
        rehashed.head_hash[0] ^= 1;
        assert!(verify(&rehashed, &signed.signature, &signed.public_key, &trusted).is_err());
    }

    #[test]
    fn the_signed_bytes_are_fixed_and_microsecond_precise() {
        let bytes = signed_bytes(&body());
        assert_eq!(bytes.len(), DOMAIN_SEPARATOR.len() + 8 + 32 + 8 + 4 + 4);
        assert_eq!(body().created_at.nanosecond(), 123_456_000);
        assert_eq!(key_id(&[0; 32]).len(), 16);
    }
}
