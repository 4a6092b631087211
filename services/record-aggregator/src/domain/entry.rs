//! A provider entry as the aggregator keeps it: its stable id, and the key
//! that groups the same fact reported by two providers.

use mcr_connector::validate::FhirJson;
use mcr_proto::common::v1::Category;
use time::OffsetDateTime;
use uuid::Uuid;

/// Namespace of entry ids (UUID v5 over the source key), fixed forever:
/// changing it would change every entry id consent restrictions name.
const ENTRY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d63_7200_656e_7472_7969_6400_0000_0001);

/// The stable id of the entry `(organisation, system, local entry id)`.
/// Redelivery and duplicates map to the same row, and consent entry
/// restrictions keep naming the same entry across updates.
pub fn entry_id(organisation_code: &str, source_system: &str, local_entry_id: &str) -> Uuid {
    // The unit separator cannot occur in validated codes or systems, so
    // distinct keys never produce the same name.
    let name = format!("{organisation_code}\u{1f}{source_system}\u{1f}{local_entry_id}");
    Uuid::new_v5(&ENTRY_ID_NAMESPACE, name.as_bytes())
}

/// An entry as stored and cached: everything a view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub entry_id: Uuid,
    pub category: Category,
    pub effective_time: OffsetDateTime,
    pub display_summary: String,
    pub resource_type: String,
    pub organisation_code: String,
    pub source_system: String,
    pub local_entry_id: String,
    pub version: u64,
    pub last_updated: OffsetDateTime,
    pub group_key: String,
    pub fhir_resource_json: String,
}

/// The key under which two providers' copies of one fact meet: category,
/// resource type, the day it applies, and the coded concept (or, without a
/// code, the normalised summary). Appointments meet on their start minute.
pub fn group_key(
    category: Category,
    resource_type: &str,
    effective_time: OffsetDateTime,
    resource: &FhirJson<'_>,
    display_summary: &str,
) -> String {
    let when = if resource_type == "Appointment" {
        format!(
            "{}T{:02}:{:02}",
            effective_time.date(),
            effective_time.hour(),
            effective_time.minute()
        )
    } else {
        effective_time.date().to_string()
    };
    let concept = primary_coding(resource).unwrap_or_else(|| normalised(display_summary));
    format!("{}|{resource_type}|{when}|{concept}", category as i32)
}

/// `system|code` of the first coding of the resource's main concept.
fn primary_coding(resource: &FhirJson<'_>) -> Option<String> {
    const CONCEPT_FIELDS: &[&str] = &[
        "code",
        "medicationCodeableConcept",
        "vaccineCode",
        "serviceType",
        "appointmentType",
        "type",
        "category",
    ];
    let resource = resource.as_object()?;
    CONCEPT_FIELDS.iter().find_map(|field| {
        let concept = match resource.get(field)? {
            FhirJson::Array(concepts) => concepts.first()?,
            concept => concept,
        };
        let coding = concept.as_object()?.get("coding")?.as_array()?.first()?;
        let coding = coding.as_object()?;
        let code = coding.get("code")?.as_str()?;
        let system = coding
            .get("system")
            .and_then(FhirJson::as_str)
            .unwrap_or("");
        Some(format!("{system}|{code}"))
    })
}

fn normalised(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn parsed(json: &str) -> FhirJson<'_> {
        serde_json::from_str(json).expect("test JSON")
    }

    #[test]
    fn entry_ids_are_stable_and_distinct_per_source_key() {
        let id = entry_id("RQW", "PAS", "E1");
        assert_eq!(id, entry_id("RQW", "PAS", "E1"));
        assert_ne!(id, entry_id("RQW", "PAS", "E2"));
        assert_ne!(id, entry_id("RQW", "EPR", "E1"));
        assert_ne!(entry_id("A", "BC", "D"), entry_id("AB", "C", "D"));
    }

    #[test]
    fn the_same_coded_medication_from_two_providers_shares_a_group_key() {
        let gp = json!({"resourceType": "MedicationStatement", "medicationCodeableConcept":
            {"coding": [{"system": "http://snomed.info/sct", "code": "323510009"}]}})
        .to_string();
        let hospital = json!({"resourceType": "MedicationStatement", "medicationCodeableConcept":
            {"coding": [{"system": "http://snomed.info/sct", "code": "323510009", "display": "Amoxicillin"}]}})
        .to_string();
        let (gp, hospital) = (parsed(&gp), parsed(&hospital));
        let morning = datetime!(2026-03-01 09:00 UTC);
        let evening = datetime!(2026-03-01 18:30 UTC);
        let key = |resource, at, summary| {
            group_key(
                Category::Medications,
                "MedicationStatement",
                at,
                resource,
                summary,
            )
        };
        assert_eq!(
            key(&gp, morning, "Amoxicillin 500mg"),
            key(&hospital, evening, "amoxicillin capsules")
        );
        assert_ne!(
            key(&gp, morning, "x"),
            key(&gp, datetime!(2026-03-02 09:00 UTC), "x"),
            "another day is another fact"
        );
    }

    #[test]
    fn uncoded_entries_group_on_their_normalised_summary_and_appointments_on_the_minute() {
        let empty = parsed("{}");
        let at = datetime!(2026-05-04 10:15 UTC);
        assert_eq!(
            group_key(
                Category::Correspondence,
                "DocumentReference",
                at,
                &empty,
                "Discharge  Summary"
            ),
            group_key(
                Category::Correspondence,
                "DocumentReference",
                at,
                &empty,
                "discharge summary"
            )
        );
        let appointment =
            |at| group_key(Category::Appointments, "Appointment", at, &empty, "Clinic");
        assert_eq!(
            appointment(at),
            appointment(datetime!(2026-05-04 10:15:30 UTC))
        );
        assert_ne!(
            appointment(at),
            appointment(datetime!(2026-05-04 14:15 UTC))
        );
    }
}
