//! Calendar dates as the proto carries them: "YYYY-MM-DD".

use std::borrow::Cow;

use time::{Date, Month};

use super::DomainError;

/// The earliest date of birth or death accepted (the proto's lower bound): nobody alive or
/// recently dead was born earlier, so an earlier date is a keying error.
pub const EARLIEST_DATE: Date = time::macros::date!(1870 - 01 - 01);

/// Parses an optional "YYYY-MM-DD" date that must lie between [`EARLIEST_DATE`] and `today`.
///
/// `today` is a parameter so the domain stays pure: the caller passes the current UTC date
/// (or a fixed one in tests). Blank input is `Ok(None)`.
pub fn parse_past_date(
    field: impl Into<Cow<'static, str>>,
    input: &str,
    today: Date,
) -> Result<Option<Date>, DomainError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let field = field.into();
    let date = parse_iso_date(trimmed).ok_or_else(|| {
        DomainError::invalid(field.clone(), "must be a real date written YYYY-MM-DD")
    })?;
    if date > today {
        return Err(DomainError::invalid(field, "must not be in the future"));
    }
    if date < EARLIEST_DATE {
        return Err(DomainError::invalid(field, "must not be before 1870-01-01"));
    }
    Ok(Some(date))
}

/// Parses exactly "YYYY-MM-DD" (four-digit year, two-digit month and day) into a real date.
fn parse_iso_date(input: &str) -> Option<Date> {
    let bytes = input.as_bytes();
    if bytes.len() != 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u16> {
        let part = bytes.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0_u16, |value, digit| value * 10 + u16::from(digit - b'0')),
        )
    };
    let year = i32::from(number(0..4)?);
    let month = Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let day = u8::try_from(number(8..10)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2025 - 06 - 15);

    #[test]
    fn parses_real_dates_and_blank() {
        assert_eq!(
            parse_past_date("d", "1970-01-31", TODAY),
            Ok(Some(date!(1970 - 01 - 31)))
        );
        assert_eq!(parse_past_date("d", "2025-06-15", TODAY), Ok(Some(TODAY)));
        assert_eq!(parse_past_date("d", " ", TODAY), Ok(None));
    }

    #[test]
    fn rejects_malformed_and_impossible_dates() {
        for input in [
            "1970-1-31",
            "19700131",
            "1970/01/31",
            "1970-02-30",
            "1970-13-01",
            "+970-01-01",
            "1970-01-3a",
        ] {
            let error = parse_past_date("demographics.birth_date", input, TODAY).err();
            assert_eq!(
                error.map(|e| e.to_string()),
                Some("demographics.birth_date: must be a real date written YYYY-MM-DD".to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_future_and_too_early_dates() {
        assert!(parse_past_date("d", "2025-06-16", TODAY).is_err());
        assert!(parse_past_date("d", "1869-12-31", TODAY).is_err());
        assert!(parse_past_date("d", "1870-01-01", TODAY).is_ok());
    }
}
