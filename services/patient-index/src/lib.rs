//! The region's master patient index.
//!
//! Every provider's local identifiers resolve to one person: deterministically
//! on a verified NHS Number, otherwise by Fellegi–Sunter matching over
//! blocking-key candidates (see [`domain`]). Merges and unmerges are exact and
//! announced on NATS.
#![forbid(unsafe_code)]

mod bulk;
mod convert;
mod curation;
pub mod domain;
pub mod error;
mod events;
mod grpc;
mod registry;
mod store;

use std::sync::Arc;

use mcr_auth::AuthLayer;
use mcr_proto::patient_index::v1::patient_index_server::{self, PatientIndexServer};
use mcr_runtime::{McrService, ServiceContext, ServiceSpec, StartupError};
use serde::Deserialize;
use tower::Layer;

pub use events::{IDENTIFIER_RELINKED_SUBJECT, PERSON_MERGED_SUBJECT, PERSON_UNMERGED_SUBJECT};
pub use mcr_runtime::streams::INDEX_EVENTS_STREAM;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The patient index's own settings (`[patient_index]`, `MCR_PATIENT_INDEX__*`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PatientIndexConfig {
    /// Matching thresholds and weights (`[patient_index.matching]`).
    pub matching: domain::MatchConfig,
}

/// The patient-index service, as the runtime runs it.
#[derive(Debug)]
pub struct PatientIndexService;

impl McrService for PatientIndexService {
    type Config = PatientIndexConfig;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "patient-index",
        config_section: "patient_index",
        grpc_service_name: patient_index_server::SERVICE_NAME,
        default_grpc_port: 50052,
        default_admin_port: 9102,
    };

    fn migrator() -> Option<&'static sqlx::migrate::Migrator> {
        Some(&MIGRATOR)
    }

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let model = domain::MatchModel::new(context.settings.service.matching.clone()).map_err(
            |error| {
                StartupError::Service(format!("invalid settings: patient_index.matching: {error}"))
            },
        )?;
        let verifier = mcr_auth::verifier_for_service(&context).map_err(|error| {
            StartupError::Service(format!("invalid settings: auth.identity_url: {error}"))
        })?;
        let api = grpc::PatientIndexApi {
            registry: registry::Registry {
                pool: context.postgres.clone(),
                model: Arc::new(model),
                serialised: Arc::new(tokio::sync::Semaphore::new(
                    (context.settings.runtime.database.max_connections as usize / 2).max(1),
                )),
            },
            curation: curation::Curation {
                pool: context.postgres.clone(),
                nats: context.nats.clone(),
            },
        };
        let server =
            PatientIndexServer::new(api).max_decoding_message_size(context.max_message_bytes());
        Ok(tonic::service::Routes::new(
            AuthLayer::for_service(&context, Self::SPEC.name, verifier, &[]).layer(server),
        ))
    }
}
