//! PostgreSQL: a pool for this service's own database, created (with its
//! migrations applied) at start-up.
//!
//! The pool is lazy so a service starts, answers health checks and reports
//! NOT_SERVING while PostgreSQL is unreachable, rather than crash-looping.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::settings::DatabaseSettings;
use crate::tls::TlsError;

/// How the connection to PostgreSQL uses TLS (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseTlsMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, else plaintext (the default, for dev).
    #[default]
    Prefer,
    /// TLS always, without checking the server's certificate.
    Require,
    /// TLS, and the server's certificate must chain to `ca_path`.
    VerifyCa,
    /// As `verify-ca`, and the certificate must name `database.host`.
    VerifyFull,
}

/// PostgreSQL TLS (`[database.tls]`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct DatabaseTlsSettings {
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
    pub mode: DatabaseTlsMode,
    /// The CA (PEM) the server's certificate must chain to; without it the
    /// verifying modes trust the public web roots.
    pub ca_path: Option<PathBuf>,
    /// A client certificate (PEM), for servers that authenticate by certificate.
    pub cert_path: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_path: Option<PathBuf>,
}

/// The mode in force: `require_tls` raises `prefer` to `require`.
fn effective_mode(settings: &DatabaseSettings) -> PgSslMode {
    match (settings.tls.mode, settings.require_tls) {
        (DatabaseTlsMode::Disable, _) => PgSslMode::Disable,
        (DatabaseTlsMode::Prefer, false) => PgSslMode::Prefer,
        (DatabaseTlsMode::Prefer | DatabaseTlsMode::Require, _) => PgSslMode::Require,
        (DatabaseTlsMode::VerifyCa, _) => PgSslMode::VerifyCa,
        (DatabaseTlsMode::VerifyFull, _) => PgSslMode::VerifyFull,
    }
}

/// Checks the TLS settings fit together and their files are usable.
pub fn check_tls(settings: &DatabaseSettings) -> Result<(), TlsError> {
    if settings.require_tls && settings.tls.mode == DatabaseTlsMode::Disable {
        return Err(TlsError::Invalid {
            setting: "database.tls.mode".to_owned(),
            reason: "is disable but database.require_tls is true: choose one".to_owned(),
        });
    }
    let tls = &settings.tls;
    if let Some(path) = &tls.ca_path {
        crate::tls::read_certificates("database.tls.ca_path", path)?;
    }
    match (&tls.cert_path, &tls.key_path) {
        (Some(cert_path), Some(key_path)) => {
            crate::tls::read_certificates("database.tls.cert_path", cert_path)?;
            crate::tls::read_private_key("database.tls.key_path", key_path)?;
        }
        (None, None) => {}
        _ => {
            return Err(TlsError::Invalid {
                setting: "database.tls".to_owned(),
                reason: "cert_path and key_path go together: set both or neither".to_owned(),
            });
        }
    }
    Ok(())
}

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
    let mut options = PgConnectOptions::new()
        .host(&settings.host)
        .port(settings.port)
        .username(&settings.username)
        .password(settings.password.expose_secret())
        .ssl_mode(effective_mode(settings))
        // Statement logging would put identifiers and values in the log.
        .disable_statement_logging();
    if let Some(path) = &settings.tls.ca_path {
        options = options.ssl_root_cert(path);
    }
    if let (Some(cert_path), Some(key_path)) = (&settings.tls.cert_path, &settings.tls.key_path) {
        options = options.ssl_client_cert(cert_path).ssl_client_key(key_path);
    }
    options
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
