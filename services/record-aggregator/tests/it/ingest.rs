//! Ingest: what connectors publish becomes the record exactly once, in
//! version order, and what is invalid is dead-lettered with its reason.

use mcr_connector::validate::subject_for;
use mcr_proto::common::v1::{Category, Role};
use mcr_proto::consent::v1::{CareRelationship, CareRelationshipType, GetConsentSummaryRequest};
use mcr_proto::records::v1::{DeadLetterReason, RecordUpdate};
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::{Options, Platform, local_person};
use prost::Message;

use crate::support::*;

#[tokio::test]
async fn a_read_right_after_an_acked_update_sees_it_even_with_a_cached_view() {
    let platform = Platform::start().await;
    let first = medication(HOSPITAL, "H1", "med-1", 1, 10, "Amoxicillin 500mg")
        .demographics(demographics("9434765919", "Rivers", "1980-04-02"))
        .build()
        .unwrap();
    ingest(&platform, vec![first]).await;
    let clinician = platform
        .professional("dr.ward", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    let person = local_person(HOSPITAL, "EPR", "H1");
    platform.allow(&person, HOSPITAL, &clinician).await;

    let before = read(&platform, &clinician, &person)
        .await
        .expect("a permitted view");
    assert_eq!(summaries(&before), ["Amoxicillin 500mg"]);
    // The second read is served from the cache...
    let cached = read(&platform, &clinician, &person).await.unwrap();
    assert_eq!(cached.view_version, before.view_version);

    // ...and an acked update voids it: the very next read sees the update.
    let later = observation(HOSPITAL, "H1", "obs-1", 20, "Haemoglobin 135 g/L")
        .build()
        .unwrap();
    ingest(&platform, vec![later]).await;
    let after = read(&platform, &clinician, &person).await.unwrap();
    assert!(after.view_version > before.view_version);
    assert_eq!(
        summaries(&after),
        ["Haemoglobin 135 g/L", "Amoxicillin 500mg"],
        "newest first"
    );
    let source = after.entries[0].source.as_ref().unwrap();
    assert_eq!(
        (source.organisation_code.as_str(), source.system.as_str()),
        (HOSPITAL, "EPR")
    );
    assert_eq!(source.organisation_name, format!("Organisation {HOSPITAL}"));
}

#[tokio::test]
async fn out_of_order_and_duplicate_deliveries_keep_the_newest_version_once() {
    let platform = Platform::start().await;
    let version = |number: u64, summary: &str| {
        medication(HOSPITAL, "H2", "med-7", number, 5, summary)
            .demographics(demographics("9434765870", "Stone", "1975-01-30"))
            .build()
            .unwrap()
    };
    let mut duplicate = version(3, "Dose 3");
    // A republished copy with a new message id gets past JetStream's de-duplication.
    duplicate.message_id = "republished-by-a-retrying-connector".to_owned();
    ingest(
        &platform,
        vec![
            version(3, "Dose 3"),
            version(1, "Dose 1"),
            duplicate,
            version(2, "Dose 2"),
        ],
    )
    .await;
    let clinician = platform
        .professional("dr.order", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    let person = local_person(HOSPITAL, "EPR", "H2");
    platform.allow(&person, HOSPITAL, &clinician).await;
    let view = read(&platform, &clinician, &person).await.unwrap();
    assert_eq!(
        summaries(&view),
        ["Dose 3"],
        "one entry, the newest version"
    );
    assert_eq!(view.entries[0].source.as_ref().unwrap().version, 3);
}

#[tokio::test]
async fn a_delete_removes_the_entry_and_a_late_older_upsert_cannot_bring_it_back() {
    let platform = Platform::start().await;
    let create = medication(HOSPITAL, "H3", "med-9", 1, 3, "Ramipril 5mg")
        .demographics(demographics("9434765838", "Hale", "1960-12-12"))
        .build()
        .unwrap();
    let keep = observation(HOSPITAL, "H3", "obs-9", 4, "Sodium 140")
        .build()
        .unwrap();
    ingest(&platform, vec![create.clone(), keep]).await;
    let delete =
        mcr_connector::builder::RecordUpdateBuilder::delete(HOSPITAL, "EPR", Category::Medications)
            .patient("EPR", "H3")
            .entry("med-9", 2)
            .build()
            .unwrap();
    let mut late = create;
    late.message_id = "late-redelivery-of-version-1".to_owned();
    ingest(&platform, vec![delete, late]).await;
    let clinician = platform
        .professional("dr.delete", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    let person = local_person(HOSPITAL, "EPR", "H3");
    platform.allow(&person, HOSPITAL, &clinician).await;
    let view = read(&platform, &clinician, &person).await.unwrap();
    assert_eq!(summaries(&view), ["Sodium 140"]);
}

#[tokio::test]
async fn each_invalid_update_is_dead_lettered_once_with_its_reason_and_original_bytes() {
    let platform = Platform::start().await;
    let valid = || {
        medication(HOSPITAL, "H4", "med-1", 1, 1, "Aspirin 75mg")
            .demographics(demographics("9434765919", "Moss", "1990-06-06"))
            .build()
            .unwrap()
    };
    let medications = subject_for(HOSPITAL, Category::Medications);
    let mut cases: Vec<(String, Vec<u8>, DeadLetterReason)> = vec![(
        medications.clone(),
        b"\xff\x00 not a RecordUpdate".to_vec(),
        DeadLetterReason::Undecodable,
    )];
    cases.push((
        subject_for(HOSPITAL, Category::TestResults),
        valid().encode_to_vec(),
        DeadLetterReason::UnknownCategory,
    ));
    let mut mismatch = valid();
    mismatch.resource_type = "Observation".to_owned();
    mismatch.fhir_resource_json =
        r#"{"resourceType":"Observation","status":"final","code":{"text":"x"}}"#.to_owned();
    cases.push((
        medications.clone(),
        mismatch.encode_to_vec(),
        DeadLetterReason::ResourceTypeMismatch,
    ));
    let mut missing_status = valid();
    missing_status.fhir_resource_json =
        r#"{"resourceType":"MedicationStatement","subject":{"reference":"Patient/p"}}"#.to_owned();
    cases.push((
        medications.clone(),
        missing_status.encode_to_vec(),
        DeadLetterReason::InvalidFhirResource,
    ));
    let mut bad_nhs = valid();
    if let Some(demographics) = bad_nhs.demographics.as_mut() {
        demographics.nhs_number = "9434765918".to_owned();
    }
    cases.push((
        medications.clone(),
        bad_nhs.encode_to_vec(),
        DeadLetterReason::InvalidNhsNumber,
    ));
    let mut no_entry = valid();
    no_entry.local_entry_id = String::new();
    cases.push((
        medications.clone(),
        no_entry.encode_to_vec(),
        DeadLetterReason::InvalidField,
    ));
    let mut unregistrable = valid();
    unregistrable.patient_identifier.as_mut().unwrap().value = "H-unknown".to_owned();
    if let Some(demographics) = unregistrable.demographics.as_mut() {
        demographics.birth_date = "2999-01-01".to_owned();
    }
    cases.push((
        medications.clone(),
        unregistrable.encode_to_vec(),
        DeadLetterReason::PersonRejected,
    ));

    for (subject, payload, _) in &cases {
        publish_raw(&platform, subject, payload.clone()).await;
    }
    platform.wait_for_ingest(TIME).await;
    let letters = dead_letters(&platform).await;
    assert_eq!(
        letters.len(),
        cases.len(),
        "one dead letter per invalid update: {letters:?}"
    );
    for (subject, payload, reason) in &cases {
        let letter = letters
            .iter()
            .find(|letter| &letter.original_message == payload)
            .unwrap_or_else(|| panic!("no dead letter for the {reason:?} case"));
        assert_eq!(letter.reason(), *reason, "{}", letter.reason_text);
        assert_eq!(&letter.original_subject, subject);
        assert!(!letter.reason_text.is_empty());
    }
}

/// The care relationships consent holds between the hospital and its
/// patient `local_id`, as a hospital clinician reads them (which itself
/// needs an active relationship).
async fn hospital_relationships(platform: &Platform, local_id: &str) -> Vec<CareRelationship> {
    let clinician = platform
        .professional(
            &format!("dr.{local_id}"),
            HOSPITAL,
            Role::ClinicalPractitioner,
        )
        .await;
    platform
        .consent_client()
        .await
        .get_consent_summary(with_token(
            GetConsentSummaryRequest {
                person: Some(local_person(HOSPITAL, "EPR", local_id)),
                include_history: false,
                include_fhir: false,
            },
            &clinician,
        ))
        .await
        .expect("the hospital has an active care relationship")
        .into_inner()
        .care_relationships
}

/// Publishes `updates` pipelined and waits until the aggregator acked them.
async fn publish_all(platform: &Platform, updates: Vec<RecordUpdate>) {
    let report = platform.publisher().publish_all(updates).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
    platform.wait_for_ingest(TIME).await;
}

#[tokio::test]
async fn a_care_relationship_carried_by_an_update_reaches_consent() {
    let platform = Platform::start().await;
    let admission = medication(HOSPITAL, "H5", "med-1", 1, 2, "Paracetamol")
        .demographics(demographics("9434765919", "Ford", "1988-08-08"))
        .carries(CareRelationshipType::Admission, "ADM-77", at(1), None)
        .build()
        .unwrap();
    ingest(&platform, vec![admission]).await;
    // Reading a consent summary needs a care relationship: the carried one.
    let relationships = hospital_relationships(&platform, "H5").await;
    let relationship = &relationships[0];
    assert_eq!(relationship.organisation_code, HOSPITAL);
    assert_eq!(relationship.source_reference, "ADM-77");
    assert_eq!(relationship.source_system, "EPR");
}

/// Consent takes at most 1,000 relationships a call: a batch carrying more
/// is forwarded in several calls, none refused.
#[tokio::test]
async fn a_batch_carrying_more_relationships_than_one_consent_call_takes_forwards_them_all() {
    const CARRIED: usize = 1_050;
    // One batch: it waits long enough for every update to arrive.
    let platform = Platform::start_with(Options {
        aggregator_overrides: vec![(
            "MCR_RECORDS__INGEST__BATCH_LINGER_MS".to_owned(),
            "5000".to_owned(),
        )],
        with_audit: false,
    })
    .await;
    let updates: Vec<RecordUpdate> = (0..CARRIED)
        .map(|n| {
            medication(HOSPITAL, "H9", &format!("med-{n}"), 1, 2, "Paracetamol")
                .demographics(demographics("9434765919", "Many", "1988-08-08"))
                .carries(
                    CareRelationshipType::Admission,
                    &format!("ADM-{n}"),
                    at(1),
                    None,
                )
                .build()
                .unwrap()
        })
        .collect();
    publish_all(&platform, updates).await;
    assert_eq!(hospital_relationships(&platform, "H9").await.len(), CARRIED);
    assert!(dead_letters(&platform).await.is_empty());
}

/// First sights are registered in one RegisterPersons call; when the index
/// refuses one of them, the others are still registered and committed and
/// only the refused update is dead-lettered.
#[tokio::test]
async fn a_first_sight_the_index_refuses_leaves_its_batch_mates_registered() {
    // One batch: it waits long enough for every update to arrive.
    let platform = Platform::start_with(Options {
        aggregator_overrides: vec![(
            "MCR_RECORDS__INGEST__BATCH_LINGER_MS".to_owned(),
            "2000".to_owned(),
        )],
        with_audit: false,
    })
    .await;
    let first_sight = |local_id: &str, family: &str, birth_date: &str| {
        // Distinct entries: one entry id and version would be one message id,
        // and JetStream would drop the copies as duplicates.
        medication(
            HOSPITAL,
            local_id,
            &format!("med-{local_id}"),
            1,
            2,
            "Paracetamol",
        )
        .demographics(demographics("", family, birth_date))
        .build()
        .unwrap()
    };
    let refused = first_sight("H-B", "Later", "2999-01-01");
    publish_all(
        &platform,
        vec![
            first_sight("H-A", "Early", "1970-05-05"),
            refused.clone(),
            first_sight("H-C", "Middle", "1980-06-06"),
        ],
    )
    .await;
    let letters = dead_letters(&platform).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].reason(), DeadLetterReason::PersonRejected);
    assert_eq!(letters[0].original_message, refused.encode_to_vec());
    for (local_id, registered) in [("H-A", true), ("H-B", false), ("H-C", true)] {
        let resolved = resolve_local(&platform, HOSPITAL, local_id).await;
        assert_eq!(resolved.is_ok(), registered, "{local_id}: {resolved:?}");
    }
}

/// Batches commit two at a time, but their relationships reach consent in
/// arrival order: the last update of a relationship is the one consent keeps.
#[tokio::test]
async fn relationship_updates_reach_consent_in_order_while_batches_commit_concurrently() {
    const UPDATES: i64 = 30;
    let platform = Platform::start_with(Options {
        aggregator_overrides: vec![
            ("MCR_RECORDS__INGEST__BATCH_SIZE".to_owned(), "1".to_owned()),
            (
                "MCR_RECORDS__INGEST__CONCURRENT_BATCHES".to_owned(),
                "2".to_owned(),
            ),
        ],
        with_audit: false,
    })
    .await;
    // Each update moves the (future) end of the admission a day later.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let end = |n: i64| prost_types::Timestamp {
        seconds: now + n * 86_400,
        nanos: 0,
    };
    let updates: Vec<RecordUpdate> = (1..=UPDATES)
        .map(|n| {
            medication(HOSPITAL, "H8", "med-1", n as u64, 2, "Paracetamol")
                .demographics(demographics("9434765919", "Order", "1988-08-08"))
                .carries(
                    CareRelationshipType::Admission,
                    "ADM-1",
                    at(1),
                    Some(end(n)),
                )
                .build()
                .unwrap()
        })
        .collect();
    publish_all(&platform, updates).await;
    let relationships = hospital_relationships(&platform, "H8").await;
    assert_eq!(relationships.len(), 1);
    assert_eq!(
        relationships[0].end_time.map(|end| end.seconds),
        Some(end(UPDATES).seconds),
        "the last update's end time"
    );
}

/// An update about an identifier nobody registered yet, carrying no
/// demographics, waits (redelivered) for the update that registers the
/// person, instead of being dead-lettered.
#[tokio::test]
async fn an_update_that_overtakes_its_persons_registration_waits_for_it() {
    let platform = Platform::start().await;
    let early = observation(HOSPITAL, "H7", "obs-early", 5, "Sodium 139 mmol/L")
        .build()
        .unwrap();
    let publisher = platform.publisher();
    publisher.publish(&early).await.expect("JetStream takes it");
    // Let the aggregator see it first and send it back to wait.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let registering = medication(HOSPITAL, "H7", "med-1", 1, 4, "Ramipril 5mg")
        .demographics(demographics("9434765919", "Early", "1961-06-06"))
        .build()
        .unwrap();
    ingest(&platform, vec![registering]).await;
    assert!(dead_letters(&platform).await.is_empty());
    let clinician = platform
        .professional("dr.early", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    let person = local_person(HOSPITAL, "EPR", "H7");
    platform.allow(&person, HOSPITAL, &clinician).await;
    let view = read(&platform, &clinician, &person).await.unwrap();
    let mut shown = summaries(&view);
    shown.sort_unstable();
    assert_eq!(shown, ["Ramipril 5mg", "Sodium 139 mmol/L"]);
}
