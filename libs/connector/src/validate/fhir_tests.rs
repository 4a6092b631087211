//! The FHIR checks of an upsert: the JSON's form and each accepted type's
//! R4 required elements.

use mcr_proto::common::v1::Category;
use mcr_proto::records::v1::DeadLetterReason;
use serde_json::json;

use super::tests::{NOW, assert_rejected, valid_update, with_resource};
use super::validate_update_at;

#[test]
fn the_fhir_json_must_be_one_object_of_bounded_depth() {
    for (json, mentions) in [
        ("", "required"),
        ("{", "ends before"),
        ("{\"a\" 1}", "not valid JSON"),
        ("[1,2]", "JSON object"),
        ("\"MedicationStatement\"", "JSON object"),
        ("{\"status\":\"active\"}", "no resourceType"),
        ("{\"resourceType\":7}", "must be a string"),
    ] {
        let mut update = valid_update();
        update.fhir_resource_json = json.to_owned();
        assert_rejected(&update, DeadLetterReason::InvalidFhirResource, mentions);
    }
    let nest = |levels: usize| {
        let mut update = valid_update();
        let mut resource: serde_json::Value =
            serde_json::from_str(&update.fhir_resource_json).unwrap_or_default();
        resource["extension"] =
            serde_json::from_str(&format!("{}{}", "[".repeat(levels), "]".repeat(levels)))
                .unwrap_or_default();
        update.fhir_resource_json = resource.to_string();
        update
    };
    assert_eq!(validate_update_at(&nest(63), NOW), Ok(()));
    assert_rejected(
        &nest(64),
        DeadLetterReason::InvalidFhirResource,
        "deeper than 64",
    );
    // Past serde_json's own recursion limit the parse itself refuses.
    let mut update = valid_update();
    update.fhir_resource_json = format!(
        "{{\"resourceType\":\"MedicationStatement\",\"x\":{}{}}}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    assert_rejected(
        &update,
        DeadLetterReason::InvalidFhirResource,
        "deeper than 64",
    );
}

#[test]
fn a_property_named_twice_in_one_object_is_refused() {
    // Parsers disagree on which of two values wins: a FHIR client could
    // otherwise read a resourceType or status other than the one checked.
    let valid = valid_update();
    let with_json = |json: String| {
        let mut update = valid.clone();
        update.fhir_resource_json = json;
        update
    };
    let with_extension = |extension: &str| {
        let resource = valid.fhir_resource_json.trim_end();
        let body = resource.strip_suffix('}').unwrap_or(resource);
        with_json(format!("{body},\"extension\":{extension}}}"))
    };
    let once = with_extension(r#"[{"url":"a","valueString":"b"}]"#);
    assert_eq!(validate_update_at(&once, NOW), Ok(()));
    for extension in [
        r#"[{"url":"a","url":"b"}]"#,
        r#"[{"url":"a","valueString":"b","valueString":"c"}]"#,
    ] {
        assert_rejected(
            &with_extension(extension),
            DeadLetterReason::InvalidFhirResource,
            "names one property twice",
        );
    }
    let wide: String = (0..100)
        .map(|n| format!("\"k{n}\":1,"))
        .chain(std::iter::once("\"k7\":2".to_owned()))
        .collect();
    assert_rejected(
        &with_extension(&format!("[{{{wide}}}]")),
        DeadLetterReason::InvalidFhirResource,
        "names one property twice",
    );
    let top = valid
        .fhir_resource_json
        .replacen('{', r#"{"resourceType":"Patient","#, 1);
    assert_rejected(
        &with_json(top),
        DeadLetterReason::InvalidFhirResource,
        "names one property twice",
    );
}

#[test]
fn each_resource_type_needs_its_r4_required_elements() {
    let subject = json!({"reference": "Patient/1"});
    let concept = json!({"text": "something"});
    let valid = [
        (Category::Demographics, json!({"resourceType": "Patient"})),
        (
            Category::Demographics,
            json!({"resourceType": "RelatedPerson", "patient": subject}),
        ),
        (
            Category::Medications,
            json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order", "medicationReference": subject, "subject": subject}),
        ),
        (
            Category::Medications,
            json!({"resourceType": "MedicationDispense", "status": "completed", "medicationCodeableConcept": concept}),
        ),
        (
            Category::TestResults,
            json!({"resourceType": "Observation", "status": "final", "code": concept}),
        ),
        (
            Category::TestResults,
            json!({"resourceType": "DiagnosticReport", "status": "final", "code": concept}),
        ),
        (
            Category::Correspondence,
            json!({"resourceType": "DocumentReference", "status": "current", "content": [{"attachment": {"title": "letter"}}]}),
        ),
        (
            Category::Correspondence,
            json!({"resourceType": "Composition", "status": "final", "type": concept, "date": "2026-01-01", "author": [subject], "title": "Discharge summary"}),
        ),
        (
            Category::ClinicalHistory,
            json!({"resourceType": "Condition", "subject": subject}),
        ),
        (
            Category::ClinicalHistory,
            json!({"resourceType": "Procedure", "status": "completed", "subject": subject}),
        ),
        (
            Category::EmergencyCare,
            json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "EMER"}}),
        ),
        (
            Category::Appointments,
            json!({"resourceType": "Appointment", "status": "booked", "participant": [{"status": "accepted"}]}),
        ),
        (
            Category::PlansAndAlerts,
            json!({"resourceType": "AllergyIntolerance", "patient": subject}),
        ),
        (
            Category::MentalHealth,
            json!({"resourceType": "Flag", "status": "active", "code": concept, "subject": subject}),
        ),
        (
            Category::SocialCare,
            json!({"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": subject}),
        ),
        (Category::SocialCare, json!({"resourceType": "CareTeam"})),
        (
            Category::SocialCare,
            json!({"resourceType": "EpisodeOfCare", "status": "active", "patient": subject}),
        ),
    ];
    for (category, resource) in valid {
        let update = with_resource(category, resource.clone());
        assert_eq!(validate_update_at(&update, NOW), Ok(()), "{resource}");
    }
    let invalid = [
        (
            Category::Medications,
            json!({"resourceType": "MedicationStatement", "status": "active", "subject": subject}),
            "medication[x] is required",
        ),
        (
            Category::Medications,
            json!({"resourceType": "MedicationStatement", "status": "active", "subject": subject, "medicationReference": subject, "medicationCodeableConcept": concept}),
            "once",
        ),
        (
            Category::Medications,
            json!({"resourceType": "MedicationStatement", "status": "taking", "subject": subject, "medicationReference": subject}),
            "status must be one of",
        ),
        (
            Category::Medications,
            json!({"resourceType": "MedicationRequest", "status": "active", "medicationReference": subject, "subject": subject}),
            "intent is required",
        ),
        (
            Category::TestResults,
            json!({"resourceType": "Observation", "status": "final"}),
            "Observation.code is required",
        ),
        (
            Category::TestResults,
            json!({"resourceType": "Observation", "status": "final", "code": "8867-4"}),
            "non-empty JSON object",
        ),
        (
            Category::Correspondence,
            json!({"resourceType": "DocumentReference", "status": "current", "content": []}),
            "non-empty array",
        ),
        (
            Category::Correspondence,
            json!({"resourceType": "DocumentReference", "status": "current", "content": [{"format": concept}]}),
            "content.attachment is required",
        ),
        (
            Category::Correspondence,
            json!({"resourceType": "Composition", "status": "final", "type": concept, "date": "2026-01-01", "author": [subject], "title": " "}),
            "title",
        ),
        (
            Category::ClinicalHistory,
            json!({"resourceType": "Condition"}),
            "Condition.subject is required",
        ),
        (
            Category::EmergencyCare,
            json!({"resourceType": "Encounter", "status": "finished"}),
            "Encounter.class is required",
        ),
        (
            Category::Appointments,
            json!({"resourceType": "Appointment", "status": "booked"}),
            "participant is required",
        ),
        (
            Category::Appointments,
            json!({"resourceType": "Appointment", "status": "booked", "participant": [{"actor": subject}]}),
            "participant.status is required",
        ),
        (
            Category::PlansAndAlerts,
            json!({"resourceType": "AllergyIntolerance"}),
            "patient is required",
        ),
        (
            Category::SocialCare,
            json!({"resourceType": "EpisodeOfCare", "status": "open", "patient": subject}),
            "status must be one of",
        ),
        (
            Category::Demographics,
            json!({"resourceType": "Patient", "id": "has space"}),
            "Patient.id",
        ),
    ];
    for (category, resource, mentions) in invalid {
        let update = with_resource(category, resource);
        assert_rejected(&update, DeadLetterReason::InvalidFhirResource, mentions);
    }
}
