//! PostgreSQL: a pool for this service's own database, created (with its
//! migrations applied) at start-up.
//!
//! The pool is lazy so a service starts, answers health checks and reports
//! NOT_SERVING while PostgreSQL is unreachable, rather than crash-looping.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::settings::DatabaseSettings;

/// Why the database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// PostgreSQL did not answer or refused the login.
    #[error("postgresql at {host}:{port} is unreachable or refused role {username}: {source}")]
    Unreachable {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
        /// The role used.
        username: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The database name is not a plain identifier.
    #[error("database name {0:?} must be lowercase letters, digits and '_' only")]
    InvalidName(String),
    /// A migration failed; the service must not serve on a half-migrated schema.
    #[error("migrating database {database} failed: {source}")]
    Migration {
        /// The database being migrated.
        database: String,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
}

fn server_options(settings: &DatabaseSettings) -> PgConnectOptions {
    let ssl_mode = if settings.require_tls {
        PgSslMode::Require
    } else {
        PgSslMode::Prefer
    };
    PgConnectOptions::new()
        .host(&settings.host)
        .port(settings.port)
        .username(&settings.username)
        .password(settings.password.expose_secret())
        .ssl_mode(ssl_mode)
        // Statement logging would put identifiers and values in the log.
        .disable_statement_logging()
}

/// A lazy pool on this service's database; nothing connects until first use.
pub fn lazy_pool(settings: &DatabaseSettings) -> PgPool {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .connect_lazy_with(server_options(settings).database(&settings.name))
}

/// Creates the service's database when missing, then applies `migrator` to it.
///
/// Safe to run from many replicas at once: a concurrent CREATE DATABASE is
/// tolerated and sqlx serialises migrations with an advisory lock.
pub async fn prepare_database(
    settings: &DatabaseSettings,
    pool: &PgPool,
    migrator: Option<&Migrator>,
) -> Result<(), DatabaseError> {
    create_database_if_missing(settings).await?;
    if let Some(migrator) = migrator {
        migrator
            .run(pool)
            .await
            .map_err(|source| DatabaseError::Migration {
                database: settings.name.clone(),
                source,
            })?;
    }
    Ok(())
}

async fn create_database_if_missing(settings: &DatabaseSettings) -> Result<(), DatabaseError> {
    let name_is_identifier = !settings.name.is_empty()
        && settings.name.chars().all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
        });
    if !name_is_identifier {
        return Err(DatabaseError::InvalidName(settings.name.clone()));
    }
    let unreachable = |source| DatabaseError::Unreachable {
        host: settings.host.clone(),
        port: settings.port,
        username: settings.username.clone(),
        source,
    };
    let mut connection = server_options(settings)
        .database("postgres")
        .connect()
        .await
        .map_err(unreachable)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&settings.name)
            .fetch_one(&mut connection)
            .await
            .map_err(unreachable)?;
    if !exists {
        // The name was checked to be a plain identifier above, so quoting is enough.
        let statement = sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{}\"", settings.name));
        match sqlx::raw_sql(statement).execute(&mut connection).await {
            Ok(_) => tracing::info!(database = %settings.name, "created database"),
            // Another replica created it first (duplicate_database / unique_violation).
            Err(sqlx::Error::Database(error))
                if matches!(error.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(other) => return Err(unreachable(other)),
        }
    }
    connection.close().await.map_err(unreachable)?;
    Ok(())
}

/// One round trip, for health checks.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    pool.execute("SELECT 1").await.map(|_| ())
}
