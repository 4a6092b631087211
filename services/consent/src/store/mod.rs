//! Consent's SQL. Rules live in `domain`; this module only reads and writes.
//!
//! Every change runs in one transaction that first bumps the person's
//! `consent_version` (which also serialises changes to one person: the row
//! stays locked until commit), writes the fact, and appends the change to
//! `consent_change` — the history and the outbox of ConsentChanged.

mod batch;
mod decide;
mod facts;
mod merges;
mod review;

pub use batch::*;
pub use decide::decision_facts;
pub use facts::*;
pub use merges::*;
pub use review::*;

use sqlx::{PgPool, Postgres, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::ConsentError;

pub type Stored<T> = Result<T, ConsentError>;
pub type Tx = Transaction<'static, Postgres>;

/// Starts a change's transaction.
pub async fn begin(pool: &PgPool) -> Stored<Tx> {
    Ok(pool.begin().await?)
}

/// Bumps (or starts at 1) the person's consent version; returns the new one.
#[tracing::instrument(name = "db.bump_consent_version", skip_all)]
pub async fn bump_version(tx: &mut Tx, person_id: Uuid, now: OffsetDateTime) -> Stored<u64> {
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO consent_person (person_id, consent_version, updated_at, decision_facts)
         VALUES ($1, 1, $2, '{}')
         ON CONFLICT (person_id) DO UPDATE
         SET consent_version = consent_person.consent_version + 1, updated_at = $2
         RETURNING consent_version",
    )
    .bind(person_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(u64::try_from(version).unwrap_or_default())
}

/// The person's consent version (0 when nothing was recorded).
pub async fn consent_version(pool: &PgPool, person_id: Uuid) -> Stored<u64> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT consent_version FROM consent_person WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(pool)
            .await?;
    Ok(version.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

/// One change as appended to the history/outbox.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    pub event_id: Uuid,
    pub person_id: Uuid,
    pub change_kind: i16,
    pub fact_id: Uuid,
    pub consent_version: u64,
    pub occurred_at: OffsetDateTime,
    pub actor_user_id: String,
    pub actor_organisation_code: String,
    pub source_system: String,
    pub note: String,
    pub fact: Vec<u8>,
    pub event: Vec<u8>,
}

/// Marks events published (JetStream acknowledged them).
pub async fn mark_published(pool: &PgPool, event_ids: &[Uuid]) -> Stored<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE consent_change SET published_at = now() WHERE event_id = ANY($1)")
        .bind(event_ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// Events committed but not yet acknowledged, older than `older_than`:
/// claimed with SKIP LOCKED so two replicas' relays do not both take one.
/// The caller publishes and marks them inside `tx`.
pub async fn claim_unpublished(
    tx: &mut Tx,
    older_than: OffsetDateTime,
    limit: i64,
) -> Stored<Vec<(Uuid, Uuid, Vec<u8>)>> {
    let rows = sqlx::query(
        "SELECT event_id, person_id, event FROM consent_change
         WHERE published_at IS NULL AND occurred_at < $1
         ORDER BY occurred_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(older_than)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect()
}

/// Marks `event_id` published inside the relay's transaction.
pub async fn mark_published_in(tx: &mut Tx, event_id: Uuid) -> Stored<()> {
    sqlx::query("UPDATE consent_change SET published_at = now() WHERE event_id = $1")
        .bind(event_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
