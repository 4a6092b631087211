//! The aggregator's one error type, mapped to a gRPC status in one place.
//! Messages never carry record contents.

/// Everything that can go wrong in the aggregator.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    /// A request field failed validation; the message names it.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The person or entry does not exist (or is deleted).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (missing scope; a withheld entry).
    #[error("{0}")]
    PermissionDenied(String),
    /// Consent denied the access; the status carries the decision id and
    /// reason codes as trailing metadata.
    #[error("{message}")]
    Denied {
        message: String,
        decision_id: String,
        reason_codes: String,
    },
    /// Another service answered with an error or not at all.
    #[error("{service}: {}", status.message())]
    Dependency {
        service: &'static str,
        status: tonic::Status,
    },
    /// The access could not be recorded durably: no audit, no data.
    #[error("{0}")]
    AuditUnavailable(String),
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A bug or unreadable stored data.
    #[error("{0}")]
    Internal(String),
}

impl AggregatorError {
    /// Shorthand for a field error.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// A failed call to `service`.
    pub fn dependency(service: &'static str, status: tonic::Status) -> Self {
        Self::Dependency { service, status }
    }
}

impl From<tonic::Status> for AggregatorError {
    /// A status produced on the way to a dependency (no service token).
    fn from(status: tonic::Status) -> Self {
        Self::dependency("identity", status)
    }
}

impl From<AggregatorError> for tonic::Status {
    fn from(error: AggregatorError) -> Self {
        match error {
            AggregatorError::Invalid { field, reason } => {
                tonic::Status::invalid_argument(format!("{field}: {reason}"))
            }
            AggregatorError::NotFound(message) => tonic::Status::not_found(message),
            AggregatorError::PermissionDenied(message) => tonic::Status::permission_denied(message),
            AggregatorError::Denied {
                message,
                decision_id,
                reason_codes,
            } => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                if let Ok(value) = decision_id.parse() {
                    metadata.insert("mcr-decision-id", value);
                }
                if let Ok(value) = reason_codes.parse() {
                    metadata.insert("mcr-reason-codes", value);
                }
                tonic::Status::with_metadata(tonic::Code::PermissionDenied, message, metadata)
            }
            AggregatorError::Dependency { service, status } => match status.code() {
                // The caller's own mistakes, found by the service that knows.
                tonic::Code::NotFound => tonic::Status::not_found(status.message().to_owned()),
                tonic::Code::InvalidArgument => {
                    tonic::Status::invalid_argument(status.message().to_owned())
                }
                tonic::Code::FailedPrecondition => {
                    tonic::Status::failed_precondition(status.message().to_owned())
                }
                code => {
                    tracing::warn!(
                        service,
                        ?code,
                        message = status.message(),
                        "dependency call failed"
                    );
                    tonic::Status::unavailable(format!(
                        "{service} is unavailable ({}); no data is returned, retry shortly",
                        status.message()
                    ))
                }
            },
            AggregatorError::AuditUnavailable(reason) => {
                tracing::error!(%reason, "audit publish failed; refusing the access");
                tonic::Status::unavailable(
                    "the access could not be recorded in the audit trail, so no data is returned; retry shortly",
                )
            }
            AggregatorError::Database(database_error) => {
                tracing::error!(error = %database_error, "database call failed");
                tonic::Status::unavailable("the record database is unavailable; retry shortly")
            }
            AggregatorError::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                tonic::Status::internal(
                    "internal error in the record aggregator; it has been logged",
                )
            }
        }
    }
}

impl From<mcr_runtime::paging::PageError> for AggregatorError {
    fn from(error: mcr_runtime::paging::PageError) -> Self {
        Self::invalid("page", error.to_string())
    }
}
