//! Countries and postcodes: UK postcodes are validated and normalised, others kept as given.

use std::fmt;

/// Longest postcode kept for a country other than GB (the proto's limit).
pub const MAX_OTHER_POSTCODE_CHARS: usize = 20;

/// Why a country code or postcode was rejected. The messages never repeat the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PostcodeError {
    /// The country is not two letters.
    #[error("must be an ISO 3166-1 alpha-2 code (two letters), e.g. GB")]
    BadCountry,
    /// A GB postcode that does not have the shape of a UK postcode.
    #[error("is not a valid UK postcode (e.g. CM20 1QX)")]
    NotUkFormat,
    /// A non-GB postcode that is too long or holds control characters.
    #[error("must be at most 20 printable characters")]
    TooLong,
}

/// An ISO 3166-1 alpha-2 country code, upper case. Empty input means GB (the proto's default).
///
/// Only the shape is checked (two ASCII letters), not membership of the ISO list: a new or
/// rarely used code must not stop a real patient being registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// The United Kingdom, whose postcodes are validated.
    pub const GB: Self = Self(*b"GB");

    /// Parses a country code; blank means [`CountryCode::GB`]. Lower case is accepted.
    pub fn parse(input: &str) -> Result<Self, PostcodeError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(Self::GB);
        }
        match trimmed.as_bytes() {
            [first, second] if first.is_ascii_alphabetic() && second.is_ascii_alphabetic() => {
                Ok(Self([
                    first.to_ascii_uppercase(),
                    second.to_ascii_uppercase(),
                ]))
            }
            _ => Err(PostcodeError::BadCountry),
        }
    }

    /// The two upper-case letters.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this cannot fail; the fallback keeps it total.
        std::str::from_utf8(&self.0).unwrap_or("GB")
    }

    /// Whether this is GB, whose postcodes follow the UK format.
    pub fn is_gb(&self) -> bool {
        *self == Self::GB
    }
}

impl Default for CountryCode {
    fn default() -> Self {
        Self::GB
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A postcode checked against its country.
///
/// For GB the stored form is upper case with one space before the inward code ("CM20 1QX"),
/// whatever spacing and case came in ("cm201qx", " cm20  1qx "). For any other country the
/// value is kept as given, trimmed, at most [`MAX_OTHER_POSTCODE_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Postcode {
    value: String,
    country: CountryCode,
}

impl Postcode {
    /// Parses a postcode for `country`; `Ok(None)` when the input is blank.
    pub fn parse(input: &str, country: CountryCode) -> Result<Option<Self>, PostcodeError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let value = if country.is_gb() {
            normalise_uk_postcode(trimmed).ok_or(PostcodeError::NotUkFormat)?
        } else {
            let too_long = trimmed.chars().take(MAX_OTHER_POSTCODE_CHARS + 1).count()
                > MAX_OTHER_POSTCODE_CHARS;
            if too_long || trimmed.chars().any(char::is_control) {
                return Err(PostcodeError::TooLong);
            }
            trimmed.to_owned()
        };
        Ok(Some(Self { value, country }))
    }

    /// The stored form ("CM20 1QX" for GB; as given otherwise).
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The country the postcode was checked against.
    pub fn country(&self) -> CountryCode {
        self.country
    }

    /// The outward code ("CM20" of "CM20 1QX") for GB; `None` for other countries, whose
    /// postcodes have no such structure we can rely on.
    pub fn outward_code(&self) -> Option<&str> {
        if !self.country.is_gb() {
            return None;
        }
        self.value.split(' ').next()
    }
}

impl fmt::Display for Postcode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.value)
    }
}

/// Normalises a UK postcode or returns `None` when it cannot be one.
///
/// The rules are the Royal Mail / BS 7666 ones: outward code A9, A99, AA9, AA99, A9A or AA9A
/// and inward code 9AA, with the letters each position never uses excluded, plus the
/// non-geographic GIR 0AA (Girobank), which breaks the pattern but is real.
fn normalise_uk_postcode(input: &str) -> Option<String> {
    let compact: String = input
        .chars()
        .filter(|character| !character.is_whitespace())
        .map(|character| character.to_ascii_uppercase())
        .collect();
    if compact == "GIR0AA" {
        return Some("GIR 0AA".to_owned());
    }
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    if !is_valid_inward(inward.as_bytes()) || !is_valid_outward(outward.as_bytes()) {
        return None;
    }
    Some(format!("{outward} {inward}"))
}

fn is_valid_inward(inward: &[u8]) -> bool {
    // The last two letters never use C, I, K, M, O or V (they look like digits or each other).
    let letter = |byte: &u8| byte.is_ascii_uppercase() && !b"CIKMOV".contains(byte);
    matches!(inward, [digit, first, second] if digit.is_ascii_digit() && letter(first) && letter(second))
}

fn is_valid_outward(outward: &[u8]) -> bool {
    let first = |byte: &u8| byte.is_ascii_uppercase() && !b"QVX".contains(byte);
    let second = |byte: &u8| byte.is_ascii_uppercase() && !b"IJZ".contains(byte);
    let digit = |byte: &u8| byte.is_ascii_digit();
    match outward {
        [a, b] => first(a) && digit(b),
        [a, b, c] => {
            first(a)
                && ((digit(b) && digit(c))
                    || (second(b) && digit(c))
                    || (digit(b) && b"ABCDEFGHJKPSTUW".contains(c)))
        }
        [a, b, c, d] => {
            first(a) && second(b) && digit(c) && (digit(d) || b"ABEHMNPRVWXY".contains(d))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gb(input: &str) -> Result<Option<String>, PostcodeError> {
        Postcode::parse(input, CountryCode::GB)
            .map(|postcode| postcode.map(|p| p.as_str().to_owned()))
    }

    #[test]
    fn gb_postcodes_are_normalised() {
        assert_eq!(gb("cm20 1qx"), Ok(Some("CM20 1QX".to_owned())));
        assert_eq!(gb("CM201QX"), Ok(Some("CM20 1QX".to_owned())));
        assert_eq!(gb("  cm20   1qx "), Ok(Some("CM20 1QX".to_owned())));
        assert_eq!(gb(""), Ok(None));
    }

    #[test]
    fn every_uk_outward_shape_is_accepted() {
        for (input, expected) in [
            ("M1 1AE", "M1 1AE"),     // A9
            ("B338TH", "B33 8TH"),    // A99
            ("CR2 6XH", "CR2 6XH"),   // AA9
            ("DN55 1PT", "DN55 1PT"), // AA99
            ("W1A 1HQ", "W1A 1HQ"),   // A9A
            ("EC1A 1BB", "EC1A 1BB"), // AA9A
            ("gir 0aa", "GIR 0AA"),   // the Girobank exception
        ] {
            assert_eq!(gb(input), Ok(Some(expected.to_owned())), "{input}");
        }
    }

    #[test]
    fn malformed_uk_postcodes_are_rejected() {
        for input in [
            "CM20", "1QX", "CM20 1Q", "CM201QXX", "QM20 1QX", // Q never first
            "CJ20 1QX", // J never second
            "CM20 1QC", // C never in the inward letters
            "W1I 1HQ",  // I never third in A9A
            "EC1C 1BB", // C never fourth in AA9A
            "CM2O 1QX", // letter O for digit 0
            "CM20-1QX", "BFPO 123",
        ] {
            assert_eq!(gb(input), Err(PostcodeError::NotUkFormat), "{input}");
        }
    }

    #[test]
    fn other_countries_keep_the_postcode_as_given() {
        let australia = CountryCode::parse("au");
        assert_eq!(australia, Ok(CountryCode(*b"AU")));
        let parsed = australia.and_then(|country| Postcode::parse(" 0820 ", country));
        assert_eq!(
            parsed.map(|postcode| postcode.map(|p| p.as_str().to_owned())),
            Ok(Some("0820".to_owned()))
        );
        let long = "1".repeat(21);
        assert_eq!(
            Postcode::parse(&long, CountryCode(*b"US")),
            Err(PostcodeError::TooLong)
        );
    }

    #[test]
    fn outward_code_only_for_gb() {
        let postcode = Postcode::parse("cm20 1qx", CountryCode::GB).ok().flatten();
        assert_eq!(
            postcode.as_ref().and_then(Postcode::outward_code),
            Some("CM20")
        );
        let other = Postcode::parse("CM20 1QX", CountryCode(*b"IE"))
            .ok()
            .flatten();
        assert_eq!(other.as_ref().and_then(Postcode::outward_code), None);
    }

    #[test]
    fn country_is_two_letters_and_defaults_to_gb() {
        assert_eq!(CountryCode::parse(""), Ok(CountryCode::GB));
        assert_eq!(
            CountryCode::parse("gb").map(|c| c.to_string()),
            Ok("GB".to_owned())
        );
        assert_eq!(CountryCode::parse(" uk "), Ok(CountryCode(*b"UK")));
        for input in ["GBR", "G", "G1", "É1"] {
            assert_eq!(
                CountryCode::parse(input),
                Err(PostcodeError::BadCountry),
                "{input}"
            );
        }
    }
}
