//! The aggregator's rules, free of I/O: entry identity and grouping, what a
//! viewer may see, and the FHIR outputs.

pub mod entry;
pub mod fhir;
pub mod request;
pub mod view;

pub use entry::{StoredEntry, entry_id, group_key};
