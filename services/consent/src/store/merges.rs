//! Moving facts between persons when patient-index merges or unmerges them.

use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Stored, Tx};

/// Every table whose rows belong to a person (names are constants).
const PERSON_TABLES: [&str; 6] = [
    "opt_out",
    "permission",
    "care_relationship",
    "restriction",
    "break_glass_grant",
    "review_item",
];

/// Records the merge; false when it was already applied (redelivery).
pub async fn claim_merge(
    tx: &mut Tx,
    merge_id: Uuid,
    surviving: Uuid,
    merged: Uuid,
    at: OffsetDateTime,
) -> Stored<bool> {
    let inserted = sqlx::query(
        "INSERT INTO person_merge (merge_id, surviving_person_id, merged_person_id, merged_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (merge_id) DO NOTHING",
    )
    .bind(merge_id)
    .bind(surviving)
    .bind(merged)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Moves every fact of `merged` to `surviving`, remembering each; returns
/// how many moved.
pub async fn move_facts(tx: &mut Tx, merge_id: Uuid, surviving: Uuid, merged: Uuid) -> Stored<u64> {
    let mut moved = 0;
    for table in PERSON_TABLES {
        let sql = format!("UPDATE {table} SET person_id = $1 WHERE person_id = $2 RETURNING id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(surviving)
            .bind(merged)
            .fetch_all(&mut **tx)
            .await?;
        for row in &rows {
            let fact_id: Uuid = row.try_get(0)?;
            sqlx::query("INSERT INTO person_merge_moved (merge_id, fact_table, fact_id) VALUES ($1, $2, $3)")
                .bind(merge_id)
                .bind(table)
                .bind(fact_id)
                .execute(&mut **tx)
                .await?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Marks the merge undone; `None` when unknown or already undone, else the
/// (surviving, restored) persons.
pub async fn claim_unmerge(
    tx: &mut Tx,
    merge_id: Uuid,
    at: OffsetDateTime,
) -> Stored<Option<(Uuid, Uuid)>> {
    let row = sqlx::query(
        "UPDATE person_merge SET unmerged_at = $2 WHERE merge_id = $1 AND unmerged_at IS NULL
         RETURNING surviving_person_id, merged_person_id",
    )
    .bind(merge_id)
    .bind(at)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => Ok(Some((row.try_get(0)?, row.try_get(1)?))),
        None => Ok(None),
    }
}

/// Moves back exactly the facts the merge moved (those still on the
/// survivor); returns how many.
pub async fn restore_facts(
    tx: &mut Tx,
    merge_id: Uuid,
    surviving: Uuid,
    restored: Uuid,
) -> Stored<u64> {
    let mut moved = 0;
    for table in PERSON_TABLES {
        let sql = format!(
            "UPDATE {table} SET person_id = $1 WHERE person_id = $2 AND id IN
               (SELECT fact_id FROM person_merge_moved WHERE merge_id = $3 AND fact_table = $4)"
        );
        let result = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(restored)
            .bind(surviving)
            .bind(merge_id)
            .bind(table)
            .execute(&mut **tx)
            .await?;
        moved += result.rows_affected();
    }
    Ok(moved)
}
