//! Following patient-index and consent: merges move entries between
//! views, and consent changes void the views they name.

use mcr_proto::common::v1::Role;
use mcr_proto::consent::v1::ConsentChanged;
use mcr_proto::patient_index::v1::MergePersonsRequest;
use mcr_proto::records::v1::{DeadLetterReason, RecordUpdate};
use mcr_runtime::McrService;
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::{Platform, person_id};
use prost::Message;
use sqlx::Row;
use uuid::Uuid;

use crate::support::*;

/// The aggregator's view versions of `persons` (absent: never bumped).
async fn view_versions(platform: &Platform, persons: &[Uuid]) -> Vec<Option<i64>> {
    let name = platform
        .environment()
        .database_name(&mcr_record_aggregator::RecordAggregatorService::SPEC);
    let pool = sqlx::PgPool::connect(&format!("postgres://mcr:mcr@127.0.0.1:5432/{name}"))
        .await
        .unwrap();
    let rows =
        sqlx::query("SELECT person_id, view_version FROM person_views WHERE person_id = ANY($1)")
            .bind(persons)
            .fetch_all(&pool)
            .await
            .unwrap();
    persons
        .iter()
        .map(|person| {
            rows.iter()
                .find(|row| row.get::<Uuid, _>(0) == *person)
                .map(|row| row.get(1))
        })
        .collect()
}

#[tokio::test]
async fn a_burst_of_consent_changes_voids_every_view_it_names_and_dead_letters_the_unreadable() {
    let platform = Platform::start().await;
    let persons: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    assert_eq!(view_versions(&platform, &persons).await, [None, None, None]);
    let changed = |person: &str| {
        ConsentChanged {
            person_id: person.to_owned(),
            ..Default::default()
        }
        .encode_to_vec()
    };
    // Published back to back, so the follower takes several in one batch,
    // the unreadable ones among them.
    let subject = |person: &str| format!("mcr.consent.v1.changed.{person}");
    publish_raw(&platform, &subject("x"), vec![0xff, 0xff, 0xff]).await;
    for person in &persons {
        publish_raw(
            &platform,
            &subject(&person.to_string()),
            changed(&person.to_string()),
        )
        .await;
    }
    publish_raw(&platform, &subject("y"), changed("not-a-person-id")).await;
    publish_raw(
        &platform,
        &subject(&persons[0].to_string()),
        changed(&persons[0].to_string()),
    )
    .await;

    let deadline = tokio::time::Instant::now() + TIME;
    loop {
        let versions = view_versions(&platform, &persons).await;
        if versions.iter().all(Option::is_some) {
            assert!(versions.iter().flatten().all(|version| *version >= 1));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consent changes never voided every view: {versions:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let deadline = tokio::time::Instant::now() + TIME;
    let letters = loop {
        let letters = dead_letters(&platform).await;
        if letters.len() >= 2 {
            break letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unreadable events were not dead-lettered: {letters:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut reasons: Vec<&str> = letters
        .iter()
        .map(|letter| letter.reason_text.as_str())
        .collect();
    reasons.sort_unstable();
    assert_eq!(letters.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with("event names a malformed person id"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("undecodable consent event"),
        "{reasons:?}"
    );
    assert!(
        letters
            .iter()
            .all(|letter| letter.reason() == DeadLetterReason::Undecodable)
    );
    assert!(
        letters
            .iter()
            .any(|letter| letter.original_message == [0xff, 0xff, 0xff]),
        "the original bytes are kept"
    );
}

#[tokio::test]
async fn a_merge_brings_the_merged_persons_entries_into_the_survivors_view() {
    let platform = Platform::start().await;
    let hospital_copy = medication(HOSPITAL, "H6", "med-1", 1, 2, "Metformin 500mg")
        .demographics(demographics("9434765919", "Nash", "1970-03-03"))
        .build()
        .unwrap();
    let gp_copy: RecordUpdate = observation(GP, "G6", "obs-1", 3, "HbA1c 48")
        .demographics(demographics("", "Quill", "1955-11-11"))
        .build()
        .unwrap();
    ingest(&platform, vec![hospital_copy, gp_copy]).await;
    let mut index = platform.index_client().await;
    let survivor = resolve_local(&platform, HOSPITAL, "H6").await.unwrap();
    let merged = resolve_local(&platform, GP, "G6").await.unwrap();
    assert_ne!(survivor, merged, "different demographics make two persons");

    let clinician = platform
        .professional("dr.merge", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    let person = person_id(&survivor);
    platform.allow(&person, HOSPITAL, &clinician).await;
    assert_eq!(
        summaries(&read(&platform, &clinician, &person).await.unwrap()),
        ["Metformin 500mg"]
    );

    let admin = platform
        .professional("index.admin", "MCR001", Role::SystemAdministrator)
        .await;
    index
        .merge_persons(with_token(
            MergePersonsRequest {
                surviving_person_id: survivor.clone(),
                merged_person_id: merged,
                reason: "the same patient registered twice".to_owned(),
                review_item_id: String::new(),
            },
            &admin,
        ))
        .await
        .expect("the merge");
    let deadline = tokio::time::Instant::now() + TIME;
    loop {
        let view = read(&platform, &clinician, &person).await.unwrap();
        if summaries(&view) == ["HbA1c 48", "Metformin 500mg"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the merge never reached the view: {:?}",
            summaries(&view)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
