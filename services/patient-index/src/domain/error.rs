//! The domain's one error type.

use std::borrow::Cow;

/// Everything the domain can reject. Messages are lowercase, say what was wrong and never
/// repeat the offending value (it may be a patient's name or NHS Number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A request field is malformed; the gRPC layer maps this to INVALID_ARGUMENT.
    #[error("{field}: {reason}")]
    InvalidField {
        /// Path of the field as named in the proto, e.g. `demographics.address.postcode` or
        /// `demographics.name.given[2]`.
        field: Cow<'static, str>,
        /// What is wrong with it, in lowercase.
        reason: String,
    },
    /// The matching configuration is unusable; the service must refuse to start.
    #[error("match configuration: {field}: {reason}")]
    InvalidMatchConfig {
        /// The setting, e.g. `given_name.exact.m`.
        field: Cow<'static, str>,
        /// What is wrong with it.
        reason: String,
    },
}

impl DomainError {
    /// Shorthand for [`DomainError::InvalidField`].
    pub fn invalid(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The offending field's path, for errors about request fields.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidField { field, .. } => Some(field),
            Self::InvalidMatchConfig { .. } => None,
        }
    }

    pub(crate) fn config(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self::InvalidMatchConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl DomainError {
    /// Puts `prefix` in front of the field path ("family" within "demographics.name" becomes
    /// "demographics.name.family"), so a validator can name fields relative to its message.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::InvalidField { field, reason } => Self::InvalidField {
                field: Cow::Owned(format!("{prefix}.{field}")),
                reason,
            },
            other @ Self::InvalidMatchConfig { .. } => other,
        }
    }
}

impl super::NhsNumberError {
    /// This error as a [`DomainError::InvalidField`] naming `field`.
    pub fn for_field(self, field: impl Into<Cow<'static, str>>) -> DomainError {
        DomainError::invalid(field, self.to_string())
    }
}

impl super::PostcodeError {
    /// This error as a [`DomainError::InvalidField`] naming `field`.
    pub fn for_field(self, field: impl Into<Cow<'static, str>>) -> DomainError {
        DomainError::invalid(field, self.to_string())
    }
}
