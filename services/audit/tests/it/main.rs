//! Integration tests of mcr-audit against the real PostgreSQL and NATS (and
//! a real identity for tokens).

mod binary;
mod chain;
mod crash;
mod ingest;
mod probes;
mod queries;
mod retention;
mod support;
