//! Cached views are sealed: Redis holds no record content, and rotating the
//! key keeps old values readable until their key is removed, after which
//! they are misses that are rebuilt under the new key.

use base64::Engine;
use mcr_proto::common::v1::{PersonReference, Purpose, Role};
use mcr_proto::records::v1::GetCareRecordRequest;
use mcr_proto::records::v1::record_aggregator_client::RecordAggregatorClient;
use mcr_testkit::RunningService;
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::{Options, Platform, local_person};

use crate::support::*;

const SUMMARY: &str = "Amoxicillin 500mg capsules";
const RESULT: &str = "CRP 12 mg/L";
/// Text that is in the record (summaries and FHIR resources) and must never
/// be in Redis.
const RECORD_TEXT: &[&str] = &[
    SUMMARY,
    RESULT,
    "Amoxicillin",
    "MedicationStatement",
    "323510009",
    "Observation",
    "snomed",
];

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// Settings for an aggregator holding `keys` (id, key byte) and sealing
/// with `active`, keeping no views in memory, so every read goes to Redis.
fn key_settings(active: &str, keys: &[(&str, u8)]) -> Vec<(String, String)> {
    let mut settings = vec![
        (
            "MCR_RECORDS__CACHE_ENCRYPTION__ACTIVE_KEY_ID".to_owned(),
            active.to_owned(),
        ),
        ("MCR_RECORDS__MEMORY_CACHE_MIB".to_owned(), "0".to_owned()),
    ];
    for (id, byte) in keys {
        settings.push((
            format!("MCR_RECORDS__CACHE_ENCRYPTION__KEYS__{}", id.to_uppercase()),
            key(*byte),
        ));
    }
    settings
}

/// A platform whose aggregator seals with `k1`, holding one person with a
/// medication and a test result, and a clinician allowed to see them.
async fn sealed_record() -> (Platform, PersonReference, String) {
    let platform = Platform::start_with(Options {
        aggregator_overrides: key_settings("k1", &[("k1", 1)]),
        ..Options::default()
    })
    .await;
    ingest(
        &platform,
        vec![
            medication(HOSPITAL, "H1", "rqw-med-1", 1, 30, SUMMARY)
                .demographics(demographics("9434765919", "Lane", "1972-02-14"))
                .build()
                .unwrap(),
            observation(HOSPITAL, "H1", "rqw-obs-1", 31, RESULT)
                .build()
                .unwrap(),
        ],
    )
    .await;
    let person = local_person(HOSPITAL, "EPR", "H1");
    let clinician = platform
        .professional("dr.sealed", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    (platform, person, clinician)
}

/// Every cached view of this test, raw, as Redis holds it.
async fn raw_views(platform: &Platform) -> Vec<Vec<u8>> {
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("mcr-test:{}:view:*", platform.environment().id);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut values = Vec::new();
    for key in keys {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        values.push(value);
    }
    values
}

/// The key id a sealed value names (`MCRV1 | length | id | …`).
fn key_id(value: &[u8]) -> String {
    assert!(value.starts_with(b"MCRV1"), "not a sealed value");
    let length = usize::from(value[5]);
    String::from_utf8(value[6..6 + length].to_vec()).unwrap()
}

/// The sum of the aggregator's counter `name` over labels matching `labels`.
async fn metric(service: &RunningService, name: &str, labels: &str) -> f64 {
    let (_, body) = mcr_testkit::grpc::admin_get(service.admin_port, "/metrics")
        .await
        .unwrap();
    body.lines()
        .filter(|line| line.starts_with(name) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn read_through(
    service: &RunningService,
    token: &str,
    person: &PersonReference,
) -> Vec<String> {
    let view = RecordAggregatorClient::new(service.channel().await)
        .get_care_record(with_token(
            GetCareRecordRequest {
                person: Some(person.clone()),
                purpose: Purpose::DirectCare as i32,
                include_resources: true,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("a permitted view")
        .into_inner();
    view.entries
        .iter()
        .map(|entry| entry.display_summary.clone())
        .collect()
}

/// Another aggregator on the same platform (same databases, Redis prefix
/// and NATS namespace) with its own cache keys, as a redeploy would be.
async fn another_aggregator(platform: &Platform, keys: Vec<(String, String)>) -> RunningService {
    let mut overrides: Vec<(String, String)> = platform
        .aggregator_account
        .overrides()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    overrides.extend([
        (
            "MCR_AUTH__IDENTITY_URL".to_owned(),
            platform.identity.identity_url(),
        ),
        (
            "MCR_RECORDS__PATIENT_INDEX_URL".to_owned(),
            platform.patient_index.grpc_endpoint(),
        ),
        (
            "MCR_RECORDS__CONSENT_URL".to_owned(),
            platform.consent.grpc_endpoint(),
        ),
    ]);
    overrides.extend(keys);
    let pairs: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    mcr_testkit::spawn_service::<mcr_record_aggregator::RecordAggregatorService>(
        platform.environment(),
        &pairs,
    )
    .await
}

#[tokio::test]
async fn a_cached_view_in_redis_holds_no_text_of_the_record() {
    let (platform, person, clinician) = sealed_record().await;
    let summaries = read_through(&platform.aggregator, &clinician, &person).await;
    assert!(
        summaries.iter().any(|summary| summary == SUMMARY),
        "the view itself carries the record: {summaries:?}"
    );

    let values = raw_views(&platform).await;
    assert_eq!(values.len(), 1, "one view of one person is cached");
    let value = &values[0];
    assert_eq!(key_id(value), "k1");
    for text in RECORD_TEXT {
        assert!(
            !value
                .windows(text.len())
                .any(|window| window.eq_ignore_ascii_case(text.as_bytes())),
            "the raw Redis value contains {text:?}"
        );
    }

    // The sealed value is a working cache: the next read builds nothing.
    let builds = metric(&platform.aggregator, "mcr_records_view_builds_total", "").await;
    read_through(&platform.aggregator, &clinician, &person).await;
    let after = metric(&platform.aggregator, "mcr_records_view_builds_total", "").await;
    assert_eq!(after, builds, "a sealed cached view is a hit");
}

#[tokio::test]
async fn after_rotation_old_values_open_until_their_key_is_removed_then_are_rebuilt() {
    let (platform, person, clinician) = sealed_record().await;
    read_through(&platform.aggregator, &clinician, &person).await;
    assert_eq!(key_id(&raw_views(&platform).await[0]), "k1");

    // Step 1: k2 added and made active; k1 still opens what it sealed.
    let rotated = another_aggregator(&platform, key_settings("k2", &[("k1", 1), ("k2", 2)])).await;
    let builds = metric(&rotated, "mcr_records_view_builds_total", "").await;
    let summaries = read_through(&rotated, &clinician, &person).await;
    assert!(summaries.iter().any(|summary| summary == SUMMARY));
    assert_eq!(
        metric(&rotated, "mcr_records_view_builds_total", "").await,
        builds,
        "a value sealed under the old key is still a hit"
    );

    // Step 2: k1 removed; its values are misses, rebuilt under k2.
    let retired = another_aggregator(&platform, key_settings("k2", &[("k2", 2)])).await;
    let unknown = "reason=\"unknown_key\"";
    let unopened = metric(&retired, "mcr_records_view_cache_unopened_total", unknown).await;
    let summaries = read_through(&retired, &clinician, &person).await;
    assert!(summaries.iter().any(|summary| summary == SUMMARY));
    assert_eq!(
        metric(&retired, "mcr_records_view_cache_unopened_total", unknown).await,
        unopened + 1.0,
        "the value under the removed key is counted"
    );
    assert_eq!(
        metric(&retired, "mcr_records_view_builds_total", "").await,
        builds + 1.0,
        "and rebuilt from PostgreSQL"
    );
    let values = raw_views(&platform).await;
    assert_eq!(values.len(), 1);
    assert_eq!(key_id(&values[0]), "k2", "re-sealed under the active key");
}
