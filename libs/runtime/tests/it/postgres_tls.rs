//! PostgreSQL TLS modes against the shared PostgreSQL, which serves TLS with
//! its own (Debian "snakeoil") certificate.

use mcr_runtime::postgres::{DatabaseTlsMode, DatabaseTlsSettings};
use mcr_runtime::settings::DatabaseSettings;

use crate::certificates::Authority;

fn settings(tls: DatabaseTlsSettings) -> DatabaseSettings {
    DatabaseSettings {
        host: "127.0.0.1".to_owned(),
        port: 5432,
        username: "mcr".to_owned(),
        password: secrecy::SecretString::from("mcr"),
        name: "postgres".to_owned(),
        max_connections: 1,
        connect_timeout_ms: 3000,
        require_tls: false,
        tls,
    }
}

/// Whether the pool's connection is encrypted, as the server sees it.
async fn encrypted(settings: &DatabaseSettings) -> Result<bool, sqlx::Error> {
    let pool = mcr_runtime::postgres::lazy_pool(settings);
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
}

#[tokio::test]
async fn the_tls_mode_decides_whether_the_connection_is_encrypted_and_verified() {
    let require = settings(DatabaseTlsSettings {
        mode: DatabaseTlsMode::Require,
        ..DatabaseTlsSettings::default()
    });
    assert!(
        encrypted(&require).await.unwrap(),
        "mode require must give a TLS connection (the local PostgreSQL has ssl = on)"
    );
    let disable = settings(DatabaseTlsSettings {
        mode: DatabaseTlsMode::Disable,
        ..DatabaseTlsSettings::default()
    });
    assert!(
        !encrypted(&disable).await.unwrap(),
        "mode disable is plaintext"
    );

    let directory = tempfile::tempdir().unwrap();
    let stranger = Authority::new(directory.path(), "stranger");
    let verify = settings(DatabaseTlsSettings {
        mode: DatabaseTlsMode::VerifyFull,
        ca_path: Some(stranger.ca_path.clone()),
        ..DatabaseTlsSettings::default()
    });
    let error = encrypted(&verify)
        .await
        .expect_err("a server certificate not from the configured CA must be refused");
    assert!(
        !matches!(error, sqlx::Error::Database(_)),
        "refused in the handshake, not by the server: {error}"
    );
}
