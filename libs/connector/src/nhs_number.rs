//! NHS Numbers: ten digits whose last is a Modulus 11 check digit.
//!
//! The same rule patient-index applies; kept here so connectors and the
//! aggregator can judge a number without depending on a service crate.

/// Why a string is not an NHS Number. The messages never repeat the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    /// Something other than a digit or a space.
    #[error("must contain only digits and spaces")]
    NonDigit,
    /// Not ten digits once spaces are removed.
    #[error("must have 10 digits, found {digits}")]
    WrongLength {
        /// How many digits the input held (counting stops at 11).
        digits: usize,
    },
    /// The tenth digit is not the check digit of the first nine, or the
    /// first nine give a check value of 10, which no NHS Number has.
    #[error("check digit does not match")]
    BadCheckDigit,
}

/// Checks `input` (spaces anywhere are accepted, as printed on NHS letters)
/// and returns the ten digits without spaces.
pub fn normalise(input: &str) -> Result<String, NhsNumberError> {
    let mut digits = String::with_capacity(10);
    let mut count = 0usize;
    for character in input.trim().chars() {
        match character {
            ' ' => {}
            '0'..='9' => {
                // Stop collecting past eleven digits so a huge input cannot
                // grow the buffer; the count still says "too many".
                count = count.saturating_add(1);
                if digits.len() <= 10 {
                    digits.push(character);
                }
            }
            _ => return Err(NhsNumberError::NonDigit),
        }
    }
    if digits.len() != 10 {
        return Err(NhsNumberError::WrongLength {
            digits: count.min(11),
        });
    }
    let values: Vec<u32> = digits.bytes().map(|byte| u32::from(byte - b'0')).collect();
    let Some(check) = check_digit(&values[..9]) else {
        return Err(NhsNumberError::BadCheckDigit);
    };
    if values[9] != check {
        return Err(NhsNumberError::BadCheckDigit);
    }
    Ok(digits)
}

/// Whether `input` is a valid NHS Number.
pub fn is_valid(input: &str) -> bool {
    normalise(input).is_ok()
}

/// The check digit of the first nine digits (each 0–9): weights 10 down to
/// 2, remainder modulo 11 subtracted from 11; 11 means 0 and 10 means no
/// valid number starts with these digits (`None`).
pub fn check_digit(first_nine: &[u32]) -> Option<u32> {
    let weighted_sum: u32 = first_nine
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| digit * weight)
        .sum();
    match 11 - weighted_sum % 11 {
        11 => Some(0),
        10 => None,
        check => Some(check),
    }
}

/// A valid NHS Number built from a nine-digit stem (`0..1_000_000_000`), or
/// `None` when the stem has no valid check digit (about one stem in eleven).
/// Used by the synthetic region; real numbers come from the providers.
pub fn from_stem(stem: u32) -> Option<String> {
    if stem >= 1_000_000_000 {
        return None;
    }
    let text = format!("{stem:09}");
    let values: Vec<u32> = text.bytes().map(|byte| u32::from(byte - b'0')).collect();
    let check = check_digit(&values)?;
    Some(format!("{text}{check}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_valid_number_is_accepted_with_or_without_spaces() {
        assert_eq!(normalise("9434765919").as_deref(), Ok("9434765919"));
        assert_eq!(normalise(" 943 476 5919 ").as_deref(), Ok("9434765919"));
        assert!(is_valid("4010232137"));
    }

    #[test]
    fn a_wrong_check_digit_is_refused() {
        assert_eq!(normalise("9434765918"), Err(NhsNumberError::BadCheckDigit));
    }

    #[test]
    fn a_check_value_of_ten_is_never_valid() {
        // 1000000010: weighted sum 10 + 2*1 = 12 -> 11 - 1 = 10.
        for last in 0..=9 {
            let candidate = format!("100000001{last}");
            assert_eq!(normalise(&candidate), Err(NhsNumberError::BadCheckDigit));
        }
    }

    #[test]
    fn dashes_letters_and_wrong_lengths_are_refused() {
        assert_eq!(normalise("943-476-5919"), Err(NhsNumberError::NonDigit));
        assert_eq!(normalise("94347659A9"), Err(NhsNumberError::NonDigit));
        assert_eq!(
            normalise("943476591"),
            Err(NhsNumberError::WrongLength { digits: 9 })
        );
        assert_eq!(
            normalise(&"1".repeat(1000)),
            Err(NhsNumberError::WrongLength { digits: 11 })
        );
        assert_eq!(
            normalise(""),
            Err(NhsNumberError::WrongLength { digits: 0 })
        );
    }

    #[test]
    fn numbers_built_from_stems_are_valid() {
        let mut built = 0;
        for stem in 943_476_500..943_476_600 {
            if let Some(number) = from_stem(stem) {
                assert!(is_valid(&number), "{number}");
                built += 1;
            }
        }
        assert!(built > 80);
        assert_eq!(from_stem(1_000_000_000), None);
    }
}
