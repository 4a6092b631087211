//! Scenario tests of the matcher with the default configuration.

use time::Date;
use time::macros::date;

use super::*;
use crate::domain::{
    Address, CountryCode, NhsNumber, NhsNumberVerification, PersonDemographics, PersonName, Phone,
    Postcode, SearchQuery, Sex,
};

fn model() -> MatchModel {
    MatchModel::new(MatchConfig::default())
        .unwrap_or_else(|error| panic!("default config rejected: {error}"))
}

/// A fully described person in Harlow; tests change what they need.
pub(super) fn person(given: &str, family: &str, birth_date: Date) -> PersonDemographics {
    PersonDemographics {
        name: PersonName {
            given: vec![given.to_owned()],
            family: Some(family.to_owned()),
            ..Default::default()
        },
        birth_date: Some(birth_date),
        sex: Some(Sex::Female),
        address: Some(address(&["12 Mulberry Green"], "Harlow", "CM17 0ET")),
        phone: Phone::parse("phone", "01279 555 0134").ok().flatten(),
        ..Default::default()
    }
}

pub(super) fn address(lines: &[&str], city: &str, postcode: &str) -> Address {
    Address {
        lines: lines.iter().map(|line| (*line).to_owned()).collect(),
        city: Some(city.to_owned()),
        district: None,
        postcode: Postcode::parse(postcode, CountryCode::GB).ok().flatten(),
        country: CountryCode::GB,
    }
}

fn score(query: &PersonDemographics, candidate: &PersonDemographics) -> MatchOutcome {
    model().score(&MatchProfile::from(query), &MatchProfile::from(candidate))
}

fn level_of(outcome: &MatchOutcome, field: MatchField) -> String {
    outcome
        .contributions
        .iter()
        .find(|contribution| contribution.field == field)
        .map(|contribution| contribution.level.to_string())
        .unwrap_or_default()
}

pub(super) const BORN: Date = date!(1984 - 03 - 07);

#[test]
fn the_same_record_is_auto_linked_with_certain_grade() {
    let outcome = score(
        &person("Amelia", "Hartley", BORN),
        &person("Amelia", "Hartley", BORN),
    );
    assert_eq!(outcome.decision, MatchDecision::AutoLink);
    assert_eq!(outcome.grade, Some(MatchGrade::Certain));
    assert!(outcome.probability > 0.999, "{}", outcome.probability);
}

#[test]
fn twins_are_not_auto_linked() {
    // Same surname, address, postcode, phone, date of birth and sex; different given names.
    let outcome = score(
        &person("Amelia", "Hartley", BORN),
        &person("Olivia", "Hartley", BORN),
    );
    assert_ne!(outcome.decision, MatchDecision::AutoLink);
    assert_eq!(
        outcome.decision,
        MatchDecision::Review,
        "twins look like a duplicate worth a human look"
    );
    assert_eq!(outcome.withheld, Some(AutoLinkWithheld::GivenNamesDisagree));
    assert_eq!(outcome.grade, Some(MatchGrade::Probable));
}

#[test]
fn a_record_without_a_given_name_that_fits_both_twins_goes_to_review() {
    let mut unnamed = person("Amelia", "Hartley", BORN);
    unnamed.name.given.clear();
    let model = model();
    let query = MatchProfile::from(&unnamed);
    let twins = [
        ("amelia", person("Amelia", "Hartley", BORN)),
        ("olivia", person("Olivia", "Hartley", BORN)),
    ];
    let scored = twins
        .iter()
        .map(|(id, twin)| (*id, model.score(&query, &MatchProfile::from(twin))));
    let choice = choose_registration(scored);
    assert!(
        matches!(&choice, RegistrationChoice::CreateAndReview { candidates } if candidates.len() == 2),
        "{choice:?}"
    );
}

#[test]
fn twins_with_similar_names_are_not_auto_linked() {
    for (first, second) in [("Jack", "Jake"), ("Lily", "Lola"), ("Ella", "Erin")] {
        let outcome = score(
            &person(first, "Hartley", BORN),
            &person(second, "Hartley", BORN),
        );
        assert_ne!(
            outcome.decision,
            MatchDecision::AutoLink,
            "{first} / {second}: {outcome:?}"
        );
    }
}

#[test]
fn twins_sharing_a_middle_name_are_not_auto_linked() {
    let mut anna = person("Anna", "Hartley", BORN);
    anna.name.given.push("Marie".to_owned());
    let mut lucy = person("Lucy", "Hartley", BORN);
    lucy.name.given.push("Marie".to_owned());
    assert_ne!(score(&anna, &lucy).decision, MatchDecision::AutoLink);
}

#[test]
fn one_typo_in_a_name_is_auto_linked() {
    let original = person("Jonathan", "Whitmore", BORN);
    for (given, family) in [
        ("Jonathon", "Whitmore"),
        ("Jonathan", "Whitmre"),
        ("Jonahtan", "Whitmore"),
    ] {
        let outcome = score(&person(given, family, BORN), &original);
        assert_eq!(
            outcome.decision,
            MatchDecision::AutoLink,
            "{given} {family}: {outcome:?}"
        );
    }
}

#[test]
fn a_transposed_day_and_month_is_auto_linked() {
    let outcome = score(
        &person("Amelia", "Hartley", date!(1984 - 07 - 03)),
        &person("Amelia", "Hartley", BORN),
    );
    assert_eq!(outcome.decision, MatchDecision::AutoLink, "{outcome:?}");
    assert_eq!(
        level_of(&outcome, MatchField::BirthDate),
        "day_month_transposed"
    );
}

#[test]
fn father_and_son_of_the_same_name_are_not_auto_linked() {
    let mut father = person("Robert", "Kemp", date!(1961 - 11 - 20));
    father.sex = Some(Sex::Male);
    let mut son = person("Robert", "Kemp", date!(1990 - 02 - 14));
    son.sex = Some(Sex::Male);
    let outcome = score(&son, &father);
    assert_eq!(outcome.decision, MatchDecision::Review, "{outcome:?}");
    assert_eq!(level_of(&outcome, MatchField::BirthDate), "disagree");
}

#[test]
fn siblings_and_spouses_are_no_match() {
    let mut spouse = person("Daniel", "Hartley", date!(1982 - 09 - 30));
    spouse.sex = Some(Sex::Male);
    let sibling = person("Grace", "Hartley", date!(2012 - 05 - 01));
    let amelia = person("Amelia", "Hartley", BORN);
    assert_eq!(score(&spouse, &amelia).decision, MatchDecision::NoMatch);
    assert_eq!(score(&sibling, &amelia).decision, MatchDecision::NoMatch);
}

#[test]
fn swapped_given_and_family_names_are_auto_linked_and_explained() {
    let outcome = score(
        &person("Hartley", "Amelia", BORN),
        &person("Amelia", "Hartley", BORN),
    );
    assert_eq!(outcome.decision, MatchDecision::AutoLink);
    assert_eq!(
        level_of(&outcome, MatchField::GivenName),
        "swapped_with_family"
    );
    assert_eq!(
        level_of(&outcome, MatchField::FamilyName),
        "swapped_with_given"
    );
}

#[test]
fn a_move_of_house_with_name_and_birth_date_goes_to_review() {
    let mut moved = person("Amelia", "Hartley", BORN);
    moved.address = Some(address(&["3 Quarry Road"], "Leeds", "LS6 2AB"));
    moved.phone = None;
    let outcome = score(&moved, &person("Amelia", "Hartley", BORN));
    assert_eq!(outcome.decision, MatchDecision::Review, "{outcome:?}");
}

#[test]
fn name_birth_date_and_sex_without_an_address_auto_link() {
    let mut no_address = person("Amelia", "Hartley", BORN);
    no_address.address = None;
    no_address.phone = None;
    let outcome = score(&no_address, &person("Amelia", "Hartley", BORN));
    assert_eq!(outcome.decision, MatchDecision::AutoLink, "{outcome:?}");
}

#[test]
fn a_maiden_name_and_a_middle_name_in_use_are_recognised() {
    let mut married = person("Amelia", "Okafor", BORN);
    married.previous_names.push(PersonName {
        family: Some("Hartley".to_owned()),
        ..Default::default()
    });
    let outcome = score(&married, &person("Amelia", "Hartley", BORN));
    assert_eq!(level_of(&outcome, MatchField::FamilyName), "previous_name");
    assert_eq!(outcome.decision, MatchDecision::AutoLink);

    let mut full = person("Rose", "Hartley", BORN);
    full.name.given.push("Amelia".to_owned());
    let outcome = score(&person("Amelia", "Hartley", BORN), &full);
    assert_eq!(
        level_of(&outcome, MatchField::GivenName),
        "other_given_name"
    );
    assert_eq!(outcome.decision, MatchDecision::AutoLink);
}

#[test]
fn verified_nhs_numbers_decide_on_their_own() {
    let verified = |number: &str, demographics: PersonDemographics| PersonDemographics {
        nhs_number: NhsNumber::parse(number).ok(),
        nhs_number_verification: Some(NhsNumberVerification::PresentAndVerified),
        ..demographics
    };
    let same = score(
        &verified("9434765919", person("Amy", "Hart", date!(1990 - 01 - 01))),
        &verified("9434765919", person("Amelia", "Hartley", BORN)),
    );
    assert_eq!(same.decision, MatchDecision::AutoLink);
    let different = score(
        &verified("9876543210", person("Amelia", "Hartley", BORN)),
        &verified("9434765919", person("Amelia", "Hartley", BORN)),
    );
    assert_eq!(different.decision, MatchDecision::NoMatch);
}

#[test]
fn unverified_differing_nhs_numbers_withhold_the_link() {
    let with_number = |number: &str| PersonDemographics {
        nhs_number: NhsNumber::parse(number).ok(),
        nhs_number_verification: Some(NhsNumberVerification::PresentNotTraced),
        ..person("Amelia", "Hartley", BORN)
    };
    let outcome = score(&with_number("9876543210"), &with_number("9434765919"));
    assert_eq!(outcome.decision, MatchDecision::Review);
    assert_eq!(outcome.withheld, Some(AutoLinkWithheld::NhsNumbersDiffer));
}

#[test]
fn an_unidentified_patient_matches_nothing_and_has_no_keys() {
    let unknown = PersonDemographics::default();
    let outcome = score(&unknown, &person("Amelia", "Hartley", BORN));
    assert_eq!(outcome.decision, MatchDecision::NoMatch);
    assert_eq!(outcome.grade, None);
    assert!(
        outcome
            .contributions
            .iter()
            .all(|contribution| contribution.level == Level::Missing)
    );
    assert!(candidate_keys(&MatchProfile::from(&unknown)).is_empty());
}

#[test]
fn contributions_cover_every_field_and_sum_to_the_weight() {
    let outcome = score(
        &person("Amelia", "Hartley", BORN),
        &person("Amelia", "Hartley", BORN),
    );
    let fields: Vec<MatchField> = outcome
        .contributions
        .iter()
        .map(|contribution| contribution.field)
        .collect();
    assert_eq!(
        fields,
        [
            MatchField::NhsNumber,
            MatchField::FamilyName,
            MatchField::GivenName,
            MatchField::BirthDate,
            MatchField::Sex,
            MatchField::Postcode,
            MatchField::Address,
            MatchField::Phone,
        ]
    );
    let sum: f64 = outcome
        .contributions
        .iter()
        .map(|contribution| contribution.weight)
        .sum();
    assert!((sum - outcome.weight).abs() < 1e-9);
    // Postcode, address and phone all agree: together they add the household cap, no more.
    let household: f64 = outcome
        .contributions
        .iter()
        .filter(|c| c.capped)
        .map(|c| c.weight)
        .sum();
    assert!(
        (household - MatchConfig::default().max_household_weight).abs() < 1e-9,
        "{household}"
    );
    let proto = outcome.to_proto_candidate();
    assert_eq!(proto.contributions.len(), 8);
    assert_eq!(
        proto.contributions[5].comparison_level,
        "exact,household_capped"
    );
    assert_eq!(
        proto.grade,
        i32::from(mcr_proto::patient_index::v1::MatchGrade::Certain)
    );
}

#[test]
fn a_search_ranks_and_grades_partial_queries() {
    let query = SearchQuery {
        family_name: Some("hartley".to_owned()),
        given_name: Some("amelia".to_owned()),
        birth_date: Some(BORN),
        postcode: None,
        sex: None,
    };
    let outcome = model().score(
        &MatchProfile::from(&query),
        &MatchProfile::from(&person("Amelia", "Hartley", BORN)),
    );
    assert_eq!(
        outcome.decision,
        MatchDecision::AutoLink,
        "name and date of birth in full: {outcome:?}"
    );
    let family_only = SearchQuery {
        given_name: None,
        birth_date: None,
        ..query
    };
    let outcome = model().score(
        &MatchProfile::from(&family_only),
        &MatchProfile::from(&person("Amelia", "Hartley", BORN)),
    );
    assert_eq!(outcome.grade, Some(MatchGrade::Possible));
    assert!(MatchGrade::Possible.meets(MatchGrade::Possible));
    assert!(!MatchGrade::Possible.meets(MatchGrade::Probable));
    assert!(MatchGrade::Certain.meets(MatchGrade::Probable));
    assert_eq!(MatchGrade::minimum_from_proto(0), MatchGrade::Possible);
    assert_eq!(MatchGrade::minimum_from_proto(2), MatchGrade::Probable);
}
