//! Audit's own settings (`[audit]`, `MCR_AUDIT__*`).

use secrecy::SecretString;
use serde::Deserialize;

/// Settings of the audit service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    /// Most events stored in one transaction. Bigger batches amortise the
    /// commit; the chain is computed in order inside each batch.
    pub batch_size: usize,
    /// How long a batch waits to fill once its first event has arrived.
    pub batch_linger_ms: u64,
    /// How long JetStream waits for an ack before redelivering an event.
    pub ack_wait_ms: u64,
    /// Events delivered but not yet acknowledged, at most (per consumer).
    pub max_ack_pending: i64,
    /// How often a signed checkpoint of the chain head is taken (when the
    /// head has moved since the last one).
    pub checkpoint_interval_ms: u64,
    /// The checkpoint signing key: the 32-byte Ed25519 seed, base64. Give it
    /// from a secret in production. When unset, a key is generated on first
    /// start and kept in the database (`checkpoint_keys`).
    pub checkpoint_signing_key: Option<SecretString>,
    /// Distinct persons one actor may view within the window before an
    /// unusual-access alert is raised.
    pub unusual_access_threshold: u32,
    /// The window of the unusual-access count.
    pub unusual_access_window_seconds: u64,
    /// How long events are kept, counted from when they were stored; 0
    /// keeps them for ever. Removal is audited and checkpointed.
    pub retention_seconds: u64,
    /// How often each replica looks for events past retention.
    pub retention_check_interval_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            batch_size: 2_000,
            batch_linger_ms: 20,
            ack_wait_ms: 30_000,
            max_ack_pending: 20_000,
            checkpoint_interval_ms: 60_000,
            checkpoint_signing_key: None,
            unusual_access_threshold: 50,
            unusual_access_window_seconds: 3_600,
            retention_seconds: 0,
            retention_check_interval_ms: 3_600_000,
        }
    }
}
