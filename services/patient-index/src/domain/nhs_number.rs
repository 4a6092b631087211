//! NHS Numbers: ten digits whose last is a Modulus 11 check digit.

use std::fmt;

/// Why a string is not an NHS Number. The messages never repeat the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    /// Something other than a digit or a space.
    #[error("must contain only digits and spaces")]
    NonDigit,
    /// Not ten digits once spaces are removed.
    #[error("must have 10 digits, found {digits}")]
    WrongLength {
        /// How many digits the input held.
        digits: usize,
    },
    /// The tenth digit is not the Modulus 11 check digit of the first nine (or the first nine
    /// give a check value of 10, which no NHS Number has).
    #[error("check digit does not match")]
    BadCheckDigit,
}

/// A valid NHS Number, held in its normalised form: ten ASCII digits, no spaces.
///
/// Parsing accepts spaces anywhere ("943 476 5919", as printed on NHS letters) and leading or
/// trailing white space. Dashes and any other separator are rejected, as the proto contract
/// says ("spaces are accepted and removed; anything else is INVALID_ARGUMENT").
///
/// `Display` gives the spaced form people read ("943 476 5919"); [`NhsNumber::as_str`] gives
/// the stored and compared form ("9434765919").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber(String);

impl NhsNumber {
    /// Parses and checks an NHS Number.
    ///
    /// The check digit is computed as NHS Digital specifies: multiply the first nine digits by
    /// the weights 10 down to 2, sum, take the remainder modulo 11 and subtract it from 11; a
    /// result of 11 means check digit 0 and a result of 10 means the number is invalid.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let mut digits = String::with_capacity(10);
        for character in input.trim().chars() {
            match character {
                ' ' => {}
                '0'..='9' => {
                    // Stop collecting past eleven digits: the count in the error then says
                    // "too many" without letting a huge input grow the buffer.
                    if digits.len() <= 10 {
                        digits.push(character);
                    }
                }
                _ => return Err(NhsNumberError::NonDigit),
            }
        }
        if digits.len() != 10 {
            return Err(NhsNumberError::WrongLength {
                digits: input.chars().filter(char::is_ascii_digit).count(),
            });
        }
        let values: Vec<u32> = digits.bytes().map(|byte| u32::from(byte - b'0')).collect();
        let weighted_sum: u32 = values
            .iter()
            .take(9)
            .zip((2..=10).rev())
            .map(|(digit, weight)| digit * weight)
            .sum();
        let check = match 11 - weighted_sum % 11 {
            11 => 0,
            10 => return Err(NhsNumberError::BadCheckDigit),
            check => check,
        };
        if values.get(9) != Some(&check) {
            return Err(NhsNumberError::BadCheckDigit);
        }
        Ok(Self(digits))
    }

    /// The normalised form: ten digits, e.g. "9434765919". This is what to store and index.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NhsNumber {
    /// The 3-3-4 spaced form, e.g. "943 476 5919".
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (first, rest) = self.0.split_at(3);
        let (second, third) = rest.split_at(3);
        write!(formatter, "{first} {second} {third}")
    }
}

impl std::str::FromStr for NhsNumber {
    type Err = NhsNumberError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_valid_number_with_or_without_spaces() {
        for input in [
            "9434765919",
            "943 476 5919",
            " 943 476 5919 ",
            "9 4 3 4 7 6 5 9 1 9",
        ] {
            let parsed = NhsNumber::parse(input);
            assert_eq!(
                parsed.as_ref().map(NhsNumber::as_str),
                Ok("9434765919"),
                "{input}"
            );
        }
    }

    #[test]
    fn display_is_the_spaced_form() {
        assert_eq!(
            NhsNumber::parse("9434765919").map(|n| n.to_string()),
            Ok("943 476 5919".to_owned())
        );
    }

    #[test]
    fn remainder_zero_gives_check_digit_zero() {
        // 9*10 + 8*9 + 7*8 + 6*7 + 5*6 + 4*5 + 3*4 + 2*3 + 1*2 = 330 = 30 * 11: 11 - 0 = 11 -> 0.
        assert!(NhsNumber::parse("9876543210").is_ok());
        assert_eq!(
            NhsNumber::parse("9876543211"),
            Err(NhsNumberError::BadCheckDigit)
        );
    }

    #[test]
    fn check_value_ten_is_never_valid() {
        // 1*10 + 1*2 = 12, remainder 1, 11 - 1 = 10: no tenth digit can make this valid.
        for last in 0..=9 {
            let input = format!("100000001{last}");
            assert_eq!(
                NhsNumber::parse(&input),
                Err(NhsNumberError::BadCheckDigit),
                "{input}"
            );
        }
    }

    #[test]
    fn wrong_check_digit_is_rejected() {
        assert_eq!(
            NhsNumber::parse("9434765918"),
            Err(NhsNumberError::BadCheckDigit)
        );
        // A transposition of two digits, the error the check digit exists to catch.
        assert_eq!(
            NhsNumber::parse("9434765991"),
            Err(NhsNumberError::BadCheckDigit)
        );
    }

    #[test]
    fn wrong_length_names_the_digit_count() {
        assert_eq!(
            NhsNumber::parse("943476591"),
            Err(NhsNumberError::WrongLength { digits: 9 })
        );
        assert_eq!(
            NhsNumber::parse("94347659190"),
            Err(NhsNumberError::WrongLength { digits: 11 })
        );
        assert_eq!(
            NhsNumber::parse(""),
            Err(NhsNumberError::WrongLength { digits: 0 })
        );
        assert_eq!(
            NhsNumberError::WrongLength { digits: 9 }.to_string(),
            "must have 10 digits, found 9"
        );
    }

    #[test]
    fn separators_other_than_spaces_and_letters_are_rejected() {
        for input in [
            "943-476-5919",
            "943.476.5919",
            "943476591A",
            "９４３４７６５９１９",
        ] {
            assert_eq!(
                NhsNumber::parse(input),
                Err(NhsNumberError::NonDigit),
                "{input}"
            );
        }
    }
}
