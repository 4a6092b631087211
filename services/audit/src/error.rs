//! The audit service's one error type, mapped to a gRPC status in one place.

/// Everything that can go wrong in audit. Messages are lowercase sentences
/// that say what to do; they never contain event contents or tokens.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The field, as named in the proto.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// Asked for events no longer kept.
    #[error("{0}")]
    OutOfRange(String),
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Recording this call in the audit stream failed: no audit, no data.
    #[error("audit: {0}")]
    AuditNotRecorded(#[from] mcr_audit_client::AuditPublishError),
    /// Identity did not answer (organisation details of a subject access report).
    #[error("{0}")]
    IdentityUnavailable(String),
    /// A bug or an impossible state.
    #[error("{0}")]
    Internal(String),
}

impl AuditError {
    /// Shorthand for [`AuditError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<(&'static str, String)> for AuditError {
    fn from((field, reason): (&'static str, String)) -> Self {
        Self::InvalidArgument { field, reason }
    }
}

impl From<mcr_runtime::paging::PageError> for AuditError {
    fn from(error: mcr_runtime::paging::PageError) -> Self {
        Self::InvalidArgument {
            field: "page",
            reason: error.to_string(),
        }
    }
}

impl From<AuditError> for tonic::Status {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::InvalidArgument { .. } => {
                tonic::Status::invalid_argument(error.to_string())
            }
            AuditError::PermissionDenied(message) => tonic::Status::permission_denied(message),
            AuditError::OutOfRange(message) => tonic::Status::out_of_range(message),
            AuditError::Database(database_error) => {
                tracing::error!(error = %database_error, "database call failed");
                tonic::Status::unavailable("the audit database is unavailable; retry shortly")
            }
            AuditError::AuditNotRecorded(publish_error) => {
                tracing::error!(error = %publish_error, "recording an audit call failed");
                tonic::Status::unavailable(
                    "this call could not be audited, so no data was returned; retry shortly",
                )
            }
            AuditError::IdentityUnavailable(message) => tonic::Status::unavailable(message),
            AuditError::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                tonic::Status::internal("internal error in audit; it has been logged")
            }
        }
    }
}
