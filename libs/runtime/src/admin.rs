//! The admin HTTP port: Prometheus `/metrics` and `/healthz` for probes and
//! people. Kept off the gRPC port so it can be firewalled separately.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::HealthState;

/// Latency buckets in seconds: fine below 25 ms, where the targets are.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus recorder; installed on first use.
///
/// A process has one recorder, so services started together in one process
/// (tests, the demo) share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = match builder.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".to_owned()),
                LATENCY_BUCKETS,
            ) {
                Ok(with_buckets) => with_buckets,
                // Only an empty bucket list fails, and LATENCY_BUCKETS is not empty.
                Err(_) => PrometheusBuilder::new(),
            };
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (an embedding program's): render an empty registry.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

#[derive(Clone)]
struct AdminState {
    metrics: PrometheusHandle,
    health: HealthState,
}

/// Serves the admin endpoints on `listener` until `stop`.
pub(crate) async fn serve(
    listener: TcpListener,
    health: HealthState,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let state = AdminState {
        metrics: metrics_handle(),
        health,
    };
    let router = axum::Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(render_health))
        .with_state(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

async fn render_metrics(State(state): State<AdminState>) -> String {
    // Histograms are summarised lazily; upkeep here keeps memory bounded without a timer task.
    state.metrics.run_upkeep();
    state.metrics.render()
}

async fn render_health(State(state): State<AdminState>) -> (StatusCode, String) {
    let report = state.health.report();
    if report.serving {
        (StatusCode::OK, "SERVING\n".to_owned())
    } else {
        let mut body = String::from("NOT_SERVING\n");
        for dependency in &report.unreachable {
            body.push_str("unreachable: ");
            body.push_str(dependency);
            body.push('\n');
        }
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}
