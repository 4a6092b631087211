//! Provider connectors for My Care Record.
//!
//! - [`validate`]: the one place a `RecordUpdate` is judged. Connectors call it
//!   before publishing; the record aggregator calls it on ingest and
//!   dead-letters what it rejects.
//! - [`nhs_number`]: the Modulus 11 check of NHS Numbers.
//! - [`stream`]: the JetStream streams of updates and dead letters.
//! - [`builder`]: a typed `RecordUpdate` builder that validates.
//! - [`publisher`]: JetStream publishing with de-duplication ids, trace
//!   context, acks, retries and pipelined batches.
//! - [`fhir_input`]: FHIR resources and Bundles a provider has, as updates.
//! - [`synthetic`]: a deterministic synthetic region for tests and benchmarks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod builder;
pub mod connection;
pub mod fhir_input;
pub mod nhs_number;
pub mod publisher;
pub mod stream;
pub mod synthetic;
pub mod validate;
