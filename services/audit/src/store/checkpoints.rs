//! SQL of checkpoints, their signing keys and unusual-access alerts.

use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::checkpoint::SignedCheckpoint;

/// The advisory lock taken while the first signing key is generated, so two
/// replicas starting together end up with one key.
const KEY_LOCK: i64 = 7_312_008;

/// A checkpoint as stored.
#[derive(Debug, Clone, FromRow)]
pub struct CheckpointRow {
    pub sequence: i64,
    pub head_hash: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub signature: Vec<u8>,
    pub key_id: String,
    pub public_key: Vec<u8>,
}

/// Stores a checkpoint; another replica may have taken the same one first.
pub async fn insert(pool: &PgPool, checkpoint: &SignedCheckpoint) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO audit_checkpoints (sequence, head_hash, created_at, signature, key_id, public_key)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sequence) DO NOTHING",
    )
    .bind(i64::try_from(checkpoint.body.sequence).unwrap_or(i64::MAX))
    .bind(checkpoint.body.head_hash.as_slice())
    .bind(checkpoint.body.created_at)
    .bind(checkpoint.signature.as_slice())
    .bind(&checkpoint.key_id)
    .bind(checkpoint.public_key.as_slice())
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The newest checkpoint.
pub async fn latest(pool: &PgPool) -> Result<Option<CheckpointRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_checkpoints ORDER BY sequence DESC LIMIT 1")
        .fetch_optional(pool)
        .await
}

/// Checkpoints with a sequence from `from` to `to` (inclusive), in order.
pub async fn between(pool: &PgPool, from: u64, to: u64) -> Result<Vec<CheckpointRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM audit_checkpoints WHERE sequence BETWEEN $1 AND $2 ORDER BY sequence",
    )
    .bind(i64::try_from(from).unwrap_or(i64::MAX))
    .bind(i64::try_from(to).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
}

/// The stored signing key's seed, generating and storing one with
/// `generate` when there is none yet.
pub async fn stored_key_seed(
    pool: &PgPool,
    generate: impl FnOnce() -> ([u8; 32], [u8; 32], String),
) -> Result<Vec<u8>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(KEY_LOCK)
        .execute(&mut *transaction)
        .await?;
    let existing: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT seed FROM checkpoint_keys ORDER BY created_at DESC LIMIT 1")
            .fetch_optional(&mut *transaction)
            .await?;
    let seed = match existing {
        Some(seed) => seed,
        None => {
            let (seed, public_key, key_id) = generate();
            sqlx::query(
                "INSERT INTO checkpoint_keys (key_id, seed, public_key) VALUES ($1, $2, $3)",
            )
            .bind(key_id)
            .bind(seed.as_slice())
            .bind(public_key.as_slice())
            .execute(&mut *transaction)
            .await?;
            tracing::info!("generated the checkpoint signing key and stored it in the database");
            seed.to_vec()
        }
    };
    transaction.commit().await?;
    Ok(seed)
}

/// Public keys of every key this service has generated.
pub async fn stored_public_keys(pool: &PgPool) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT public_key FROM checkpoint_keys")
        .fetch_all(pool)
        .await
}

/// Actors among `actors` who viewed more than `threshold` distinct persons
/// (through `actions`) since `since`, with their count. Counted in
/// PostgreSQL so every replica sees the same figure.
pub async fn actors_over_threshold(
    pool: &PgPool,
    actors: &[String],
    actions: &[i32],
    since: OffsetDateTime,
    threshold: u32,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT actor_user_id, count(DISTINCT person_id) FROM audit_events
         WHERE actor_user_id = ANY($1) AND action = ANY($2) AND person_id IS NOT NULL
           AND occurred_at >= $3
         GROUP BY actor_user_id HAVING count(DISTINCT person_id) > $4",
    )
    .bind(actors)
    .bind(actions)
    .bind(since)
    .bind(i64::from(threshold))
    .fetch_all(pool)
    .await
}

/// Claims the alert of `actor` for window `bucket`: true for the one replica
/// (and the one batch) that should raise it.
pub async fn claim_alert(
    pool: &PgPool,
    actor: &str,
    bucket: i64,
    alert_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO unusual_access_alerts (actor_user_id, window_bucket, alert_id)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(actor)
    .bind(bucket)
    .bind(alert_id)
    .execute(pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Up to 100 event ids of `actor`'s views since `since`, newest first.
pub async fn recent_views(
    pool: &PgPool,
    actor: &str,
    actions: &[i32],
    since: OffsetDateTime,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT event_id FROM audit_events
         WHERE actor_user_id = $1 AND action = ANY($2) AND occurred_at >= $3
         ORDER BY occurred_at DESC LIMIT 100",
    )
    .bind(actor)
    .bind(actions)
    .bind(since)
    .fetch_all(pool)
    .await
}
