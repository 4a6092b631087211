//! The patient index's one error type, mapped to a gRPC status in one place.

use crate::domain::DomainError;

/// Everything that can go wrong in the patient index. Messages never carry
/// demographics.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A request field failed validation; the message names it.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The person, identifier, merge or review item does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The index is not in a state that allows this.
    #[error("{0}")]
    FailedPrecondition(String),
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An event could not be published.
    #[error("{0}")]
    Messaging(String),
    /// Stored data could not be read back; a bug or tampering.
    #[error("{0}")]
    Corrupt(String),
}

impl IndexError {
    /// Shorthand for a field error.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid(DomainError::invalid(field, reason))
    }
}

impl From<IndexError> for tonic::Status {
    fn from(error: IndexError) -> Self {
        match error {
            IndexError::Invalid(invalid) => tonic::Status::invalid_argument(invalid.to_string()),
            IndexError::NotFound(message) => tonic::Status::not_found(message),
            IndexError::FailedPrecondition(message) => tonic::Status::failed_precondition(message),
            IndexError::Database(database_error) => {
                tracing::error!(error = %database_error, "database call failed");
                tonic::Status::unavailable(
                    "the patient index database is unavailable; retry shortly",
                )
            }
            IndexError::Messaging(reason) => {
                tracing::error!(%reason, "nats publish failed");
                tonic::Status::unavailable("the message bus is unavailable; retry shortly")
            }
            IndexError::Corrupt(reason) => {
                tracing::error!(%reason, "stored data unreadable");
                tonic::Status::internal("internal error in the patient index; it has been logged")
            }
        }
    }
}

impl From<mcr_runtime::paging::PageError> for IndexError {
    fn from(error: mcr_runtime::paging::PageError) -> Self {
        Self::invalid("page", error.to_string())
    }
}
