//! The append-only, hash-chained access log.
//!
//! Audit consumes the `AuditEvent`s every service publishes on the JetStream
//! stream `MCR_AUDIT` (`mcr.audit.v1.>`), stores each exactly once in a
//! SHA-256 hash chain with signed checkpoints, raises alerts for privacy
//! officers, and answers queries, subject access reports, chain
//! verification and exports for a SIEM. See the README's "Audit" section.
#![forbid(unsafe_code)]

mod alerts;
mod checkpointer;
pub mod config;
mod convert;
pub mod domain;
pub mod error;
mod export;
mod grpc;
pub mod ingest;
mod organisations;
mod retention;
mod store;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use mcr_audit_client::AuditPublisher;
use mcr_auth::AuthLayer;
use mcr_proto::audit::v1::audit_server::{self, AuditServer};
use mcr_runtime::{McrService, ServiceContext, ServiceSpec, StartupError};
use tower::Layer;

use crate::alerts::Alerts;
use crate::checkpointer::Checkpointer;
use crate::config::AuditConfig;
use crate::ingest::Ingest;
use crate::organisations::Organisations;

pub use crate::alerts::{BREAK_GLASS_SUBJECT, UNUSUAL_ACCESS_SUBJECT};
pub use crate::ingest::{CONSUMER, DEADLETTER_SUBJECT};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The audit service, as the runtime runs it.
#[derive(Debug)]
pub struct AuditService;

impl McrService for AuditService {
    type Config = AuditConfig;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "audit",
        config_section: "audit",
        grpc_service_name: audit_server::SERVICE_NAME,
        default_grpc_port: 50055,
        default_admin_port: 9105,
    };

    fn migrator() -> Option<&'static sqlx::migrate::Migrator> {
        Some(&MIGRATOR)
    }

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let config = Arc::new(context.settings.service.clone());
        let verifier = mcr_auth::verifier_for_service(&context)
            .map_err(|error| StartupError::Service(error.to_string()))?;
        let checkpointer =
            Checkpointer::new(context.postgres.clone(), &config).map_err(StartupError::Service)?;
        let organisations = Organisations::new(
            &context.settings.runtime.auth.identity_url,
            &context.settings.runtime.grpc.client_tls,
        )
        .map_err(StartupError::Service)?;

        let alerts = Alerts {
            pool: context.postgres.clone(),
            nats: context.nats.clone(),
            threshold: config.unusual_access_threshold,
            window: Duration::from_secs(config.unusual_access_window_seconds),
        };
        let ingest = Ingest {
            pool: context.postgres.clone(),
            nats: context.nats.clone(),
            config: Arc::clone(&config),
            alerts,
            tasks: context.tasks.clone(),
        };
        let attached = context
            .readiness
            .condition("audit stream consumer (not attached yet)");
        context
            .tasks
            .spawn(ingest.run(attached, context.shutdown.clone()));
        context.tasks.spawn(checkpointer.clone().run(
            Duration::from_millis(config.checkpoint_interval_ms),
            context.shutdown.clone(),
        ));

        if config.retention_seconds > 0 {
            let retention = retention::Retention {
                pool: context.postgres.clone(),
                publisher: AuditPublisher::new(context.nats.clone()),
                checkpointer: checkpointer.clone(),
                keep_for: Duration::from_secs(config.retention_seconds),
            };
            context.tasks.spawn(retention.run(
                Duration::from_millis(config.retention_check_interval_ms),
                context.shutdown.clone(),
            ));
        }

        let api = grpc::AuditApi {
            pool: context.postgres.clone(),
            publisher: AuditPublisher::new(context.nats.clone()),
            checkpointer,
            organisations,
            shutdown: context.shutdown.clone(),
        };
        let server = AuditServer::new(api).max_decoding_message_size(context.max_message_bytes());
        let authenticated =
            AuthLayer::for_service(&context, Self::SPEC.name, verifier, &[]).layer(server);
        Ok(tonic::service::Routes::new(authenticated))
    }
}
