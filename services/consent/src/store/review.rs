//! The review queue's rows.

use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Stored, Tx};

/// A review item's indexed columns.
#[derive(Debug, Clone)]
pub struct ReviewRow {
    pub id: Uuid,
    pub kind: i16,
    pub person_id: Uuid,
    pub subject_id: Uuid,
    pub raised_by_user_id: String,
    pub raised_by_organisation_code: String,
    pub queued_at: OffsetDateTime,
    pub outcome: i16,
    pub body: Vec<u8>,
}

pub async fn insert_review_item(tx: &mut Tx, row: &ReviewRow) -> Stored<()> {
    sqlx::query(
        "INSERT INTO review_item (id, kind, person_id, subject_id, raised_by_user_id,
             raised_by_organisation_code, queued_at, outcome, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.id)
    .bind(row.kind)
    .bind(row.person_id)
    .bind(row.subject_id)
    .bind(&row.raised_by_user_id)
    .bind(&row.raised_by_organisation_code)
    .bind(row.queued_at)
    .bind(row.outcome)
    .bind(&row.body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn review_row(row: &sqlx::postgres::PgRow) -> Stored<ReviewRow> {
    Ok(ReviewRow {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        person_id: row.try_get("person_id")?,
        subject_id: row.try_get("subject_id")?,
        raised_by_user_id: row.try_get("raised_by_user_id")?,
        raised_by_organisation_code: row.try_get("raised_by_organisation_code")?,
        queued_at: row.try_get("queued_at")?,
        outcome: row.try_get("outcome")?,
        body: row.try_get("body")?,
    })
}

const COLUMNS: &str = "id, kind, person_id, subject_id, raised_by_user_id,
    raised_by_organisation_code, queued_at, outcome, body";

/// A review item (no lock).
pub async fn review_item(pool: &PgPool, id: Uuid) -> Stored<Option<ReviewRow>> {
    let sql = format!("SELECT {COLUMNS} FROM review_item WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(review_row).transpose()
}

/// A review item, locked for the review.
pub async fn review_item_for_update(tx: &mut Tx, id: Uuid) -> Stored<Option<ReviewRow>> {
    let sql = format!("SELECT {COLUMNS} FROM review_item WHERE id = $1 FOR UPDATE");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(review_row).transpose()
}

pub async fn record_review(tx: &mut Tx, id: Uuid, outcome: i16, body: &[u8]) -> Stored<()> {
    sqlx::query("UPDATE review_item SET outcome = $2, body = $3 WHERE id = $1")
        .bind(id)
        .bind(outcome)
        .bind(body)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Filters of the queue.
#[derive(Debug, Clone)]
pub struct QueueQuery {
    /// 0 = every kind.
    pub kind: i16,
    pub include_reviewed: bool,
    /// Empty = every organisation.
    pub organisation_code: String,
    /// Resume after (queued_at, id).
    pub after: Option<(OffsetDateTime, Uuid)>,
    pub limit: i64,
}

/// Items oldest first.
pub async fn review_queue(pool: &PgPool, query: &QueueQuery) -> Stored<Vec<ReviewRow>> {
    let (after_time, after_id) = query
        .after
        .map(|(at, id)| (Some(at), Some(id)))
        .unwrap_or((None, None));
    let sql = format!(
        "SELECT {COLUMNS} FROM review_item
         WHERE ($1 = 0 OR kind = $1) AND ($2 OR outcome = 0)
           AND ($3 = '' OR raised_by_organisation_code = $3)
           AND ($4::timestamptz IS NULL OR (queued_at, id) > ($4, $5::uuid))
         ORDER BY queued_at, id LIMIT $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(query.kind)
        .bind(query.include_reviewed)
        .bind(&query.organisation_code)
        .bind(after_time)
        .bind(after_id)
        .bind(query.limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(review_row).collect()
}

/// The bodies of `table`'s facts with these ids (review subjects).
pub async fn bodies_by_ids(
    pool: &PgPool,
    table: &str,
    ids: &[Uuid],
) -> Stored<Vec<(Uuid, Vec<u8>)>> {
    let sql = format!("SELECT id, body FROM {table} WHERE id = ANY($1)");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}
