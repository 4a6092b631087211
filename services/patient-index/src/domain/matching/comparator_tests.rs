//! Unit tests of the comparators and of the configuration.

use time::macros::date;

use super::comparators::{
    compare_addresses, compare_birth_dates, compare_equal, compare_postcodes,
};
use super::*;
use crate::domain::{CountryCode, Postcode};

fn postcode(value: &str, country: &str) -> Option<PostcodeKey> {
    let country = CountryCode::parse(country).ok()?;
    let parsed = Postcode::parse(value, country).ok().flatten()?;
    Some(PostcodeKey {
        country: country.as_str().to_owned(),
        compact: parsed.as_str().replace(' ', ""),
        outward: parsed.outward_code().map(str::to_owned),
    })
}

#[test]
fn birth_date_levels() {
    let born = Some(date!(1984 - 03 - 07));
    assert_eq!(compare_birth_dates(born, born).level, Level::Exact);
    assert_eq!(
        compare_birth_dates(born, Some(date!(1984 - 07 - 03))).level,
        Level::DayMonthTransposed
    );
    assert_eq!(
        compare_birth_dates(born, Some(date!(1985 - 03 - 07))).level,
        Level::OneComponentDifferent
    );
    assert_eq!(
        compare_birth_dates(born, Some(date!(1984 - 03 - 17))).level,
        Level::OneComponentDifferent
    );
    assert_eq!(
        compare_birth_dates(born, Some(date!(1990 - 11 - 20))).level,
        Level::Disagree
    );
    assert_eq!(compare_birth_dates(born, None).level, Level::Missing);
    // Day equal to month: swapping changes nothing, so this is one component different.
    let ides = Some(date!(1984 - 03 - 03));
    assert_eq!(
        compare_birth_dates(ides, Some(date!(1985 - 03 - 03))).level,
        Level::OneComponentDifferent
    );
}

#[test]
fn postcode_levels() {
    let harlow = postcode("CM17 0ET", "GB");
    assert_eq!(
        compare_postcodes(harlow.as_ref(), postcode("cm170et", "GB").as_ref()).level,
        Level::Exact
    );
    assert_eq!(
        compare_postcodes(harlow.as_ref(), postcode("CM17 0EY", "GB").as_ref()).level,
        Level::OneCharacterDifferent
    );
    assert_eq!(
        compare_postcodes(harlow.as_ref(), postcode("CM17 9LX", "GB").as_ref()).level,
        Level::SameOutwardCode
    );
    assert_eq!(
        compare_postcodes(harlow.as_ref(), postcode("LS6 2AB", "GB").as_ref()).level,
        Level::Disagree
    );
    assert_eq!(
        compare_postcodes(harlow.as_ref(), None).level,
        Level::Missing
    );
    let canberra = postcode("2600", "AU");
    assert_eq!(
        compare_postcodes(canberra.as_ref(), postcode("2060", "AU").as_ref()).level,
        Level::OneCharacterDifferent
    );
    assert_eq!(
        compare_postcodes(canberra.as_ref(), postcode("2600", "NZ").as_ref()).level,
        Level::Disagree
    );
}

#[test]
fn address_levels() {
    let config = AddressComparison::default();
    let tokens = |parts: &[&str]| address_tokens(parts.iter().copied());
    let home = tokens(&["12 Mulberry Green", "Harlow"]);
    let level = |other: &[&str]| compare_addresses(&home, &tokens(other), &config).level;
    assert_eq!(level(&["12 MULBERRY GREEN", "harlow"]), Level::Exact);
    assert_eq!(
        level(&["12 Mulbery Green", "Harlow"]),
        Level::TokenOverlap(0.8)
    );
    assert_eq!(level(&["12 Mulberry Green"]), Level::TokenOverlap(0.8));
    assert_eq!(
        level(&["14 Mulberry Green", "Harlow"]),
        Level::TokenOverlap(0.5),
        "another house"
    );
    assert_eq!(level(&["3 Quarry Road", "Leeds"]), Level::Disagree);
    assert_eq!(compare_addresses(&home, &[], &config).level, Level::Missing);
}

#[test]
fn equality_levels() {
    assert_eq!(compare_equal(Some(&1), Some(&1)).level, Level::Exact);
    assert_eq!(compare_equal(Some(&1), Some(&2)).level, Level::Disagree);
    assert_eq!(compare_equal::<i32>(None, Some(&2)).level, Level::Missing);
}

#[test]
fn level_labels_are_the_proto_strings() {
    assert_eq!(Level::JaroWinkler(0.92).to_string(), "jaro_winkler>=0.92");
    assert_eq!(Level::TokenOverlap(0.5).to_string(), "token_overlap>=0.50");
    assert_eq!(
        Level::DayMonthTransposed.to_string(),
        "day_month_transposed"
    );
    assert_eq!(Level::SwappedWithGiven.to_string(), "swapped_with_given");
}

#[test]
fn weights_follow_from_m_and_u() {
    let level = Probabilities { m: 0.9, u: 0.1 };
    assert!((level.weight() - 9.0_f64.log2()).abs() < 1e-12);
    // A single level's disagreement is the classic log2((1 - m) / (1 - u)).
    assert!((config::disagreement_weight([&level]) - (0.1_f64 / 0.9).log2()).abs() < 1e-12);
}

#[test]
fn the_default_configuration_is_valid_and_partial_files_keep_defaults() {
    assert!(MatchModel::new(MatchConfig::default()).is_ok());
    let text =
        r#"{ "auto_link_threshold": 30.0, "given_name": { "exact": { "m": 0.8, "u": 0.01 } } }"#;
    let parsed: MatchConfig = serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(parsed.auto_link_threshold, 30.0);
    assert_eq!(parsed.given_name.exact, Probabilities { m: 0.8, u: 0.01 });
    assert_eq!(
        parsed.given_name.phonetic,
        GivenNameComparison::default().phonetic
    );
    assert_eq!(
        parsed.review_threshold,
        MatchConfig::default().review_threshold
    );
    assert!(MatchModel::new(parsed).is_ok());
}

#[test]
fn unusable_configurations_are_rejected_naming_the_setting() {
    let rejected_field = |change: fn(&mut MatchConfig)| {
        let mut config = MatchConfig::default();
        change(&mut config);
        match MatchModel::new(config) {
            Err(crate::domain::DomainError::InvalidMatchConfig { field, .. }) => field.into_owned(),
            other => panic!("expected a configuration error, got {other:?}"),
        }
    };
    assert_eq!(rejected_field(|c| c.given_name.exact.m = 1.0), "given_name");
    assert_eq!(
        rejected_field(|c| c.birth_date.exact.m = 0.98),
        "birth_date",
        "m values sum past 1"
    );
    assert_eq!(
        rejected_field(|c| c.review_threshold = c.auto_link_threshold + 1.0),
        "auto_link_threshold"
    );
    assert_eq!(
        rejected_field(|c| c.family_name.low_similarity = 0.99),
        "family_name"
    );
    assert_eq!(
        rejected_field(|c| c.prior_match_probability = 0.0),
        "prior_match_probability"
    );
    assert_eq!(
        rejected_field(|c| c.max_household_weight = f64::NAN),
        "max_household_weight"
    );
    assert_eq!(
        rejected_field(|c| c.postcode_gb.same_outward_code = Some(Probabilities { m: 0.5, u: 0.1 })),
        "postcode_gb"
    );
}
