use mcr_proto::common::v1::{Category, LocalIdentifier};
use mcr_proto::consent::v1::CareRelationshipType;
use mcr_proto::patient_index::v1::Demographics;
use mcr_proto::records::v1::{
    CarriedCareRelationship, DeadLetterReason, RecordOperation, RecordUpdate,
};
use prost::Message;
use serde_json::json;

use super::*;

type SetText = fn(&mut RecordUpdate, String);
type BreakRelationship = fn(&mut CarriedCareRelationship);

/// 2026-11-25T00:00:00Z.
pub(super) const NOW: i64 = 1_795_564_800;

fn timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

pub(super) fn valid_update() -> RecordUpdate {
    RecordUpdate {
        message_id: "RQW:PAS:med-1:1".to_owned(),
        source_organisation_code: "RQW".to_owned(),
        source_system: "PAS".to_owned(),
        patient_identifier: Some(LocalIdentifier {
            organisation_code: "RQW".to_owned(),
            system: "PAS".to_owned(),
            value: "H123456".to_owned(),
        }),
        demographics: Some(Demographics {
            nhs_number: "943 476 5919".to_owned(),
            ..Default::default()
        }),
        local_entry_id: "med-1".to_owned(),
        version: 1,
        category: Category::Medications as i32,
        effective_time: Some(timestamp(NOW - 86_400)),
        operation: RecordOperation::Upsert as i32,
        resource_type: "MedicationStatement".to_owned(),
        fhir_resource_json: json!({
            "resourceType": "MedicationStatement",
            "id": "med-1",
            "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "27658006"}]},
            "subject": {"reference": "Patient/H123456"}
        })
        .to_string(),
        display_summary: "Amoxicillin 500mg capsules".to_owned(),
        care_relationship: None,
        source_time: Some(timestamp(NOW)),
    }
}

pub(super) fn rejected(update: &RecordUpdate) -> Rejection {
    match validate_update_at(update, NOW) {
        Ok(()) => panic!("expected a rejection"),
        Err(rejection) => rejection,
    }
}

pub(super) fn assert_rejected(update: &RecordUpdate, reason: DeadLetterReason, mentions: &str) {
    let rejection = rejected(update);
    assert_eq!(rejection.reason, reason, "{}", rejection.text);
    assert!(
        rejection.text.contains(mentions),
        "{:?} should mention {mentions:?}",
        rejection.text
    );
}

pub(super) fn with_resource(category: Category, resource: serde_json::Value) -> RecordUpdate {
    let mut update = valid_update();
    update.category = category as i32;
    update.resource_type = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    update.fhir_resource_json = resource.to_string();
    update
}

#[test]
fn a_complete_upsert_is_accepted() {
    assert_eq!(validate_update_at(&valid_update(), NOW), Ok(()));
}

#[test]
fn subjects_use_the_upper_case_organisation_and_lower_case_category() {
    assert_eq!(
        subject_for("rqw", Category::Medications),
        "mcr.records.v1.RQW.medications"
    );
    assert_eq!(
        subject_for("F81001", Category::PlansAndAlerts),
        "mcr.records.v1.F81001.plans_and_alerts"
    );
}

#[test]
fn every_category_token_round_trips_and_others_are_unknown() {
    for value in 1..=10 {
        let Ok(category) = Category::try_from(value) else {
            panic!("category {value} must exist");
        };
        assert_eq!(
            category_from_token(&category_token(category)),
            Some(category)
        );
        assert!(!accepted_resource_types(category).is_empty());
    }
    for token in [
        "unspecified",
        "MEDICATIONS",
        "Medications",
        "",
        "meds",
        "medications.x",
    ] {
        assert_eq!(category_from_token(token), None, "{token}");
    }
}

#[test]
fn required_text_fields_are_named_when_missing_or_too_long() {
    let cases: [(&str, SetText); 5] = [
        ("message_id", |u, v| u.message_id = v),
        ("source_system", |u, v| u.source_system = v),
        ("local_entry_id", |u, v| u.local_entry_id = v),
        ("display_summary", |u, v| u.display_summary = v),
        ("patient_identifier.value", |u, v| {
            if let Some(id) = u.patient_identifier.as_mut() {
                id.value = v;
            }
        }),
    ];
    for (field, set) in cases {
        let mut empty = valid_update();
        set(&mut empty, String::new());
        assert_rejected(&empty, DeadLetterReason::InvalidField, field);
        let mut long = valid_update();
        set(&mut long, "x".repeat(501));
        assert_rejected(&long, DeadLetterReason::InvalidField, field);
        let mut control = valid_update();
        set(&mut control, "a\r\nb".to_owned());
        assert_rejected(&control, DeadLetterReason::InvalidField, field);
    }
    let mut at_limit = valid_update();
    at_limit.message_id = "é".repeat(256);
    at_limit.source_system = "s".repeat(64);
    at_limit.display_summary = "d".repeat(500);
    assert_eq!(validate_update_at(&at_limit, NOW), Ok(()));
}

#[test]
fn organisation_codes_must_be_ods_style_and_agree() {
    for bad in ["", "AB", "ABCDEFGHIJKLM", "RQ-W", "RQW "] {
        let mut update = valid_update();
        update.source_organisation_code = bad.to_owned();
        assert_rejected(
            &update,
            DeadLetterReason::InvalidField,
            "source_organisation_code",
        );
    }
    let mut other_org = valid_update();
    if let Some(id) = other_org.patient_identifier.as_mut() {
        id.organisation_code = "F81001".to_owned();
    }
    assert_rejected(
        &other_org,
        DeadLetterReason::InvalidField,
        "patient_identifier.organisation_code must equal",
    );
    let mut lower = valid_update();
    lower.source_organisation_code = "rqw".to_owned();
    assert_eq!(validate_update_at(&lower, NOW), Ok(()));
    let mut missing = valid_update();
    missing.patient_identifier = None;
    assert_rejected(
        &missing,
        DeadLetterReason::InvalidField,
        "patient_identifier is required",
    );
}

#[test]
fn version_category_and_operation_are_required() {
    let mut update = valid_update();
    update.version = 0;
    assert_rejected(&update, DeadLetterReason::InvalidField, "version");

    let mut update = valid_update();
    update.category = Category::Unspecified as i32;
    assert_rejected(&update, DeadLetterReason::UnknownCategory, "category");
    update.category = 42;
    assert_rejected(&update, DeadLetterReason::UnknownCategory, "42");

    let mut update = valid_update();
    update.operation = RecordOperation::Unspecified as i32;
    assert_rejected(&update, DeadLetterReason::InvalidField, "operation");
    update.operation = 7;
    assert_rejected(&update, DeadLetterReason::InvalidField, "operation");
}

#[test]
fn an_invalid_nhs_number_is_its_own_reason_and_is_not_repeated() {
    let mut update = valid_update();
    if let Some(demographics) = update.demographics.as_mut() {
        demographics.nhs_number = "9434765918".to_owned();
    }
    let rejection = rejected(&update);
    assert_eq!(rejection.reason, DeadLetterReason::InvalidNhsNumber);
    assert!(rejection.text.contains("demographics.nhs_number"));
    assert!(!rejection.text.contains("9434765918"));
    if let Some(demographics) = update.demographics.as_mut() {
        demographics.nhs_number = String::new();
    }
    assert_eq!(
        validate_update_at(&update, NOW),
        Ok(()),
        "an unknown number is fine"
    );
}

#[test]
fn effective_time_must_be_present_and_plausible() {
    let mut update = valid_update();
    update.effective_time = None;
    assert_rejected(
        &update,
        DeadLetterReason::InvalidField,
        "effective_time is required",
    );
    update.effective_time = Some(timestamp(-3_786_825_601));
    assert_rejected(&update, DeadLetterReason::InvalidField, "1850");
    update.effective_time = Some(timestamp(-3_786_825_600));
    assert_eq!(validate_update_at(&update, NOW), Ok(()));
    update.effective_time = Some(timestamp(NOW + 3 * 365 * 86_400));
    assert_rejected(&update, DeadLetterReason::InvalidField, "future");
    update.effective_time = Some(timestamp(NOW + 365 * 86_400));
    assert_eq!(
        validate_update_at(&update, NOW),
        Ok(()),
        "a booking next year is fine"
    );
    update.effective_time = Some(prost_types::Timestamp {
        seconds: NOW,
        nanos: -1,
    });
    assert_rejected(
        &update,
        DeadLetterReason::InvalidField,
        "effective_time.nanos",
    );
    update.effective_time = Some(timestamp(i64::MIN));
    assert_rejected(&update, DeadLetterReason::InvalidField, "effective_time");
    update.effective_time = Some(timestamp(i64::MAX));
    assert_rejected(&update, DeadLetterReason::InvalidField, "effective_time");
}

#[test]
fn the_resource_type_must_suit_the_category_and_the_resource() {
    let mut update = valid_update();
    update.resource_type = "Observation".to_owned();
    assert_rejected(
        &update,
        DeadLetterReason::ResourceTypeMismatch,
        "medications",
    );
    update.resource_type = String::new();
    assert_rejected(
        &update,
        DeadLetterReason::ResourceTypeMismatch,
        "resource_type is required",
    );

    let mut update = valid_update();
    update.resource_type = "MedicationRequest".to_owned();
    assert_rejected(
        &update,
        DeadLetterReason::ResourceTypeMismatch,
        "does not match",
    );

    let mut update = valid_update();
    update.resource_type = "x".repeat(10_000);
    let rejection = rejected(&update);
    assert_eq!(rejection.reason, DeadLetterReason::ResourceTypeMismatch);
    assert!(rejection.text.len() < 400, "long values are cut short");
}

#[test]
fn a_delete_carries_no_resource() {
    let mut update = valid_update();
    update.operation = RecordOperation::Delete as i32;
    assert_rejected(
        &update,
        DeadLetterReason::InvalidField,
        "fhir_resource_json must be empty",
    );
    update.fhir_resource_json.clear();
    update.effective_time = None;
    update.display_summary.clear();
    assert_eq!(validate_update_at(&update, NOW), Ok(()));
    update.resource_type = "Appointment".to_owned();
    assert_rejected(
        &update,
        DeadLetterReason::ResourceTypeMismatch,
        "Appointment",
    );
}

#[test]
fn a_carried_care_relationship_is_checked() {
    let relationship = CarriedCareRelationship {
        relationship_type: CareRelationshipType::Admission as i32,
        source_reference: "spell-1".to_owned(),
        start_time: Some(timestamp(NOW - 1_000)),
        end_time: Some(timestamp(NOW)),
        team_code: "CARDIO".to_owned(),
    };
    let mut update = valid_update();
    update.care_relationship = Some(relationship.clone());
    assert_eq!(validate_update_at(&update, NOW), Ok(()));

    let broken: [(BreakRelationship, &str); 7] = [
        (|r| r.relationship_type = 0, "relationship_type is required"),
        (
            |r| r.relationship_type = 99,
            "relationship_type is required",
        ),
        (
            |r| r.relationship_type = CareRelationshipType::SelfDeclared as i32,
            "SELF_DECLARED",
        ),
        (|r| r.source_reference.clear(), "source_reference"),
        (|r| r.start_time = None, "start_time is required"),
        (
            |r| r.end_time = r.start_time,
            "end_time must be after start_time",
        ),
        (|r| r.team_code = "t".repeat(65), "team_code"),
    ];
    for (breaks, mentions) in broken {
        let mut changed = relationship.clone();
        breaks(&mut changed);
        update.care_relationship = Some(changed);
        assert_rejected(&update, DeadLetterReason::InvalidField, mentions);
    }
}

#[test]
fn decoding_checks_size_then_form_then_subject() {
    let update = valid_update();
    let subject = subject_for("RQW", Category::Medications);
    let bytes = update.encode_to_vec();
    assert_eq!(decode_and_validate(&subject, &bytes), Ok(update.clone()));

    let as_parsed = |update: &RecordUpdate, resource: Option<&FhirJson<'_>>| {
        (
            update.local_entry_id.clone(),
            resource.map(serde_json::Value::from),
        )
    };
    let (decoded, (entry, parsed)) =
        decode_and_validate_with(&subject, &bytes, as_parsed).expect("valid");
    let resource: serde_json::Value =
        serde_json::from_str(&update.fhir_resource_json).expect("the fixture is JSON");
    assert_eq!(decoded, update);
    assert_eq!(
        entry, update.local_entry_id,
        "derive sees the decoded update"
    );
    assert_eq!(parsed, Some(resource), "the upsert's resource, parsed once");
    let mut delete = update.clone();
    delete.operation = RecordOperation::Delete as i32;
    delete.fhir_resource_json.clear();
    let (_, (_, parsed)) = decode_and_validate_with(&subject, &delete.encode_to_vec(), as_parsed)
        .expect("valid delete");
    assert_eq!(parsed, None, "a delete carries no resource");

    let too_large = vec![0u8; MAX_MESSAGE_BYTES + 1];
    let rejection = decode_and_validate(&subject, &too_large).err();
    assert_eq!(
        rejection.map(|r| r.reason),
        Some(DeadLetterReason::TooLarge)
    );

    let garbage = [0xff_u8, 0xff, 0xff, 0xff];
    let rejection = decode_and_validate(&subject, &garbage).err();
    assert_eq!(
        rejection.map(|r| r.reason),
        Some(DeadLetterReason::Undecodable)
    );

    let cases = [
        (
            "mcr.records.v1.F81001.medications",
            DeadLetterReason::InvalidField,
        ),
        (
            "mcr.records.v1.RQW.test_results",
            DeadLetterReason::UnknownCategory,
        ),
        (
            "mcr.records.v1.RQW.potions",
            DeadLetterReason::UnknownCategory,
        ),
        ("mcr.records.v1.RQW", DeadLetterReason::InvalidField),
        (
            "mcr.records.v1.RQW.medications.extra",
            DeadLetterReason::InvalidField,
        ),
        (
            "mcr.records.v2.RQW.medications",
            DeadLetterReason::InvalidField,
        ),
        (
            "mcr.records.v1.R-W.medications",
            DeadLetterReason::InvalidField,
        ),
    ];
    for (subject, reason) in cases {
        let rejection = decode_and_validate(subject, &bytes).err();
        assert_eq!(rejection.map(|r| r.reason), Some(reason), "{subject}");
    }
    assert!(decode_and_validate("mcr.records.v1.rqw.medications", &bytes).is_ok());
}
