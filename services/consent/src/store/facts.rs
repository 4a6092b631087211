//! Writing and reading the facts. Callers encode the proto `body`.

use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Stored, Tx};

/// A fact table and the column that closes a fact in it. The only source
/// of table and column names in dynamic SQL (hence `AssertSqlSafe`).
#[derive(Debug, Clone, Copy)]
pub enum FactTable {
    OptOut,
    Permission,
    CareRelationship,
    Restriction,
    BreakGlassGrant,
}

impl FactTable {
    fn name(self) -> &'static str {
        match self {
            FactTable::OptOut => "opt_out",
            FactTable::Permission => "permission",
            FactTable::CareRelationship => "care_relationship",
            FactTable::Restriction => "restriction",
            FactTable::BreakGlassGrant => "break_glass_grant",
        }
    }

    fn closing_column(self) -> &'static str {
        match self {
            FactTable::OptOut | FactTable::Permission => "withdrawn_at",
            FactTable::CareRelationship => "end_time",
            FactTable::Restriction => "removed_at",
            FactTable::BreakGlassGrant => "expires_at",
        }
    }
}

/// A fact's person and body, locked for update.
pub async fn fact_for_update(
    tx: &mut Tx,
    table: FactTable,
    id: Uuid,
) -> Stored<Option<(Uuid, Vec<u8>)>> {
    let sql = format!(
        "SELECT person_id, body FROM {} WHERE id = $1 FOR UPDATE",
        table.name()
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok(Some((row.try_get(0)?, row.try_get(1)?))),
        None => Ok(None),
    }
}

/// A fact's person (no lock): which person to serialise a change on.
pub async fn person_of_fact(pool: &PgPool, table: FactTable, id: Uuid) -> Stored<Option<Uuid>> {
    let sql = format!("SELECT person_id FROM {} WHERE id = $1", table.name());
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Sets the closing column and the new body.
pub async fn close_fact(
    tx: &mut Tx,
    table: FactTable,
    id: Uuid,
    at: OffsetDateTime,
    body: &[u8],
) -> Stored<()> {
    let sql = format!(
        "UPDATE {} SET {} = $2, body = $3 WHERE id = $1",
        table.name(),
        table.closing_column()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(at)
        .bind(body)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Replaces a fact's body only.
pub async fn update_body(tx: &mut Tx, table: FactTable, id: Uuid, body: &[u8]) -> Stored<()> {
    let sql = format!("UPDATE {} SET body = $2 WHERE id = $1", table.name());
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(body)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The opt-out in force, locked.
pub async fn opt_out_in_force(tx: &mut Tx, person_id: Uuid) -> Stored<Option<(Uuid, Vec<u8>)>> {
    let row = sqlx::query(
        "SELECT id, body FROM opt_out WHERE person_id = $1 AND withdrawn_at IS NULL FOR UPDATE",
    )
    .bind(person_id)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => Ok(Some((row.try_get(0)?, row.try_get(1)?))),
        None => Ok(None),
    }
}

pub async fn insert_opt_out(
    tx: &mut Tx,
    id: Uuid,
    person_id: Uuid,
    effective_from: OffsetDateTime,
    body: &[u8],
) -> Stored<()> {
    sqlx::query(
        "INSERT INTO opt_out (id, person_id, effective_from, body) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(person_id)
    .bind(effective_from)
    .bind(body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A permission's indexed columns.
#[derive(Debug, Clone)]
pub struct PermissionRow {
    pub id: Uuid,
    pub person_id: Uuid,
    pub organisation_code: String,
    pub user_id: String,
    pub best_interests: bool,
    pub categories: Vec<i16>,
    pub valid_from: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

pub async fn insert_permission(tx: &mut Tx, row: &PermissionRow, body: &[u8]) -> Stored<()> {
    sqlx::query(
        "INSERT INTO permission (id, person_id, organisation_code, user_id, best_interests,
             categories, valid_from, expires_at, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.id)
    .bind(row.person_id)
    .bind(&row.organisation_code)
    .bind(&row.user_id)
    .bind(row.best_interests)
    .bind(&row.categories)
    .bind(row.valid_from)
    .bind(row.expires_at)
    .bind(body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The relationship with this provider key, locked.
pub async fn relationship_by_source_key(
    tx: &mut Tx,
    organisation_code: &str,
    source_system: &str,
    source_reference: &str,
) -> Stored<Option<(Uuid, Uuid, Vec<u8>)>> {
    let row = sqlx::query(
        "SELECT id, person_id, body FROM care_relationship
         WHERE organisation_code = $1 AND source_system = $2 AND source_reference = $3
           AND source_system <> '' FOR UPDATE",
    )
    .bind(organisation_code)
    .bind(source_system)
    .bind(source_reference)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => Ok(Some((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))),
        None => Ok(None),
    }
}

/// The person of a provider key (no lock).
pub async fn person_of_source_key(
    pool: &PgPool,
    organisation_code: &str,
    source_system: &str,
    source_reference: &str,
) -> Stored<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT person_id FROM care_relationship
         WHERE organisation_code = $1 AND source_system = $2 AND source_reference = $3
           AND source_system <> ''",
    )
    .bind(organisation_code)
    .bind(source_system)
    .bind(source_reference)
    .fetch_optional(pool)
    .await?)
}

/// A relationship's indexed columns.
#[derive(Debug, Clone)]
pub struct RelationshipRow {
    pub id: Uuid,
    pub person_id: Uuid,
    pub organisation_code: String,
    pub source_system: String,
    pub source_reference: String,
    pub start_time: OffsetDateTime,
    pub end_time: Option<OffsetDateTime>,
}

/// A restriction's indexed columns.
#[derive(Debug, Clone)]
pub struct RestrictionRow {
    pub id: Uuid,
    pub person_id: Uuid,
    pub category: i16,
    pub source_organisation_code: String,
    pub entry_ids: Vec<String>,
    pub viewer_organisation_codes: Vec<String>,
    pub viewer_roles: Vec<i16>,
    pub viewer_user_ids: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
}

pub async fn insert_restriction(tx: &mut Tx, row: &RestrictionRow, body: &[u8]) -> Stored<()> {
    sqlx::query(
        "INSERT INTO restriction (id, person_id, category, source_organisation_code, entry_ids,
             viewer_organisation_codes, viewer_roles, viewer_user_ids, expires_at, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(row.id)
    .bind(row.person_id)
    .bind(row.category)
    .bind(&row.source_organisation_code)
    .bind(&row.entry_ids)
    .bind(&row.viewer_organisation_codes)
    .bind(&row.viewer_roles)
    .bind(&row.viewer_user_ids)
    .bind(row.expires_at)
    .bind(body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A grant's indexed columns.
#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: Uuid,
    pub person_id: Uuid,
    pub user_id: String,
    pub role_profile_id: String,
    pub granted_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

pub async fn insert_grant(tx: &mut Tx, row: &GrantRow, body: &[u8]) -> Stored<()> {
    sqlx::query(
        "INSERT INTO break_glass_grant (id, person_id, user_id, role_profile_id, granted_at,
             expires_at, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id)
    .bind(row.person_id)
    .bind(&row.user_id)
    .bind(&row.role_profile_id)
    .bind(row.granted_at)
    .bind(row.expires_at)
    .bind(body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every fact body of a person, per table; with `current_only`, only facts
/// still in force at `now`.
pub async fn fact_bodies(
    pool: &PgPool,
    table: FactTable,
    person_id: Uuid,
    current_only: bool,
    now: OffsetDateTime,
) -> Stored<Vec<Vec<u8>>> {
    let filter = match (current_only, table) {
        (false, _) => "",
        (true, FactTable::OptOut) => "AND withdrawn_at IS NULL",
        (true, FactTable::Permission) => "AND withdrawn_at IS NULL AND expires_at > $2",
        (true, FactTable::CareRelationship) => "AND (end_time IS NULL OR end_time > $2)",
        (true, FactTable::Restriction) => {
            "AND removed_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
        }
        (true, FactTable::BreakGlassGrant) => "AND expires_at > $2",
    };
    let order = match table {
        FactTable::OptOut => "effective_from",
        FactTable::Permission => "valid_from",
        FactTable::CareRelationship => "start_time",
        FactTable::Restriction => "id",
        FactTable::BreakGlassGrant => "granted_at",
    };
    // $2 is bound even when unused, so every variant has one shape.
    let sql = format!(
        "SELECT body FROM {} WHERE person_id = $1 AND $2::timestamptz IS NOT NULL {filter} ORDER BY {order}",
        table.name()
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(person_id)
        .bind(now)
        .fetch_all(pool)
        .await?)
}

/// Whether `organisation_code` has a live care relationship with the person.
pub async fn has_live_relationship(
    pool: &PgPool,
    person_id: Uuid,
    organisation_code: &str,
    now: OffsetDateTime,
) -> Stored<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM care_relationship WHERE person_id = $1
             AND organisation_code = $2 AND start_time <= $3
             AND (end_time IS NULL OR end_time > $3))",
    )
    .bind(person_id)
    .bind(organisation_code)
    .bind(now)
    .fetch_one(pool)
    .await?)
}
