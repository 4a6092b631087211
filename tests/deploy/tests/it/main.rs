//! Deploy checks: the Kubernetes manifests match what the binaries serve,
//! and every service exports its metrics.
#![allow(clippy::unwrap_used)]

mod dashboard;
mod drift;
mod metrics;
mod otlp;
mod settings;
