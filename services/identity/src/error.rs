//! The identity service's one error type, mapped to a gRPC status in one place.

/// Everything that can go wrong in identity. Messages are lowercase
/// sentences that say what to do; they never contain passwords or tokens.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The field, as named in the proto.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// Credentials or token are wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The system is not in a state that allows this (locked, suspended, …).
    #[error("{0}")]
    FailedPrecondition(String),
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Publishing to NATS failed; the change was not announced.
    #[error("{0}")]
    Messaging(String),
    /// Not ready yet, or a dependency is down; retrying later will work.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an impossible state.
    #[error("{0}")]
    Internal(String),
}

impl IdentityError {
    /// Shorthand for [`IdentityError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<IdentityError> for tonic::Status {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::InvalidArgument { .. } => {
                tonic::Status::invalid_argument(error.to_string())
            }
            IdentityError::NotFound(message) => tonic::Status::not_found(message),
            IdentityError::AlreadyExists(message) => tonic::Status::already_exists(message),
            IdentityError::Unauthenticated(message) => tonic::Status::unauthenticated(message),
            IdentityError::PermissionDenied(message) => tonic::Status::permission_denied(message),
            IdentityError::FailedPrecondition(message) => {
                tonic::Status::failed_precondition(message)
            }
            IdentityError::Database(database_error) => {
                tracing::error!(error = %database_error, "database call failed");
                tonic::Status::unavailable("the identity database is unavailable; retry shortly")
            }
            IdentityError::Messaging(reason) => {
                tracing::error!(%reason, "nats publish failed");
                tonic::Status::unavailable("the message bus is unavailable; retry shortly")
            }
            IdentityError::Unavailable(message) => tonic::Status::unavailable(message),
            IdentityError::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                tonic::Status::internal("internal error in identity; it has been logged")
            }
        }
    }
}

impl From<mcr_auth::SigningError> for IdentityError {
    fn from(error: mcr_auth::SigningError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<mcr_runtime::paging::PageError> for IdentityError {
    fn from(error: mcr_runtime::paging::PageError) -> Self {
        Self::InvalidArgument {
            field: "page",
            reason: error.to_string(),
        }
    }
}
