//! FHIR R4 outputs: removing a sensitive person's address and contact
//! details from resources, and wrapping a view as a Bundle.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Resources that carry the person's (or a relative's) address and contact
/// details; for a sensitive person these are removed from every output.
const CONTACT_BEARING_TYPES: &[&str] = &["Patient", "RelatedPerson"];
/// The elements removed: where the person lives and how to reach them.
const CONTACT_ELEMENTS: &[&str] = &["address", "telecom", "contact"];

/// `resource_json` without address and contact details when it is a
/// Patient or RelatedPerson (contained ones included); other resources are
/// returned unchanged. Returns whether anything was removed.
pub fn withhold_contact_details(resource_json: &str) -> (String, bool) {
    let Ok(mut resource) = serde_json::from_str::<Value>(resource_json) else {
        return (resource_json.to_owned(), false);
    };
    if strip(&mut resource) {
        (resource.to_string(), true)
    } else {
        (resource_json.to_owned(), false)
    }
}

fn strip(resource: &mut Value) -> bool {
    let Some(object) = resource.as_object_mut() else {
        return false;
    };
    let mut removed = false;
    let bears_contact = object
        .get("resourceType")
        .and_then(Value::as_str)
        .is_some_and(|kind| CONTACT_BEARING_TYPES.contains(&kind));
    if bears_contact {
        for element in CONTACT_ELEMENTS {
            removed |= object.remove(*element).is_some();
        }
    }
    if let Some(Value::Array(contained)) = object.get_mut("contained") {
        for inner in contained {
            removed |= strip(inner);
        }
    }
    removed
}

/// Bundle type of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Searchset,
    Collection,
}

/// One resource of a Bundle.
#[derive(Debug, Clone)]
pub struct BundleResource<'a> {
    pub entry_id: String,
    pub resource_json: &'a str,
}

/// A FHIR R4 Bundle of `resources`, with one OperationOutcome saying what is
/// withheld (never how much) when `withheld_notices` is not empty.
pub fn bundle(
    kind: BundleKind,
    bundle_id: &str,
    generated_at: OffsetDateTime,
    resources: &[BundleResource<'_>],
    total_shown: usize,
    withheld_notices: &[String],
) -> Value {
    let search = |mode: &str| match kind {
        BundleKind::Searchset => Some(json!({ "mode": mode })),
        BundleKind::Collection => None,
    };
    let mut entries: Vec<Value> = resources
        .iter()
        .map(|resource| {
            let parsed: Value = serde_json::from_str(resource.resource_json)
                .unwrap_or_else(|_| Value::Object(Map::new()));
            entry(&resource.entry_id, parsed, search("match"))
        })
        .collect();
    if !withheld_notices.is_empty() {
        let issues: Vec<Value> = withheld_notices
            .iter()
            .map(|text| {
                json!({
                    "severity": "information",
                    "code": "suppressed",
                    "diagnostics": text,
                })
            })
            .collect();
        let outcome = json!({ "resourceType": "OperationOutcome", "issue": issues });
        entries.push(entry(
            &uuid::Uuid::new_v4().to_string(),
            outcome,
            search("outcome"),
        ));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": { "lastUpdated": generated_at.format(&Rfc3339).unwrap_or_default() },
        "type": match kind {
            BundleKind::Searchset => "searchset",
            BundleKind::Collection => "collection",
        },
        "timestamp": generated_at.format(&Rfc3339).unwrap_or_default(),
        "entry": entries,
    });
    // `total` is only allowed on search and history Bundles (FHIR bdl-1).
    if kind == BundleKind::Searchset {
        bundle["total"] = json!(total_shown);
    }
    bundle
}

fn entry(entry_id: &str, resource: Value, search: Option<Value>) -> Value {
    let mut entry = json!({ "fullUrl": format!("urn:uuid:{entry_id}"), "resource": resource });
    if let Some(search) = search {
        entry["search"] = search;
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_patients_address_and_contacts_are_removed_and_clinical_resources_kept() {
        let patient = json!({"resourceType": "Patient", "id": "p", "name": [{"family": "Smith"}],
            "address": [{"postalCode": "CM20 1QX"}], "telecom": [{"value": "07700 900000"}],
            "contact": [{"telecom": [{"value": "01279 000000"}]}]})
        .to_string();
        let (stripped, removed) = withhold_contact_details(&patient);
        assert!(removed);
        let value: Value = serde_json::from_str(&stripped).unwrap();
        assert!(value.get("address").is_none() && value.get("telecom").is_none());
        assert!(value.get("contact").is_none());
        assert_eq!(value["name"][0]["family"], "Smith");

        let observation = json!({"resourceType": "Observation", "status": "final",
            "contained": [{"resourceType": "Patient", "address": [{"city": "Harlow"}]}]})
        .to_string();
        let (stripped, removed) = withhold_contact_details(&observation);
        assert!(removed, "a contained Patient is stripped too");
        assert!(!stripped.contains("Harlow"));

        let plain =
            json!({"resourceType": "Condition", "subject": {"reference": "Patient/p"}}).to_string();
        assert_eq!(withhold_contact_details(&plain), (plain.clone(), false));
    }

    #[test]
    fn a_searchset_has_matches_a_total_and_an_outcome_without_counts() {
        let resource =
            json!({"resourceType": "Condition", "subject": {"reference": "Patient/p"}}).to_string();
        let resources = [BundleResource {
            entry_id: "6d637200-0000-4000-8000-000000000001".to_owned(),
            resource_json: &resource,
        }];
        let notices = ["Some information is not shown at the person's request".to_owned()];
        let at = datetime!(2026-11-25 12:00 UTC);
        let bundle = bundle(BundleKind::Searchset, "b1", at, &resources, 1, &notices);
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], 1);
        assert_eq!(bundle["entry"][0]["search"]["mode"], "match");
        assert_eq!(bundle["entry"][0]["resource"]["resourceType"], "Condition");
        assert_eq!(bundle["entry"][1]["search"]["mode"], "outcome");
        assert_eq!(
            bundle["entry"][1]["resource"]["issue"][0]["code"],
            "suppressed"
        );

        let collection = super::bundle(BundleKind::Collection, "b2", at, &resources, 1, &[]);
        assert_eq!(collection["type"], "collection");
        assert!(collection.get("total").is_none());
        assert!(collection["entry"][0].get("search").is_none());
        assert_eq!(collection["entry"].as_array().unwrap().len(), 1);
    }
}
