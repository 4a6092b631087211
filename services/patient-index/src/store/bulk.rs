//! The SQL of bulk registration: what a batch needs to know, read in a few
//! set-based queries, and what it decided, written in one statement per
//! table. Everything runs in the batch's one transaction.

use std::collections::HashMap;

use mcr_proto::patient_index::v1 as proto;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use super::{IdentifierJson, PersonRow, Stored};
use crate::domain::LocalIdentifier;

/// Takes the registration locks of `keys` (sorted and distinct, so two
/// batches always lock in one order and never deadlock) until the
/// transaction ends.
#[tracing::instrument(name = "db.lock registration_keys", skip_all, fields(db.system = "postgresql", keys = keys.len()))]
pub async fn lock_registration_keys(connection: &mut PgConnection, keys: &[String]) -> Stored<()> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(key, 0))
           FROM (SELECT key FROM unnest($1::text[]) AS key ORDER BY key) AS ordered",
    )
    .bind(keys)
    .execute(connection)
    .await?;
    Ok(())
}

/// The earliest active holder of each of `nhs_numbers` that has one.
#[tracing::instrument(name = "db.select nhs_number_holders", skip_all, fields(db.system = "postgresql", numbers = nhs_numbers.len()))]
pub async fn nhs_number_holders(
    connection: &mut PgConnection,
    nhs_numbers: &[String],
) -> Stored<HashMap<String, Uuid>> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT wanted.nhs_number, holder.id
           FROM unnest($1::text[]) AS wanted (nhs_number)
           CROSS JOIN LATERAL (
               SELECT id FROM persons
                WHERE nhs_number = wanted.nhs_number AND status = 'active'
                ORDER BY created_at LIMIT 1
           ) AS holder",
    )
    .bind(nhs_numbers)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().collect())
}

/// An active person and which of the asked blocking keys it is indexed under.
#[derive(Debug, Clone, FromRow)]
pub struct KeyedPerson {
    #[sqlx(flatten)]
    pub person: PersonRow,
    pub keys: Vec<String>,
}

/// Active persons indexed under any of `keys`, with the keys they matched.
/// Each key is an index probe (LATERAL): with thousands of keys a planner
/// left to itself hashes the array and scans the whole key table.
#[tracing::instrument(name = "db.select keyed_candidates", skip_all, fields(db.system = "postgresql", keys = keys.len()))]
pub async fn keyed_candidates(
    connection: &mut PgConnection,
    keys: &[String],
) -> Stored<Vec<KeyedPerson>> {
    Ok(sqlx::query_as(
        "SELECT p.id, p.status, p.merged_into, p.demographics, p.sensitive, p.created_at,
                p.updated_at, keyed.keys
           FROM (SELECT k.person_id, array_agg(wanted.key) AS keys
                   FROM unnest($1::text[]) AS wanted (key)
                   CROSS JOIN LATERAL (
                       SELECT person_id FROM person_blocking_keys WHERE key = wanted.key
                   ) AS k
                  GROUP BY k.person_id) AS keyed
           CROSS JOIN LATERAL (
               SELECT * FROM persons WHERE id = keyed.person_id AND status = 'active'
           ) AS p",
    )
    .bind(keys)
    .fetch_all(connection)
    .await?)
}

/// A person a batch creates.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub id: Uuid,
    pub demographics: Vec<u8>,
    pub nhs_number: Option<String>,
    pub nhs_verified: bool,
    pub sensitive: bool,
}

/// An identifier a batch links (to a new or an existing person).
#[derive(Debug, Clone)]
pub struct NewLink {
    pub identifier: LocalIdentifier,
    pub person_id: Uuid,
    pub method: proto::LinkMethod,
    pub match_weight: f64,
    pub demographics: Vec<u8>,
}

/// A review item a batch queues.
#[derive(Debug, Clone)]
pub struct NewReview {
    pub id: Uuid,
    pub person_id: Uuid,
    pub identifier: LocalIdentifier,
    pub candidates: serde_json::Value,
}

/// One history entry a batch adds (created, identifier linked, queued).
#[derive(Debug, Clone)]
pub struct NewHistory {
    pub person_id: Uuid,
    pub kind: proto::PersonEventKind,
    pub identifier: Option<LocalIdentifier>,
}

/// Everything a batch writes besides repeat registrations.
#[derive(Debug, Default)]
pub struct BatchWrites {
    pub persons: Vec<NewPerson>,
    pub links: Vec<NewLink>,
    pub keys: Vec<(String, Uuid)>,
    pub reviews: Vec<NewReview>,
    pub history: Vec<NewHistory>,
}

/// Writes `batch`; `false` when one of its identifiers was linked by a
/// concurrent registration after the batch read them (the caller rolls
/// back: nothing of the batch may stand half-written).
#[tracing::instrument(name = "db.insert registrations", skip_all, fields(db.system = "postgresql", persons = batch.persons.len(), links = batch.links.len()))]
pub async fn write_batch(connection: &mut PgConnection, batch: &BatchWrites) -> Stored<bool> {
    sqlx::query(
        "INSERT INTO persons (id, status, demographics, nhs_number, nhs_verified, sensitive)
         SELECT id, 'active', demographics, nhs_number, nhs_verified, sensitive
           FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::bool[], $5::bool[])
             AS new (id, demographics, nhs_number, nhs_verified, sensitive)",
    )
    .bind(batch.persons.iter().map(|p| p.id).collect::<Vec<_>>())
    .bind(
        batch
            .persons
            .iter()
            .map(|p| p.demographics.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .persons
            .iter()
            .map(|p| p.nhs_number.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .persons
            .iter()
            .map(|p| p.nhs_verified)
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .persons
            .iter()
            .map(|p| p.sensitive)
            .collect::<Vec<_>>(),
    )
    .execute(&mut *connection)
    .await?;
    let linked = sqlx::query(
        "INSERT INTO local_identifiers (organisation_code, system, value, person_id, link_method, match_weight, demographics)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::int4[], $6::float8[], $7::bytea[])
         ON CONFLICT DO NOTHING",
    )
    .bind(
        batch
            .links
            .iter()
            .map(|l| l.identifier.organisation_code.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .links
            .iter()
            .map(|l| l.identifier.system.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .links
            .iter()
            .map(|l| l.identifier.value.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(batch.links.iter().map(|l| l.person_id).collect::<Vec<_>>())
    .bind(
        batch
            .links
            .iter()
            .map(|l| l.method as i32)
            .collect::<Vec<_>>(),
    )
    .bind(batch.links.iter().map(|l| l.match_weight).collect::<Vec<_>>())
    .bind(
        batch
            .links
            .iter()
            .map(|l| l.demographics.as_slice())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *connection)
    .await?;
    if linked.rows_affected() != batch.links.len() as u64 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO person_blocking_keys (key, person_id)
         SELECT * FROM unnest($1::text[], $2::uuid[]) ON CONFLICT DO NOTHING",
    )
    .bind(
        batch
            .keys
            .iter()
            .map(|(key, _)| key.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .keys
            .iter()
            .map(|(_, person)| *person)
            .collect::<Vec<_>>(),
    )
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO review_items (id, person_id, organisation_code, system, value, candidates)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[])",
    )
    .bind(batch.reviews.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(batch.reviews.iter().map(|r| r.person_id).collect::<Vec<_>>())
    .bind(
        batch
            .reviews
            .iter()
            .map(|r| r.identifier.organisation_code.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .reviews
            .iter()
            .map(|r| r.identifier.system.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .reviews
            .iter()
            .map(|r| r.identifier.value.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .reviews
            .iter()
            .map(|r| r.candidates.clone())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO person_history (id, person_id, kind, identifier, note)
         SELECT id, person_id, kind, identifier, ''
           FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::jsonb[]) AS h (id, person_id, kind, identifier)",
    )
    .bind(
        batch
            .history
            .iter()
            .map(|_| Uuid::now_v7())
            .collect::<Vec<_>>(),
    )
    .bind(batch.history.iter().map(|h| h.person_id).collect::<Vec<_>>())
    .bind(
        batch
            .history
            .iter()
            .map(|h| h.kind as i32)
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .history
            .iter()
            .map(|h| {
                h.identifier
                    .as_ref()
                    .and_then(|identifier| serde_json::to_value(IdentifierJson::from(identifier)).ok())
            })
            .collect::<Vec<_>>(),
    )
    .execute(&mut *connection)
    .await?;
    Ok(true)
}
