//! Sealing cached views, so a Redis dump, a replica or a shared Redis holds
//! no record content: XChaCha20-Poly1305 (authenticated; 192-bit random
//! nonces never repeat in practice, so no nonce counter is shared between
//! replicas) under a key from settings.
//!
//! A sealed value is `MCRV1 | key id length | key id | nonce | ciphertext+tag`;
//! the Redis key it is stored under is the associated data, so a value
//! copied to another person's key does not open. Keys rotate: every key in
//! `records.cache_encryption.keys` opens, only the active one seals, and a
//! value under a removed key is a miss that is rebuilt under the active one.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::ExposeSecret;

use crate::config::CacheEncryptionConfig;

const MAGIC: &[u8] = b"MCRV1";
const NONCE_BYTES: usize = 24;
const KEY_BYTES: usize = 32;
const MAX_KEY_ID_BYTES: usize = 64;

/// Why a sealed value did not open; every case is a cache miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not a sealed value (plaintext from an older version, or garbage).
    Malformed,
    /// Sealed under a key this process does not hold (removed, or another
    /// replica's per-process key).
    UnknownKey,
    /// The tag did not verify: altered, or stored under another Redis key.
    Forged,
}

impl OpenError {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            OpenError::Malformed => "malformed",
            OpenError::UnknownKey => "unknown_key",
            OpenError::Forged => "forged",
        }
    }
}

/// The keys cached views are sealed and opened with.
pub struct ViewCipher {
    active_id: String,
    keys: HashMap<String, XChaCha20Poly1305>,
}

// By hand: key ids only, never key material.
impl std::fmt::Debug for ViewCipher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        formatter
            .debug_struct("ViewCipher")
            .field("active_id", &self.active_id)
            .field("key_ids", &ids)
            .finish()
    }
}

impl ViewCipher {
    /// The cipher `config` describes. With no keys configured, a random key
    /// for this process only: the cache still works, but values one replica
    /// writes are misses for every other replica (and after a restart).
    pub fn from_config(config: &CacheEncryptionConfig) -> Result<Self, String> {
        if config.keys.is_empty() {
            if !config.active_key_id.is_empty() {
                return Err(format!(
                    "invalid settings: records.cache_encryption.active_key_id is {:?} but \
                     records.cache_encryption.keys is empty",
                    config.active_key_id
                ));
            }
            let id = format!("process-{:016x}", rand_u64());
            tracing::warn!(
                key_id = %id,
                "records.cache_encryption.keys is not set: cached views are sealed with a \
                 key of this process only, so replicas do not share cached views; set a key \
                 in production"
            );
            let key = XChaCha20Poly1305::generate_key(&mut OsRng);
            return Ok(Self {
                keys: HashMap::from([(id.clone(), XChaCha20Poly1305::new(&key))]),
                active_id: id,
            });
        }
        let mut keys = HashMap::new();
        for (id, encoded) in &config.keys {
            let setting = format!("records.cache_encryption.keys.{id}");
            if id.is_empty() || id.len() > MAX_KEY_ID_BYTES {
                return Err(format!(
                    "invalid settings: {setting}: a key id has 1 to {MAX_KEY_ID_BYTES} bytes"
                ));
            }
            let bytes = STANDARD
                .decode(encoded.expose_secret().trim())
                .map_err(|_| format!("invalid settings: {setting}: not base64"))?;
            if bytes.len() != KEY_BYTES {
                return Err(format!(
                    "invalid settings: {setting}: a key is {KEY_BYTES} random bytes, base64 \
                     (openssl rand -base64 32); this one has {}",
                    bytes.len()
                ));
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| format!("invalid settings: {setting}: not a {KEY_BYTES}-byte key"))?;
            keys.insert(id.clone(), cipher);
        }
        if !keys.contains_key(&config.active_key_id) {
            return Err(format!(
                "invalid settings: records.cache_encryption.active_key_id: {:?} is not one of \
                 records.cache_encryption.keys",
                config.active_key_id
            ));
        }
        Ok(Self {
            active_id: config.active_key_id.clone(),
            keys,
        })
    }

    /// The id of the key new values are sealed with.
    pub fn active_key_id(&self) -> &str {
        &self.active_id
    }

    /// `plaintext` sealed under the active key, bound to `redis_key`.
    pub fn seal(&self, redis_key: &str, plaintext: &[u8]) -> Option<Vec<u8>> {
        let cipher = self.keys.get(&self.active_id)?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: redis_key.as_bytes(),
                },
            )
            .ok()?;
        let id = self.active_id.as_bytes();
        let mut value = Vec::with_capacity(MAGIC.len() + 1 + id.len() + NONCE_BYTES + sealed.len());
        value.extend_from_slice(MAGIC);
        value.push(u8::try_from(id.len()).ok()?);
        value.extend_from_slice(id);
        value.extend_from_slice(&nonce);
        value.extend_from_slice(&sealed);
        Some(value)
    }

    /// The plaintext of a value read from `redis_key`.
    pub fn open(&self, redis_key: &str, value: &[u8]) -> Result<Vec<u8>, OpenError> {
        let rest = value.strip_prefix(MAGIC).ok_or(OpenError::Malformed)?;
        let (&id_length, rest) = rest.split_first().ok_or(OpenError::Malformed)?;
        let id_length = usize::from(id_length);
        if rest.len() < id_length + NONCE_BYTES {
            return Err(OpenError::Malformed);
        }
        let (id, rest) = rest.split_at(id_length);
        let (nonce, sealed) = rest.split_at(NONCE_BYTES);
        let id = std::str::from_utf8(id).map_err(|_| OpenError::Malformed)?;
        let cipher = self.keys.get(id).ok_or(OpenError::UnknownKey)?;
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: redis_key.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Forged)
    }
}

fn rand_u64() -> u64 {
    use chacha20poly1305::aead::rand_core::RngCore;
    OsRng.next_u64()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use secrecy::SecretString;

    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(STANDARD.encode([byte; KEY_BYTES]))
    }

    fn config(active: &str, keys: &[(&str, u8)]) -> CacheEncryptionConfig {
        CacheEncryptionConfig {
            active_key_id: active.to_owned(),
            keys: keys
                .iter()
                .map(|(id, byte)| ((*id).to_owned(), key(*byte)))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn a_sealed_value_hides_its_content_and_opens_only_under_its_redis_key() {
        let cipher = ViewCipher::from_config(&config("k1", &[("k1", 1)])).unwrap();
        let plaintext = b"Amoxicillin 500mg capsules";
        let sealed = cipher.seal("mcr:view:a:1", plaintext).unwrap();
        assert!(
            !sealed
                .windows(plaintext.len())
                .any(|window| window == plaintext),
            "the sealed value must not contain the plaintext"
        );
        assert_eq!(cipher.open("mcr:view:a:1", &sealed).unwrap(), plaintext);
        assert_eq!(
            cipher.open("mcr:view:b:1", &sealed),
            Err(OpenError::Forged),
            "a value moved to another person's key must not open"
        );
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(
            cipher.open("mcr:view:a:1", &altered),
            Err(OpenError::Forged)
        );
        assert_eq!(
            cipher.open("mcr:view:a:1", b"plain protobuf"),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn rotation_opens_old_values_until_their_key_is_removed() {
        let old = ViewCipher::from_config(&config("k1", &[("k1", 1)])).unwrap();
        let sealed = old.seal("key", b"record").unwrap();
        let rotated = ViewCipher::from_config(&config("k2", &[("k1", 1), ("k2", 2)])).unwrap();
        assert_eq!(rotated.open("key", &sealed).unwrap(), b"record");
        assert_eq!(rotated.active_key_id(), "k2");
        let resealed = rotated.seal("key", b"record").unwrap();
        let retired = ViewCipher::from_config(&config("k2", &[("k2", 2)])).unwrap();
        assert_eq!(retired.open("key", &sealed), Err(OpenError::UnknownKey));
        assert_eq!(retired.open("key", &resealed).unwrap(), b"record");
    }

    #[test]
    fn bad_keys_are_refused_naming_the_setting_and_none_means_a_process_key() {
        let mut short = config("k1", &[]);
        short.keys.insert(
            "k1".to_owned(),
            SecretString::from(STANDARD.encode([1_u8; 16])),
        );
        let error = ViewCipher::from_config(&short).unwrap_err();
        assert!(
            error.contains("records.cache_encryption.keys.k1"),
            "{error}"
        );
        let error = ViewCipher::from_config(&config("k9", &[("k1", 1)])).unwrap_err();
        assert!(error.contains("active_key_id"), "{error}");

        let first = ViewCipher::from_config(&CacheEncryptionConfig::default()).unwrap();
        let second = ViewCipher::from_config(&CacheEncryptionConfig::default()).unwrap();
        let sealed = first.seal("key", b"record").unwrap();
        assert_eq!(first.open("key", &sealed).unwrap(), b"record");
        assert_eq!(second.open("key", &sealed), Err(OpenError::UnknownKey));
        let configured = ViewCipher::from_config(&config("k1", &[("k1", 1)])).unwrap();
        let printed = format!("{configured:?}");
        assert!(
            printed.contains("k1") && !printed.contains(&STANDARD.encode([1_u8; KEY_BYTES])),
            "{printed}"
        );
    }
}
