//! SQL of retention: removing the oldest events and remembering where the
//! remaining chain is anchored.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{APPEND_LOCK, to_database, to_sequence};

/// The newest recorded purge: the last sequence removed and its hash.
pub async fn latest_purge(pool: &PgPool) -> Result<Option<(u64, Vec<u8>)>, sqlx::Error> {
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT up_to_sequence, anchor_hash FROM retention_purges ORDER BY up_to_sequence DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(sequence, hash)| (to_sequence(sequence), hash)))
}

/// The last sequence stored before `cutoff`, never the head (appends chain
/// from the head), and only if it is not removed already.
pub async fn purgeable_up_to(
    pool: &PgPool,
    cutoff: OffsetDateTime,
) -> Result<Option<u64>, sqlx::Error> {
    let up_to: Option<i64> = sqlx::query_scalar(
        "SELECT max(sequence) FROM audit_events
         WHERE stored_at < $1 AND sequence < (SELECT max(sequence) FROM audit_events)",
    )
    .bind(cutoff)
    .fetch_one(pool)
    .await?;
    Ok(up_to.map(to_sequence))
}

/// Removes events up to `up_to` under the append lock, recording the purge
/// (with the hash that anchors what remains) in the same transaction.
/// Returns how many events were removed.
pub async fn purge(pool: &PgPool, up_to: u64, event_id: Uuid) -> Result<u64, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *transaction)
        .await?;
    let anchor: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM audit_events WHERE sequence = $1")
            .bind(to_database(up_to))
            .fetch_optional(&mut *transaction)
            .await?;
    let Some(anchor) = anchor else {
        transaction.rollback().await?;
        return Ok(0);
    };
    let removable: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE sequence <= $1")
            .bind(to_database(up_to))
            .fetch_one(&mut *transaction)
            .await?;
    sqlx::query(
        "INSERT INTO retention_purges (up_to_sequence, anchor_hash, events_removed, event_id)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(to_database(up_to))
    .bind(&anchor)
    .bind(removable)
    .bind(event_id)
    .execute(&mut *transaction)
    .await?;
    // The trigger lets a delete through only with this set, and only up to
    // the purge just recorded.
    sqlx::query("SET LOCAL mcr.audit_purge = 'on'")
        .execute(&mut *transaction)
        .await?;
    let removed = sqlx::query("DELETE FROM audit_events WHERE sequence <= $1")
        .bind(to_database(up_to))
        .execute(&mut *transaction)
        .await?
        .rows_affected();
    transaction.commit().await?;
    Ok(removed)
}
