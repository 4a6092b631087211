//! One call sets up logs and traces: a `tracing` subscriber (human or JSON
//! lines, `RUST_LOG`-style filter) and an OpenTelemetry tracer that exports
//! OTLP when an endpoint is configured.
//!
//! The tracer exists even without an exporter, so every span carries a W3C
//! trace id that crosses gRPC and NATS hops and appears in the logs.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::{LogFormat, TelemetrySettings};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid settings: telemetry.log_filter {filter:?}: {reason}")]
    InvalidFilter {
        /// The filter given.
        filter: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error("invalid settings: telemetry.otlp_endpoint {endpoint:?}: {reason}")]
    Exporter {
        /// The endpoint given.
        endpoint: String,
        /// The exporter's complaint.
        reason: String,
    },
}

/// Keeps the tracer alive; [`TelemetryGuard::shutdown`] flushes spans not yet exported.
#[derive(Debug)]
pub struct TelemetryGuard {
    tracer_provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports what is buffered and stops the exporter. Call once, last.
    pub fn shutdown(self) {
        if let Err(error) = self.tracer_provider.shutdown() {
            eprintln!("flushing traces at shutdown failed: {error}");
        }
    }
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    /// Standard output: services.
    Stdout,
    /// Nowhere: tests that did not ask for logs (traces are still recorded).
    Discard,
}

/// Installs the global subscriber and tracer for `service_name`.
///
/// Fails when a subscriber is already installed only in the sense that the
/// existing one stays: a second call in one process (tests starting several
/// services) returns a guard without replacing it.
pub fn init(
    service_name: &str,
    settings: &TelemetrySettings,
    output: LogOutput,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match EnvFilter::try_from_default_env() {
        Ok(from_rust_log) => from_rust_log,
        Err(_) => EnvFilter::try_new(&settings.log_filter).map_err(|error| {
            TelemetryError::InvalidFilter {
                filter: settings.log_filter.clone(),
                reason: error.to_string(),
            }
        })?,
    };

    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let mut provider_builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &settings.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(|error| TelemetryError::Exporter {
                endpoint: endpoint.clone(),
                reason: error.to_string(),
            })?;
        provider_builder = provider_builder.with_batch_exporter(exporter);
    }
    let tracer_provider = provider_builder.build();
    let tracer = tracer_provider.tracer(service_name.to_owned());
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());

    let log_layer = match (output, settings.log_format) {
        (LogOutput::Discard, _) => None,
        (LogOutput::Stdout, LogFormat::Human) => Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .boxed(),
        ),
        (LogOutput::Stdout, LogFormat::Json) => Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .boxed(),
        ),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(log_layer)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    if installed.is_err() {
        tracing::debug!("a tracing subscriber was already installed; keeping it");
    }
    Ok(TelemetryGuard { tracer_provider })
}
