//! Opt-outs, permissions to view, care relationships, restrictions,
//! break-glass — and the one Decide call that applies them.
//!
//! The facts and the decision over them are Rust ([`domain`]); which role may
//! see which category for which purpose is the deployment's Cedar policy
//! (`policy/`), validated and compiled into a table at start-up. Decide reads
//! one person's facts in one indexed query and keeps no cache, so a change
//! is in force on every replica the moment its transaction commits.
#![forbid(unsafe_code)]

mod audit;
mod convert;
pub mod domain;
pub mod error;
pub mod events;
mod grpc;
mod index;
mod merges;
mod policy_files;
mod store;

use std::sync::Arc;

use mcr_auth::AuthLayer;
use mcr_proto::consent::v1::consent_server::{self, ConsentServer};
use mcr_runtime::{McrService, ServiceContext, ServiceSpec, StartupError};
use serde::Deserialize;
use tower::Layer;

pub use events::{
    BREAK_GLASS_ALERT_SUBJECT, CONSENT_CHANGED_SUBJECT_PREFIX, CONSENT_EVENTS_STREAM,
};
pub use policy_files::load_policy;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Consent's own settings (`[consent]`, `MCR_CONSENT__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsentConfig {
    /// Directory holding `schema.cedarschema` (optional; the shipped schema
    /// otherwise) and the `*.cedar` policy files. Empty: the policy shipped
    /// in `services/consent/policy/`, compiled into the binary.
    pub policy_dir: String,
    /// Where patient-index answers (NHS Number / local identifier references
    /// and person existence checks for changes).
    pub patient_index_url: String,
    /// Break-glass duration when the caller asks for none.
    pub break_glass_default_minutes: u32,
    /// Longest break-glass duration a caller may ask for.
    pub break_glass_max_minutes: u32,
    /// Furthest ahead a permission to view may expire.
    pub permission_max_days: u32,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        Self {
            policy_dir: String::new(),
            patient_index_url: "http://127.0.0.1:50052".to_owned(),
            break_glass_default_minutes: 240,
            break_glass_max_minutes: 480,
            permission_max_days: 365,
        }
    }
}

/// Limits from the settings, as the handlers use them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub break_glass_default_minutes: u32,
    pub break_glass_max_minutes: u32,
    pub permission_max_days: u32,
}

/// The consent service, as the runtime runs it.
#[derive(Debug)]
pub struct ConsentService;

impl McrService for ConsentService {
    type Config = ConsentConfig;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "consent",
        config_section: "consent",
        grpc_service_name: consent_server::SERVICE_NAME,
        default_grpc_port: 50053,
        default_admin_port: 9103,
    };

    fn migrator() -> Option<&'static sqlx::migrate::Migrator> {
        Some(&MIGRATOR)
    }

    async fn routes(
        context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        let config = &context.settings.service;
        // A bad policy stops start-up here, with Cedar's error.
        let policy = load_policy(&config.policy_dir)
            .map_err(|error| StartupError::Service(format!("consent.policy_dir: {error}")))?;
        tracing::info!(policy_version = policy.version(), policy_dir = %config.policy_dir, "access policy loaded");
        if config.break_glass_default_minutes == 0
            || config.break_glass_default_minutes > config.break_glass_max_minutes
        {
            return Err(StartupError::Service(
                "invalid settings: consent.break_glass_default_minutes must be 1..=consent.break_glass_max_minutes".to_owned(),
            ));
        }
        let verifier = mcr_auth::verifier_for_service(&context).map_err(|error| {
            StartupError::Service(format!("invalid settings: auth.identity_url: {error}"))
        })?;
        let tokens = match mcr_auth::ServiceTokens::for_service(&context) {
            Ok(tokens) => Some(tokens),
            Err(error) => {
                tracing::warn!(%error, "no service credentials: NHS Number and local identifier references, and every change, will be UNAVAILABLE");
                None
            }
        };
        let directory = index::PersonDirectory::new(
            &config.patient_index_url,
            &context.settings.runtime.grpc.client_tls,
            tokens,
        )
        .map_err(|error| StartupError::Service(format!("invalid settings: {error}")))?;
        let auditor =
            audit::Auditor::new(mcr_audit_client::AuditPublisher::new(context.nats.clone()));
        let api = grpc::ConsentApi {
            pool: context.postgres.clone(),
            nats: context.nats.clone(),
            policy: Arc::new(policy),
            directory,
            auditor: audit::Auditor::new(mcr_audit_client::AuditPublisher::new(
                context.nats.clone(),
            )),
            limits: Limits {
                break_glass_default_minutes: config.break_glass_default_minutes,
                break_glass_max_minutes: config.break_glass_max_minutes,
                permission_max_days: config.permission_max_days,
            },
        };
        context.tasks.spawn(events::run_relay(
            context.nats.clone(),
            context.postgres.clone(),
            context.shutdown.clone(),
        ));
        let follower = merges::MergeFollower {
            pool: context.postgres.clone(),
            nats: context.nats.clone(),
            auditor,
        };
        context.tasks.spawn(follower.run(context.shutdown.clone()));
        let server = ConsentServer::new(api).max_decoding_message_size(context.max_message_bytes());
        Ok(tonic::service::Routes::new(
            AuthLayer::for_service(&context, Self::SPEC.name, verifier, &[]).layer(server),
        ))
    }
}
