//! `baseline`: what this machine does at all — the round trip of a trivial
//! unary RPC (gRPC health `Check`) on a runtime server over loopback, through
//! the same layers (tracing span, metrics, deadline) as every service call.

use std::time::{Duration, Instant};

use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::stats::{Latencies, round3};

/// Runs the benchmark and returns the JSON figures.
pub async fn run(quick: bool) -> anyhow::Result<serde_json::Value> {
    let environment = mcr_testkit::TestEnvironment::new().await;
    // Any runtime server will do; identity is the smallest.
    let service =
        mcr_testkit::spawn_service::<mcr_identity::IdentityService>(&environment, &[]).await;
    let endpoint = service.grpc_endpoint();

    let sequential_calls = if quick { 5_000 } else { 20_000 };
    let throughput_window = if quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(10)
    };
    let connections = 4;
    let calls_in_flight_per_connection = 16;

    let mut client = HealthClient::new(mcr_testkit::grpc::connect(&endpoint).await);
    for _ in 0..500 {
        client.check(request()).await?;
    }
    let mut latencies = Latencies::default();
    for _ in 0..sequential_calls {
        let started = Instant::now();
        client.check(request()).await?;
        latencies.record(started.elapsed());
    }

    let deadline = Instant::now() + throughput_window;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let channel = mcr_testkit::grpc::connect(&endpoint).await;
        for _ in 0..calls_in_flight_per_connection {
            let mut worker_client = HealthClient::new(channel.clone());
            workers.spawn(async move {
                let mut completed = 0_u64;
                while Instant::now() < deadline {
                    worker_client.check(request()).await?;
                    completed += 1;
                }
                Ok::<u64, tonic::Status>(completed)
            });
        }
    }
    let started = Instant::now();
    let mut completed = 0_u64;
    while let Some(joined) = workers.join_next().await {
        completed += joined??;
    }
    let rpc_per_s = completed as f64
        / started
            .elapsed()
            .as_secs_f64()
            .max(throughput_window.as_secs_f64());
    service.stop().await?;

    println!("baseline: gRPC health Check on a runtime server over loopback");
    println!(
        "  sequential, one client: {} calls, p50 {:.3} ms, p99 {:.3} ms",
        latencies.count(),
        latencies.quantile_ms(0.5),
        latencies.quantile_ms(0.99)
    );
    println!(
        "  throughput: {connections} connections x {calls_in_flight_per_connection} in flight for {:?}: {rpc_per_s:.0} calls/s",
        throughput_window
    );
    Ok(json!({
        "bench": "baseline",
        "rpc_p50_ms": round3(latencies.quantile_ms(0.5)),
        "rpc_p99_ms": round3(latencies.quantile_ms(0.99)),
        "rpc_per_s": rpc_per_s.round(),
    }))
}

fn request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}
