//! Identity's SQL. Every function is one statement or one transaction; the
//! rules live in `domain`, the orchestration in the callers.

use sqlx::types::Json;
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::validation::{
    Contact, NewOrganisation, NewRoleProfile, PersonName, Registration,
};
use crate::error::IdentityError;

type Stored<T> = Result<T, IdentityError>;

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.code().as_deref() == Some("23505"))
}

fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.code().as_deref() == Some("23503"))
}

/// An organisation as stored.
#[derive(Debug, Clone, FromRow)]
pub struct OrganisationRow {
    pub code: String,
    pub name: String,
    pub organisation_type: i32,
    pub dp_contact: Json<Contact>,
    pub active: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub async fn insert_organisation(
    pool: &PgPool,
    organisation: &NewOrganisation,
) -> Stored<OrganisationRow> {
    sqlx::query_as(
        "INSERT INTO organisations (code, name, organisation_type, dp_contact) VALUES ($1, $2, $3, $4) RETURNING *",
    )
    .bind(&organisation.code)
    .bind(&organisation.name)
    .bind(organisation.organisation_type as i32)
    .bind(Json(&organisation.contact))
    .fetch_one(pool)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            IdentityError::AlreadyExists(format!("organisation {} exists already", organisation.code))
        } else {
            error.into()
        }
    })
}

pub async fn get_organisation(pool: &PgPool, code: &str) -> Stored<Option<OrganisationRow>> {
    Ok(
        sqlx::query_as("SELECT * FROM organisations WHERE code = $1")
            .bind(code)
            .fetch_optional(pool)
            .await?,
    )
}

/// Filters of ListOrganisations, checked.
#[derive(Debug, Clone, Default)]
pub struct OrganisationFilter {
    pub organisation_type: Option<i32>,
    pub codes: Vec<String>,
    pub name_contains: String,
    pub include_inactive: bool,
}

pub async fn list_organisations(
    pool: &PgPool,
    filter: &OrganisationFilter,
    after_code: Option<&str>,
    limit: u32,
) -> Stored<Vec<OrganisationRow>> {
    Ok(sqlx::query_as(
        "SELECT * FROM organisations
         WHERE ($1::integer IS NULL OR organisation_type = $1)
           AND (cardinality($2::text[]) = 0 OR code = ANY($2))
           AND ($3 = '' OR name ILIKE '%' || $3 || '%')
           AND ($4 OR active)
           AND ($5::text IS NULL OR code > $5)
         ORDER BY code LIMIT $6",
    )
    .bind(filter.organisation_type)
    .bind(&filter.codes)
    .bind(filter.name_contains.replace('%', "\\%").replace('_', "\\_"))
    .bind(filter.include_inactive)
    .bind(after_code)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

/// A user as stored (without role profiles).
#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub name: Json<PersonName>,
    pub email: String,
    pub registrations: Json<Vec<Registration>>,
    pub status: String,
    pub password_hash: String,
    pub failed_attempts: i32,
    pub locked_until: Option<OffsetDateTime>,
    pub last_authenticated_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl UserRow {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// A role profile as stored.
#[derive(Debug, Clone, FromRow)]
pub struct RoleProfileRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub organisation_code: String,
    pub role: i32,
    pub role_code: String,
    pub job_title: String,
    pub created_at: OffsetDateTime,
    pub removed_at: Option<OffsetDateTime>,
}

/// A user to create, checked.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub name: PersonName,
    pub email: String,
    pub registrations: Vec<Registration>,
    pub password_hash: String,
    pub role_profiles: Vec<NewRoleProfile>,
    pub external_subjects: Vec<String>,
}

pub async fn insert_user(pool: &PgPool, user: &NewUser) -> Stored<Uuid> {
    let user_id = Uuid::now_v7();
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "INSERT INTO users (id, username, name, email, registrations, status, password_hash)
         VALUES ($1, $2, $3, $4, $5, 'active', $6)",
    )
    .bind(user_id)
    .bind(&user.username)
    .bind(Json(&user.name))
    .bind(&user.email)
    .bind(Json(&user.registrations))
    .bind(&user.password_hash)
    .execute(&mut *transaction)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            IdentityError::AlreadyExists(format!("username {} is taken", user.username))
        } else {
            error.into()
        }
    })?;
    for profile in &user.role_profiles {
        insert_role_profile_in(&mut transaction, user_id, profile).await?;
    }
    for subject in &user.external_subjects {
        sqlx::query("INSERT INTO external_subjects (external_subject, user_id) VALUES ($1, $2)")
            .bind(subject)
            .bind(user_id)
            .execute(&mut *transaction)
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    IdentityError::AlreadyExists(format!(
                        "external subject {subject} is mapped to another user"
                    ))
                } else {
                    error.into()
                }
            })?;
    }
    transaction.commit().await?;
    Ok(user_id)
}

async fn insert_role_profile_in(
    transaction: &mut Transaction<'_, Postgres>,
    user_id: Uuid,
    profile: &NewRoleProfile,
) -> Stored<RoleProfileRow> {
    sqlx::query_as(
        "INSERT INTO role_profiles (id, user_id, organisation_code, role, role_code, job_title)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(&profile.organisation_code)
    .bind(profile.role as i32)
    .bind(&profile.role_code)
    .bind(&profile.job_title)
    .fetch_one(&mut **transaction)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            IdentityError::AlreadyExists(format!(
                "the user already has an active {} profile at {}",
                profile.role.as_str_name(),
                profile.organisation_code
            ))
        } else if is_foreign_key_violation(&error) {
            IdentityError::NotFound(format!(
                "organisation {} does not exist",
                profile.organisation_code
            ))
        } else {
            error.into()
        }
    })
}

pub async fn insert_role_profile(
    pool: &PgPool,
    user_id: Uuid,
    profile: &NewRoleProfile,
) -> Stored<RoleProfileRow> {
    let mut transaction = pool.begin().await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(user_id)
        .fetch_one(&mut *transaction)
        .await?;
    if !exists {
        return Err(IdentityError::NotFound(format!(
            "user {user_id} does not exist"
        )));
    }
    let row = insert_role_profile_in(&mut transaction, user_id, profile).await?;
    transaction.commit().await?;
    Ok(row)
}

pub async fn get_user(pool: &PgPool, user_id: Uuid) -> Stored<Option<UserRow>> {
    Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?)
}

pub async fn get_user_by_username(pool: &PgPool, username: &str) -> Stored<Option<UserRow>> {
    Ok(sqlx::query_as("SELECT * FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(pool)
        .await?)
}

pub async fn user_for_external_subject(
    pool: &PgPool,
    external_subject: &str,
) -> Stored<Option<UserRow>> {
    Ok(sqlx::query_as(
        "SELECT users.* FROM users JOIN external_subjects ON external_subjects.user_id = users.id
         WHERE external_subjects.external_subject = $1",
    )
    .bind(external_subject)
    .fetch_optional(pool)
    .await?)
}

pub async fn external_subjects(pool: &PgPool, user_id: Uuid) -> Stored<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT external_subject FROM external_subjects WHERE user_id = $1 ORDER BY 1",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

pub async fn role_profiles(pool: &PgPool, user_id: Uuid) -> Stored<Vec<RoleProfileRow>> {
    Ok(
        sqlx::query_as("SELECT * FROM role_profiles WHERE user_id = $1 ORDER BY created_at, id")
            .bind(user_id)
            .fetch_all(pool)
            .await?,
    )
}

pub async fn get_role_profile(
    pool: &PgPool,
    role_profile_id: Uuid,
) -> Stored<Option<RoleProfileRow>> {
    Ok(sqlx::query_as("SELECT * FROM role_profiles WHERE id = $1")
        .bind(role_profile_id)
        .fetch_optional(pool)
        .await?)
}

/// Marks a profile removed; `None` when it was removed already.
pub async fn remove_role_profile(
    pool: &PgPool,
    role_profile_id: Uuid,
) -> Stored<Option<RoleProfileRow>> {
    Ok(sqlx::query_as(
        "UPDATE role_profiles SET removed_at = now() WHERE id = $1 AND removed_at IS NULL RETURNING *",
    )
    .bind(role_profile_id)
    .fetch_optional(pool)
    .await?)
}

pub async fn set_user_status(
    pool: &PgPool,
    user_id: Uuid,
    status: &str,
) -> Stored<Option<UserRow>> {
    Ok(sqlx::query_as(
        "UPDATE users SET status = $2, updated_at = now(),
             failed_attempts = CASE WHEN $2 = 'active' THEN 0 ELSE failed_attempts END,
             locked_until = CASE WHEN $2 = 'active' THEN NULL ELSE locked_until END
         WHERE id = $1 RETURNING *",
    )
    .bind(user_id)
    .bind(status)
    .fetch_optional(pool)
    .await?)
}

pub async fn count_other_active_administrators(
    pool: &PgPool,
    user_id: Uuid,
    administrator_role: i32,
) -> Stored<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(DISTINCT users.id) FROM users JOIN role_profiles ON role_profiles.user_id = users.id
         WHERE users.status = 'active' AND users.id <> $1 AND role_profiles.role = $2 AND role_profiles.removed_at IS NULL",
    )
    .bind(user_id)
    .bind(administrator_role)
    .fetch_one(pool)
    .await?)
}

pub async fn record_failed_sign_in(
    pool: &PgPool,
    user_id: Uuid,
    failed_attempts: u32,
    locked_until: Option<OffsetDateTime>,
) -> Stored<()> {
    sqlx::query("UPDATE users SET failed_attempts = $2, locked_until = COALESCE($3, locked_until) WHERE id = $1")
        .bind(user_id)
        .bind(i32::try_from(failed_attempts).unwrap_or(i32::MAX))
        .bind(locked_until)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn record_successful_sign_in(pool: &PgPool, user_id: Uuid) -> Stored<()> {
    sqlx::query("UPDATE users SET failed_attempts = 0, locked_until = NULL, last_authenticated_at = now() WHERE id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A service account as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ServiceAccountRow {
    pub client_id: String,
    pub name: String,
    pub organisation_code: String,
    pub allowed_scopes: Vec<String>,
    pub secret_hash: String,
    pub active: bool,
    pub created_at: OffsetDateTime,
}

pub async fn insert_service_account(
    pool: &PgPool,
    account: &ServiceAccountRow,
) -> Stored<ServiceAccountRow> {
    sqlx::query_as(
        "INSERT INTO service_accounts (client_id, name, organisation_code, allowed_scopes, secret_hash)
         VALUES ($1, $2, $3, $4, $5) RETURNING *",
    )
    .bind(&account.client_id)
    .bind(&account.name)
    .bind(&account.organisation_code)
    .bind(&account.allowed_scopes)
    .bind(&account.secret_hash)
    .fetch_one(pool)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            IdentityError::AlreadyExists(format!("service account {} exists already", account.name))
        } else if is_foreign_key_violation(&error) {
            IdentityError::NotFound(format!("organisation {} does not exist", account.organisation_code))
        } else {
            error.into()
        }
    })
}

/// What [`upsert_declared_service_account`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
    Unchanged,
}

/// Creates a service account declared in settings, or brings its name,
/// organisation, scopes and secret up to date; safe for replicas starting
/// together (one statement, keyed on the client id).
pub async fn upsert_declared_service_account(
    pool: &PgPool,
    account: &ServiceAccountRow,
) -> Stored<Upserted> {
    let inserted: Option<bool> = sqlx::query_scalar(
        "INSERT INTO service_accounts (client_id, name, organisation_code, allowed_scopes, secret_hash)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (client_id) DO UPDATE SET
             name = EXCLUDED.name, organisation_code = EXCLUDED.organisation_code,
             allowed_scopes = EXCLUDED.allowed_scopes, secret_hash = EXCLUDED.secret_hash
         WHERE (service_accounts.name, service_accounts.organisation_code,
                service_accounts.allowed_scopes, service_accounts.secret_hash)
               IS DISTINCT FROM
               (EXCLUDED.name, EXCLUDED.organisation_code, EXCLUDED.allowed_scopes, EXCLUDED.secret_hash)
         RETURNING (xmax = 0)",
    )
    .bind(&account.client_id)
    .bind(&account.name)
    .bind(&account.organisation_code)
    .bind(&account.allowed_scopes)
    .bind(&account.secret_hash)
    .fetch_optional(pool)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            IdentityError::AlreadyExists(format!(
                "another service account is named {} already",
                account.name
            ))
        } else {
            error.into()
        }
    })?;
    Ok(match inserted {
        Some(true) => Upserted::Created,
        Some(false) => Upserted::Updated,
        None => Upserted::Unchanged,
    })
}

pub async fn get_service_account(
    pool: &PgPool,
    client_id: &str,
) -> Stored<Option<ServiceAccountRow>> {
    Ok(
        sqlx::query_as("SELECT * FROM service_accounts WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// A session as stored.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub role_profile_id: Uuid,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Starts a session and stores the hash of its first refresh token.
pub async fn create_session(
    pool: &PgPool,
    user_id: Uuid,
    role_profile_id: Uuid,
    expires_at: OffsetDateTime,
    refresh_token_hash: &[u8],
) -> Stored<SessionRow> {
    let mut transaction = pool.begin().await?;
    let session: SessionRow = sqlx::query_as(
        "INSERT INTO sessions (id, user_id, role_profile_id, expires_at) VALUES ($1, $2, $3, $4) RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(role_profile_id)
    .bind(expires_at)
    .fetch_one(&mut *transaction)
    .await?;
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)")
        .bind(refresh_token_hash)
        .bind(session.id)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(session)
}

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// First use: marked used, successor stored.
    Rotated(SessionRow),
    /// Already used before: a copy is in someone else's hands.
    Reused(SessionRow),
    /// No such token.
    Unknown,
}

/// Marks the token used and stores its successor atomically; the `used_at IS
/// NULL` guard makes two concurrent uses end as one rotation and one reuse.
pub async fn rotate_refresh_token(
    pool: &PgPool,
    token_hash: &[u8],
    successor_hash: &[u8],
) -> Stored<RefreshOutcome> {
    let mut transaction = pool.begin().await?;
    let first_use: Option<Uuid> = sqlx::query_scalar(
        "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL RETURNING session_id",
    )
    .bind(token_hash)
    .fetch_optional(&mut *transaction)
    .await?;
    let outcome = match first_use {
        Some(session_id) => {
            sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)")
                .bind(successor_hash)
                .bind(session_id)
                .execute(&mut *transaction)
                .await?;
            let session = session_in(&mut transaction, session_id).await?;
            RefreshOutcome::Rotated(session)
        }
        None => {
            let reused: Option<Uuid> =
                sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&mut *transaction)
                    .await?;
            match reused {
                Some(session_id) => {
                    RefreshOutcome::Reused(session_in(&mut transaction, session_id).await?)
                }
                None => RefreshOutcome::Unknown,
            }
        }
    };
    transaction.commit().await?;
    Ok(outcome)
}

async fn session_in(
    transaction: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
) -> Stored<SessionRow> {
    Ok(sqlx::query_as("SELECT * FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_one(&mut **transaction)
        .await?)
}

pub async fn get_session(pool: &PgPool, session_id: Uuid) -> Stored<Option<SessionRow>> {
    Ok(sqlx::query_as("SELECT * FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_optional(pool)
        .await?)
}

/// Which sessions to revoke.
#[derive(Debug, Clone, Copy)]
pub enum SessionSelector {
    One(Uuid),
    OfUser(Uuid),
    OfRoleProfile(Uuid),
}

/// Revokes the selected live sessions; returns what was revoked.
pub async fn revoke_sessions(
    pool: &PgPool,
    selector: SessionSelector,
    reason: i32,
) -> Stored<Vec<SessionRow>> {
    let (condition, id) = match selector {
        SessionSelector::One(id) => ("id = $1", id),
        SessionSelector::OfUser(id) => ("user_id = $1", id),
        SessionSelector::OfRoleProfile(id) => ("role_profile_id = $1", id),
    };
    let statement = format!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE {condition} AND revoked_at IS NULL RETURNING *"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .bind(id)
        .bind(reason)
        .fetch_all(pool)
        .await?)
}

/// A signing key as stored.
#[derive(Clone, FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub private_pkcs8: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub activated_at: Option<OffsetDateTime>,
    pub retired_at: Option<OffsetDateTime>,
}

pub async fn signing_keys(pool: &PgPool) -> Stored<Vec<SigningKeyRow>> {
    Ok(
        sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at")
            .fetch_all(pool)
            .await?,
    )
}

/// Runs `apply` under a transaction-scoped advisory lock, so replicas never
/// rotate keys at the same time.
pub async fn with_key_rotation_lock(pool: &PgPool) -> Stored<Transaction<'static, Postgres>> {
    let mut transaction = pool.begin().await?;
    // Any constant works; it only has to be the same in every replica.
    sqlx::query("SELECT pg_advisory_xact_lock(7312001)")
        .execute(&mut *transaction)
        .await?;
    Ok(transaction)
}

pub async fn keys_in(
    transaction: &mut Transaction<'static, Postgres>,
) -> Stored<Vec<SigningKeyRow>> {
    Ok(
        sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at")
            .fetch_all(&mut **transaction)
            .await?,
    )
}

pub async fn insert_key(
    transaction: &mut Transaction<'static, Postgres>,
    key: &mcr_auth::SigningKeyPair,
    activate: bool,
) -> Stored<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, private_pkcs8, public_key, activated_at)
         VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END)",
    )
    .bind(&key.kid)
    .bind(&key.private_pkcs8_der)
    .bind(key.public_key.as_slice())
    .bind(activate)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn promote_key(
    transaction: &mut Transaction<'static, Postgres>,
    next_kid: &str,
    retiring_kid: Option<&str>,
) -> Stored<()> {
    if let Some(retiring) = retiring_kid {
        sqlx::query("UPDATE signing_keys SET retired_at = now() WHERE kid = $1")
            .bind(retiring)
            .execute(&mut **transaction)
            .await?;
    }
    sqlx::query("UPDATE signing_keys SET activated_at = now() WHERE kid = $1")
        .bind(next_kid)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// The session and owner of a refresh token.
pub async fn session_of_refresh_token(
    pool: &PgPool,
    token_hash: &[u8],
) -> Stored<Option<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "SELECT sessions.id, sessions.user_id FROM refresh_tokens
         JOIN sessions ON sessions.id = refresh_tokens.session_id WHERE refresh_tokens.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?)
}
