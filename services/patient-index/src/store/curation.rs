//! SQL of data-quality work: relinking, merging, unmerging, the review queue.

use mcr_proto::common::v1 as common;
use mcr_proto::patient_index::v1 as proto;
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{HistoryEntry, IdentifierJson, add_history};
use crate::domain::LocalIdentifier;
use crate::error::IndexError;

type Stored<T> = Result<T, IndexError>;

/// Moves `identifier` to `to_person` (or links it when new); returns the
/// person it was linked to before.
pub async fn relink(
    pool: &PgPool,
    identifier: &LocalIdentifier,
    to_person: Uuid,
    demographics: &[u8],
    actor: &common::Actor,
    reason: &str,
) -> Stored<Option<Uuid>> {
    let mut transaction = pool.begin().await?;
    let previous: Option<Uuid> = sqlx::query_scalar(
        "SELECT person_id FROM local_identifiers WHERE organisation_code = $1 AND system = $2 AND value = $3 FOR UPDATE",
    )
    .bind(&identifier.organisation_code)
    .bind(&identifier.system)
    .bind(&identifier.value)
    .fetch_optional(&mut *transaction)
    .await?;
    sqlx::query(
        "INSERT INTO local_identifiers (organisation_code, system, value, person_id, link_method, demographics)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (organisation_code, system, value)
         DO UPDATE SET person_id = $4, link_method = $5, linked_at = now()",
    )
    .bind(&identifier.organisation_code)
    .bind(&identifier.system)
    .bind(&identifier.value)
    .bind(to_person)
    .bind(proto::LinkMethod::Manual as i32)
    .bind(demographics)
    .execute(&mut *transaction)
    .await?;
    if let Some(from_person) = previous.filter(|from| *from != to_person) {
        add_history(
            &mut transaction,
            from_person,
            HistoryEntry {
                kind: proto::PersonEventKind::IdentifierMovedAway,
                actor: Some(actor),
                identifier: Some(identifier),
                other_person_id: Some(to_person),
                merge_id: None,
                note: reason,
            },
        )
        .await?;
    }
    add_history(
        &mut transaction,
        to_person,
        HistoryEntry {
            kind: proto::PersonEventKind::IdentifierLinked,
            actor: Some(actor),
            identifier: Some(identifier),
            other_person_id: previous,
            merge_id: None,
            note: reason,
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(previous)
}

/// A merge as stored.
#[derive(Debug, Clone, FromRow)]
pub struct MergeRow {
    pub id: Uuid,
    pub surviving_person_id: Uuid,
    pub merged_person_id: Uuid,
    pub moved_identifiers: Json<Vec<IdentifierJson>>,
    pub merged_at: OffsetDateTime,
}

/// Merges `merged` into `surviving`: every identifier moves, the merged
/// person points at the survivor, blocking keys are shared, the review item
/// (if any) closes. Both rows are locked so concurrent merges serialise.
pub async fn merge(
    pool: &PgPool,
    surviving: Uuid,
    merged: Uuid,
    actor: &common::Actor,
    reason: &str,
    review_item_id: Option<Uuid>,
) -> Stored<MergeRow> {
    let mut transaction = pool.begin().await?;
    let statuses: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM persons WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind([surviving, merged].as_slice())
            .fetch_all(&mut *transaction)
            .await?;
    for person in [surviving, merged] {
        match statuses.iter().find(|(id, _)| *id == person) {
            None => {
                return Err(IndexError::NotFound(format!(
                    "person {person} does not exist"
                )));
            }
            Some((_, status)) if status != "active" => {
                return Err(IndexError::FailedPrecondition(format!(
                    "person {person} was merged away already; merge its survivor instead"
                )));
            }
            Some(_) => {}
        }
    }
    let moved: Vec<IdentifierJson> = sqlx::query_as::<_, (String, String, String)>(
        "UPDATE local_identifiers SET person_id = $1 WHERE person_id = $2 RETURNING organisation_code, system, value",
    )
    .bind(surviving)
    .bind(merged)
    .fetch_all(&mut *transaction)
    .await?
    .into_iter()
    .map(|(organisation_code, system, value)| IdentifierJson { organisation_code, system, value })
    .collect();
    sqlx::query(
        "UPDATE persons SET status = 'merged', merged_into = $1, updated_at = now() WHERE id = $2",
    )
    .bind(surviving)
    .bind(merged)
    .execute(&mut *transaction)
    .await?;
    sqlx::query(
        "INSERT INTO person_blocking_keys (key, person_id) SELECT key, $1 FROM person_blocking_keys WHERE person_id = $2
         ON CONFLICT DO NOTHING",
    )
    .bind(surviving)
    .bind(merged)
    .execute(&mut *transaction)
    .await?;
    let row: MergeRow = sqlx::query_as(
        "INSERT INTO merges (id, surviving_person_id, merged_person_id, moved_identifiers, reason)
         VALUES ($1, $2, $3, $4, $5) RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(surviving)
    .bind(merged)
    .bind(Json(&moved))
    .bind(reason)
    .fetch_one(&mut *transaction)
    .await?;
    add_history(
        &mut transaction,
        surviving,
        HistoryEntry {
            kind: proto::PersonEventKind::MergedFrom,
            actor: Some(actor),
            identifier: None,
            other_person_id: Some(merged),
            merge_id: Some(row.id),
            note: reason,
        },
    )
    .await?;
    add_history(
        &mut transaction,
        merged,
        HistoryEntry {
            kind: proto::PersonEventKind::MergedInto,
            actor: Some(actor),
            identifier: None,
            other_person_id: Some(surviving),
            merge_id: Some(row.id),
            note: reason,
        },
    )
    .await?;
    if let Some(review_item_id) = review_item_id {
        sqlx::query("UPDATE review_items SET closed_at = now(), close_reason = 'merged' WHERE id = $1 AND closed_at IS NULL")
            .bind(review_item_id)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(row)
}

pub async fn merge_by_id(pool: &PgPool, merge_id: Uuid) -> Stored<Option<MergeRow>> {
    Ok(sqlx::query_as("SELECT * FROM merges WHERE id = $1")
        .bind(merge_id)
        .fetch_optional(pool)
        .await?)
}

pub async fn latest_merge_of(pool: &PgPool, merged_person_id: Uuid) -> Stored<Option<MergeRow>> {
    Ok(sqlx::query_as(
        "SELECT * FROM merges WHERE merged_person_id = $1 AND unmerged_at IS NULL ORDER BY merged_at DESC LIMIT 1",
    )
    .bind(merged_person_id)
    .fetch_optional(pool)
    .await?)
}

/// Reverses `merge`: precisely the identifiers the merged person brought
/// move back and it becomes active again.
pub async fn unmerge(
    pool: &PgPool,
    merge: &MergeRow,
    actor: &common::Actor,
    reason: &str,
) -> Stored<OffsetDateTime> {
    let mut transaction = pool.begin().await?;
    let survivor_status: Option<String> =
        sqlx::query_scalar("SELECT status FROM persons WHERE id = $1 FOR UPDATE")
            .bind(merge.surviving_person_id)
            .fetch_optional(&mut *transaction)
            .await?;
    if survivor_status.as_deref() != Some("active") {
        return Err(IndexError::FailedPrecondition(format!(
            "the survivor {} has since been merged into another person; unmerge that first",
            merge.surviving_person_id
        )));
    }
    let unmerged_at: Option<OffsetDateTime> =
        sqlx::query_scalar("UPDATE merges SET unmerged_at = now() WHERE id = $1 AND unmerged_at IS NULL RETURNING unmerged_at")
            .bind(merge.id)
            .fetch_optional(&mut *transaction)
            .await?;
    let Some(unmerged_at) = unmerged_at else {
        return Err(IndexError::FailedPrecondition(format!(
            "merge {} was undone already",
            merge.id
        )));
    };
    let organisations: Vec<&str> = merge
        .moved_identifiers
        .iter()
        .map(|id| id.organisation_code.as_str())
        .collect();
    let systems: Vec<&str> = merge
        .moved_identifiers
        .iter()
        .map(|id| id.system.as_str())
        .collect();
    let values: Vec<&str> = merge
        .moved_identifiers
        .iter()
        .map(|id| id.value.as_str())
        .collect();
    sqlx::query(
        "UPDATE local_identifiers l SET person_id = $1
         FROM unnest($2::text[], $3::text[], $4::text[]) AS moved (organisation_code, system, value)
         WHERE l.organisation_code = moved.organisation_code AND l.system = moved.system AND l.value = moved.value
           AND l.person_id = $5",
    )
    .bind(merge.merged_person_id)
    .bind(&organisations)
    .bind(&systems)
    .bind(&values)
    .bind(merge.surviving_person_id)
    .execute(&mut *transaction)
    .await?;
    sqlx::query("UPDATE persons SET status = 'active', merged_into = NULL, updated_at = now() WHERE id = $1")
        .bind(merge.merged_person_id)
        .execute(&mut *transaction)
        .await?;
    for (person, other) in [
        (merge.surviving_person_id, merge.merged_person_id),
        (merge.merged_person_id, merge.surviving_person_id),
    ] {
        add_history(
            &mut transaction,
            person,
            HistoryEntry {
                kind: proto::PersonEventKind::Unmerged,
                actor: Some(actor),
                identifier: None,
                other_person_id: Some(other),
                merge_id: Some(merge.id),
                note: reason,
            },
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(unmerged_at)
}

/// An open review item as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ReviewRow {
    pub id: Uuid,
    pub person_id: Uuid,
    pub organisation_code: String,
    pub system: String,
    pub value: String,
    pub candidates: serde_json::Value,
    pub queued_at: OffsetDateTime,
}

/// Open review items, oldest first, after the cursor `(queued_at, id)`.
pub async fn open_reviews(
    pool: &PgPool,
    organisation_code: Option<&str>,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Stored<Vec<ReviewRow>> {
    Ok(sqlx::query_as(
        "SELECT id, person_id, organisation_code, system, value, candidates, queued_at FROM review_items
         WHERE closed_at IS NULL AND ($1::text IS NULL OR organisation_code = $1)
           AND ($2::timestamptz IS NULL OR (queued_at, id) > ($2, $3))
         ORDER BY queued_at, id LIMIT $4",
    )
    .bind(organisation_code)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// NOT_FOUND or FAILED_PRECONDITION unless `review_item_id` names an open
/// review item: checked before acting on it, so a mistyped id is an error
/// rather than silently ignored.
pub async fn require_open_review(pool: &PgPool, review_item_id: Uuid) -> Stored<()> {
    let closed_at: Option<Option<OffsetDateTime>> =
        sqlx::query_scalar("SELECT closed_at FROM review_items WHERE id = $1")
            .bind(review_item_id)
            .fetch_optional(pool)
            .await?;
    match closed_at {
        None => Err(IndexError::NotFound(format!(
            "review item {review_item_id} does not exist"
        ))),
        Some(Some(_)) => Err(IndexError::FailedPrecondition(format!(
            "review item {review_item_id} is closed already"
        ))),
        Some(None) => Ok(()),
    }
}

/// Closes a review item as "not the same person".
pub async fn dismiss_review(
    pool: &PgPool,
    review_item_id: Uuid,
    reason: &str,
) -> Stored<OffsetDateTime> {
    let closed: Option<OffsetDateTime> = sqlx::query_scalar(
        "UPDATE review_items SET closed_at = now(), close_reason = $2 WHERE id = $1 AND closed_at IS NULL RETURNING closed_at",
    )
    .bind(review_item_id)
    .bind(reason)
    .fetch_optional(pool)
    .await?;
    match closed {
        Some(closed_at) => Ok(closed_at),
        None => {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM review_items WHERE id = $1)")
                    .bind(review_item_id)
                    .fetch_one(pool)
                    .await?;
            Err(if exists {
                IndexError::FailedPrecondition(format!(
                    "review item {review_item_id} is closed already"
                ))
            } else {
                IndexError::NotFound(format!("review item {review_item_id} does not exist"))
            })
        }
    }
}
