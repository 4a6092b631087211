//! The identity domain, without I/O: field validation, account lockout,
//! token contents and signing-key rotation.

pub mod keys;
pub mod lockout;
pub mod service_accounts;
pub mod tokens;
pub mod validation;
