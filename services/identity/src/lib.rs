//! Organisations, professionals, role profiles and the tokens every service verifies.
//!
//! Identity signs short-lived EdDSA access tokens (one role profile each, as
//! a smartcard session), rotates refresh tokens with reuse detection,
//! publishes revocations on NATS and its keys as JWKS. Every other service
//! verifies tokens locally with `mcr-auth`.
#![forbid(unsafe_code)]

mod bootstrap;
pub mod config;
mod convert;
pub mod domain;
pub mod error;
mod events;
mod external;
mod grpc;
mod keyring;
mod passwords;
mod service_account_bootstrap;
mod sessions;
mod store;

use std::sync::Arc;
use std::time::Duration;

use mcr_auth::{AuthLayer, TokenVerifier, VerifierConfig, follow_revocations};
use mcr_proto::identity::v1::identity_server::{self, IdentityServer};
use mcr_runtime::{McrService, ServiceContext, ServiceSpec, StartupError};
use tower::Layer;

use crate::config::IdentityConfig;
use crate::domain::keys::RotationPolicy;
use crate::domain::tokens::Issuer;
use crate::external::ExternalIssuers;
use crate::keyring::Keyring;
use crate::sessions::Sessions;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The identity service, as the runtime runs it.
#[derive(Debug)]
pub struct IdentityService;

fn seconds(value: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(value).unwrap_or(i64::MAX))
}

impl McrService for IdentityService {
    type Config = IdentityConfig;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "identity",
        config_section: "identity",
        grpc_service_name: identity_server::SERVICE_NAME,
        default_grpc_port: 50051,
        default_admin_port: 9101,
    };

    fn migrator() -> Option<&'static sqlx::migrate::Migrator> {
        Some(&MIGRATOR)
    }

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let config = Arc::new(context.settings.service.clone());
        let auth = &context.settings.runtime.auth;
        let external = ExternalIssuers::from_config(&config.external_issuers)
            .map_err(StartupError::Service)?;
        let leeway = seconds(auth.leeway_seconds);
        let policy = RotationPolicy {
            rotation_interval: seconds(config.key_rotation_interval_seconds),
            publish_ahead: seconds(u64::from(config.jwks_max_age_seconds)),
            token_lifetime: seconds(
                config
                    .access_token_ttl_seconds
                    .max(config.service_token_ttl_seconds),
            ) + leeway,
        };
        let keyring = Keyring::new(context.postgres.clone(), policy);
        let verifier =
            TokenVerifier::new(VerifierConfig::from(auth), Some(Arc::new(keyring.clone())));

        let keys_ready = context
            .readiness
            .condition("token signing keys (not loaded yet)");
        context.tasks.spawn(keyring.clone().maintain(
            verifier.clone(),
            Duration::from_millis(config.key_check_interval_ms),
            keys_ready,
            context.shutdown.clone(),
        ));
        context.tasks.spawn(follow_revocations(
            context.nats.clone(),
            verifier.revocations().clone(),
            context.shutdown.clone(),
        ));
        let nats = context.nats.clone();
        let stop = context.shutdown.clone();
        context.tasks.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                ensured = events::ensure_streams(&nats) => if let Err(error) = ensured {
                    tracing::warn!(%error, "revocation stream not ensured yet; the first revocation will retry");
                }
            }
        });
        if let Some(admin) = config.bootstrap_admin.clone() {
            context.tasks.spawn(bootstrap::ensure_initial_administrator(
                context.postgres.clone(),
                admin,
                context.shutdown.clone(),
            ));
        }
        if !config.bootstrap_service_accounts.is_empty() {
            context
                .tasks
                .spawn(service_account_bootstrap::ensure_declared_service_accounts(
                    context.postgres.clone(),
                    config.bootstrap_service_accounts.clone(),
                    context.shutdown.clone(),
                ));
        }

        let sessions = Sessions {
            pool: context.postgres.clone(),
            nats: context.nats.clone(),
            keyring,
            issuer: Issuer {
                issuer: auth.issuer.clone(),
                audience: auth.audience.clone(),
            },
            config,
            external: Arc::new(external),
            leeway,
            audit: mcr_audit_client::AuditPublisher::new(context.nats.clone()),
        };
        let server = IdentityServer::new(grpc::IdentityApi { sessions })
            .max_decoding_message_size(context.max_message_bytes());
        let authenticated =
            AuthLayer::for_service(&context, Self::SPEC.name, verifier, grpc::PUBLIC_METHODS)
                .layer(server);
        Ok(tonic::service::Routes::new(authenticated))
    }
}
