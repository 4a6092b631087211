//! The aggregator's own settings (`[records]`, `MCR_RECORDS__*`).

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

/// Everything the aggregator reads from its settings section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RecordsConfig {
    /// Where patient-index answers gRPC.
    pub patient_index_url: String,
    /// Where consent answers gRPC.
    pub consent_url: String,
    /// Deadline for each call to patient-index, consent and identity, in
    /// milliseconds: a hung dependency fails the call UNAVAILABLE, never hangs it.
    pub dependency_timeout_ms: u64,
    /// How long an assembled view stays in Redis, in seconds (a newer view
    /// version replaces it long before).
    pub cache_ttl_seconds: u64,
    /// How much memory each process gives to the records it served
    /// recently, in MiB (0: none; every view then comes from Redis).
    pub memory_cache_mib: u64,
    /// Keys that seal cached views (`[records.cache_encryption]`).
    pub cache_encryption: CacheEncryptionConfig,
    /// The ingest consumer.
    pub ingest: IngestConfig,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            patient_index_url: "http://127.0.0.1:50052".to_owned(),
            consent_url: "http://127.0.0.1:50053".to_owned(),
            dependency_timeout_ms: 2_000,
            cache_ttl_seconds: 3_600,
            memory_cache_mib: 64,
            cache_encryption: CacheEncryptionConfig::default(),
            ingest: IngestConfig::default(),
        }
    }
}

/// The keys cached views are sealed with. Every key opens values; only
/// `active_key_id` seals new ones. Rotate by adding a key, making it active,
/// and removing the old one after `cache_ttl_seconds`. With no keys, each
/// process seals with a random key of its own (replicas share nothing).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CacheEncryptionConfig {
    /// The id of the key new values are sealed with.
    pub active_key_id: String,
    /// Key id (letters, digits, `-`, `_`; lowercase, as environment
    /// variables are read lowercased) → 32 random bytes, base64
    /// (`openssl rand -base64 32`). Never printed.
    pub keys: BTreeMap<String, SecretString>,
}

/// The ingest consumer's batching and redelivery (`[records.ingest]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    /// Most updates committed in one transaction.
    pub batch_size: usize,
    /// How long a batch waits to fill after its first update, in milliseconds.
    pub batch_linger_ms: u64,
    /// Batches decoded, resolved and committed at once (one overlaps the
    /// other's commit).
    pub concurrent_batches: usize,
    /// How long JetStream waits for an ack before redelivering, in milliseconds.
    pub ack_wait_ms: u64,
    /// Updates delivered but not yet acked, at most.
    pub max_ack_pending: i64,
    /// Deliveries of one update before it is dead-lettered as
    /// RETRIES_EXHAUSTED. Transient failures (patient-index, consent or the
    /// database unavailable) are nak'd and count too, so this bounds how
    /// long an update can wait: keep it generous.
    pub max_deliveries: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_size: 2000,
            batch_linger_ms: 10,
            concurrent_batches: 2,
            ack_wait_ms: 30_000,
            max_ack_pending: 20_000,
            max_deliveries: 100,
        }
    }
}
