//! A person on the command line: a platform id (UUID), an NHS Number
//! (spaces allowed) or a local identifier `ORG:SYSTEM:VALUE`.

use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{LocalIdentifier, PersonReference};

use crate::error::CliError;

/// Parses a person argument into a reference.
pub fn parse_person(text: &str) -> Result<PersonReference, CliError> {
    let trimmed = text.trim();
    let digits: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    let reference = if is_uuid(trimmed) {
        Reference::PersonId(trimmed.to_ascii_lowercase())
    } else if digits.len() == 10 && digits.chars().all(|c| c.is_ascii_digit()) {
        Reference::NhsNumber(digits)
    } else if let Some((organisation, rest)) = trimmed.split_once(':') {
        // The value may itself hold ':' (URI systems are rare on the command
        // line, so SYSTEM is the text up to the next ':').
        let Some((system, value)) = rest.split_once(':') else {
            return Err(usage(text));
        };
        if organisation.is_empty() || system.is_empty() || value.is_empty() {
            return Err(usage(text));
        }
        Reference::LocalIdentifier(LocalIdentifier {
            organisation_code: organisation.to_ascii_uppercase(),
            system: system.to_owned(),
            value: value.to_owned(),
        })
    } else {
        return Err(usage(text));
    };
    Ok(PersonReference {
        reference: Some(reference),
    })
}

/// The person as text again, for messages.
pub fn describe(person: &PersonReference) -> String {
    match &person.reference {
        Some(Reference::PersonId(id)) => format!("person {id}"),
        Some(Reference::NhsNumber(number)) => format!("NHS Number {}", spaced_nhs_number(number)),
        Some(Reference::LocalIdentifier(local)) => format!(
            "{}:{}:{}",
            local.organisation_code, local.system, local.value
        ),
        None => "no person".to_owned(),
    }
}

/// "9434765919" as "943 476 5919", as NHS Numbers are printed.
pub fn spaced_nhs_number(number: &str) -> String {
    if number.len() == 10 && number.is_ascii() {
        format!("{} {} {}", &number[..3], &number[3..6], &number[6..])
    } else {
        number.to_owned()
    }
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, length)| {
            group.len() == length && group.chars().all(|c| c.is_ascii_hexdigit())
        })
}

fn usage(text: &str) -> CliError {
    CliError::Usage(format!(
        "{text:?} is not a person: give a platform person id (a UUID), an NHS Number (10 digits, e.g. \"943 476 5919\") or a local identifier ORG:SYSTEM:VALUE (e.g. RQW:PAS:H123456)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> Option<Reference> {
        parse_person(text).ok().and_then(|person| person.reference)
    }

    #[test]
    fn the_three_forms_are_told_apart() {
        assert_eq!(
            reference("0193A6F2-7C1B-7D3E-8F00-1234567890AB"),
            Some(Reference::PersonId(
                "0193a6f2-7c1b-7d3e-8f00-1234567890ab".to_owned()
            ))
        );
        assert_eq!(
            reference(" 943 476 5919 "),
            Some(Reference::NhsNumber("9434765919".to_owned()))
        );
        assert_eq!(
            reference("rqw:PAS:H:12"),
            Some(Reference::LocalIdentifier(LocalIdentifier {
                organisation_code: "RQW".to_owned(),
                system: "PAS".to_owned(),
                value: "H:12".to_owned(),
            }))
        );
    }

    #[test]
    fn anything_else_is_explained() {
        for bad in ["", "12345", "RQW:PAS", "RQW::x", "not a person"] {
            let error = parse_person(bad).err().map(|error| error.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|text| text.contains("is not a person: give")),
                "{bad:?}: {error:?}"
            );
        }
    }

    #[test]
    fn nhs_numbers_print_spaced() {
        assert_eq!(spaced_nhs_number("9434765919"), "943 476 5919");
        assert_eq!(
            describe(&parse_person("9434765919").ok().unwrap_or_default()),
            "NHS Number 943 476 5919"
        );
    }
}
