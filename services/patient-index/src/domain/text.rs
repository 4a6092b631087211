//! Bounded, printable text fields.

use std::borrow::Cow;

use super::DomainError;

/// Trims `value` and checks it: `None` when nothing is left, an error when it holds control
/// characters or more than `max_chars` characters (characters, not bytes: names are Unicode).
pub(crate) fn optional_text(
    field: impl Into<Cow<'static, str>>,
    value: &str,
    max_chars: usize,
) -> Result<Option<String>, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    check_text(field, trimmed, max_chars)?;
    Ok(Some(trimmed.to_owned()))
}

/// Like [`optional_text`] but an empty value is an error.
pub(crate) fn required_text(
    field: impl Into<Cow<'static, str>>,
    value: &str,
    max_chars: usize,
) -> Result<String, DomainError> {
    let field = field.into();
    match optional_text(field.clone(), value, max_chars)? {
        Some(text) => Ok(text),
        None => Err(DomainError::invalid(
            field,
            "is required and must not be blank",
        )),
    }
}

fn check_text(
    field: impl Into<Cow<'static, str>>,
    value: &str,
    max_chars: usize,
) -> Result<(), DomainError> {
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    // Counting stops one past the limit so a huge value costs no more than a legal one.
    if value.chars().take(max_chars + 1).count() > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_absent_and_value_is_trimmed() {
        assert_eq!(optional_text("f", "  ", 5), Ok(None));
        assert_eq!(optional_text("f", " ab ", 5), Ok(Some("ab".to_owned())));
    }

    #[test]
    fn limit_counts_characters_not_bytes() {
        assert_eq!(optional_text("f", "ÉÉÉÉÉ", 5), Ok(Some("ÉÉÉÉÉ".to_owned())));
        let error = optional_text("name.family", "abcdef", 5).err();
        assert_eq!(
            error.map(|e| e.to_string()),
            Some("name.family: must be at most 5 characters".to_owned())
        );
    }

    #[test]
    fn control_characters_and_blank_required_values_are_rejected() {
        assert!(optional_text("f", "a\u{0}b", 5).is_err());
        assert!(required_text("f", " ", 5).is_err());
        assert_eq!(required_text("f", "x", 5), Ok("x".to_owned()));
    }
}
