//! Audit's SQL. Every function is one statement or one transaction; the
//! rules live in `domain`, the orchestration in the callers.

pub mod checkpoints;
pub mod retention;

use futures::stream::BoxStream;
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::chain::{self, Head};
use crate::domain::event::ValidEvent;
use crate::domain::query::{Cursor, EventFilter};

/// The advisory lock every appender takes for its batch transaction: one
/// writer at a time extends the chain, whichever replica it runs in. The
/// constant only has to be the same in every replica.
const APPEND_LOCK: i64 = 7_312_007;

fn to_sequence(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_database(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

/// An event as stored.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub sequence: i64,
    pub occurred_at: OffsetDateTime,
    pub stored_at: OffsetDateTime,
    pub canonical: Vec<u8>,
    pub previous_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl EventRow {
    pub fn sequence(&self) -> u64 {
        to_sequence(self.sequence)
    }

    /// Its place in newest-first order.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            occurred_at: self.occurred_at,
            sequence: self.sequence(),
        }
    }
}

/// A stored link with its queryable columns, for verification.
#[derive(Debug, Clone, FromRow)]
pub struct LinkRow {
    pub sequence: i64,
    pub event_id: Uuid,
    pub occurred_at: OffsetDateTime,
    pub action: i32,
    pub outcome: i32,
    pub person_id: Option<Uuid>,
    pub actor_user_id: String,
    pub organisation_code: String,
    pub canonical: Vec<u8>,
    pub previous_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

const EVENT_COLUMNS: &str = "sequence, occurred_at, stored_at, canonical, previous_hash, hash";

/// An event newly stored by [`append_batch`]: its index in the batch and sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub index: usize,
    pub sequence: u64,
}

/// Appends `events` in one transaction under the append lock: skips those
/// already stored (and repeats within the batch), chains the rest in order
/// from the current head, inserts them. Returns what was newly stored.
///
/// Safe with several replicas: the lock serialises appenders, and the head
/// and the duplicates are read after taking it, so no two transactions can
/// give out the same sequence or store an event twice.
pub async fn append_batch(
    pool: &PgPool,
    events: &[ValidEvent],
) -> Result<Vec<Appended>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *transaction)
        .await?;
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT sequence, hash FROM audit_events ORDER BY sequence DESC LIMIT 1")
            .fetch_optional(&mut *transaction)
            .await?;
    let head = match head {
        Some((sequence, hash)) => Head {
            sequence: to_sequence(sequence),
            hash: chain::as_hash(&hash).unwrap_or(chain::GENESIS),
        },
        None => Head::EMPTY,
    };
    let ids: Vec<Uuid> = events.iter().map(|event| event.columns.event_id).collect();
    let stored: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM audit_events WHERE event_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *transaction)
            .await?;
    let mut seen: std::collections::HashSet<Uuid> = stored.into_iter().collect();
    let fresh: Vec<usize> = (0..events.len())
        .filter(|index| seen.insert(events[*index].columns.event_id))
        .collect();
    if fresh.is_empty() {
        transaction.commit().await?;
        return Ok(Vec::new());
    }
    let links = chain::extend(
        head,
        fresh
            .iter()
            .map(|index| events[*index].canonical.as_slice()),
    );

    let count = fresh.len();
    let mut sequences = Vec::with_capacity(count);
    let mut event_ids = Vec::with_capacity(count);
    let mut occurred = Vec::with_capacity(count);
    let mut actions = Vec::with_capacity(count);
    let mut outcomes = Vec::with_capacity(count);
    let mut persons = Vec::with_capacity(count);
    let mut actors = Vec::with_capacity(count);
    let mut organisations = Vec::with_capacity(count);
    let mut canonicals = Vec::with_capacity(count);
    let mut previous_hashes = Vec::with_capacity(count);
    let mut hashes = Vec::with_capacity(count);
    for (index, link) in fresh.iter().zip(&links) {
        let event = &events[*index];
        sequences.push(to_database(link.sequence));
        event_ids.push(event.columns.event_id);
        occurred.push(event.columns.occurred_at);
        actions.push(event.columns.action);
        outcomes.push(event.columns.outcome);
        persons.push(event.columns.person_id);
        actors.push(event.columns.actor_user_id.as_str());
        organisations.push(event.columns.organisation_code.as_str());
        canonicals.push(event.canonical.as_slice());
        previous_hashes.push(link.previous_hash.as_slice());
        hashes.push(link.hash.as_slice());
    }
    // One statement for the whole batch: arrays in, rows out.
    sqlx::query(
        "INSERT INTO audit_events (sequence, event_id, occurred_at, action, outcome, person_id,
             actor_user_id, organisation_code, canonical, previous_hash, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::timestamptz[], $4::integer[],
             $5::integer[], $6::uuid[], $7::text[], $8::text[], $9::bytea[], $10::bytea[], $11::bytea[])",
    )
    .bind(&sequences)
    .bind(&event_ids)
    .bind(&occurred)
    .bind(&actions)
    .bind(&outcomes)
    .bind(&persons)
    .bind(&actors)
    .bind(&organisations)
    .bind(&canonicals)
    .bind(&previous_hashes)
    .bind(&hashes)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(fresh
        .into_iter()
        .zip(links)
        .map(|(index, link)| Appended {
            index,
            sequence: link.sequence,
        })
        .collect())
}

/// The chain head now (committed).
pub async fn head(pool: &PgPool) -> Result<Head, sqlx::Error> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT sequence, hash FROM audit_events ORDER BY sequence DESC LIMIT 1")
            .fetch_optional(pool)
            .await?;
    Ok(match row {
        Some((sequence, hash)) => Head {
            sequence: to_sequence(sequence),
            hash: chain::as_hash(&hash).unwrap_or(chain::GENESIS),
        },
        None => Head::EMPTY,
    })
}

/// The oldest sequence stored; `None` when there is none.
pub async fn oldest_sequence(pool: &PgPool) -> Result<Option<u64>, sqlx::Error> {
    let oldest: Option<i64> = sqlx::query_scalar("SELECT min(sequence) FROM audit_events")
        .fetch_one(pool)
        .await?;
    Ok(oldest.map(to_sequence))
}

/// The stored hash at `sequence`, if that event exists.
pub async fn hash_at(pool: &PgPool, sequence: u64) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT hash FROM audit_events WHERE sequence = $1")
        .bind(to_database(sequence))
        .fetch_optional(pool)
        .await
}

/// Events matching `filter`, newest first, after `cursor`, at most `limit`.
/// The SQL names only the filters given, so the planner always sees the
/// index that fits (a generic plan over optional filters would not).
pub async fn query_events(
    pool: &PgPool,
    filter: &EventFilter,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events WHERE true"
    ));
    if let Some(person_id) = filter.person_id {
        query.push(" AND person_id = ").push_bind(person_id);
    }
    if let Some(actor) = &filter.actor_user_id {
        query.push(" AND actor_user_id = ").push_bind(actor.clone());
    }
    if let Some(organisation) = &filter.organisation_code {
        query
            .push(" AND organisation_code = ")
            .push_bind(organisation.clone());
    }
    if !filter.actions.is_empty() {
        query
            .push(" AND action = ANY(")
            .push_bind(filter.actions.clone())
            .push(")");
    }
    if let Some(outcome) = filter.outcome {
        query.push(" AND outcome = ").push_bind(outcome);
    }
    if let Some(from) = filter.from_time {
        query.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to_time {
        query.push(" AND occurred_at < ").push_bind(to);
    }
    if let Some(after) = cursor {
        query
            .push(" AND (occurred_at, sequence) < (")
            .push_bind(after.occurred_at)
            .push(", ")
            .push_bind(to_database(after.sequence))
            .push(")");
    }
    query
        .push(" ORDER BY occurred_at DESC, sequence DESC LIMIT ")
        .push_bind(i64::from(limit));
    query.build_query_as().fetch_all(pool).await
}

/// Events from `from` to `to` (inclusive) in sequence order, optionally only
/// `actions`, at most `limit`.
pub async fn events_in_order(
    pool: &PgPool,
    from: u64,
    to: u64,
    actions: &[i32],
    limit: u32,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events
         WHERE sequence BETWEEN $1 AND $2 AND (cardinality($3::integer[]) = 0 OR action = ANY($3))
         ORDER BY sequence LIMIT $4"
    )))
    .bind(to_database(from))
    .bind(to_database(to))
    .bind(actions)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// Every stored link from `from` to `to` (inclusive), in sequence order, streamed.
pub fn links<'a>(
    pool: &'a PgPool,
    from: u64,
    to: u64,
) -> BoxStream<'a, Result<LinkRow, sqlx::Error>> {
    sqlx::query_as(
        "SELECT sequence, event_id, occurred_at, action, outcome, person_id, actor_user_id,
                organisation_code, canonical, previous_hash, hash
         FROM audit_events WHERE sequence BETWEEN $1 AND $2 ORDER BY sequence",
    )
    .bind(to_database(from))
    .bind(to_database(to))
    .fetch(pool)
}
