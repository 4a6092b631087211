//! What every My Care Record service repeats, so a service's `main.rs` is one
//! line and its crate holds only its own domain:
//!
//! - [`settings`]: typed settings from defaults, a file and `MCR_*` variables;
//! - [`telemetry`] and [`propagation`]: logs, OpenTelemetry traces, W3C trace
//!   context on gRPC metadata and NATS headers;
//! - [`server`]: gRPC with health, reflection, a span and metrics per call, an
//!   admin port with `/metrics` and `/healthz`, graceful shutdown;
//! - [`postgres`], [`nats`], [`redis_cache`]: connections that retry and say
//!   clearly what is unreachable;
//! - [`tls`]: TLS and mutual TLS for gRPC servers and clients from settings.
//!
//! ```no_run
//! # struct MyService;
//! # async fn example() -> std::process::ExitCode {
//! // services/<name>/src/main.rs
//! // mcr_runtime::run::<mcr_identity::IdentityService>().await
//! # std::process::ExitCode::SUCCESS }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod health;
pub mod nats;
pub mod paging;
pub mod postgres;
pub mod propagation;
pub mod redis_cache;
pub mod rpc_layer;
pub mod server;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod streams;
pub mod telemetry;
pub mod tls;

use std::collections::HashMap;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

pub use server::Application;
pub use service::{
    McrService, OptionalDependencies, ReadinessConditions, ServiceContext, ServiceSpec,
    StartupError,
};
pub use settings::Settings;

/// Exit code for settings that cannot be used: fix the configuration, not the code.
const EXIT_BAD_CONFIGURATION: u8 = 78;

/// The whole life of a service binary: settings → telemetry → build → serve
/// until SIGTERM/SIGINT → flush telemetry. Exit code 0 after a clean stop.
pub async fn run<S: McrService>() -> ExitCode {
    let environment = process_environment();
    let settings = match Settings::<S::Config>::load(&S::SPEC, &environment) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("mcr-{}: {error}", S::SPEC.name);
            return ExitCode::from(EXIT_BAD_CONFIGURATION);
        }
    };
    let telemetry = match telemetry::init(
        S::SPEC.name,
        &settings.runtime.telemetry,
        telemetry::LogOutput::Stdout,
    ) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("mcr-{}: {error}", S::SPEC.name);
            return ExitCode::from(EXIT_BAD_CONFIGURATION);
        }
    };

    let outcome = match Application::build::<S>(settings).await {
        Ok(application) => {
            let stop = CancellationToken::new();
            tokio::spawn(shutdown::cancel_on_signal(stop.clone()));
            application.run_until_stopped(stop).await
        }
        Err(error) => Err(error),
    };
    let exit_code = match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "service failed");
            eprintln!("mcr-{}: {error}", S::SPEC.name);
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    exit_code
}

/// The process environment; variables that are not valid UTF-8 cannot be
/// settings and are skipped rather than aborting start-up.
pub fn process_environment() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// Every binary that links the runtime allocates through mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
