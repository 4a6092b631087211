//! Start-up and shutdown of one service: bind the listeners, serve gRPC (the
//! service's routes plus health and reflection) and the admin port, watch the
//! dependencies, and stop gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::health::{Dependencies, HealthState};
use crate::nats::NatsBus;
use crate::redis_cache::RedisCache;
use crate::rpc_layer::RpcObservabilityLayer;
use crate::service::{McrService, ReadinessConditions, ServiceContext, StartupError};
use crate::settings::{GrpcSettings, Settings};

const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(2);
const DATABASE_RETRY_MAX_DELAY: Duration = Duration::from_secs(10);
const BACKGROUND_TASKS_GRACE: Duration = Duration::from_secs(10);

/// A built service, listening but not yet serving. Ports may be 0 in the
/// settings (tests); [`Application::grpc_port`] tells which were chosen.
pub struct Application {
    service_name: &'static str,
    grpc_service_name: &'static str,
    grpc_settings: GrpcSettings,
    grpc_tls: Option<tonic::transport::ServerTlsConfig>,
    grpc_listener: TcpListener,
    grpc_address: SocketAddr,
    admin_listener: TcpListener,
    admin_address: SocketAddr,
    routes: tonic::service::Routes,
    health_reporter: HealthReporter,
    health_state: HealthState,
    background_stop: CancellationToken,
    tasks: TaskTracker,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Application")
            .field("service", &self.service_name)
            .field("grpc_address", &self.grpc_address)
            .field("admin_address", &self.admin_address)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects (lazily) to the dependencies, builds the service's routes and
    /// binds both listeners. Unreachable dependencies do not fail the build:
    /// the service starts NOT_SERVING and becomes SERVING when they answer.
    pub async fn build<S: McrService>(settings: Settings<S::Config>) -> Result<Self, StartupError> {
        let runtime = &settings.runtime;
        let grpc_tls = runtime
            .grpc
            .tls
            .as_ref()
            .map(crate::tls::server_config)
            .transpose()?;
        let postgres = crate::postgres::lazy_pool(&runtime.database);
        let nats = NatsBus::connect_with(
            &runtime.nats,
            &runtime.nats_security,
            &format!("mcr-{}", S::SPEC.name),
        )
        .await?;
        let redis = if S::optional_dependencies().redis {
            Some(RedisCache::new(&runtime.redis)?)
        } else {
            None
        };

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health_reporter
            .set_service_status(S::SPEC.grpc_service_name, ServingStatus::NotServing)
            .await;
        let reflection_v1 = reflection_builder(S::SPEC.grpc_service_name).build_v1()?;
        let reflection_v1alpha = reflection_builder(S::SPEC.grpc_service_name).build_v1alpha()?;

        let background_stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let settings = Arc::new(settings);
        let readiness = ReadinessConditions::default();
        let context = ServiceContext {
            settings: Arc::clone(&settings),
            postgres: postgres.clone(),
            nats: nats.clone(),
            redis: redis.clone(),
            shutdown: background_stop.clone(),
            tasks: tasks.clone(),
            readiness: readiness.clone(),
        };
        let routes = S::routes(context)
            .await?
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);

        let grpc_listener = bind(settings.runtime.grpc.address()).await?;
        let admin_listener = bind(settings.runtime.admin.address()).await?;
        let grpc_address = local_address(&grpc_listener, settings.runtime.grpc.address())?;
        let admin_address = local_address(&admin_listener, settings.runtime.admin.address())?;

        let postgres_prepared = Arc::new(AtomicBool::new(false));
        tasks.spawn(prepare_database_until_done(
            Arc::clone(&settings),
            postgres.clone(),
            S::migrator(),
            Arc::clone(&postgres_prepared),
            background_stop.clone(),
        ));
        let database = &settings.runtime.database;
        let dependencies = Dependencies {
            postgres,
            postgres_address: format!("{}:{}/{}", database.host, database.port, database.name),
            postgres_prepared,
            nats,
            redis: redis.map(|cache| (cache, redis_address(&settings.runtime.redis.url))),
            service_conditions: readiness,
        };
        let health_state = HealthState::default();
        tasks.spawn(crate::health::monitor(
            dependencies,
            S::SPEC.grpc_service_name,
            health_reporter.clone(),
            health_state.clone(),
            HEALTH_CHECK_INTERVAL,
            background_stop.clone(),
        ));

        Ok(Self {
            service_name: S::SPEC.name,
            grpc_service_name: S::SPEC.grpc_service_name,
            grpc_settings: settings.runtime.grpc.clone(),
            grpc_tls,
            grpc_listener,
            grpc_address,
            admin_listener,
            admin_address,
            routes,
            health_reporter,
            health_state,
            background_stop,
            tasks,
        })
    }

    /// The bound gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_address.port()
    }

    /// The bound admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_address.port()
    }

    /// Serves until `stop` is cancelled, then shuts down in order: report
    /// NOT_SERVING, stop accepting, let in-flight calls finish (up to
    /// `grpc.drain_timeout_ms`), stop background tasks, return.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> Result<(), StartupError> {
        tracing::info!(
            service = self.service_name,
            grpc_address = %self.grpc_address,
            grpc_tls = match &self.grpc_settings.tls {
                None => "off",
                Some(tls) if tls.client_ca_path.is_some() => "mutual",
                Some(_) => "on",
            },
            admin_address = %self.admin_address,
            "listening"
        );
        let admin_stop = self.background_stop.clone();
        self.tasks.spawn({
            let health_state = self.health_state.clone();
            let listener = self.admin_listener;
            async move {
                if let Err(error) = crate::admin::serve(listener, health_state, admin_stop).await {
                    tracing::error!(%error, "admin server failed");
                }
            }
        });

        let grpc_settings = &self.grpc_settings;
        let incoming = TcpIncoming::from(self.grpc_listener).with_nodelay(Some(true));
        let reporter = self.health_reporter.clone();
        let grpc_service_name = self.grpc_service_name;
        let shutdown_signal = {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                // Tell load balancers first, so new calls go elsewhere while we drain.
                reporter
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                reporter
                    .set_service_status(grpc_service_name, ServingStatus::NotServing)
                    .await;
                tracing::info!("stopping: no new calls accepted, draining in-flight calls");
            }
        };
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = self.grpc_tls {
            builder = builder.tls_config(tls)?;
        }
        let server = builder
            .timeout(grpc_settings.request_timeout())
            .concurrency_limit_per_connection(grpc_settings.concurrency_limit_per_connection)
            .max_concurrent_streams(grpc_settings.max_concurrent_streams)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(RpcObservabilityLayer)
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(incoming, shutdown_signal);
        tokio::pin!(server);

        let served = tokio::select! {
            result = &mut server => result,
            () = stop.cancelled() => {
                match tokio::time::timeout(grpc_settings.drain_timeout(), &mut server).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!(
                            drain_timeout_ms = grpc_settings.drain_timeout_ms,
                            "in-flight calls did not finish in time; abandoning them"
                        );
                        Ok(())
                    }
                }
            }
        };

        self.background_stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(BACKGROUND_TASKS_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop in time; abandoning them");
        }
        tracing::info!(service = self.service_name, "stopped");
        served.map_err(StartupError::from)
    }
}

fn reflection_builder(grpc_service_name: &str) -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mcr_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // List only what this server serves, not every package in the descriptor set.
        .with_service_name(grpc_service_name)
        .with_service_name("grpc.health.v1.Health")
}

async fn bind(address: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartupError::Bind { address, source })
}

fn local_address(listener: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, StartupError> {
    listener.local_addr().map_err(|source| StartupError::Bind {
        address: asked,
        source,
    })
}

/// The Redis URL without credentials, for log lines.
fn redis_address(url: &secrecy::SecretString) -> String {
    use secrecy::ExposeSecret;
    let url = url.expose_secret();
    match url.rsplit_once('@') {
        Some((scheme_and_credentials, host)) => {
            let scheme = scheme_and_credentials
                .split("://")
                .next()
                .unwrap_or("redis");
            format!("{scheme}://{host}")
        }
        None => url.to_owned(),
    }
}

/// Creates the database and applies migrations, retrying with backoff until
/// it succeeds or the service stops.
async fn prepare_database_until_done<C>(
    settings: Arc<Settings<C>>,
    pool: sqlx::PgPool,
    migrator: Option<&'static sqlx::migrate::Migrator>,
    prepared: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let mut delay = Duration::from_millis(250);
    loop {
        match crate::postgres::prepare_database(&settings.runtime.database, &pool, migrator).await {
            Ok(()) => {
                tracing::info!(database = %settings.runtime.database.name, "database ready");
                prepared.store(true, Ordering::Release);
                return;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "database not ready");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(DATABASE_RETRY_MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::redis_address;

    #[test]
    fn redis_credentials_never_reach_the_log() {
        let with_password = secrecy::SecretString::from("redis://user:hunter2@cache:6379/0");
        assert_eq!(redis_address(&with_password), "redis://cache:6379/0");
        let without = secrecy::SecretString::from("redis://127.0.0.1:6379");
        assert_eq!(redis_address(&without), "redis://127.0.0.1:6379");
    }
}
