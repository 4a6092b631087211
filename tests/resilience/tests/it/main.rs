//! Fault tests. Each starts its own NATS, Redis and PostgreSQL on spare
//! loopback ports (`mcr_testkit::servers`), so killing them never disturbs
//! other tests or the developer's stack. Run them all with
//! `cargo nextest run -p mcr-resilience`.

mod aggregator_kill;
mod audit_kill;
mod hung_dependencies;
mod nats_restart;
mod postgres_restart;
mod redis_restart;
mod servers;

/// The real aggregator binary (this package's copy of its `main`).
pub const AGGREGATOR_BINARY: &str = env!("CARGO_BIN_EXE_resilience-record-aggregator");
/// The real audit binary.
pub const AUDIT_BINARY: &str = env!("CARGO_BIN_EXE_resilience-audit");
