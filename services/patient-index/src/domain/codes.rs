//! Coded values of the demographics: administrative sex and NHS Number verification status.

use mcr_proto::patient_index::v1 as proto;

use super::DomainError;

/// Administrative sex as in FHIR AdministrativeGender. "Not given" is `None` where used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// male
    Male,
    /// female
    Female,
    /// other
    Other,
    /// stated as not known (compared as if missing)
    Unknown,
}

impl Sex {
    /// Reads the proto enum value: `Ok(None)` for UNSPECIFIED, an error for a value the
    /// contract does not define.
    pub fn from_proto(field: &'static str, value: i32) -> Result<Option<Self>, DomainError> {
        match proto::Sex::try_from(value) {
            Ok(proto::Sex::Unspecified) => Ok(None),
            Ok(proto::Sex::Male) => Ok(Some(Self::Male)),
            Ok(proto::Sex::Female) => Ok(Some(Self::Female)),
            Ok(proto::Sex::Other) => Ok(Some(Self::Other)),
            Ok(proto::Sex::Unknown) => Ok(Some(Self::Unknown)),
            Err(_) => Err(DomainError::invalid(field, "is not a defined Sex value")),
        }
    }

    /// The proto enum.
    pub fn to_proto(self) -> proto::Sex {
        match self {
            Self::Male => proto::Sex::Male,
            Self::Female => proto::Sex::Female,
            Self::Other => proto::Sex::Other,
            Self::Unknown => proto::Sex::Unknown,
        }
    }
}

/// UK Core NHS Number verification status; [`NhsNumberVerification::code`] is the UK Core code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NhsNumberVerification {
    /// 01 Number present and verified: the only status that allows a link on the number alone.
    PresentAndVerified,
    /// 02 Number present but not traced.
    PresentNotTraced,
    /// 03 Trace required.
    TraceRequired,
    /// 04 Trace attempted - no match or multiple match found.
    TraceAttemptedNoMatch,
    /// 05 Trace needs to be resolved.
    TraceNeedsResolution,
    /// 06 Trace in progress.
    TraceInProgress,
    /// 07 Number not present and trace not required.
    NotPresentTraceNotRequired,
    /// 08 Trace postponed (baby under six weeks old).
    TracePostponed,
}

impl NhsNumberVerification {
    /// The two-digit UK Core code, e.g. "01".
    pub fn code(self) -> &'static str {
        match self {
            Self::PresentAndVerified => "01",
            Self::PresentNotTraced => "02",
            Self::TraceRequired => "03",
            Self::TraceAttemptedNoMatch => "04",
            Self::TraceNeedsResolution => "05",
            Self::TraceInProgress => "06",
            Self::NotPresentTraceNotRequired => "07",
            Self::TracePostponed => "08",
        }
    }

    /// The proto enum.
    pub fn to_proto(self) -> proto::NhsNumberVerificationStatus {
        use proto::NhsNumberVerificationStatus as Status;
        match self {
            Self::PresentAndVerified => Status::PresentAndVerified,
            Self::PresentNotTraced => Status::PresentNotTraced,
            Self::TraceRequired => Status::TraceRequired,
            Self::TraceAttemptedNoMatch => Status::TraceAttemptedNoMatch,
            Self::TraceNeedsResolution => Status::TraceNeedsResolution,
            Self::TraceInProgress => Status::TraceInProgress,
            Self::NotPresentTraceNotRequired => Status::NotPresentTraceNotRequired,
            Self::TracePostponed => Status::TracePostponed,
        }
    }

    /// Reads the status the way the proto documents it: UNSPECIFIED with a number means
    /// "present not traced"; a status that contradicts the presence or absence of a number
    /// (01 or 02 without one, 07 with one) is rejected.
    pub(crate) fn from_proto(value: i32, has_number: bool) -> Result<Option<Self>, DomainError> {
        use proto::NhsNumberVerificationStatus as Status;
        const FIELD: &str = "nhs_number_verification_status";
        let status = match Status::try_from(value) {
            Ok(Status::Unspecified) if has_number => Self::PresentNotTraced,
            Ok(Status::Unspecified) => return Ok(None),
            Ok(Status::PresentAndVerified) => Self::PresentAndVerified,
            Ok(Status::PresentNotTraced) => Self::PresentNotTraced,
            Ok(Status::TraceRequired) => Self::TraceRequired,
            Ok(Status::TraceAttemptedNoMatch) => Self::TraceAttemptedNoMatch,
            Ok(Status::TraceNeedsResolution) => Self::TraceNeedsResolution,
            Ok(Status::TraceInProgress) => Self::TraceInProgress,
            Ok(Status::NotPresentTraceNotRequired) => Self::NotPresentTraceNotRequired,
            Ok(Status::TracePostponed) => Self::TracePostponed,
            Err(_) => {
                return Err(DomainError::invalid(
                    FIELD,
                    "is not a defined verification status",
                ));
            }
        };
        let needs_number = matches!(status, Self::PresentAndVerified | Self::PresentNotTraced);
        if needs_number && !has_number {
            return Err(DomainError::invalid(
                FIELD,
                "says a number is present but nhs_number is empty",
            ));
        }
        if status == Self::NotPresentTraceNotRequired && has_number {
            return Err(DomainError::invalid(
                FIELD,
                "says no number is present but nhs_number is set",
            ));
        }
        Ok(Some(status))
    }
}
