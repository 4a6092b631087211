//! Checking Bundles with a real FHIR R4 model library (fhirbolt, strict
//! mode: unknown elements, wrong types or a missing resourceType fail).

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};

/// Panics unless `bundle_json` is an R4 Bundle whose entries hold
/// `resources` resources that the library accepts.
pub fn assert_valid_r4_bundle(bundle_json: &str, resources: usize) {
    let parsed: Resource = fhirbolt::json::from_str(
        bundle_json,
        Some(DeserializationConfig {
            mode: DeserializationMode::Strict,
        }),
    )
    .unwrap_or_else(|error| panic!("not a valid FHIR R4 Bundle: {error}\n{bundle_json}"));
    let Resource::Bundle(bundle) = parsed else {
        panic!("not a Bundle: {bundle_json}");
    };
    let matches = bundle
        .entry
        .iter()
        .filter(|entry| !matches!(entry.resource, Some(Resource::OperationOutcome(_))))
        .count();
    assert_eq!(matches, resources, "{bundle_json}");
}
