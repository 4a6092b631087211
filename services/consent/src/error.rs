//! Consent's one error type, mapped to a gRPC status in one place.

use crate::domain::DomainError;

/// Everything that can go wrong in consent. Messages never carry record
/// contents or tokens.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// A request field failed validation; the message names it.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The person, fact or review item does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The facts are not in a state that allows this.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller may not do this (beyond scopes, checked by auth).
    #[error("{0}")]
    PermissionDenied(String),
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An event could not be published.
    #[error("{0}")]
    Messaging(String),
    /// The audit trail did not take the event: the action is refused.
    #[error("{0}")]
    AuditUnavailable(String),
    /// Another service (identity, patient-index) could not be reached.
    #[error("{0}")]
    Dependency(String),
    /// Stored data could not be read back; a bug or tampering.
    #[error("{0}")]
    Corrupt(String),
}

impl ConsentError {
    /// Shorthand for a field error.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(DomainError::invalid(field, reason))
    }
}

impl From<ConsentError> for tonic::Status {
    fn from(error: ConsentError) -> Self {
        match error {
            ConsentError::Invalid(invalid) => tonic::Status::invalid_argument(invalid.to_string()),
            ConsentError::NotFound(message) => tonic::Status::not_found(message),
            ConsentError::FailedPrecondition(message) => {
                tonic::Status::failed_precondition(message)
            }
            ConsentError::PermissionDenied(message) => tonic::Status::permission_denied(message),
            ConsentError::Database(database_error) => {
                tracing::error!(error = %database_error, "database call failed");
                tonic::Status::unavailable("the consent database is unavailable; retry shortly")
            }
            ConsentError::Messaging(reason) => {
                tracing::error!(%reason, "nats publish failed");
                tonic::Status::unavailable("the message bus is unavailable; retry shortly")
            }
            ConsentError::AuditUnavailable(reason) => {
                tracing::error!(%reason, "audit event not recorded; action refused");
                tonic::Status::unavailable(
                    "the audit trail is unavailable, so this action is refused; retry shortly",
                )
            }
            ConsentError::Dependency(message) => tonic::Status::unavailable(message),
            ConsentError::Corrupt(reason) => {
                tracing::error!(%reason, "stored data unreadable");
                tonic::Status::internal("internal error in consent; it has been logged")
            }
        }
    }
}

impl From<mcr_runtime::paging::PageError> for ConsentError {
    fn from(error: mcr_runtime::paging::PageError) -> Self {
        Self::invalid("page", error.to_string())
    }
}

impl From<prost::DecodeError> for ConsentError {
    fn from(error: prost::DecodeError) -> Self {
        Self::Corrupt(format!("stored fact does not decode: {error}"))
    }
}
