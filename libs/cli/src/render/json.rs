//! Views as JSON for machines (`--json`): stable field names in
//! snake_case, categories as tokens, times in RFC 3339.

use mcr_proto::common::v1::Category;
use mcr_proto::records::v1::{CareRecordEntry, EntrySource, GetCareRecordResponse};
use mcr_proto::timestamps::offset_date_time;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

/// A timestamp as RFC 3339 text, or null.
pub fn time(timestamp: Option<&prost_types::Timestamp>) -> Value {
    timestamp
        .and_then(offset_date_time)
        .and_then(|at| at.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// A category as its token, e.g. "test_results".
pub fn category(value: i32) -> Value {
    let category = Category::try_from(value).unwrap_or_default();
    Value::String(mcr_connector::validate::category_token(category))
}

fn source(source: Option<&EntrySource>) -> Value {
    let source = source.cloned().unwrap_or_default();
    json!({
        "organisation_code": source.organisation_code,
        "organisation_name": source.organisation_name,
        "system": source.system,
        "local_entry_id": source.local_entry_id,
        "version": source.version,
        "last_updated": time(source.last_updated.as_ref()),
    })
}

fn entry(entry: &CareRecordEntry) -> Value {
    let resource = serde_json::from_str::<Value>(&entry.fhir_resource_json).unwrap_or(Value::Null);
    json!({
        "entry_id": entry.entry_id,
        "category": category(entry.category),
        "effective_time": time(entry.effective_time.as_ref()),
        "display_summary": entry.display_summary,
        "resource_type": entry.resource_type,
        "source": source(entry.source.as_ref()),
        "duplicates": entry.duplicates.iter().map(|duplicate| json!({
            "entry_id": duplicate.entry_id,
            "source": source(duplicate.source.as_ref()),
            "display_summary": duplicate.display_summary,
            "effective_time": time(duplicate.effective_time.as_ref()),
        })).collect::<Vec<_>>(),
        "resource": resource,
    })
}

/// A care record view.
pub fn care_record(view: &GetCareRecordResponse) -> Value {
    let patient = view.patient.clone().unwrap_or_default();
    let name = patient.name.clone().unwrap_or_default();
    json!({
        "person_id": view.person_id,
        "patient": {
            "nhs_number": patient.nhs_number,
            "given": name.given,
            "family": name.family,
            "birth_date": patient.birth_date,
        },
        "sensitive_demographics_withheld": view.sensitive_demographics_withheld,
        "entries": view.entries.iter().map(entry).collect::<Vec<_>>(),
        "category_counts": view.category_counts.iter().map(|count| json!({
            "category": category(count.category), "count": count.count,
        })).collect::<Vec<_>>(),
        "withheld": view.withheld.iter().map(|notice| json!({
            "category": if notice.category == 0 { Value::Null } else { category(notice.category) },
            "text": notice.text,
        })).collect::<Vec<_>>(),
        "permitted_categories": view.permitted_categories.iter().map(|value| category(*value)).collect::<Vec<_>>(),
        "break_glass_banner": view.break_glass_banner,
        "decision_id": view.decision_id,
        "audit_event_id": view.audit_event_id,
        "view_version": view.view_version,
        "generated_at": time(view.generated_at.as_ref()),
        "next_page_token": view.page.as_ref().map(|page| page.next_page_token.clone()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_their_resource_as_json() {
        let view = GetCareRecordResponse {
            person_id: "p".to_owned(),
            entries: vec![CareRecordEntry {
                category: Category::TestResults as i32,
                effective_time: Some(prost_types::Timestamp {
                    seconds: 1_767_225_600,
                    nanos: 0,
                }),
                fhir_resource_json: r#"{"resourceType":"Observation"}"#.to_owned(),
                ..CareRecordEntry::default()
            }],
            ..GetCareRecordResponse::default()
        };
        let value = care_record(&view);
        assert_eq!(value["entries"][0]["category"], "test_results");
        assert_eq!(
            value["entries"][0]["effective_time"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            value["entries"][0]["resource"]["resourceType"],
            "Observation"
        );
    }
}
