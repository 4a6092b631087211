//! The patient index's SQL. Rules live in `domain` and `registry`.

use mcr_proto::common::v1 as common;
use mcr_proto::patient_index::v1 as proto;
use prost::Message;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool, Postgres, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::LocalIdentifier;
use crate::error::IndexError;

type Stored<T> = Result<T, IndexError>;

/// A person as stored.
#[derive(Debug, Clone, FromRow)]
pub struct PersonRow {
    pub id: Uuid,
    pub status: String,
    pub merged_into: Option<Uuid>,
    pub demographics: Vec<u8>,
    pub sensitive: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl PersonRow {
    /// The stored demographics.
    pub fn demographics(&self) -> Stored<proto::Demographics> {
        proto::Demographics::decode(self.demographics.as_slice()).map_err(|error| {
            IndexError::Corrupt(format!("person {} demographics: {error}", self.id))
        })
    }

    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// A local identifier link as stored.
#[derive(Debug, Clone, FromRow)]
pub struct IdentifierRow {
    pub organisation_code: String,
    pub system: String,
    pub value: String,
    pub person_id: Uuid,
    pub link_method: i32,
    pub match_weight: f64,
    pub linked_at: OffsetDateTime,
    pub last_registered_at: OffsetDateTime,
}

/// An identifier as kept in JSON (history, merges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierJson {
    pub organisation_code: String,
    pub system: String,
    pub value: String,
}

impl From<&LocalIdentifier> for IdentifierJson {
    fn from(identifier: &LocalIdentifier) -> Self {
        Self {
            organisation_code: identifier.organisation_code.clone(),
            system: identifier.system.clone(),
            value: identifier.value.clone(),
        }
    }
}

impl IdentifierJson {
    pub fn to_proto(&self) -> common::LocalIdentifier {
        common::LocalIdentifier {
            organisation_code: self.organisation_code.clone(),
            system: self.system.clone(),
            value: self.value.clone(),
        }
    }
}

/// What a new or updated registration writes.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub identifier: &'a LocalIdentifier,
    pub demographics: &'a proto::Demographics,
    pub nhs_number: Option<&'a str>,
    pub nhs_verified: bool,
    pub sensitive: bool,
    pub blocking_keys: &'a [String],
    pub link_method: proto::LinkMethod,
    pub match_weight: f64,
}

pub async fn person(pool: &PgPool, person_id: Uuid) -> Stored<Option<PersonRow>> {
    Ok(sqlx::query_as("SELECT id, status, merged_into, demographics, sensitive, created_at, updated_at FROM persons WHERE id = $1")
        .bind(person_id)
        .fetch_optional(pool)
        .await?)
}

/// Whom [`person_with_identifiers`] reads: a person by id, or the person a
/// local identifier is linked to.
#[derive(Debug, Clone, Copy)]
pub enum PersonKey<'a> {
    Id(Uuid),
    LinkedTo(&'a LocalIdentifier),
}

/// A person's row and every identifier linked to them (ordered as
/// [`identifiers_of`] orders them), in one round trip and one snapshot:
/// every care record view waits for this.
#[tracing::instrument(name = "db.select person_with_identifiers", skip_all, fields(db.system = "postgresql"))]
pub async fn person_with_identifiers(
    pool: &PgPool,
    key: PersonKey<'_>,
) -> Stored<Option<(PersonRow, Vec<IdentifierRow>)>> {
    // One statement per key, each a literal (sqlx takes only static SQL).
    macro_rules! select_where {
        ($condition:literal) => {
            concat!(
                "SELECT p.id, p.status, p.merged_into, p.demographics, p.sensitive, p.created_at, p.updated_at,
                        i.organisation_code, i.system, i.value, i.link_method, i.match_weight, i.linked_at, i.last_registered_at
                   FROM persons p LEFT JOIN local_identifiers i ON i.person_id = p.id
                  WHERE ",
                $condition,
                " ORDER BY i.organisation_code, i.system, i.value"
            )
        };
    }
    let rows = match key {
        PersonKey::Id(person_id) => {
            sqlx::query(select_where!("p.id = $1"))
                .bind(person_id)
                .fetch_all(pool)
                .await?
        }
        PersonKey::LinkedTo(identifier) => {
            sqlx::query(select_where!(
                "p.id = (SELECT person_id FROM local_identifiers
                          WHERE organisation_code = $1 AND system = $2 AND value = $3)"
            ))
            .bind(&identifier.organisation_code)
            .bind(&identifier.system)
            .bind(&identifier.value)
            .fetch_all(pool)
            .await?
        }
    };
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let person = PersonRow::from_row(first)?;
    let identifiers = rows
        .iter()
        .filter(|row| {
            matches!(
                row.try_get::<Option<&str>, _>("organisation_code"),
                Ok(Some(_))
            )
        })
        .map(|row| {
            Ok(IdentifierRow {
                organisation_code: row.try_get("organisation_code")?,
                system: row.try_get("system")?,
                value: row.try_get("value")?,
                person_id: person.id,
                link_method: row.try_get("link_method")?,
                match_weight: row.try_get("match_weight")?,
                linked_at: row.try_get("linked_at")?,
                last_registered_at: row.try_get("last_registered_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some((person, identifiers)))
}

pub async fn person_of_identifier(
    pool: &PgPool,
    identifier: &LocalIdentifier,
) -> Stored<Option<IdentifierRow>> {
    Ok(sqlx::query_as(
        "SELECT organisation_code, system, value, person_id, link_method, match_weight, linked_at, last_registered_at
         FROM local_identifiers WHERE organisation_code = $1 AND system = $2 AND value = $3",
    )
    .bind(&identifier.organisation_code)
    .bind(&identifier.system)
    .bind(&identifier.value)
    .fetch_optional(pool)
    .await?)
}

/// Resolves many identifiers in one round trip, one index probe each
/// (LATERAL, so a large batch never turns into a scan of every identifier).
pub async fn persons_of_identifiers(
    executor: impl sqlx::PgExecutor<'_>,
    identifiers: &[LocalIdentifier],
) -> Stored<Vec<(String, String, String, Uuid, bool)>> {
    let organisations: Vec<&str> = identifiers
        .iter()
        .map(|id| id.organisation_code.as_str())
        .collect();
    let systems: Vec<&str> = identifiers.iter().map(|id| id.system.as_str()).collect();
    let values: Vec<&str> = identifiers.iter().map(|id| id.value.as_str()).collect();
    Ok(sqlx::query_as(
        "SELECT l.organisation_code, l.system, l.value, l.person_id, p.sensitive
         FROM unnest($1::text[], $2::text[], $3::text[]) AS wanted (organisation_code, system, value)
         CROSS JOIN LATERAL (
             SELECT * FROM local_identifiers
              WHERE (organisation_code, system, value) = (wanted.organisation_code, wanted.system, wanted.value)
         ) AS l
         CROSS JOIN LATERAL (SELECT sensitive FROM persons WHERE id = l.person_id) AS p",
    )
    .bind(&organisations)
    .bind(&systems)
    .bind(&values)
    .fetch_all(executor)
    .await?)
}

pub async fn active_persons_with_nhs_number(
    pool: &PgPool,
    nhs_number: &str,
) -> Stored<Vec<PersonRow>> {
    Ok(sqlx::query_as(
        "SELECT id, status, merged_into, demographics, sensitive, created_at, updated_at
         FROM persons WHERE nhs_number = $1 AND status = 'active' ORDER BY created_at LIMIT 20",
    )
    .bind(nhs_number)
    .fetch_all(pool)
    .await?)
}

/// Active persons sharing any of `keys`, at most `limit`. The keys drive the
/// query (index on `person_blocking_keys`), so it never scans `persons`,
/// whatever the planner believes about table sizes.
pub async fn candidates(pool: &PgPool, keys: &[String], limit: i64) -> Stored<Vec<PersonRow>> {
    Ok(sqlx::query_as(
        "SELECT p.id, p.status, p.merged_into, p.demographics, p.sensitive, p.created_at, p.updated_at
         FROM (SELECT DISTINCT person_id FROM person_blocking_keys WHERE key = ANY($1) LIMIT $2) AS keyed
         JOIN persons p ON p.id = keyed.person_id
         WHERE p.status = 'active'",
    )
    .bind(keys)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

async fn add_keys(
    transaction: &mut Transaction<'_, Postgres>,
    person_id: Uuid,
    keys: &[String],
) -> Stored<()> {
    sqlx::query(
        "INSERT INTO person_blocking_keys (key, person_id) SELECT key, $2 FROM unnest($1::text[]) AS key
         ON CONFLICT DO NOTHING",
    )
    .bind(keys)
    .bind(person_id)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// One entry of a person's history.
#[derive(Debug, Clone, Copy)]
pub struct HistoryEntry<'a> {
    pub kind: proto::PersonEventKind,
    pub actor: Option<&'a common::Actor>,
    pub identifier: Option<&'a LocalIdentifier>,
    pub other_person_id: Option<Uuid>,
    pub merge_id: Option<Uuid>,
    pub note: &'a str,
}

pub async fn add_history(
    transaction: &mut Transaction<'_, Postgres>,
    person_id: Uuid,
    entry: HistoryEntry<'_>,
) -> Stored<()> {
    let HistoryEntry {
        kind,
        actor,
        identifier,
        other_person_id,
        merge_id,
        note,
    } = entry;
    sqlx::query(
        "INSERT INTO person_history (id, person_id, kind, actor, identifier, other_person_id, merge_id, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(person_id)
    .bind(kind as i32)
    .bind(actor.map(|actor| Json(ActorJson::from(actor))))
    .bind(identifier.map(|identifier| Json(IdentifierJson::from(identifier))))
    .bind(other_person_id)
    .bind(merge_id)
    .bind(note)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Creates a person for a first registration, links the identifier and,
/// when given, queues a review item. `None` when the identifier was linked
/// concurrently (the caller re-reads it).
pub async fn create_person(
    pool: &PgPool,
    registration: &Registration<'_>,
    review_candidates: Option<serde_json::Value>,
) -> Stored<Option<(Uuid, Option<Uuid>)>> {
    let person_id = Uuid::now_v7();
    let Some(review_candidates) = review_candidates else {
        let created = insert_new_person(pool, person_id, registration).await?;
        return Ok(created.then_some((person_id, None)));
    };
    let mut transaction = pool.begin().await?;
    if !insert_new_person(&mut *transaction, person_id, registration).await? {
        transaction.rollback().await?;
        return Ok(None);
    }
    let review_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO review_items (id, person_id, organisation_code, system, value, candidates)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(review_id)
    .bind(person_id)
    .bind(&registration.identifier.organisation_code)
    .bind(&registration.identifier.system)
    .bind(&registration.identifier.value)
    .bind(&review_candidates)
    .execute(&mut *transaction)
    .await?;
    add_history(
        &mut transaction,
        person_id,
        HistoryEntry {
            kind: proto::PersonEventKind::QueuedForReview,
            actor: None,
            identifier: None,
            other_person_id: None,
            merge_id: None,
            note: "",
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(Some((person_id, Some(review_id))))
}

/// The first seven parameters of every identifier insert: the identifier,
/// its person, how it was linked, and what the provider registered.
fn bind_identifier<'q>(
    query: sqlx::query::QueryScalar<'q, Postgres, i64, sqlx::postgres::PgArguments>,
    person_id: Uuid,
    registration: &'q Registration<'_>,
) -> sqlx::query::QueryScalar<'q, Postgres, i64, sqlx::postgres::PgArguments> {
    query
        .bind(&registration.identifier.organisation_code)
        .bind(&registration.identifier.system)
        .bind(&registration.identifier.value)
        .bind(person_id)
        .bind(registration.link_method as i32)
        .bind(registration.match_weight)
        .bind(registration.demographics.encode_to_vec())
}

/// The common case — a new person, nothing to review — in ONE statement, so
/// one round trip and one commit: the identifier goes in first and the
/// person, its keys and its history follow only if the identifier was free
/// (foreign keys are checked at the end of the statement).
async fn insert_new_person(
    executor: impl sqlx::PgExecutor<'_>,
    person_id: Uuid,
    registration: &Registration<'_>,
) -> Stored<bool> {
    let statement = sqlx::query_scalar(
        "WITH identifier AS (
             INSERT INTO local_identifiers (organisation_code, system, value, person_id, link_method, match_weight, demographics)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING person_id
         ), person AS (
             INSERT INTO persons (id, status, demographics, nhs_number, nhs_verified, sensitive)
             SELECT person_id, 'active', $7, $8, $9, $10 FROM identifier RETURNING id
         ), keys AS (
             INSERT INTO person_blocking_keys (key, person_id)
             SELECT key, person.id FROM person, unnest($11::text[]) AS key ON CONFLICT DO NOTHING
         ), history AS (
             INSERT INTO person_history (id, person_id, kind, identifier, note)
             SELECT $12, person.id, $13, $14, '' FROM person
         )
         SELECT count(*) FROM person",
    );
    let created: i64 = bind_identifier(statement, person_id, registration)
        .bind(registration.nhs_number)
        .bind(registration.nhs_verified)
        .bind(registration.sensitive)
        .bind(registration.blocking_keys)
        .bind(Uuid::now_v7())
        .bind(proto::PersonEventKind::Created as i32)
        .bind(Json(IdentifierJson::from(registration.identifier)))
        .fetch_one(executor)
        .await?;
    Ok(created == 1)
}

/// Links a new identifier to an existing person; `false` when the identifier
/// was linked concurrently.
pub async fn link_to_person(
    pool: &PgPool,
    person_id: Uuid,
    registration: &Registration<'_>,
) -> Stored<bool> {
    // One statement: the keys and history follow only if the identifier was free.
    let statement = sqlx::query_scalar(
        "WITH identifier AS (
             INSERT INTO local_identifiers (organisation_code, system, value, person_id, link_method, match_weight, demographics)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING person_id
         ), keys AS (
             INSERT INTO person_blocking_keys (key, person_id)
             SELECT key, identifier.person_id FROM identifier, unnest($8::text[]) AS key ON CONFLICT DO NOTHING
         ), history AS (
             INSERT INTO person_history (id, person_id, kind, identifier, note)
             SELECT $9, identifier.person_id, $10, $11, '' FROM identifier
         )
         SELECT count(*) FROM identifier",
    );
    let linked: i64 = bind_identifier(statement, person_id, registration)
        .bind(registration.blocking_keys)
        .bind(Uuid::now_v7())
        .bind(proto::PersonEventKind::IdentifierLinked as i32)
        .bind(Json(IdentifierJson::from(registration.identifier)))
        .fetch_one(pool)
        .await?;
    Ok(linked == 1)
}

/// A repeat registration: the provider's demographics are refreshed and
/// become the person's latest.
pub async fn refresh_registration<'c>(
    database: impl sqlx::Acquire<'c, Database = Postgres>,
    person_id: Uuid,
    registration: &Registration<'_>,
) -> Stored<()> {
    let encoded = registration.demographics.encode_to_vec();
    // Its own transaction, or a savepoint inside a bulk registration's.
    let mut transaction = database.begin().await?;
    sqlx::query(
        "UPDATE local_identifiers SET demographics = $4, last_registered_at = now()
         WHERE organisation_code = $1 AND system = $2 AND value = $3",
    )
    .bind(&registration.identifier.organisation_code)
    .bind(&registration.identifier.system)
    .bind(&registration.identifier.value)
    .bind(&encoded)
    .execute(&mut *transaction)
    .await?;
    let changed = sqlx::query(
        "UPDATE persons SET demographics = $2, nhs_number = COALESCE($3, nhs_number),
             nhs_verified = nhs_verified OR $4, sensitive = $5, updated_at = now()
         WHERE id = $1 AND demographics <> $2",
    )
    .bind(person_id)
    .bind(&encoded)
    .bind(registration.nhs_number)
    .bind(registration.nhs_verified)
    .bind(registration.sensitive)
    .execute(&mut *transaction)
    .await?;
    if changed.rows_affected() > 0 {
        add_keys(&mut transaction, person_id, registration.blocking_keys).await?;
        add_history(
            &mut transaction,
            person_id,
            HistoryEntry {
                kind: proto::PersonEventKind::DemographicsUpdated,
                actor: None,
                identifier: Some(registration.identifier),
                other_person_id: None,
                merge_id: None,
                note: "",
            },
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

pub async fn identifiers_of(pool: &PgPool, person_id: Uuid) -> Stored<Vec<IdentifierRow>> {
    Ok(sqlx::query_as(
        "SELECT organisation_code, system, value, person_id, link_method, match_weight, linked_at, last_registered_at
         FROM local_identifiers WHERE person_id = $1 ORDER BY organisation_code, system, value",
    )
    .bind(person_id)
    .fetch_all(pool)
    .await?)
}

/// Several persons at once (any status), in no particular order.
pub async fn persons_by_ids(pool: &PgPool, person_ids: &[Uuid]) -> Stored<Vec<PersonRow>> {
    Ok(sqlx::query_as(
        "SELECT id, status, merged_into, demographics, sensitive, created_at, updated_at FROM persons WHERE id = ANY($1)",
    )
    .bind(person_ids)
    .fetch_all(pool)
    .await?)
}

/// The identifiers of several persons at once.
pub async fn identifiers_of_many(pool: &PgPool, person_ids: &[Uuid]) -> Stored<Vec<IdentifierRow>> {
    Ok(sqlx::query_as(
        "SELECT organisation_code, system, value, person_id, link_method, match_weight, linked_at, last_registered_at
         FROM local_identifiers WHERE person_id = ANY($1) ORDER BY organisation_code, system, value",
    )
    .bind(person_ids)
    .fetch_all(pool)
    .await?)
}

/// One history entry as stored.
#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub id: Uuid,
    pub kind: i32,
    pub occurred_at: OffsetDateTime,
    pub actor: Option<Json<ActorJson>>,
    pub identifier: Option<Json<IdentifierJson>>,
    pub other_person_id: Option<Uuid>,
    pub merge_id: Option<Uuid>,
    pub note: String,
}

pub async fn history_of(pool: &PgPool, person_id: Uuid) -> Stored<Vec<HistoryRow>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, occurred_at, actor, identifier, other_person_id, merge_id, note
         FROM person_history WHERE person_id = $1 ORDER BY occurred_at, id",
    )
    .bind(person_id)
    .fetch_all(pool)
    .await?)
}

/// The actor of a history entry, as kept in JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActorJson {
    pub user_id: String,
    pub role_profile_id: String,
    pub role: i32,
    pub role_code: String,
    pub organisation_code: String,
    pub session_id: String,
    pub kind: i32,
    pub display_name: String,
}

impl From<&common::Actor> for ActorJson {
    fn from(actor: &common::Actor) -> Self {
        Self {
            user_id: actor.user_id.clone(),
            role_profile_id: actor.role_profile_id.clone(),
            role: actor.role,
            role_code: actor.role_code.clone(),
            organisation_code: actor.organisation_code.clone(),
            session_id: actor.session_id.clone(),
            kind: actor.kind,
            display_name: actor.display_name.clone(),
        }
    }
}

impl ActorJson {
    pub fn to_proto(&self) -> common::Actor {
        common::Actor {
            user_id: self.user_id.clone(),
            role_profile_id: self.role_profile_id.clone(),
            role: self.role,
            role_code: self.role_code.clone(),
            organisation_code: self.organisation_code.clone(),
            session_id: self.session_id.clone(),
            kind: self.kind,
            display_name: self.display_name.clone(),
        }
    }
}
pub mod bulk;
pub mod curation;
