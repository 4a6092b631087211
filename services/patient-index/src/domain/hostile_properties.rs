//! Hostile-input properties of the index's decoders: whatever text arrives
//! as an NHS Number, a postcode, a country or a demographic search, parsing
//! never panics, accepts only what the contract allows, and every refusal
//! names the field without repeating the input (it may be a patient's
//! name or NHS Number).

use mcr_proto::patient_index::v1 as proto;
use proptest::prelude::*;
use time::macros::date;

use super::{CountryCode, DomainError, NhsNumber, Postcode, SearchQuery};

const TODAY: time::Date = date!(2026 - 12 - 01);

/// Text a hostile or careless caller might send: anything, near misses of
/// the expected shape, and very long runs.
fn hostile_text(shape: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        shape,
        "[\\x00-\\x1f\\u{202e}\\u{feff} 0-9A-Za-z-]{0,24}",
        (1usize..5_000).prop_map(|length| "9".repeat(length)),
    ]
}

/// The reason of a field error, which must never carry `input`.
fn reason_without(error: &DomainError, input: &str) -> Result<String, TestCaseError> {
    let text = error.to_string();
    let trimmed = input.trim();
    // Shorter inputs could be words of the message itself ("family").
    if trimmed.chars().count() >= 12 {
        prop_assert!(!text.contains(trimmed), "{text} repeats the input");
    }
    prop_assert!(text.len() < 300, "{text}");
    Ok(text)
}

/// The NHS Modulus 11 rule, written out independently of the parser.
fn modulus_11_holds(digits: &str) -> bool {
    let values: Vec<u32> = digits.bytes().map(|byte| u32::from(byte - b'0')).collect();
    let sum: u32 = values[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| digit * weight)
        .sum();
    match 11 - sum % 11 {
        11 => values[9] == 0,
        10 => false,
        check => values[9] == check,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn nhs_numbers_are_ten_digits_with_a_good_check_digit(input in hostile_text("[0-9 ]{8,14}")) {
        match NhsNumber::parse(&input) {
            Ok(number) => {
                prop_assert_eq!(number.as_str().len(), 10);
                prop_assert!(number.as_str().bytes().all(|byte| byte.is_ascii_digit()));
                prop_assert!(modulus_11_holds(number.as_str()), "{number}");
                // Normalised form parses to itself.
                prop_assert_eq!(NhsNumber::parse(number.as_str()), Ok(number.clone()));
            }
            Err(problem) => {
                let error = problem.for_field("nhs_number");
                let text = reason_without(&error, &input)?;
                prop_assert!(text.starts_with("nhs_number: "), "{text}");
            }
        }
    }

    #[test]
    fn uk_postcodes_are_normalised_or_refused(input in hostile_text("[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}")) {
        match Postcode::parse(&input, CountryCode::default()) {
            Ok(None) => prop_assert!(input.trim().is_empty()),
            Ok(Some(postcode)) => {
                let text = postcode.as_str();
                prop_assert!(text.len() <= 8, "{text}");
                prop_assert!(text.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b' '));
                prop_assert!(postcode.outward_code().is_some());
                // Normalising is idempotent.
                let again = Postcode::parse(text, CountryCode::default());
                prop_assert_eq!(again.ok().flatten().map(|p| p.as_str().to_owned()), Some(text.to_owned()));
            }
            Err(problem) => {
                let text = reason_without(&problem.for_field("postcode"), &input)?;
                prop_assert!(text.starts_with("postcode: "), "{text}");
            }
        }
    }

    #[test]
    fn other_countries_keep_short_printable_postcodes(input in hostile_text(".{0,30}"), country in "[A-Za-z]{2}|.{0,4}") {
        let Ok(country) = CountryCode::parse(&country) else {
            return Ok(());
        };
        if let Ok(Some(postcode)) = Postcode::parse(&input, country) {
            prop_assert!(postcode.as_str().chars().count() <= 20 || country.is_gb());
            prop_assert!(!postcode.as_str().chars().any(char::is_control));
        }
    }

    #[test]
    fn demographic_searches_are_checked_field_by_field(
        family_name in hostile_text("[A-Za-z' -]{0,40}"),
        given_name in hostile_text("[A-Za-z]{0,20}"),
        birth_date in prop_oneof![hostile_text("[0-9]{4}-[0-9]{2}-[0-9]{2}"), Just("10000-01-01".to_owned()), Just("-0001-01-01".to_owned()), Just("0000-00-00".to_owned())],
        postcode in hostile_text("[A-Z]{2}[0-9]{2} [0-9][A-Z]{2}"),
        country in prop_oneof![Just(String::new()), Just("GB".to_owned()), Just("FR".to_owned()), any::<String>()],
        sex in any::<i32>(),
    ) {
        let query = proto::DemographicQuery {
            family_name: family_name.clone(),
            given_name: given_name.clone(),
            birth_date: birth_date.clone(),
            postcode: postcode.clone(),
            country,
            sex,
        };
        match SearchQuery::from_proto(&query, TODAY) {
            Ok(checked) => {
                prop_assert!(checked.family_name.is_some() || checked.birth_date.is_some() || checked.postcode.is_some());
                if let Some(date) = checked.birth_date {
                    prop_assert!(date <= TODAY && date >= super::EARLIEST_DATE);
                }
            }
            Err(error) => {
                let field = error.field().unwrap_or_default().to_owned();
                prop_assert!(field.starts_with("demographics."), "{field}");
                for input in [&family_name, &given_name, &birth_date, &postcode] {
                    reason_without(&error, input)?;
                }
            }
        }
    }
}

#[test]
fn absurd_birth_dates_are_refused_naming_the_field() {
    for birth_date in [
        "10000-01-01",
        "-001-01-01",
        "0000-01-01",
        "1869-12-31",
        "2999-01-01",
        "2026-02-30",
        "99999999999999999999",
    ] {
        let query = proto::DemographicQuery {
            family_name: "Smith".to_owned(),
            birth_date: birth_date.to_owned(),
            ..Default::default()
        };
        let refused = SearchQuery::from_proto(&query, TODAY).expect_err(birth_date);
        assert_eq!(
            refused.field(),
            Some("demographics.birth_date"),
            "{birth_date}"
        );
    }
}
