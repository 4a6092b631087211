//! Checks on request fields. Every error names the field.

use mcr_proto::common::v1::{Category, Purpose as ProtoPurpose, Role};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CategorySet, Purpose};

/// A request field is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DomainError {
    /// The field, as named in the proto (`person.person_id`).
    pub field: String,
    /// What is wrong, in lower case.
    pub reason: String,
}

impl DomainError {
    /// An error on `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

type Checked<T> = Result<T, DomainError>;

/// A UUID (any case, surrounding white space ignored).
pub fn uuid(field: &str, value: &str) -> Checked<Uuid> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    Uuid::parse_str(trimmed).map_err(|_| DomainError::invalid(field, "must be a UUID"))
}

/// An ODS-style organisation code: 3-12 of A-Z/0-9, stored upper case.
pub fn organisation_code(field: &str, value: &str) -> Checked<String> {
    let code = value.trim().to_ascii_uppercase();
    if code.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if !(3..=12).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(DomainError::invalid(
            field,
            "must be an ODS-style code: 3 to 12 letters A-Z or digits",
        ));
    }
    Ok(code)
}

/// An organisation code that defaults to `fallback` when empty.
pub fn organisation_code_or(field: &str, value: &str, fallback: &str) -> Checked<String> {
    if value.trim().is_empty() {
        return organisation_code(field, fallback);
    }
    organisation_code(field, value)
}

/// Free text of at most `max` characters, trimmed; `min` > 0 makes it required.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Checked<String> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if min > 0 && length == 0 {
        return Err(DomainError::invalid(field, "is required"));
    }
    if length < min {
        return Err(DomainError::invalid(
            field,
            format!("must be at least {min} characters"),
        ));
    }
    if length > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A note: optional, at most 1000 characters.
pub fn note(field: &str, value: &str) -> Checked<String> {
    text(field, value, 0, 1000)
}

/// A purpose (not UNSPECIFIED).
pub fn purpose(field: &str, value: i32) -> Checked<Purpose> {
    match ProtoPurpose::try_from(value) {
        Ok(ProtoPurpose::DirectCare) => Ok(Purpose::DirectCare),
        Ok(ProtoPurpose::Emergency) => Ok(Purpose::Emergency),
        Ok(ProtoPurpose::Unspecified) => Err(DomainError::invalid(
            field,
            "is required: PURPOSE_DIRECT_CARE or PURPOSE_EMERGENCY",
        )),
        Err(_) => Err(DomainError::invalid(
            field,
            format!("{value} is not a purpose"),
        )),
    }
}

/// One category (not UNSPECIFIED).
pub fn category(field: &str, value: i32) -> Checked<Category> {
    match Category::try_from(value) {
        Ok(Category::Unspecified) => Err(DomainError::invalid(
            field,
            "CATEGORY_UNSPECIFIED is not a category",
        )),
        Ok(category) => Ok(category),
        Err(_) => Err(DomainError::invalid(
            field,
            format!("{value} is not a category"),
        )),
    }
}

/// A list of categories; empty means all ten.
pub fn categories(field: &str, values: &[i32]) -> Checked<CategorySet> {
    if values.is_empty() {
        return Ok(CategorySet::ALL);
    }
    let mut set = CategorySet::EMPTY;
    for (index, value) in values.iter().enumerate() {
        set.insert(category(&format!("{field}[{index}]"), *value)?);
    }
    Ok(set)
}

/// The categories as stored: empty means all.
pub fn stored_categories(values: &[i32]) -> Checked<Vec<i16>> {
    let mut stored = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let checked = category(&format!("categories[{index}]"), *value)?;
        let as_small = checked as i16;
        if !stored.contains(&as_small) {
            stored.push(as_small);
        }
    }
    Ok(stored)
}

/// A role (not UNSPECIFIED).
pub fn role(field: &str, value: i32) -> Checked<Role> {
    match Role::try_from(value) {
        Ok(Role::Unspecified) => Err(DomainError::invalid(field, "is required")),
        Ok(role) => Ok(role),
        Err(_) => Err(DomainError::invalid(
            field,
            format!("{value} is not a role"),
        )),
    }
}

/// A timestamp from the wire.
pub fn instant(field: &str, value: &prost_types::Timestamp) -> Checked<OffsetDateTime> {
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| DomainError::invalid(field, "is not a valid timestamp"))
}

/// A list of at most `max` items, each checked by `check`.
pub fn bounded_list<T>(
    field: &str,
    values: &[String],
    max: usize,
    check: impl Fn(&str, &str) -> Checked<T>,
) -> Checked<Vec<T>> {
    if values.len() > max {
        return Err(DomainError::invalid(
            field,
            format!("must hold at most {max} items"),
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(index, value)| check(&format!("{field}[{index}]"), value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_codes_are_upper_cased_and_checked() {
        assert_eq!(organisation_code("org", " rqw ").as_deref(), Ok("RQW"));
        assert_eq!(
            organisation_code("org", "R-W").map_err(|e| e.to_string()),
            Err("org: must be an ODS-style code: 3 to 12 letters A-Z or digits".to_owned())
        );
        assert!(organisation_code("org", "").is_err());
    }

    #[test]
    fn text_bounds_are_named() {
        let error = text("justification", "short", 10, 1000).unwrap_err();
        assert_eq!(
            error.to_string(),
            "justification: must be at least 10 characters"
        );
        let long = "x".repeat(1001);
        assert!(text("justification", &long, 10, 1000).is_err());
        assert_eq!(text("note", "  ok  ", 0, 10).as_deref(), Ok("ok"));
    }

    #[test]
    fn category_lists_reject_unspecified_with_index() {
        let error = categories("requested_categories", &[1, 0]).unwrap_err();
        assert_eq!(error.field, "requested_categories[1]");
        assert_eq!(categories("c", &[]), Ok(CategorySet::ALL));
    }

    #[test]
    fn purpose_is_required() {
        assert_eq!(purpose("purpose", 0).unwrap_err().field, "purpose");
        assert_eq!(purpose("purpose", 2), Ok(Purpose::Emergency));
    }
}
