//! Checking what a caller asks for, field by field, before anything is read.

use mcr_connector::nhs_number;
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{Category, LocalIdentifier, PersonReference, Purpose};
use mcr_proto::timestamps::offset_date_time;

use super::view::TimeWindow;
use crate::error::AggregatorError;

/// The ten categories, for "empty means all".
pub const ALL_CATEGORIES: [Category; 10] = [
    Category::Demographics,
    Category::Medications,
    Category::TestResults,
    Category::Correspondence,
    Category::ClinicalHistory,
    Category::EmergencyCare,
    Category::Appointments,
    Category::PlansAndAlerts,
    Category::MentalHealth,
    Category::SocialCare,
];

/// A well-formed person reference (NHS Number normalised).
pub fn person_reference(
    reference: Option<&PersonReference>,
) -> Result<PersonReference, AggregatorError> {
    let reference = match reference.and_then(|person| person.reference.as_ref()) {
        None => {
            return Err(AggregatorError::invalid(
                "person",
                "required: give a person_id, an nhs_number or a local_identifier",
            ));
        }
        Some(Reference::PersonId(id)) => {
            let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| {
                AggregatorError::invalid(
                    "person.person_id",
                    "must be a UUID as issued by patient-index",
                )
            })?;
            Reference::PersonId(id.to_string())
        }
        Some(Reference::NhsNumber(number)) => {
            Reference::NhsNumber(nhs_number::normalise(number).map_err(|error| {
                AggregatorError::invalid("person.nhs_number", error.to_string())
            })?)
        }
        Some(Reference::LocalIdentifier(identifier)) => {
            Reference::LocalIdentifier(local_identifier(identifier)?)
        }
    };
    Ok(PersonReference {
        reference: Some(reference),
    })
}

fn local_identifier(identifier: &LocalIdentifier) -> Result<LocalIdentifier, AggregatorError> {
    let organisation_code = identifier.organisation_code.trim().to_ascii_uppercase();
    if !mcr_connector::validate::is_organisation_code(&organisation_code) {
        return Err(AggregatorError::invalid(
            "person.local_identifier.organisation_code",
            "must be 3-12 characters A-Z or 0-9",
        ));
    }
    let bounded = |field, value: &str, max: usize| {
        if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
            Err(AggregatorError::invalid(
                field,
                format!("required: 1-{max} printable characters"),
            ))
        } else {
            Ok(value.to_owned())
        }
    };
    Ok(LocalIdentifier {
        organisation_code,
        system: bounded("person.local_identifier.system", &identifier.system, 256)?,
        value: bounded(
            "person.local_identifier.value",
            identifier.value.trim(),
            128,
        )?,
    })
}

/// The purpose of use: required.
pub fn purpose(value: i32) -> Result<Purpose, AggregatorError> {
    match Purpose::try_from(value) {
        Ok(Purpose::DirectCare) => Ok(Purpose::DirectCare),
        Ok(Purpose::Emergency) => Ok(Purpose::Emergency),
        _ => Err(AggregatorError::invalid(
            "purpose",
            "required: PURPOSE_DIRECT_CARE or PURPOSE_EMERGENCY",
        )),
    }
}

/// The categories asked for, without repeats; empty means all ten.
pub fn categories(values: &[i32]) -> Result<Vec<Category>, AggregatorError> {
    if values.is_empty() {
        return Ok(ALL_CATEGORIES.to_vec());
    }
    let mut categories = Vec::new();
    for value in values {
        match Category::try_from(*value) {
            Ok(category) if category != Category::Unspecified => {
                if !categories.contains(&category) {
                    categories.push(category);
                }
            }
            _ => {
                return Err(AggregatorError::invalid(
                    "categories",
                    format!("{value} is not a category (CATEGORY_UNSPECIFIED is not allowed)"),
                ));
            }
        }
    }
    Ok(categories)
}

/// The effective-time window; `from` must be before `to`.
pub fn window(
    from: Option<&prost_types::Timestamp>,
    to: Option<&prost_types::Timestamp>,
) -> Result<TimeWindow, AggregatorError> {
    let instant = |field, timestamp: Option<&prost_types::Timestamp>| {
        timestamp
            .map(|timestamp| {
                offset_date_time(timestamp)
                    .ok_or_else(|| AggregatorError::invalid(field, "is not a valid instant"))
            })
            .transpose()
    };
    let window = TimeWindow {
        from: instant("effective_from", from)?,
        to: instant("effective_to", to)?,
    };
    if let (Some(from), Some(to)) = (window.from, window.to)
        && from >= to
    {
        return Err(AggregatorError::invalid(
            "effective_from",
            "must be before effective_to",
        ));
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: AggregatorError) -> &'static str {
        match error {
            AggregatorError::Invalid { field, .. } => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn references_are_checked_and_normalised() {
        let by = |reference| PersonReference {
            reference: Some(reference),
        };
        let normalised = person_reference(Some(&by(Reference::NhsNumber("943 476 5919".into()))))
            .expect("a valid NHS Number");
        assert_eq!(
            normalised.reference,
            Some(Reference::NhsNumber("9434765919".into()))
        );
        assert_eq!(
            field_of(
                person_reference(Some(&by(Reference::NhsNumber("9434765918".into())))).unwrap_err()
            ),
            "person.nhs_number"
        );
        assert_eq!(
            field_of(
                person_reference(Some(&by(Reference::PersonId("not-a-uuid".into())))).unwrap_err()
            ),
            "person.person_id"
        );
        assert_eq!(field_of(person_reference(None).unwrap_err()), "person");
        let local = by(Reference::LocalIdentifier(LocalIdentifier {
            organisation_code: "rqw".into(),
            system: "PAS".into(),
            value: " 123 ".into(),
        }));
        let Some(Reference::LocalIdentifier(identifier)) =
            person_reference(Some(&local)).unwrap().reference
        else {
            panic!("a local identifier stays one");
        };
        assert_eq!(
            (
                identifier.organisation_code.as_str(),
                identifier.value.as_str()
            ),
            ("RQW", "123")
        );
    }

    #[test]
    fn purposes_categories_and_windows_are_checked() {
        assert_eq!(field_of(purpose(0).unwrap_err()), "purpose");
        assert_eq!(purpose(2).unwrap(), Purpose::Emergency);
        assert_eq!(categories(&[]).unwrap().len(), 10);
        assert_eq!(
            categories(&[2, 2, 3]).unwrap(),
            [Category::Medications, Category::TestResults]
        );
        assert_eq!(field_of(categories(&[0]).unwrap_err()), "categories");
        assert_eq!(field_of(categories(&[99]).unwrap_err()), "categories");
        let at = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
        assert_eq!(
            field_of(window(Some(&at(10)), Some(&at(10))).unwrap_err()),
            "effective_from"
        );
        let absurd = prost_types::Timestamp {
            seconds: 0,
            nanos: -5,
        };
        assert_eq!(
            field_of(window(Some(&absurd), None).unwrap_err()),
            "effective_from"
        );
        assert!(window(Some(&at(1)), Some(&at(2))).is_ok());
    }
}
