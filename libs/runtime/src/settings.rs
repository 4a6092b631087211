//! Typed settings, layered: built-in defaults → optional TOML file → `MCR_*`
//! environment variables.
//!
//! Environment variables use `__` between levels: `MCR_GRPC__PORT=6000` sets
//! `grpc.port`; `MCR_IDENTITY__ACCESS_TOKEN_TTL_SECONDS` sets a key of the
//! identity service's own section. `MCR_CONFIG_FILE` names the optional file.
//! The environment is passed in as a map so tests supply their own instead of
//! mutating the process's.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::nats::NatsSecuritySettings;
use crate::postgres::DatabaseTlsSettings;
use crate::redis_cache::RedisTlsSettings;
use crate::service::ServiceSpec;
use crate::tls::{ClientTlsSettings, ServerTlsSettings, TlsError};

mod caller_limits;
pub use caller_limits::{CallerLimits, RateSettings};

/// Names the optional settings file.
pub const CONFIG_FILE_VARIABLE: &str = "MCR_CONFIG_FILE";

const DEFAULTS: &str = r#"
[grpc]
host = "0.0.0.0"
max_message_bytes = 4194304
request_timeout_ms = 10000
concurrency_limit_per_connection = 256
max_concurrent_streams = 200
drain_timeout_ms = 20000

[admin]
host = "0.0.0.0"

[database]
host = "127.0.0.1"
port = 5432
username = "mcr"
password = "mcr"
max_connections = 10
connect_timeout_ms = 3000
require_tls = false

[nats]
url = "nats://127.0.0.1:4222"
namespace = ""
connect_timeout_ms = 3000

[redis]
url = "redis://127.0.0.1:6379"
key_prefix = "mcr:"
timeout_ms = 500

[auth]
issuer = "https://identity.mcr.local"
audience = "mcr"
identity_url = "http://127.0.0.1:50051"
leeway_seconds = 30
client_id = ""
client_secret = ""

[telemetry]
log_format = "human"
log_filter = "info"
"#;

/// Why settings could not be loaded; the message names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value is missing, malformed or of the wrong type.
    #[error("invalid settings: {0}")]
    Invalid(#[from] config::ConfigError),
    /// A value parsed but is not acceptable.
    #[error("invalid settings: {key}: {reason}")]
    Rejected {
        /// The dotted key, as in the file (`grpc.port`).
        key: &'static str,
        /// What is wrong and what to do about it.
        reason: String,
    },
    /// A TLS file is missing or unusable; the message names the setting.
    #[error("invalid settings: {0}")]
    Tls(#[from] TlsError),
}

/// Everything a service is configured with: the shared runtime settings and
/// the service's own section `S`.
#[derive(Debug, Clone)]
pub struct Settings<S> {
    /// Settings every service shares.
    pub runtime: RuntimeSettings,
    /// The service's own section (`[identity]`, `[record_aggregator]`, …).
    pub service: S,
}

/// Settings every service shares.
#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeSettings {
    /// The gRPC listener.
    pub grpc: GrpcSettings,
    /// The admin HTTP listener (`/metrics`, `/healthz`).
    pub admin: AdminSettings,
    /// PostgreSQL.
    pub database: DatabaseSettings,
    /// NATS with JetStream.
    pub nats: NatsSettings,
    /// NATS TLS and credentials: the `nats.tls.*`, `nats.user`, … keys of
    /// the same `[nats]` section, kept apart so code that builds a
    /// [`NatsSettings`] by hand (tests, tools) is unaffected.
    #[serde(skip)]
    pub nats_security: NatsSecuritySettings,
    /// Redis.
    pub redis: RedisSettings,
    /// Access tokens: who issues them and for whom.
    pub auth: AuthSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
}

/// Access tokens: every service verifies identity's tokens locally.
#[derive(Clone, Deserialize)]
pub struct AuthSettings {
    /// The `iss` identity signs and every verifier expects.
    pub issuer: String,
    /// The `aud` identity signs and every verifier expects.
    pub audience: String,
    /// Where the identity service answers gRPC (JWKS is fetched from there).
    pub identity_url: String,
    /// Clock skew tolerated on token times, in seconds.
    pub leeway_seconds: u64,
    /// This service's own service account (client credentials), for calls it
    /// makes to other services; empty when it calls none.
    pub client_id: String,
    /// The service account's secret; set it from a Secret, never in a file.
    pub client_secret: String,
    /// How much each verified caller may ask of one replica
    /// (`[auth.caller_limits]`); enforced by every service's auth layer.
    #[serde(default)]
    pub caller_limits: CallerLimits,
}

// By hand, so that logging the settings never prints the client secret.
impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AuthSettings")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("identity_url", &self.identity_url)
            .field("leeway_seconds", &self.leeway_seconds)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("caller_limits", &self.caller_limits)
            .finish()
    }
}

/// The gRPC listener and its limits.
#[derive(Debug, Clone, Deserialize)]
pub struct GrpcSettings {
    /// Address to bind.
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Server-side deadline for every call, in milliseconds.
    pub request_timeout_ms: u64,
    /// Concurrent requests allowed on one connection.
    pub concurrency_limit_per_connection: usize,
    /// HTTP/2 streams (calls) one connection may have open at once: one
    /// client cannot hold the server's resources with endless streams.
    pub max_concurrent_streams: u32,
    /// How long in-flight calls may finish after SIGTERM, in milliseconds.
    pub drain_timeout_ms: u64,
    /// Serve TLS (and mutual TLS with `client_ca_path`); absent: plaintext.
    #[serde(default)]
    pub tls: Option<ServerTlsSettings>,
    /// How this service connects to other services over gRPC.
    #[serde(default)]
    pub client_tls: ClientTlsSettings,
}

impl GrpcSettings {
    /// The socket address to bind.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The server-side deadline for every call.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The grace period for in-flight calls at shutdown.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

/// The admin HTTP listener.
#[derive(Debug, Clone, Deserialize)]
pub struct AdminSettings {
    /// Address to bind.
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
}

impl AdminSettings {
    /// The socket address to bind.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// PostgreSQL: the server, the role, and this service's own database.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Role to log in as; needs CREATEDB the first time so the service can
    /// create its own database.
    pub username: String,
    /// The role's password; never printed.
    pub password: SecretString,
    /// This service's database, created at start-up when missing.
    pub name: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Refuse to connect without TLS (at least `tls.mode = "require"`).
    pub require_tls: bool,
    /// TLS mode and the CA to verify the server with (`[database.tls]`).
    #[serde(default)]
    pub tls: DatabaseTlsSettings,
}

/// NATS with JetStream.
#[derive(Debug, Clone, Deserialize)]
pub struct NatsSettings {
    /// Server URL(s), comma separated.
    pub url: String,
    /// Prefix for every subject and stream name, so tests (or two platforms
    /// sharing one NATS) never see each other's messages. Empty in production.
    pub namespace: String,
    /// How long one connection attempt may take, in milliseconds.
    pub connect_timeout_ms: u64,
}

/// Redis.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// Server URL; may carry a password, so never printed.
    pub url: SecretString,
    /// Prefix for every key this platform writes.
    pub key_prefix: String,
    /// Per-command timeout in milliseconds: a slow cache must never slow a read.
    pub timeout_ms: u64,
    /// CA and client certificate for `rediss://` URLs (`[redis.tls]`).
    #[serde(default)]
    pub tls: RedisTlsSettings,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs and traces.
#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// A `RUST_LOG`-style filter; `RUST_LOG` itself wins when set.
    pub log_filter: String,
    /// OTLP/gRPC endpoint for traces (`http://collector:4317`); none exports nothing.
    pub otlp_endpoint: Option<String>,
}

impl<S: DeserializeOwned + Default> Settings<S> {
    /// Loads settings for `spec` from defaults, the optional file named by
    /// `MCR_CONFIG_FILE`, and `MCR_*` variables of `environment`.
    pub fn load(
        spec: &ServiceSpec,
        environment: &HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let mut builder = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .set_default("grpc.port", spec.default_grpc_port)?
            .set_default("admin.port", spec.default_admin_port)?
            .set_default("database.name", format!("mcr_{}", spec.config_section))?;
        if let Some(path) = environment.get(CONFIG_FILE_VARIABLE) {
            let path = PathBuf::from(path);
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        let mcr_variables = environment
            .iter()
            .filter(|(name, _)| name.starts_with("MCR_") && name.as_str() != CONFIG_FILE_VARIABLE)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let config = builder
            .add_source(
                Environment::with_prefix("MCR")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(mcr_variables)),
            )
            .build()?;

        let mut runtime: RuntimeSettings = config.clone().try_deserialize()?;
        runtime.nats_security = config.get("nats")?;
        validate(&runtime)?;
        let service = match config.get::<S>(spec.config_section) {
            Ok(section) => section,
            Err(config::ConfigError::NotFound(_)) => S::default(),
            Err(other) => return Err(other.into()),
        };
        Ok(Self { runtime, service })
    }
}

fn validate(runtime: &RuntimeSettings) -> Result<(), SettingsError> {
    if runtime.grpc.max_message_bytes < 1024 {
        return Err(SettingsError::Rejected {
            key: "grpc.max_message_bytes",
            reason: "must be at least 1024 bytes".to_owned(),
        });
    }
    if runtime.grpc.request_timeout_ms == 0 {
        return Err(SettingsError::Rejected {
            key: "grpc.request_timeout_ms",
            reason: "must be greater than zero".to_owned(),
        });
    }
    let namespace_is_a_subject_token =
        runtime.nats.namespace.chars().all(|character| {
            character.is_ascii_alphanumeric() || character == '_' || character == '-'
        });
    if !namespace_is_a_subject_token {
        return Err(SettingsError::Rejected {
            key: "nats.namespace",
            reason: "may hold only letters, digits, '_' and '-'".to_owned(),
        });
    }
    if runtime.grpc.max_concurrent_streams == 0 {
        return Err(SettingsError::Rejected {
            key: "grpc.max_concurrent_streams",
            reason: "must be greater than zero".to_owned(),
        });
    }
    if let Some(tls) = &runtime.grpc.tls {
        crate::tls::server_config(tls)?;
    }
    caller_limits::check(&runtime.auth.caller_limits)?;
    crate::tls::check_client_settings(&runtime.grpc.client_tls)?;
    crate::postgres::check_tls(&runtime.database)?;
    runtime.nats_security.check()?;
    runtime.redis.tls.check()?;
    Ok(())
}

#[cfg(test)]
mod tests;
