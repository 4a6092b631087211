//! Conversion of proto demographics into checked domain values.

use mcr_proto::common::v1 as common;
use mcr_proto::patient_index::v1 as proto;
use time::Date;
use time::macros::date;

use super::*;

const TODAY: Date = date!(2025 - 06 - 15);

fn valid() -> proto::Demographics {
    proto::Demographics {
        nhs_number: "943 476 5919".to_owned(),
        nhs_number_verification_status: proto::NhsNumberVerificationStatus::PresentAndVerified
            .into(),
        name: Some(common::HumanName {
            prefix: "Mrs".to_owned(),
            given: vec!["Amelia".to_owned(), "Rose".to_owned()],
            family: "Hartley".to_owned(),
            suffix: String::new(),
        }),
        previous_names: vec![common::HumanName {
            family: "Okafor".to_owned(),
            ..Default::default()
        }],
        birth_date: "1984-03-07".to_owned(),
        sex: proto::Sex::Female.into(),
        address: Some(common::Address {
            lines: vec!["12 Mulberry Green".to_owned()],
            city: "Harlow".to_owned(),
            district: "Essex".to_owned(),
            postcode: "cm17 0et".to_owned(),
            country: String::new(),
        }),
        phone: "01279 555 0134".to_owned(),
        email: "amelia@example.org".to_owned(),
        death_date: String::new(),
        sensitive: true,
    }
}

/// The field named by the error for `change` applied to a valid message.
fn field_of(change: impl FnOnce(&mut proto::Demographics)) -> Option<String> {
    let mut demographics = valid();
    change(&mut demographics);
    PersonDemographics::from_proto(&demographics, TODAY)
        .err()
        .and_then(|error| error.field().map(str::to_owned))
}

fn name(demographics: &mut proto::Demographics) -> &mut common::HumanName {
    demographics.name.get_or_insert_with(Default::default)
}

fn address(demographics: &mut proto::Demographics) -> &mut common::Address {
    demographics.address.get_or_insert_with(Default::default)
}

#[test]
fn a_valid_message_is_checked_and_normalised() {
    let checked =
        PersonDemographics::from_proto(&valid(), TODAY).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        checked.nhs_number.as_ref().map(NhsNumber::as_str),
        Some("9434765919")
    );
    assert!(checked.has_verified_nhs_number());
    assert_eq!(checked.name.given, ["Amelia", "Rose"]);
    assert_eq!(checked.previous_names.len(), 1);
    assert_eq!(checked.birth_date, Some(date!(1984 - 03 - 07)));
    assert_eq!(checked.sex, Some(Sex::Female));
    let postcode = checked
        .address
        .as_ref()
        .and_then(|address| address.postcode.as_ref());
    assert_eq!(postcode.map(Postcode::as_str), Some("CM17 0ET"));
    assert_eq!(
        checked.address.as_ref().map(|address| address.country),
        Some(CountryCode::GB)
    );
    assert!(checked.sensitive);
}

#[test]
fn to_proto_gives_back_the_normalised_message() {
    let checked =
        PersonDemographics::try_from((&valid(), TODAY)).unwrap_or_else(|error| panic!("{error}"));
    let proto = checked.to_proto();
    assert_eq!(proto.nhs_number, "9434765919");
    assert_eq!(
        proto
            .address
            .as_ref()
            .map(|address| address.postcode.as_str()),
        Some("CM17 0ET")
    );
    assert_eq!(
        proto
            .address
            .as_ref()
            .map(|address| address.country.as_str()),
        Some("GB")
    );
    assert_eq!(
        PersonDemographics::from_proto(&proto, TODAY).as_ref(),
        Ok(&checked)
    );
}

#[test]
fn an_empty_message_is_an_unidentified_person() {
    let checked = PersonDemographics::from_proto(&proto::Demographics::default(), TODAY);
    assert_eq!(checked, Ok(PersonDemographics::default()));
    let blank_address = proto::Demographics {
        address: Some(common::Address::default()),
        ..Default::default()
    };
    assert_eq!(
        PersonDemographics::from_proto(&blank_address, TODAY).map(|d| d.address),
        Ok(None)
    );
}

#[test]
fn nhs_number_errors_name_the_field_and_the_problem() {
    let mut demographics = valid();
    demographics.nhs_number = "943 476 5918".to_owned();
    let error = PersonDemographics::from_proto(&demographics, TODAY)
        .err()
        .map(|error| error.to_string());
    assert_eq!(
        error.as_deref(),
        Some("demographics.nhs_number: check digit does not match")
    );
    assert_eq!(
        field_of(|d| d.nhs_number = "12345".to_owned()).as_deref(),
        Some("demographics.nhs_number")
    );
}

#[test]
fn verification_status_must_agree_with_the_number() {
    let status_field = Some("demographics.nhs_number_verification_status".to_owned());
    assert_eq!(
        field_of(|d| d.nhs_number.clear()),
        status_field,
        "01 without a number"
    );
    let not_present = proto::NhsNumberVerificationStatus::NotPresentTraceNotRequired.into();
    assert_eq!(
        field_of(|d| d.nhs_number_verification_status = not_present),
        status_field,
        "07 with a number"
    );
    assert_eq!(
        field_of(|d| d.nhs_number_verification_status = 99),
        status_field
    );
    let mut unspecified = valid();
    unspecified.nhs_number_verification_status = 0;
    let checked =
        PersonDemographics::from_proto(&unspecified, TODAY).map(|d| d.nhs_number_verification);
    assert_eq!(checked, Ok(Some(NhsNumberVerification::PresentNotTraced)));
    assert_eq!(NhsNumberVerification::PresentNotTraced.code(), "02");
}

#[test]
fn name_errors_name_the_part() {
    assert_eq!(
        field_of(|d| name(d).family = "x".repeat(101)).as_deref(),
        Some("demographics.name.family")
    );
    assert_eq!(
        field_of(|d| name(d).prefix = "x".repeat(41)).as_deref(),
        Some("demographics.name.prefix")
    );
    assert_eq!(
        field_of(|d| name(d).given = vec!["A".to_owned(); 6]).as_deref(),
        Some("demographics.name.given")
    );
    assert_eq!(
        field_of(|d| name(d).given = vec!["Amelia".to_owned(), " ".to_owned()]).as_deref(),
        Some("demographics.name.given[1]")
    );
    assert_eq!(
        field_of(|d| d.previous_names = vec![common::HumanName::default(); 11]).as_deref(),
        Some("demographics.previous_names")
    );
    assert_eq!(
        field_of(|d| d.previous_names.push(common::HumanName {
            family: "\u{7}".to_owned(),
            ..Default::default()
        }))
        .as_deref(),
        Some("demographics.previous_names[1].family")
    );
}

#[test]
fn dates_must_be_real_past_and_ordered() {
    assert_eq!(
        field_of(|d| d.birth_date = "2025-06-16".to_owned()).as_deref(),
        Some("demographics.birth_date")
    );
    assert_eq!(
        field_of(|d| d.birth_date = "07/03/1984".to_owned()).as_deref(),
        Some("demographics.birth_date")
    );
    assert_eq!(
        field_of(|d| d.death_date = "1980-01-01".to_owned()).as_deref(),
        Some("demographics.death_date")
    );
    assert_eq!(
        field_of(|d| d.death_date = "2030-01-01".to_owned()).as_deref(),
        Some("demographics.death_date")
    );
    assert_eq!(field_of(|d| d.death_date = "2024-12-01".to_owned()), None);
}

#[test]
fn address_errors_name_the_part() {
    assert_eq!(
        field_of(|d| address(d).postcode = "CM17".to_owned()).as_deref(),
        Some("demographics.address.postcode")
    );
    assert_eq!(
        field_of(|d| address(d).country = "GBR".to_owned()).as_deref(),
        Some("demographics.address.country")
    );
    assert_eq!(
        field_of(|d| address(d).lines = vec!["x".to_owned(); 6]).as_deref(),
        Some("demographics.address.lines")
    );
    assert_eq!(
        field_of(|d| address(d).lines.push("x".repeat(101))).as_deref(),
        Some("demographics.address.lines[1]")
    );
    assert_eq!(
        field_of(|d| address(d).lines.push(String::new())).as_deref(),
        Some("demographics.address.lines[1]")
    );
    assert_eq!(
        field_of(|d| address(d).city = "x".repeat(101)).as_deref(),
        Some("demographics.address.city")
    );
}

#[test]
fn overseas_postcodes_are_kept_as_given() {
    let mut demographics = valid();
    let overseas = address(&mut demographics);
    overseas.country = "au".to_owned();
    overseas.postcode = " 2600 ".to_owned();
    let checked = PersonDemographics::from_proto(&demographics, TODAY)
        .unwrap_or_else(|error| panic!("{error}"));
    let address = checked.address.unwrap_or_else(|| panic!("address dropped"));
    assert_eq!(address.country.as_str(), "AU");
    assert_eq!(
        address.postcode.as_ref().map(Postcode::as_str),
        Some("2600")
    );
}

#[test]
fn contact_and_enum_errors_name_the_field() {
    assert_eq!(
        field_of(|d| d.phone = "call me".to_owned()).as_deref(),
        Some("demographics.phone")
    );
    assert_eq!(
        field_of(|d| d.email = "a@b@c".to_owned()).as_deref(),
        Some("demographics.email")
    );
    assert_eq!(field_of(|d| d.sex = 9).as_deref(), Some("demographics.sex"));
}

#[test]
fn error_messages_never_repeat_the_value() {
    let secret = "Zebedee-Quill";
    let mut demographics = valid();
    name(&mut demographics).family = format!("{secret}{}", "x".repeat(100));
    let message = PersonDemographics::from_proto(&demographics, TODAY)
        .err()
        .map(|error| error.to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|message| !message.contains(secret)),
        "{message:?}"
    );
}
