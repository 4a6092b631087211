//! Turning FHIR R4 JSON a provider already has — one resource or a Bundle —
//! into record updates for one organisation: what the example connector
//! binary does, kept here so it is tested without NATS.

use mcr_proto::common::v1::Category;
use mcr_proto::patient_index::v1::Demographics;
use mcr_proto::records::v1::RecordUpdate;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::builder::RecordUpdateBuilder;
use crate::validate::{Rejection, accepted_resource_types, category_token};

/// What every update from one input shares.
#[derive(Debug, Clone)]
pub struct InputOptions {
    /// Source organisation code.
    pub organisation_code: String,
    /// Source system.
    pub source_system: String,
    /// The person's local identifier system.
    pub patient_system: String,
    /// The person's local identifier value.
    pub patient_value: String,
    /// Category for every resource; `None` infers it from each resource type.
    pub category: Option<Category>,
    /// NHS Number sent in the demographics, when known.
    pub nhs_number: Option<String>,
    /// Entry version; connectors without one use the time of publishing.
    pub version: u64,
    /// Entry id when the input is one resource without an `id`.
    pub entry_id: Option<String>,
    /// Effective time when the resource has no date of its own.
    pub default_effective_time: prost_types::Timestamp,
}

/// Why an input could not become updates; names the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not JSON, or not a FHIR resource.
    #[error("the input is not a FHIR resource: {0}")]
    NotFhir(String),
    /// The category cannot be inferred from the resource type.
    #[error("{location}: {reason}")]
    Category {
        /// Which resource ("the resource", "Bundle entry 3").
        location: String,
        /// What to do.
        reason: String,
    },
    /// The resource has no id and none was given.
    #[error("{0}: the resource has no id; give one with --entry-id")]
    NoEntryId(String),
    /// The update would be rejected.
    #[error("{location}: {rejection}")]
    Invalid {
        /// Which resource.
        location: String,
        /// Why.
        rejection: Rejection,
    },
}

/// The category a resource type belongs to when exactly one accepts it.
pub fn infer_category(resource_type: &str) -> Result<Category, String> {
    let fitting: Vec<Category> = (1..=10)
        .filter_map(|value| Category::try_from(value).ok())
        .filter(|category| accepted_resource_types(*category).contains(&resource_type))
        .collect();
    match fitting.as_slice() {
        [only] => Ok(*only),
        [] => Err(format!(
            "resource type {resource_type:?} is not accepted by any category"
        )),
        several => Err(format!(
            "{resource_type} fits {}; say which with --category",
            several
                .iter()
                .map(|category| category_token(*category))
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

/// The updates of `json`: one per resource, or one per Bundle entry.
pub fn updates_from_json(
    json: &str,
    options: &InputOptions,
) -> Result<Vec<RecordUpdate>, InputError> {
    let value: Value = serde_json::from_str(json)
        .map_err(|error| InputError::NotFhir(format!("invalid JSON at line {}", error.line())))?;
    let resource_type = value
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or_else(|| InputError::NotFhir("there is no resourceType".to_owned()))?;
    if resource_type != "Bundle" {
        let update = update_from_resource(&value, options, "the resource", true)?;
        return Ok(vec![update]);
    }
    let entries = value
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let location = format!("Bundle entry {}", index + 1);
            match entry.get("resource") {
                Some(resource) => update_from_resource(resource, options, &location, false),
                None => delete_from_request(entry, options, &location),
            }
        })
        .collect()
}

/// A transaction entry `{"request": {"method": "DELETE", "url": "Type/id"}}`
/// as a delete of that entry; any other entry without a resource is an
/// error, never skipped.
fn delete_from_request(
    entry: &Value,
    options: &InputOptions,
    location: &str,
) -> Result<RecordUpdate, InputError> {
    let request = entry.get("request");
    let method = request
        .and_then(|r| r.get("method"))
        .and_then(Value::as_str);
    let url = request.and_then(|r| r.get("url")).and_then(Value::as_str);
    let (Some("DELETE"), Some(url)) = (method, url) else {
        return Err(InputError::NotFhir(format!(
            "{location} has no resource and is not a DELETE request"
        )));
    };
    let Some((resource_type, entry_id)) = url.trim_start_matches('/').split_once('/') else {
        return Err(InputError::NotFhir(format!(
            "{location}: a DELETE url must be Type/id"
        )));
    };
    delete_update(resource_type, entry_id, options, location)
}

/// A delete of the organisation's entry `entry_id` of `resource_type`.
pub fn delete_update(
    resource_type: &str,
    entry_id: &str,
    options: &InputOptions,
    location: &str,
) -> Result<RecordUpdate, InputError> {
    let category = match options.category {
        Some(category) => category,
        None => infer_category(resource_type).map_err(|reason| InputError::Category {
            location: location.to_owned(),
            reason,
        })?,
    };
    RecordUpdateBuilder::delete(&options.organisation_code, &options.source_system, category)
        .patient(&options.patient_system, &options.patient_value)
        .entry(entry_id, options.version)
        .resource_type(resource_type)
        .build()
        .map_err(|rejection| InputError::Invalid {
            location: location.to_owned(),
            rejection,
        })
}

fn update_from_resource(
    resource: &Value,
    options: &InputOptions,
    location: &str,
    single: bool,
) -> Result<RecordUpdate, InputError> {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let category = match options.category {
        Some(category) => category,
        None => infer_category(resource_type).map_err(|reason| InputError::Category {
            location: location.to_owned(),
            reason,
        })?,
    };
    let entry_id = match resource.get("id").and_then(Value::as_str) {
        Some(id) => id.to_owned(),
        None if single => options
            .entry_id
            .clone()
            .ok_or_else(|| InputError::NoEntryId(location.to_owned()))?,
        None => return Err(InputError::NoEntryId(location.to_owned())),
    };
    let effective_time = effective_time_of(resource).unwrap_or(options.default_effective_time);
    let mut builder =
        RecordUpdateBuilder::upsert(&options.organisation_code, &options.source_system, category)
            .patient(&options.patient_system, &options.patient_value)
            .entry(&entry_id, options.version)
            .effective_time(effective_time)
            .resource(resource)
            .display_summary(&summary_of(resource, resource_type));
    if let Some(nhs_number) = &options.nhs_number {
        builder = builder.demographics(Demographics {
            nhs_number: nhs_number.clone(),
            ..Default::default()
        });
    }
    builder.build().map_err(|rejection| InputError::Invalid {
        location: location.to_owned(),
        rejection,
    })
}

/// The resource's own clinically effective date, from the element its type
/// uses for it.
pub fn effective_time_of(resource: &Value) -> Option<prost_types::Timestamp> {
    const CANDIDATES: &[&[&str]] = &[
        &["effectiveDateTime"],
        &["effectivePeriod", "start"],
        &["effectiveInstant"],
        &["onsetDateTime"],
        &["performedDateTime"],
        &["performedPeriod", "start"],
        &["period", "start"],
        &["start"],
        &["authoredOn"],
        &["whenHandedOver"],
        &["recordedDate"],
        &["date"],
        &["issued"],
        &["meta", "lastUpdated"],
    ];
    CANDIDATES.iter().find_map(|path| {
        let text = path
            .iter()
            .try_fold(resource, |value, key| value.get(*key))?
            .as_str()?;
        parse_fhir_date_time(text)
    })
}

/// A FHIR `date`, `dateTime` or `instant` ("2024", "2024-05", "2024-05-17",
/// "2024-05-17T10:30:00Z", with offset or fraction) as an instant; partial
/// dates mean their first day, midnight UTC.
pub fn parse_fhir_date_time(text: &str) -> Option<prost_types::Timestamp> {
    if text.len() > 10 {
        let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        return Some(prost_types::Timestamp {
            seconds: at.unix_timestamp(),
            nanos: i32::try_from(at.nanosecond()).ok()?,
        });
    }
    let mut parts = text.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next().map_or(Some(1), |part| part.parse().ok())?;
    let day: u8 = parts.next().map_or(Some(1), |part| part.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(prost_types::Timestamp {
        seconds: date.midnight().assume_utc().unix_timestamp(),
        nanos: 0,
    })
}

/// A line for the timeline from what the resource says about itself.
pub fn summary_of(resource: &Value, resource_type: &str) -> String {
    let concept_text = |key: &str| -> Option<String> {
        let concept = resource.get(key)?;
        concept
            .get("text")
            .or_else(|| concept.get("coding")?.get(0)?.get("display"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let text = concept_text("code")
        .or_else(|| concept_text("medicationCodeableConcept"))
        .or_else(|| concept_text("type"))
        .or_else(|| {
            resource
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| {
            resource
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|text| !text.trim().is_empty());
    let summary = match text {
        Some(text) => format!("{resource_type}: {text}"),
        None => resource_type.to_owned(),
    };
    summary.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn options() -> InputOptions {
        InputOptions {
            organisation_code: "RQW".to_owned(),
            source_system: "PAS".to_owned(),
            patient_system: "PAS".to_owned(),
            patient_value: "H1".to_owned(),
            category: None,
            nhs_number: Some("9434765919".to_owned()),
            version: 3,
            entry_id: None,
            default_effective_time: prost_types::Timestamp {
                seconds: 1_764_000_000,
                nanos: 0,
            },
        }
    }

    fn medication(id: &str) -> Value {
        json!({
            "resourceType": "MedicationStatement", "id": id, "status": "active",
            "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
            "subject": {"reference": "Patient/H1"}, "effectiveDateTime": "2024-05-17"
        })
    }

    #[test]
    fn a_resource_becomes_one_update_with_its_date_and_summary() {
        let updates = updates_from_json(&medication("m1").to_string(), &options());
        let Ok(updates) = updates else {
            panic!("{updates:?}");
        };
        assert_eq!(updates.len(), 1);
        let update = &updates[0];
        assert_eq!(update.message_id, "RQW:PAS:m1:3");
        assert_eq!(update.category, Category::Medications as i32);
        assert_eq!(
            update.display_summary,
            "MedicationStatement: Amlodipine 5mg tablets"
        );
        assert_eq!(
            update.effective_time.map(|t| t.seconds),
            Some(1_715_904_000)
        );
    }

    #[test]
    fn a_bundle_gives_one_update_per_entry_and_names_a_bad_one() {
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": medication("m1")}, {"resource": medication("m2")}
        ]});
        let updates = updates_from_json(&bundle.to_string(), &options());
        assert_eq!(updates.map(|u| u.len()), Ok(2));

        let observation = json!({"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "Hb"}});
        let bundle = json!({"resourceType": "Bundle", "entry": [{"resource": medication("m1")}, {"resource": observation}]});
        let outcome = updates_from_json(&bundle.to_string(), &options());
        let Err(error) = outcome else {
            panic!("an Observation's category is ambiguous");
        };
        assert!(
            error
                .to_string()
                .starts_with("Bundle entry 2: Observation fits test_results and emergency_care")
        );
    }

    #[test]
    fn problems_are_sentences_naming_the_entry() {
        let mut resource = medication("m1");
        resource["status"] = json!("taking");
        let outcome = updates_from_json(&resource.to_string(), &options());
        assert!(
            matches!(outcome, Err(InputError::Invalid { .. })),
            "{outcome:?}"
        );
        let no_id = json!({"resourceType": "Patient"});
        let outcome = updates_from_json(&no_id.to_string(), &options());
        assert_eq!(
            outcome,
            Err(InputError::NoEntryId("the resource".to_owned()))
        );
        let with_id = InputOptions {
            entry_id: Some("pt".to_owned()),
            ..options()
        };
        assert!(updates_from_json(&no_id.to_string(), &with_id).is_ok());
        assert!(matches!(
            updates_from_json("[]", &options()),
            Err(InputError::NotFhir(_))
        ));
    }

    #[test]
    fn a_delete_request_becomes_a_delete_and_other_empty_entries_are_errors() {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "DELETE", "url": "MedicationStatement/m1"}}
        ]});
        let updates = updates_from_json(&bundle.to_string(), &options());
        let Ok(updates) = updates else {
            panic!("{updates:?}");
        };
        assert_eq!(
            updates[0].operation,
            mcr_proto::records::v1::RecordOperation::Delete as i32
        );
        assert_eq!(updates[0].local_entry_id, "m1");
        assert!(updates[0].fhir_resource_json.is_empty());

        let bundle = json!({"resourceType": "Bundle", "entry": [{"fullUrl": "urn:uuid:1"}]});
        let outcome = updates_from_json(&bundle.to_string(), &options());
        assert!(
            matches!(&outcome, Err(InputError::NotFhir(text)) if text.contains("Bundle entry 1")),
            "{outcome:?}"
        );
    }

    #[test]
    fn fhir_dates_of_every_precision_parse() {
        let seconds = |text: &str| parse_fhir_date_time(text).map(|t| t.seconds);
        assert_eq!(seconds("2024"), Some(1_704_067_200));
        assert_eq!(seconds("2024-05"), Some(1_714_521_600));
        assert_eq!(seconds("2024-05-17T10:30:00+01:00"), Some(1_715_938_200));
        assert_eq!(seconds("2024-13-01"), None);
        assert_eq!(seconds("yesterday"), None);
    }
}
