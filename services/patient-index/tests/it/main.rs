//! Integration tests of mcr-patient-index against the real PostgreSQL and NATS,
//! with a real identity service issuing the tokens.

mod binary;
mod bulk;
mod curation;
mod hostile;
mod registration;
mod support;
