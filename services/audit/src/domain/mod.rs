//! The audit domain, without I/O: what a valid event is, the hash chain and
//! its verification, signed checkpoints, the FHIR BALP rendering and the
//! subject access report a person reads.

pub mod chain;
pub mod checkpoint;
pub mod event;
pub mod fhir;
pub mod query;
pub mod report;
