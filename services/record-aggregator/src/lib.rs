//! Ingests provider record updates and assembles each person's care record.
//!
//! Updates arrive on JetStream ([`ingest`]); each person's whole record is
//! cached in Redis by view version ([`views`]); every read is decided by
//! consent and audited before any data leaves ([`access`], [`records`]).
#![forbid(unsafe_code)]

pub mod access;
pub mod config;
mod dependencies;
pub mod domain;
pub mod error;
mod grpc;
pub mod ingest;
pub mod invalidation;
mod people;
mod records;
mod store;
pub mod view_cipher;
pub mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mcr_audit_client::AuditPublisher;
use mcr_auth::{AuthLayer, ServiceTokens};
use mcr_proto::consent::v1::consent_client::ConsentClient;
use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::records::v1::record_aggregator_server::{self, RecordAggregatorServer};
use mcr_runtime::{McrService, OptionalDependencies, ServiceContext, ServiceSpec, StartupError};
use tower::Layer;

use crate::config::RecordsConfig;
use crate::dependencies::{Consent, Index, OrganisationNames, channel};
use crate::invalidation::{Follower, Source};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The record-aggregator service, as the runtime runs it.
#[derive(Debug)]
pub struct RecordAggregatorService;

impl McrService for RecordAggregatorService {
    type Config = RecordsConfig;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "record-aggregator",
        config_section: "records",
        grpc_service_name: record_aggregator_server::SERVICE_NAME,
        default_grpc_port: 50054,
        default_admin_port: 9104,
    };

    /// Assembled views are cached in Redis (never needed for correctness).
    fn optional_dependencies() -> OptionalDependencies {
        OptionalDependencies { redis: true }
    }

    fn migrator() -> Option<&'static sqlx::migrate::Migrator> {
        Some(&MIGRATOR)
    }

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let config = context.settings.service.clone();
        let timeout = Duration::from_millis(config.dependency_timeout_ms);
        let verifier = mcr_auth::verifier_for_service(&context)
            .map_err(|error| StartupError::Service(format!("invalid settings: auth: {error}")))?;
        let tokens = ServiceTokens::for_service(&context)
            .map_err(|error| StartupError::Service(error.to_string()))?;
        let client_tls = &context.settings.runtime.grpc.client_tls;
        let index_channel = channel(
            "records.patient_index_url",
            &config.patient_index_url,
            client_tls,
            timeout,
        )
        .map_err(StartupError::Service)?;
        let consent = Consent {
            client: ConsentClient::new(
                channel(
                    "records.consent_url",
                    &config.consent_url,
                    client_tls,
                    timeout,
                )
                .map_err(StartupError::Service)?,
            ),
            tokens: tokens.clone(),
        };
        let identity_channel = channel(
            "auth.identity_url",
            &context.settings.runtime.auth.identity_url,
            client_tls,
            timeout,
        )
        .map_err(StartupError::Service)?;

        let ingest = ingest::Ingest {
            pool: context.postgres.clone(),
            nats: context.nats.clone(),
            people: people::People {
                pool: context.postgres.clone(),
                index: PatientIndexClient::new(index_channel.clone()),
                tokens: tokens.clone(),
            },
            consent: consent.clone(),
            config: Arc::new(config.ingest.clone()),
        };
        let attached = context
            .readiness
            .condition("record update consumer (not attached yet)");
        context
            .tasks
            .spawn(ingest.run(attached, context.shutdown.clone()));
        for source in [Source::PatientIndex, Source::Consent] {
            let follower = Follower {
                pool: context.postgres.clone(),
                nats: context.nats.clone(),
                source,
            };
            let attached = context
                .readiness
                .condition(&format!("{source:?} event follower (not attached yet)"));
            context
                .tasks
                .spawn(follower.run(attached, context.shutdown.clone()));
        }

        let api = grpc::RecordAggregatorApi {
            records: records::Records {
                views: views::Views {
                    pool: context.postgres.clone(),
                    redis: context.redis.clone(),
                    ttl: Duration::from_secs(config.cache_ttl_seconds),
                    cipher: Arc::new(
                        view_cipher::ViewCipher::from_config(&config.cache_encryption)
                            .map_err(StartupError::Service)?,
                    ),
                    building: Arc::new(Mutex::new(HashMap::new())),
                    recent: views::RecentViews::new(
                        config.memory_cache_mib.saturating_mul(1024 * 1024),
                    ),
                },
                gatekeeper: access::Gatekeeper {
                    consent,
                    audit: AuditPublisher::new(context.nats.clone()),
                },
                index: Index {
                    client: PatientIndexClient::new(index_channel),
                    tokens: tokens.clone(),
                },
                names: OrganisationNames {
                    client: IdentityClient::new(identity_channel),
                    tokens,
                    known: Arc::new(RwLock::new(HashMap::new())),
                },
            },
        };
        let server =
            RecordAggregatorServer::new(api).max_decoding_message_size(context.max_message_bytes());
        Ok(tonic::service::Routes::new(
            AuthLayer::for_service(&context, Self::SPEC.name, verifier, &[]).layer(server),
        ))
    }
}
