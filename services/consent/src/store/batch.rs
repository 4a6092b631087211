//! Set-based forms of the change statements, so a batch of changes (the
//! record aggregator forwarding one ingest batch's care relationships) costs
//! a handful of round trips instead of a few per change.

use std::collections::HashMap;

use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ChangeRow, RelationshipRow, Stored, Tx};

/// A provider's key of a care relationship: organisation, system, reference.
pub type SourceKey = (String, String, String);

/// A stored care relationship as a change reads it: id, person, body.
pub type StoredRelationship = (Uuid, Uuid, Vec<u8>);

/// Bumps (or starts at 1) the consent version of each of `person_ids`,
/// locking their rows in the order given (callers sort them, as every
/// change takes person rows in id order); returns each new version.
#[tracing::instrument(name = "db.bump_consent_versions", skip_all, fields(persons = person_ids.len()))]
pub async fn bump_versions(
    tx: &mut Tx,
    person_ids: &[Uuid],
    now: OffsetDateTime,
) -> Stored<HashMap<Uuid, u64>> {
    let rows = sqlx::query(
        "INSERT INTO consent_person (person_id, consent_version, updated_at, decision_facts)
         SELECT person_id, 1, $2, '{}' FROM unnest($1::uuid[]) WITH ORDINALITY AS p(person_id, n)
         ORDER BY n
         ON CONFLICT (person_id) DO UPDATE
         SET consent_version = consent_person.consent_version + 1, updated_at = $2
         RETURNING person_id, consent_version",
    )
    .bind(person_ids)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            let version: i64 = row.try_get(1)?;
            Ok((row.try_get(0)?, u64::try_from(version).unwrap_or_default()))
        })
        .collect()
}

/// The stored relationships (id, person, body) of these provider keys,
/// locked for the transaction.
#[tracing::instrument(name = "db.relationships_by_source_keys", skip_all, fields(keys = keys.len()))]
pub async fn relationships_by_source_keys(
    tx: &mut Tx,
    keys: &[SourceKey],
) -> Stored<HashMap<SourceKey, StoredRelationship>> {
    let (organisations, systems, references) = columns3(keys);
    let rows = sqlx::query(
        "SELECT r.id, r.person_id, r.body, r.organisation_code, r.source_system, r.source_reference
         FROM care_relationship r
         JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(organisation_code, source_system, source_reference)
           ON r.organisation_code = k.organisation_code
          AND r.source_system = k.source_system
          AND r.source_reference = k.source_reference
         WHERE r.source_system <> ''
         FOR UPDATE OF r",
    )
    .bind(organisations)
    .bind(systems)
    .bind(references)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                (row.try_get(3)?, row.try_get(4)?, row.try_get(5)?),
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?),
            ))
        })
        .collect()
}

fn columns3(keys: &[SourceKey]) -> (Vec<&str>, Vec<&str>, Vec<&str>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for (first, second, third) in keys {
        columns.0.push(first.as_str());
        columns.1.push(second.as_str());
        columns.2.push(third.as_str());
    }
    columns
}

/// Inserts or (same id) updates each relationship's period and body; each
/// id at most once.
#[tracing::instrument(name = "db.upsert_relationships", skip_all, fields(relationships = rows.len()))]
pub async fn upsert_relationships(tx: &mut Tx, rows: &[(RelationshipRow, Vec<u8>)]) -> Stored<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows.iter().map(|(row, _)| row.id).collect();
    let persons: Vec<Uuid> = rows.iter().map(|(row, _)| row.person_id).collect();
    let organisations: Vec<&str> = rows
        .iter()
        .map(|(row, _)| row.organisation_code.as_str())
        .collect();
    let systems: Vec<&str> = rows
        .iter()
        .map(|(row, _)| row.source_system.as_str())
        .collect();
    let references: Vec<&str> = rows
        .iter()
        .map(|(row, _)| row.source_reference.as_str())
        .collect();
    let starts: Vec<OffsetDateTime> = rows.iter().map(|(row, _)| row.start_time).collect();
    let ends: Vec<Option<OffsetDateTime>> = rows.iter().map(|(row, _)| row.end_time).collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|(_, body)| body.as_slice()).collect();
    sqlx::query(
        "INSERT INTO care_relationship (id, person_id, organisation_code, source_system,
             source_reference, start_time, end_time, body)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
             $6::timestamptz[], $7::timestamptz[], $8::bytea[])
         ON CONFLICT (id) DO UPDATE
         SET start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time, body = EXCLUDED.body",
    )
    .bind(ids)
    .bind(persons)
    .bind(organisations)
    .bind(systems)
    .bind(references)
    .bind(starts)
    .bind(ends)
    .bind(bodies)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends `changes` to the history/outbox in the changes' transaction.
#[tracing::instrument(name = "db.append_changes", skip_all, fields(changes = changes.len()))]
pub async fn append_changes(tx: &mut Tx, changes: &[ChangeRow]) -> Stored<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let column = |pick: fn(&ChangeRow) -> &str| changes.iter().map(pick).collect::<Vec<&str>>();
    let bytes = |pick: fn(&ChangeRow) -> &[u8]| changes.iter().map(pick).collect::<Vec<&[u8]>>();
    sqlx::query(
        "INSERT INTO consent_change (event_id, person_id, change_kind, fact_id, consent_version,
             occurred_at, actor_user_id, actor_organisation_code, source_system, note, fact, event)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::smallint[], $4::uuid[], $5::bigint[],
             $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[],
             $12::bytea[])",
    )
    .bind(changes.iter().map(|c| c.event_id).collect::<Vec<_>>())
    .bind(changes.iter().map(|c| c.person_id).collect::<Vec<_>>())
    .bind(changes.iter().map(|c| c.change_kind).collect::<Vec<_>>())
    .bind(changes.iter().map(|c| c.fact_id).collect::<Vec<_>>())
    .bind(
        changes
            .iter()
            .map(|c| i64::try_from(c.consent_version).unwrap_or(i64::MAX))
            .collect::<Vec<_>>(),
    )
    .bind(changes.iter().map(|c| c.occurred_at).collect::<Vec<_>>())
    .bind(column(|c| &c.actor_user_id))
    .bind(column(|c| &c.actor_organisation_code))
    .bind(column(|c| &c.source_system))
    .bind(column(|c| &c.note))
    .bind(bytes(|c| &c.fact))
    .bind(bytes(|c| &c.event))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rebuilds the Decide snapshots of `person_ids` inside the changes'
/// transaction (after the facts changed, before commit).
#[tracing::instrument(name = "db.refresh_decision_facts", skip_all, fields(persons = person_ids.len()))]
pub async fn refresh_decision_facts(tx: &mut Tx, person_ids: &[Uuid]) -> Stored<()> {
    sqlx::query(
        "UPDATE consent_person SET decision_facts = rebuilt.facts
         FROM consent_decision_facts_of($1) AS rebuilt
         WHERE consent_person.person_id = rebuilt.person_id",
    )
    .bind(person_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
