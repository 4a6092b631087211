//! Telephone numbers and e-mail addresses.

use std::borrow::Cow;
use std::fmt;

use super::DomainError;

/// Longest telephone number accepted (the proto's limit).
pub const MAX_PHONE_CHARS: usize = 32;
/// Longest e-mail address accepted (the SMTP limit the proto adopts).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A telephone number as given (trimmed): digits, spaces and `+()-`, at least one digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Checks a telephone number; `Ok(None)` when blank.
    pub fn parse(
        field: impl Into<Cow<'static, str>>,
        input: &str,
    ) -> Result<Option<Self>, DomainError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let allowed = |character: char| character.is_ascii_digit() || " +()-".contains(character);
        if !trimmed.chars().all(allowed) {
            return Err(DomainError::invalid(
                field,
                "must contain only digits, spaces and + ( ) -",
            ));
        }
        if trimmed.len() > MAX_PHONE_CHARS {
            return Err(DomainError::invalid(field, "must be at most 32 characters"));
        }
        if !trimmed.chars().any(|character| character.is_ascii_digit()) {
            return Err(DomainError::invalid(
                field,
                "must contain at least one digit",
            ));
        }
        Ok(Some(Self(trimmed.to_owned())))
    }

    /// The number as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits a number is compared by: punctuation dropped and the UK international prefix
    /// (+44 or 0044, with the "(0)" people write after it) turned into the national leading 0,
    /// so "+44 (0)20 7946 0000" and "020 7946 0000" compare equal.
    pub fn comparable_digits(&self) -> String {
        let without_trunk = self.0.replace("(0)", "");
        let digits: String = without_trunk.chars().filter(char::is_ascii_digit).collect();
        let international = if self.0.trim_start().starts_with('+') {
            Some(digits.as_str())
        } else {
            digits.strip_prefix("00")
        };
        match international.and_then(|rest| rest.strip_prefix("44")) {
            Some(national) => format!("0{national}"),
            None => digits,
        }
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An e-mail address as given (trimmed): one `@` with something either side, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Checks an e-mail address; `Ok(None)` when blank. Deliverability is not our business:
    /// only the shape the proto promises is checked.
    pub fn parse(
        field: impl Into<Cow<'static, str>>,
        input: &str,
    ) -> Result<Option<Self>, DomainError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().take(MAX_EMAIL_CHARS + 1).count() > MAX_EMAIL_CHARS {
            return Err(DomainError::invalid(
                field,
                "must be at most 254 characters",
            ));
        }
        let well_formed = match trimmed.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            }
            None => false,
        };
        if !well_formed
            || trimmed
                .chars()
                .any(|character| character.is_whitespace() || character.is_control())
        {
            return Err(DomainError::invalid(
                field,
                "must be an e-mail address with one @ and no spaces",
            ));
        }
        Ok(Some(Self(trimmed.to_owned())))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(input: &str) -> Option<String> {
        Phone::parse("phone", input)
            .ok()
            .flatten()
            .map(|phone| phone.comparable_digits())
    }

    #[test]
    fn phone_accepts_the_documented_characters_only() {
        assert!(matches!(
            Phone::parse("phone", "+44 (0)20 7946-0000"),
            Ok(Some(_))
        ));
        assert_eq!(Phone::parse("phone", " "), Ok(None));
        assert!(Phone::parse("phone", "020 7946 0000 ext 1").is_err());
        assert!(Phone::parse("phone", "()").is_err());
        assert!(Phone::parse("phone", &"1".repeat(33)).is_err());
    }

    #[test]
    fn uk_numbers_compare_in_national_form() {
        let national = digits("020 7946 0000");
        assert_eq!(national.as_deref(), Some("02079460000"));
        assert_eq!(digits("+44 (0)20 7946 0000"), national);
        assert_eq!(digits("+44 20 7946 0000"), national);
        assert_eq!(digits("0044 20 7946 0000"), national);
        assert_eq!(digits("+61 2 9374 4000").as_deref(), Some("61293744000"));
    }

    #[test]
    fn email_needs_exactly_one_at_sign() {
        assert!(matches!(
            Email::parse("email", "a.person@example.nhs.uk"),
            Ok(Some(_))
        ));
        for input in [
            "no-at-sign",
            "two@at@signs",
            "@example.org",
            "person@",
            "a person@example.org",
        ] {
            assert!(Email::parse("email", input).is_err(), "{input}");
        }
        assert!(Email::parse("email", &format!("{}@example.org", "a".repeat(250))).is_err());
    }
}
