//! Integration tests of the `mcr` binary against the whole platform
//! (identity, patient-index, consent, record-aggregator, audit) started
//! in-process, with the real PostgreSQL, NATS and Redis.
#![allow(clippy::unwrap_used)]

mod demo;
mod errors;
mod platform;
mod session;
mod support;
