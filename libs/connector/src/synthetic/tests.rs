use std::collections::{HashMap, HashSet};

use mcr_proto::common::v1::Category;
use mcr_proto::records::v1::RecordOperation;

use super::*;
use crate::validate::validate_update;

#[test]
fn every_update_of_several_regions_passes_validation() {
    for seed in [1, 2, 3, 42] {
        for update in Region::generate(seed, 300).updates() {
            if let Err(rejection) = validate_update(&update) {
                panic!(
                    "seed {seed}: {} ({}) rejected: {rejection}",
                    update.message_id, update.resource_type
                );
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_region_and_another_seed_does_not() {
    let first: Vec<_> = Region::generate(9, 50).updates().collect();
    let again: Vec<_> = Region::generate(9, 50).updates().collect();
    let other: Vec<_> = Region::generate(10, 50).updates().collect();
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[test]
fn all_ten_categories_and_every_organisation_appear() {
    let region = Region::generate(5, 500);
    let updates: Vec<_> = region.updates().collect();
    let categories: HashSet<i32> = updates.iter().map(|u| u.category).collect();
    for value in 1..=10 {
        assert!(categories.contains(&value), "category {value} missing");
    }
    let organisations: HashSet<&str> = updates
        .iter()
        .map(|u| u.source_organisation_code.as_str())
        .collect();
    for organisation in region.organisations() {
        assert!(
            organisations.contains(organisation.code),
            "{} publishes nothing",
            organisation.code
        );
    }
    assert!(
        updates
            .iter()
            .any(|u| u.operation == RecordOperation::Delete as i32)
    );
    assert!(updates.iter().any(|u| u.version == 2));
    assert!(updates.iter().any(|u| u.care_relationship.is_some()));
}

#[test]
fn message_ids_are_unique_and_each_entry_key_is_one_organisations() {
    let updates: Vec<_> = Region::generate(11, 400).updates().collect();
    let mut ids = HashSet::new();
    for update in &updates {
        assert!(
            ids.insert(update.message_id.clone()),
            "{}",
            update.message_id
        );
    }
    // A person known at several organisations carries one identifier each.
    let mut identifiers: HashMap<String, HashSet<String>> = HashMap::new();
    for update in &updates {
        if let Some(identifier) = &update.patient_identifier {
            identifiers
                .entry(
                    update
                        .demographics
                        .as_ref()
                        .map(|d| d.nhs_number.clone())
                        .unwrap_or_default(),
                )
                .or_default()
                .insert(format!(
                    "{}|{}",
                    identifier.organisation_code, identifier.value
                ));
        }
    }
    assert!(identifiers.values().any(|known_at| known_at.len() >= 3));
}

#[test]
fn some_facts_are_reported_by_both_the_gp_and_the_hospital() {
    let updates: Vec<_> = Region::generate(3, 300).updates().collect();
    let medication_key = |u: &RecordUpdate| {
        let resource: serde_json::Value =
            serde_json::from_str(&u.fhir_resource_json).unwrap_or_default();
        (
            u.demographics.as_ref().map(|d| d.nhs_number.clone()),
            resource["medicationCodeableConcept"]["coding"][0]["code"].clone(),
            u.effective_time,
        )
    };
    let medications = |organisation: &str| -> HashSet<_> {
        updates
            .iter()
            .filter(|u| u.category == Category::Medications as i32)
            .filter(|u| u.source_organisation_code == organisation)
            .map(medication_key)
            .collect()
    };
    let hospital = medications("RQW");
    let practices: HashSet<_> = ORGANISATIONS[..6]
        .iter()
        .flat_map(|practice| medications(practice.code))
        .collect();
    let shared = hospital.intersection(&practices).count();
    assert!(
        shared >= 10,
        "only {shared} medications are reported by both"
    );
}

#[test]
fn a_region_of_ten_thousand_people_generates_quickly() {
    let started = std::time::Instant::now();
    let count = Region::generate(1, 10_000).updates().count();
    let elapsed = started.elapsed();
    assert!(count > 50_000, "{count} updates");
    // Unoptimised test builds are slow; the bar is generous so it only
    // catches an accidental quadratic, not a slow machine.
    assert!(elapsed.as_secs() < 60, "{count} updates took {elapsed:?}");
}

#[test]
fn every_resource_is_fhir_r4_to_a_strict_model_library() {
    use fhirbolt::model::r4::Resource;
    use fhirbolt::serde::{DeserializationConfig, DeserializationMode};

    let mut types = HashSet::new();
    for update in Region::generate(8, 400).updates() {
        if update.fhir_resource_json.is_empty() {
            continue;
        }
        let parsed: Result<Resource, _> = fhirbolt::json::from_str(
            &update.fhir_resource_json,
            Some(DeserializationConfig {
                mode: DeserializationMode::Strict,
            }),
        );
        if let Err(error) = parsed {
            panic!(
                "{} is not valid FHIR R4: {error}\n{}",
                update.resource_type, update.fhir_resource_json
            );
        }
        types.insert(update.resource_type);
    }
    assert!(types.len() >= 15, "only {types:?}");
}
