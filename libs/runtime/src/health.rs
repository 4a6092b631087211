//! Readiness: a service is SERVING only while every dependency it needs is
//! reachable. A monitor checks them on an interval and publishes the result to
//! the gRPC health service and the admin port's `/healthz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::nats::NatsBus;
use crate::redis_cache::RedisCache;
use crate::service::ReadinessConditions;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The latest readiness verdict, shared with `/healthz`.
#[derive(Debug, Clone, Default)]
pub struct HealthState {
    inner: Arc<RwLock<HealthReport>>,
}

/// Which dependencies were unreachable at the last check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// `true` once every dependency answered.
    pub serving: bool,
    /// One line per unreachable dependency, naming it and where it was looked for.
    pub unreachable: Vec<String>,
}

impl HealthState {
    /// The latest report.
    pub fn report(&self) -> HealthReport {
        match self.inner.read() {
            Ok(report) => report.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, report: HealthReport) {
        match self.inner.write() {
            Ok(mut current) => *current = report,
            Err(poisoned) => *poisoned.into_inner() = report,
        }
    }
}

/// What the monitor checks.
#[derive(Debug, Clone)]
pub(crate) struct Dependencies {
    pub postgres: PgPool,
    pub postgres_address: String,
    /// Set once the database exists and its migrations are applied.
    pub postgres_prepared: Arc<AtomicBool>,
    pub nats: NatsBus,
    /// Redis is a cache: its state is logged, never gating readiness.
    pub redis: Option<(RedisCache, String)>,
    pub service_conditions: ReadinessConditions,
}

impl Dependencies {
    async fn unreachable(&self) -> Vec<String> {
        let mut unreachable = Vec::new();
        if !self.postgres_prepared.load(Ordering::Acquire) {
            unreachable.push(format!(
                "postgresql at {} (database not yet created and migrated)",
                self.postgres_address
            ));
        } else if !matches!(
            tokio::time::timeout(CHECK_TIMEOUT, crate::postgres::ping(&self.postgres)).await,
            Ok(Ok(()))
        ) {
            unreachable.push(format!("postgresql at {}", self.postgres_address));
        }
        if !self.nats.is_connected() {
            unreachable.push(format!("nats at {}", self.nats.url()));
        }
        unreachable.extend(self.service_conditions.unmet());
        unreachable
    }
}

/// Checks `dependencies` every `interval` until `stop`, reporting changes.
pub(crate) async fn monitor(
    dependencies: Dependencies,
    grpc_service_name: &'static str,
    reporter: HealthReporter,
    state: HealthState,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut previous: Option<HealthReport> = None;
    let mut redis_was_reachable = true;
    loop {
        let unreachable = dependencies.unreachable().await;
        if let Some((redis, address)) = &dependencies.redis {
            let reachable = matches!(
                tokio::time::timeout(CHECK_TIMEOUT, redis.ping()).await,
                Ok(Ok(()))
            );
            if reachable != redis_was_reachable {
                if reachable {
                    tracing::info!(redis = %address, "redis is reachable again; caching resumes");
                } else {
                    tracing::warn!(redis = %address, "redis is unreachable; serving without the cache");
                }
                redis_was_reachable = reachable;
            }
        }
        let report = HealthReport {
            serving: unreachable.is_empty(),
            unreachable,
        };
        if previous.as_ref() != Some(&report) {
            let status = if report.serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if report.serving {
                tracing::info!("every dependency is reachable; health is SERVING");
            } else {
                tracing::warn!(
                    unreachable = %report.unreachable.join("; "),
                    "dependencies unreachable; health is NOT_SERVING"
                );
            }
            // "" is the whole server, as Kubernetes' gRPC probe asks by default.
            reporter.set_service_status("", status).await;
            reporter.set_service_status(grpc_service_name, status).await;
            state.store(report.clone());
            previous = Some(report);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
