//! Integration tests of mcr-identity against the real PostgreSQL and NATS.

mod accounts;
mod binary;
mod declared_accounts;
mod tokens;
