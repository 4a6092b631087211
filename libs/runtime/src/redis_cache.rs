//! Redis: a lazily connected, self-reconnecting connection with a key prefix.
//!
//! Redis only ever holds caches, so every command has a short timeout and
//! callers treat an error as a miss: losing Redis costs speed, never correctness.
//!
//! TLS is a `rediss://` URL; credentials go in the URL
//! (`rediss://user:password@host:6380/0`), which is why it is a secret.

use std::path::PathBuf;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::settings::RedisSettings;
use crate::tls::TlsError;

/// TLS for a `rediss://` URL (`[redis.tls]`). Without `ca_path` the server's
/// certificate must chain to the public web roots.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct RedisTlsSettings {
    /// The CA (PEM) the server's certificate must chain to.
    pub ca_path: Option<PathBuf>,
    /// A client certificate (PEM), for servers that verify clients.
    pub cert_path: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_path: Option<PathBuf>,
}

impl RedisTlsSettings {
    /// Checks the files are usable.
    pub fn check(&self) -> Result<(), TlsError> {
        self.certificates().map(|_| ())
    }

    fn certificates(&self) -> Result<Option<redis::TlsCertificates>, TlsError> {
        let root_cert = match &self.ca_path {
            Some(path) => Some(crate::tls::read_certificates("redis.tls.ca_path", path)?),
            None => None,
        };
        let client_tls = match (&self.cert_path, &self.key_path) {
            (Some(cert_path), Some(key_path)) => Some(redis::ClientTlsConfig {
                client_cert: crate::tls::read_certificates("redis.tls.cert_path", cert_path)?,
                client_key: crate::tls::read_private_key("redis.tls.key_path", key_path)?,
            }),
            (None, None) => None,
            _ => {
                return Err(TlsError::Invalid {
                    setting: "redis.tls".to_owned(),
                    reason: "cert_path and key_path go together: set both or neither".to_owned(),
                });
            }
        };
        Ok(
            (root_cert.is_some() || client_tls.is_some()).then_some(redis::TlsCertificates {
                client_tls,
                root_cert,
            }),
        )
    }
}

/// Why the Redis settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL is not a Redis URL (its text is not repeated: it may hold a password).
    #[error("invalid settings: redis.url: {0}")]
    Url(#[from] redis::RedisError),
    /// A TLS file or combination is unusable.
    #[error("invalid settings: {0}")]
    Tls(#[from] TlsError),
}

/// A Redis connection scoped to a key prefix.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    key_prefix: String,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: show only the prefix.
        formatter
            .debug_struct("RedisCache")
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl RedisCache {
    /// Prepares the connection without connecting; the first command connects.
    pub fn new(settings: &RedisSettings) -> Result<Self, RedisSetupError> {
        let url = settings.url.expose_secret();
        let client = match settings.tls.certificates()? {
            Some(certificates) if url.starts_with("rediss://") => {
                redis::Client::build_with_tls(url, certificates)?
            }
            Some(_) => {
                return Err(TlsError::Invalid {
                    setting: "redis.tls".to_owned(),
                    reason: "CA or client certificate set but redis.url is not rediss://"
                        .to_owned(),
                }
                .into());
            }
            None => redis::Client::open(url)?,
        };
        let timeout = Duration::from_millis(settings.timeout_ms);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            connection,
            key_prefix: settings.key_prefix.clone(),
        })
    }

    /// A connection handle; cheap to clone.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// `key` with this deployment's prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{}", self.key_prefix, key)
    }

    /// One round trip, for health checks.
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
    }
}
