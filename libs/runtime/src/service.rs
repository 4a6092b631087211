//! What a service tells the runtime about itself, and what the runtime hands
//! back to it: the [`McrService`] trait every service binary implements.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::nats::NatsBus;
use crate::redis_cache::RedisCache;
use crate::settings::Settings;

/// A service's fixed facts: name, gRPC service, default ports.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Short name: `patient-index`. Used in logs, traces and the binary name.
    pub name: &'static str,
    /// Its settings section and database suffix: `patient_index`.
    pub config_section: &'static str,
    /// Fully qualified gRPC service: `mcr.patient_index.v1.PatientIndex`.
    pub grpc_service_name: &'static str,
    /// gRPC port when none is configured.
    pub default_grpc_port: u16,
    /// Admin (metrics, health) port when none is configured.
    pub default_admin_port: u16,
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Settings were missing or invalid.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// Telemetry could not be set up.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// NATS settings were unusable.
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
    /// The Redis URL or TLS settings were unusable.
    #[error(transparent)]
    Redis(#[from] crate::redis_cache::RedisSetupError),
    /// The gRPC TLS settings were unusable.
    #[error("invalid settings: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Reflection could not be built from the descriptors.
    #[error("building grpc reflection failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed while running.
    #[error("grpc server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// The service's own set-up failed.
    #[error("{0}")]
    Service(String),
}

/// Which optional dependencies a service uses. PostgreSQL and NATS are
/// always required and gate readiness; Redis is a cache and never does.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalDependencies {
    /// Connect to Redis (a cache: while unreachable, the service serves without it).
    pub redis: bool,
}

/// Implemented by each service crate; `mcr_runtime::run::<S>()` does the rest.
pub trait McrService: Send + Sync + 'static {
    /// The service's own settings section; `#[serde(default)]` so every key is optional.
    type Config: DeserializeOwned + Default + Debug + Clone + Send + Sync + 'static;

    /// Name, gRPC service and default ports.
    const SPEC: ServiceSpec;

    /// Embedded migrations for the service's own database (`sqlx::migrate!()`).
    fn migrator() -> Option<&'static Migrator> {
        None
    }

    /// Dependencies beyond PostgreSQL and NATS.
    fn optional_dependencies() -> OptionalDependencies {
        OptionalDependencies::default()
    }

    /// Builds the service's gRPC routes; spawn background work (consumers)
    /// on `context.tasks` so shutdown waits for it.
    fn routes(
        context: ServiceContext<Self::Config>,
    ) -> impl Future<Output = Result<tonic::service::Routes, StartupError>> + Send;
}

/// What the runtime gives a service to build itself from.
#[derive(Debug, Clone)]
pub struct ServiceContext<C> {
    /// All settings; the service's own under `.service`.
    pub settings: Arc<Settings<C>>,
    /// Pool on the service's own database; the schema is migrated before the
    /// service reports SERVING, and queries before then fail.
    pub postgres: PgPool,
    /// NATS and JetStream, scoped to the configured namespace.
    pub nats: NatsBus,
    /// Redis, when the service asked for it.
    pub redis: Option<RedisCache>,
    /// Cancelled when the service is stopping, after gRPC calls have drained.
    pub shutdown: CancellationToken,
    /// Background tasks the runtime waits for at shutdown.
    pub tasks: TaskTracker,
    /// The service's own conditions for SERVING, beside its dependencies.
    pub readiness: ReadinessConditions,
}

/// Conditions a service adds to readiness (e.g. "signing keys loaded"): the
/// service reports NOT_SERVING, naming each unmet condition, until all hold.
#[derive(Debug, Clone, Default)]
pub struct ReadinessConditions {
    conditions: Arc<std::sync::Mutex<Vec<Condition>>>,
}

/// A description and whether it holds.
type Condition = (String, Arc<AtomicBool>);

impl ReadinessConditions {
    /// Registers a condition, initially unmet; set the flag when it holds.
    pub fn condition(&self, description: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        let mut conditions = match self.conditions.lock() {
            Ok(conditions) => conditions,
            Err(poisoned) => poisoned.into_inner(),
        };
        conditions.push((description.to_owned(), Arc::clone(&flag)));
        flag
    }

    /// The descriptions of conditions not met now.
    pub fn unmet(&self) -> Vec<String> {
        let conditions = match self.conditions.lock() {
            Ok(conditions) => conditions,
            Err(poisoned) => poisoned.into_inner(),
        };
        conditions
            .iter()
            .filter(|(_, flag)| !flag.load(Ordering::Acquire))
            .map(|(description, _)| description.clone())
            .collect()
    }
}

impl<C> ServiceContext<C> {
    /// The largest request message a generated server should decode.
    pub fn max_message_bytes(&self) -> usize {
        self.settings.runtime.grpc.max_message_bytes
    }
}
