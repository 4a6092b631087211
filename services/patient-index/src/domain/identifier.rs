//! Local identifiers: one organisation's system's name for a person.

use mcr_proto::common::v1 as common;

use super::DomainError;
use super::text::required_text;

/// A checked local identifier. The triple is unique in the region and is how RegisterPerson
/// is made idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalIdentifier {
    /// ODS-style organisation code: 3-12 characters A-Z/0-9, upper case.
    pub organisation_code: String,
    /// Issuing system or namespace: 1-256 printable characters, compared exactly.
    pub system: String,
    /// The value: 1-128 printable characters, trimmed, otherwise compared exactly.
    pub value: String,
}

impl LocalIdentifier {
    /// Checks a proto identifier. `field` is its path in the request, e.g. "local_identifier"
    /// or "local_identifiers[3]"; errors name sub-fields below it.
    pub fn from_proto(
        field: &str,
        identifier: Option<&common::LocalIdentifier>,
    ) -> Result<Self, DomainError> {
        let Some(identifier) = identifier else {
            return Err(DomainError::invalid(field.to_owned(), "is required"));
        };
        Self::check(identifier).map_err(|error| error.within(field))
    }

    fn check(identifier: &common::LocalIdentifier) -> Result<Self, DomainError> {
        let organisation_code = identifier.organisation_code.trim().to_ascii_uppercase();
        let well_formed = (3..=12).contains(&organisation_code.len())
            && organisation_code
                .bytes()
                .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
        if !well_formed {
            return Err(DomainError::invalid(
                "organisation_code",
                "must be 3-12 characters A-Z or 0-9",
            ));
        }
        // The system is compared exactly (case and all), so only its bounds are checked.
        let system = required_text("system", &identifier.system, 256)?;
        if system != identifier.system {
            return Err(DomainError::invalid(
                "system",
                "must not start or end with white space",
            ));
        }
        Ok(Self {
            organisation_code,
            system,
            value: required_text("value", &identifier.value, 128)?,
        })
    }

    /// The proto form.
    pub fn to_proto(&self) -> common::LocalIdentifier {
        common::LocalIdentifier {
            organisation_code: self.organisation_code.clone(),
            system: self.system.clone(),
            value: self.value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identifier(organisation_code: &str, system: &str, value: &str) -> common::LocalIdentifier {
        common::LocalIdentifier {
            organisation_code: organisation_code.to_owned(),
            system: system.to_owned(),
            value: value.to_owned(),
        }
    }

    #[test]
    fn normalises_the_organisation_code_and_trims_the_value() {
        let checked = LocalIdentifier::from_proto(
            "local_identifier",
            Some(&identifier("rqw", "PAS", " H123 ")),
        );
        assert_eq!(
            checked,
            Ok(LocalIdentifier {
                organisation_code: "RQW".to_owned(),
                system: "PAS".to_owned(),
                value: "H123".to_owned(),
            })
        );
    }

    #[test]
    fn errors_name_the_sub_field() {
        let field = |raw: common::LocalIdentifier| {
            LocalIdentifier::from_proto("local_identifier", Some(&raw))
                .err()
                .and_then(|e| e.field().map(str::to_owned))
        };
        assert_eq!(
            field(identifier("R!", "PAS", "1")).as_deref(),
            Some("local_identifier.organisation_code")
        );
        assert_eq!(
            field(identifier("RQW", "", "1")).as_deref(),
            Some("local_identifier.system")
        );
        assert_eq!(
            field(identifier("RQW", "PAS", " ")).as_deref(),
            Some("local_identifier.value")
        );
        assert_eq!(
            field(identifier("RQW", "PAS", &"1".repeat(129))).as_deref(),
            Some("local_identifier.value")
        );
        let missing = LocalIdentifier::from_proto("local_identifier", None).err();
        assert_eq!(
            missing
                .and_then(|e| e.field().map(str::to_owned))
                .as_deref(),
            Some("local_identifier")
        );
    }
}
