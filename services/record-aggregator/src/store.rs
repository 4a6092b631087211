//! The aggregator's tables: entries, patient links and view versions.
//! Writes are set-based (one statement per batch) because ingest commits a
//! batch per transaction: this disk syncs only a few hundred commits a second.

use std::collections::HashMap;

use mcr_proto::common::v1::{Category, LocalIdentifier};
use sqlx::{PgPool, Postgres, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::StoredEntry;

/// A provider's identifier of a person: (organisation, system, value).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PatientKey {
    pub organisation_code: String,
    pub system: String,
    pub value: String,
}

impl From<LocalIdentifier> for PatientKey {
    fn from(identifier: LocalIdentifier) -> Self {
        Self {
            organisation_code: identifier.organisation_code,
            system: identifier.system,
            value: identifier.value,
        }
    }
}

/// One entry write of an ingest batch (an upsert, or a delete's tombstone).
#[derive(Debug, Clone)]
pub struct EntryWrite {
    pub entry_id: Uuid,
    pub organisation_code: String,
    pub source_system: String,
    pub local_entry_id: String,
    pub patient: PatientKey,
    pub version: i64,
    pub deleted: bool,
    pub category: Category,
    pub effective_time: Option<OffsetDateTime>,
    pub resource_type: String,
    pub fhir_resource: String,
    pub display_summary: String,
    pub group_key: String,
}

/// The persons `keys` are linked to, as far as the aggregator knows.
#[tracing::instrument(name = "db.select patient_links", skip_all, fields(db.system = "postgresql", keys = keys.len()))]
pub async fn known_people(
    pool: &PgPool,
    keys: &[PatientKey],
) -> Result<HashMap<PatientKey, Uuid>, sqlx::Error> {
    let (organisations, systems, values) = columns(keys);
    let rows = sqlx::query(
        "SELECT l.organisation_code, l.system, l.value, l.person_id
           FROM patient_links l
           JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(organisation_code, system, value)
             ON (l.organisation_code, l.system, l.value) = (k.organisation_code, k.system, k.value)",
    )
    .bind(organisations)
    .bind(systems)
    .bind(values)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok((
                PatientKey {
                    organisation_code: row.try_get(0)?,
                    system: row.try_get(1)?,
                    value: row.try_get(2)?,
                },
                row.try_get(3)?,
            ))
        })
        .collect()
}

/// Records that `links` belong to their persons (as patient-index says),
/// returning the persons whose views change; a moved link changes both.
#[tracing::instrument(name = "db.upsert patient_links", skip_all, fields(db.system = "postgresql", links = links.len()))]
pub async fn link_people(
    transaction: &mut Transaction<'_, Postgres>,
    links: &[(PatientKey, Uuid)],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let keys: Vec<PatientKey> = links.iter().map(|(key, _)| key.clone()).collect();
    let (organisations, systems, values) = columns(&keys);
    let persons: Vec<Uuid> = links.iter().map(|(_, person)| *person).collect();
    let rows = sqlx::query(
        "WITH wanted AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[])
                 AS w(organisation_code, system, value, person_id)
         ), previous AS (
             SELECT l.person_id FROM patient_links l JOIN wanted w
                 ON (l.organisation_code, l.system, l.value) = (w.organisation_code, w.system, w.value)
              WHERE l.person_id <> w.person_id
         ), written AS (
             INSERT INTO patient_links (organisation_code, system, value, person_id)
             SELECT organisation_code, system, value, person_id FROM wanted
             ON CONFLICT (organisation_code, system, value)
                 DO UPDATE SET person_id = EXCLUDED.person_id, updated_at = now()
                 WHERE patient_links.person_id <> EXCLUDED.person_id
             RETURNING person_id
         )
         SELECT person_id FROM previous UNION SELECT person_id FROM written",
    )
    .bind(organisations)
    .bind(systems)
    .bind(values)
    .bind(persons)
    .fetch_all(&mut **transaction)
    .await?;
    rows.iter().map(|row| row.try_get(0)).collect()
}

/// Applies `writes` (at most one per entry id) where each is newer than
/// what is stored; returns how many rows changed.
#[tracing::instrument(name = "db.upsert entries", skip_all, fields(db.system = "postgresql", writes = writes.len()))]
pub async fn write_entries(
    transaction: &mut Transaction<'_, Postgres>,
    writes: &[&EntryWrite],
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO entries (entry_id, organisation_code, source_system, local_entry_id,
                              patient_system, patient_value, version, deleted, category,
                              effective_time, resource_type, fhir_resource, display_summary,
                              group_key, last_updated)
         SELECT *, clock_timestamp() FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                                     $6::text[], $7::int8[], $8::bool[], $9::int2[],
                                     $10::timestamptz[], $11::text[], $12::text[], $13::text[],
                                     $14::text[])
         ON CONFLICT (entry_id) DO UPDATE SET
             patient_system = EXCLUDED.patient_system, patient_value = EXCLUDED.patient_value,
             version = EXCLUDED.version, deleted = EXCLUDED.deleted,
             category = EXCLUDED.category, effective_time = EXCLUDED.effective_time,
             resource_type = EXCLUDED.resource_type, fhir_resource = EXCLUDED.fhir_resource,
             display_summary = EXCLUDED.display_summary, group_key = EXCLUDED.group_key,
             last_updated = EXCLUDED.last_updated
         WHERE entries.version < EXCLUDED.version",
    )
    .bind(writes.iter().map(|w| w.entry_id).collect::<Vec<_>>())
    .bind(
        writes
            .iter()
            .map(|w| w.organisation_code.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|w| w.source_system.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|w| w.local_entry_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|w| w.patient.system.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|w| w.patient.value.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(writes.iter().map(|w| w.version).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.deleted).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.category as i16).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.effective_time).collect::<Vec<_>>())
    .bind(
        writes
            .iter()
            .map(|w| w.resource_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|w| w.fhir_resource.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|w| w.display_summary.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|w| w.group_key.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(&mut **transaction)
    .await?;
    Ok(result.rows_affected())
}

/// Bumps the view version of `persons`, voiding every cached view of them.
#[tracing::instrument(name = "db.upsert person_views", skip_all, fields(db.system = "postgresql", persons = persons.len()))]
pub async fn bump_views<'e, E>(executor: E, persons: &[Uuid]) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let mut sorted = persons.to_vec();
    // One lock order for every transaction, so concurrent batches never deadlock.
    sorted.sort_unstable();
    sorted.dedup();
    sqlx::query(
        "INSERT INTO person_views (person_id, view_version)
         SELECT person_id, 1 FROM unnest($1::uuid[]) AS p(person_id)
         ON CONFLICT (person_id) DO UPDATE SET view_version = person_views.view_version + 1",
    )
    .bind(sorted)
    .execute(executor)
    .await?;
    Ok(())
}

/// The person's view version (0 before anything was stored).
#[tracing::instrument(name = "db.select person_views", skip_all, fields(db.system = "postgresql"))]
pub async fn view_version(pool: &PgPool, person: Uuid) -> Result<u64, sqlx::Error> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT view_version FROM person_views WHERE person_id = $1")
            .bind(person)
            .fetch_optional(pool)
            .await?;
    Ok(version.map_or(0, |version| version.unsigned_abs()))
}

/// The columns [`stored_entry`] reads, as a literal so queries stay static.
macro_rules! entry_columns {
    () => {
        "e.entry_id, e.category, e.effective_time, e.display_summary, e.resource_type,
         e.organisation_code, e.source_system, e.local_entry_id, e.version, e.last_updated,
         e.group_key, e.fhir_resource"
    };
}

/// Every live entry of `person`, through the identifiers linked to them.
#[tracing::instrument(name = "db.select entries", skip_all, fields(db.system = "postgresql"))]
pub async fn entries_of(pool: &PgPool, person: Uuid) -> Result<Vec<StoredEntry>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        entry_columns!(),
        " FROM patient_links l
          JOIN entries e ON (e.organisation_code, e.patient_system, e.patient_value)
                          = (l.organisation_code, l.system, l.value)
         WHERE l.person_id = $1 AND NOT e.deleted"
    ))
    .bind(person)
    .fetch_all(pool)
    .await?;
    rows.iter().map(stored_entry).collect()
}

/// One live entry and the person it belongs to.
#[tracing::instrument(name = "db.select entry", skip_all, fields(db.system = "postgresql"))]
pub async fn entry(
    pool: &PgPool,
    entry_id: Uuid,
) -> Result<Option<(StoredEntry, Uuid)>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        entry_columns!(),
        ", l.person_id
           FROM entries e
           JOIN patient_links l ON (e.organisation_code, e.patient_system, e.patient_value)
                                 = (l.organisation_code, l.system, l.value)
          WHERE e.entry_id = $1 AND NOT e.deleted"
    ))
    .bind(entry_id)
    .fetch_optional(pool)
    .await?;
    row.map(|row| Ok((stored_entry(&row)?, row.try_get("person_id")?)))
        .transpose()
}

fn stored_entry(row: &sqlx::postgres::PgRow) -> Result<StoredEntry, sqlx::Error> {
    let category: i16 = row.try_get("category")?;
    let version: i64 = row.try_get("version")?;
    Ok(StoredEntry {
        entry_id: row.try_get("entry_id")?,
        category: Category::try_from(i32::from(category)).unwrap_or(Category::Unspecified),
        effective_time: row
            .try_get::<Option<OffsetDateTime>, _>("effective_time")?
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        display_summary: row.try_get("display_summary")?,
        resource_type: row.try_get("resource_type")?,
        organisation_code: row.try_get("organisation_code")?,
        source_system: row.try_get("source_system")?,
        local_entry_id: row.try_get("local_entry_id")?,
        version: version.unsigned_abs(),
        last_updated: row.try_get("last_updated")?,
        group_key: row.try_get("group_key")?,
        fhir_resource_json: row.try_get("fhir_resource")?,
    })
}

fn columns(keys: &[PatientKey]) -> (Vec<&str>, Vec<&str>, Vec<&str>) {
    (
        keys.iter()
            .map(|key| key.organisation_code.as_str())
            .collect(),
        keys.iter().map(|key| key.system.as_str()).collect(),
        keys.iter().map(|key| key.value.as_str()).collect(),
    )
}
