//! Provider connectors for My Care Record.
//!
//! - [`validate`]: the one place a `RecordUpdate` is judged. Connectors call it
//!   before publishing; the record aggregator calls it on ingest and
//!   dead-letters what it rejects.
//! - [`nhs_number`]: the Modulus 11 check of NHS Numbers.
//! - [`stream`]: the JetStream streams of updates and dead letters.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod nhs_number;
pub mod stream;
pub mod validate;
