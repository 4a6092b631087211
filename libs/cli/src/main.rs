//! `mcr`: parse → telemetry → run the command → print any error as a sentence.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use mcr_cli::cli::Cli;
use mcr_runtime::settings::{LogFormat, TelemetrySettings};
use mcr_runtime::telemetry::{self, LogOutput};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Traces go to a collector when one is configured; log lines never go to
    // the terminal, which is the command's own output.
    let otlp_endpoint = std::env::var("MCR_TELEMETRY__OTLP_ENDPOINT")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .ok()
        .filter(|endpoint| !endpoint.is_empty());
    let settings = TelemetrySettings {
        log_format: LogFormat::Human,
        log_filter: "info".to_owned(),
        otlp_endpoint,
    };
    let guard = match telemetry::init("mcr", &settings, LogOutput::Discard) {
        Ok(guard) => Some(guard),
        Err(error) => {
            eprintln!("warning: traces will not be exported: {error}");
            None
        }
    };
    let outcome = mcr_cli::run(cli).await;
    if let Some(guard) = guard {
        guard.shutdown();
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
