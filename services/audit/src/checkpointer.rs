//! The checkpoint signing key and the periodic signed checkpoints.
//!
//! The key comes from `audit.checkpoint_signing_key` (a secret) or, when that
//! is unset, is generated on first start and stored in `checkpoint_keys`.
//! A key stored beside the log protects against someone who can change rows
//! but not read that table; a configured key kept outside the database
//! protects against anyone with database access.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::AuditConfig;
use crate::domain::checkpoint::{self, CheckpointBody, SignedCheckpoint};
use crate::store;

/// Signs checkpoints; knows which public keys are this service's.
#[derive(Clone)]
pub struct Checkpointer {
    pool: PgPool,
    configured: Option<SigningKey>,
    stored: Arc<tokio::sync::OnceCell<SigningKey>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Checkpointer")
            .field("configured_key", &self.configured.is_some())
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// From the settings; a configured key that is not a base64 32-byte seed
    /// stops start-up.
    pub fn new(pool: PgPool, config: &AuditConfig) -> Result<Self, String> {
        let configured = match &config.checkpoint_signing_key {
            Some(secret) => {
                let bytes = STANDARD
                    .decode(secret.expose_secret().trim())
                    .map_err(|_| {
                        "invalid settings: audit.checkpoint_signing_key: not base64".to_owned()
                    })?;
                let seed: [u8; 32] = bytes.try_into().map_err(|_| {
                    "invalid settings: audit.checkpoint_signing_key: must be a 32-byte Ed25519 seed".to_owned()
                })?;
                Some(SigningKey::from_bytes(&seed))
            }
            None => None,
        };
        Ok(Self {
            pool,
            configured,
            stored: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    async fn key(&self) -> Result<SigningKey, sqlx::Error> {
        if let Some(key) = &self.configured {
            return Ok(key.clone());
        }
        self.stored
            .get_or_try_init(|| async {
                let seed = store::checkpoints::stored_key_seed(&self.pool, || {
                    let key = SigningKey::generate(&mut rand::rngs::OsRng);
                    let public_key = key.verifying_key().to_bytes();
                    (key.to_bytes(), public_key, checkpoint::key_id(&public_key))
                })
                .await?;
                let seed: [u8; 32] = seed.try_into().map_err(|_| {
                    sqlx::Error::Protocol("a stored checkpoint key is not 32 bytes".to_owned())
                })?;
                Ok(SigningKey::from_bytes(&seed))
            })
            .await
            .cloned()
    }

    /// The public keys whose checkpoints this service trusts: the configured
    /// key and every key it generated.
    pub async fn trusted_keys(&self) -> Result<Vec<[u8; 32]>, sqlx::Error> {
        let mut trusted: Vec<[u8; 32]> = store::checkpoints::stored_public_keys(&self.pool)
            .await?
            .into_iter()
            .filter_map(|key| key.try_into().ok())
            .collect();
        if let Some(key) = &self.configured {
            trusted.push(key.verifying_key().to_bytes());
        }
        Ok(trusted)
    }

    /// Signs and stores a checkpoint of the head, unless the latest already covers it.
    pub async fn take(&self) -> Result<Option<SignedCheckpoint>, sqlx::Error> {
        let head = store::head(&self.pool).await?;
        if head.sequence == 0 {
            return Ok(None);
        }
        let latest = store::checkpoints::latest(&self.pool).await?;
        if latest.is_some_and(|latest| u64::try_from(latest.sequence).unwrap_or(0) >= head.sequence)
        {
            return Ok(None);
        }
        let key = self.key().await?;
        let signed = checkpoint::sign(
            &key,
            CheckpointBody {
                sequence: head.sequence,
                head_hash: head.hash,
                created_at: checkpoint::to_microseconds(OffsetDateTime::now_utc()),
            },
        );
        store::checkpoints::insert(&self.pool, &signed).await?;
        Ok(Some(signed))
    }

    /// Takes a checkpoint every `interval` until `stop`.
    pub async fn run(self, interval: Duration, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match self.take().await {
                Ok(Some(taken)) => {
                    tracing::debug!(sequence = taken.body.sequence, "checkpoint signed");
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "taking a checkpoint failed; retrying at the next interval")
                }
            }
        }
    }
}
