//! RecordCareRelationships: what the record aggregator forwards from one
//! ingest batch, recorded in one transaction with per-item refusals.

use futures::StreamExt;
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{LocalIdentifier, PersonReference, Role};
use mcr_proto::consent::v1::care_relationship_outcome::Outcome;
use mcr_proto::consent::v1::*;
use mcr_testkit_identity::with_token;
use prost::Message;
use time::OffsetDateTime;

use crate::support::{self, ORG, Platform, by_id};

fn admission(person_id: &str, reference: &str) -> RecordCareRelationshipRequest {
    let start = OffsetDateTime::now_utc() - time::Duration::days(3);
    RecordCareRelationshipRequest {
        person: by_id(person_id),
        organisation_code: ORG.to_owned(),
        relationship_type: CareRelationshipType::Admission as i32,
        start_time: Some(prost_types::Timestamp {
            seconds: start.unix_timestamp(),
            nanos: 0,
        }),
        source_system: "PAS".to_owned(),
        source_reference: reference.to_owned(),
        ..RecordCareRelationshipRequest::default()
    }
}

async fn record(
    platform: &Platform,
    relationships: Vec<RecordCareRelationshipRequest>,
    token: &str,
) -> Result<Vec<Outcome>, tonic::Status> {
    let response = platform
        .consent
        .clone()
        .record_care_relationships(with_token(
            RecordCareRelationshipsRequest { relationships },
            token,
        ))
        .await?
        .into_inner();
    Ok(response
        .outcomes
        .into_iter()
        .map(|outcome| outcome.outcome.expect("every item has an outcome"))
        .collect())
}

async fn stored_references(platform: &Platform, person_id: &str, officer: &str) -> Vec<String> {
    let mut references: Vec<String> = platform
        .consent
        .clone()
        .get_consent_summary(with_token(
            GetConsentSummaryRequest {
                person: by_id(person_id),
                ..GetConsentSummaryRequest::default()
            },
            officer,
        ))
        .await
        .expect("summary")
        .into_inner()
        .care_relationships
        .into_iter()
        .map(|relationship| relationship.source_reference)
        .collect();
    references.sort();
    references
}

#[tokio::test]
async fn a_batch_records_the_valid_items_and_refuses_the_others_one_by_one() {
    let platform = support::start().await;
    let officer = platform.user(Role::PrivacyOfficer, ORG).await;
    let first = platform.person(None).await;
    let second = platform.person(None).await;
    let subject = platform.environment.subject(&format!(
        "{}{second}",
        mcr_consent::CONSENT_CHANGED_SUBJECT_PREFIX
    ));
    let mut changes = platform.nats.subscribe(subject).await.expect("subscribing");

    let mut no_reference = admission(&first, "");
    no_reference.source_reference.clear();
    let outcomes = record(
        &platform,
        vec![
            admission(&first, "ADM-1"),
            admission(&second, "ADM-2"),
            no_reference,
            admission(&uuid::Uuid::new_v4().to_string(), "ADM-3"),
            admission(&first, "ADM-4"),
            // The same source key for another person: refused, not moved.
            admission(&second, "ADM-1"),
        ],
        &platform.aggregator,
    )
    .await
    .expect("the batch is taken");

    assert_eq!(outcomes.len(), 6, "one outcome per item, in order");
    for index in [0, 1, 4] {
        match &outcomes[index] {
            Outcome::Recorded(recorded) => assert!(recorded.created, "item {index} is new"),
            Outcome::Refused(reason) => panic!("item {index} was refused: {reason}"),
        }
    }
    let refused = |index: usize| match &outcomes[index] {
        Outcome::Refused(reason) => reason.clone(),
        Outcome::Recorded(_) => panic!("item {index} should have been refused"),
    };
    assert!(refused(2).contains("source_reference"), "{}", refused(2));
    assert!(
        refused(3).to_lowercase().contains("person"),
        "{}",
        refused(3)
    );
    assert!(refused(5).contains("another person"), "{}", refused(5));

    assert_eq!(
        stored_references(&platform, &first, &officer).await,
        ["ADM-1", "ADM-4"]
    );
    assert_eq!(
        stored_references(&platform, &second, &officer).await,
        ["ADM-2"]
    );

    let message = tokio::time::timeout(std::time::Duration::from_secs(8), changes.next())
        .await
        .expect("a ConsentChanged in time")
        .expect("a message");
    let event = ConsentChanged::decode(message.payload.as_ref()).expect("a ConsentChanged");
    assert_eq!(event.person_id, second);
    assert_eq!(
        event.change_kind,
        ConsentChangeKind::CareRelationshipRecorded as i32
    );

    // A repeat is idempotent: the same relationships, updated, none created.
    let again = record(
        &platform,
        vec![admission(&first, "ADM-1"), admission(&second, "ADM-2")],
        &platform.aggregator,
    )
    .await
    .expect("the repeat is taken");
    assert!(
        again
            .iter()
            .all(|outcome| matches!(outcome, Outcome::Recorded(recorded) if !recorded.created))
    );
    assert_eq!(
        stored_references(&platform, &first, &officer).await,
        ["ADM-1", "ADM-4"]
    );
}

#[tokio::test]
async fn a_batch_is_for_services_and_holds_one_to_a_thousand_items() {
    let platform = support::start().await;
    let nurse = platform.user(Role::Nurse, ORG).await;
    let person = platform.person(None).await;

    let as_user = record(&platform, vec![admission(&person, "A")], &nurse)
        .await
        .expect_err("a professional may not send batches");
    assert_eq!(as_user.code(), tonic::Code::PermissionDenied);
    assert!(
        as_user.message().contains("service token"),
        "{}",
        as_user.message()
    );

    let empty = record(&platform, Vec::new(), &platform.aggregator)
        .await
        .expect_err("an empty batch");
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert!(
        empty.message().contains("relationships"),
        "{}",
        empty.message()
    );

    let too_many = (0..1001)
        .map(|n| admission(&person, &format!("R{n}")))
        .collect();
    let too_many = record(&platform, too_many, &platform.aggregator)
        .await
        .expect_err("1,001 items");
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    assert!(
        too_many.message().contains("1001"),
        "{}",
        too_many.message()
    );
}

#[tokio::test]
async fn local_identifiers_are_resolved_together_and_a_bad_one_is_refused_alone() {
    let platform = support::start().await;
    let officer = platform.user(Role::PrivacyOfficer, ORG).await;
    let (first, first_identifier) = platform.registered(None).await;
    let (second, second_identifier) = platform.registered(None).await;
    let by_identifier =
        |identifier: &LocalIdentifier, reference: &str| RecordCareRelationshipRequest {
            person: Some(PersonReference {
                reference: Some(Reference::LocalIdentifier(identifier.clone())),
            }),
            ..admission("", reference)
        };
    let unregistered = LocalIdentifier {
        value: format!("NEVER-{}", uuid::Uuid::new_v4().simple()),
        ..first_identifier.clone()
    };
    let outcomes = record(
        &platform,
        vec![
            by_identifier(&first_identifier, "LI-1"),
            by_identifier(&unregistered, "LI-2"),
            by_identifier(&second_identifier, "LI-3"),
            by_identifier(&first_identifier, "LI-4"),
        ],
        &platform.aggregator,
    )
    .await
    .expect("the batch is taken");
    assert!(
        matches!(&outcomes[0], Outcome::Recorded(_)),
        "{:?}",
        outcomes[0]
    );
    assert!(
        matches!(&outcomes[1], Outcome::Refused(reason) if reason.contains("no person matches")),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(&outcomes[2], Outcome::Recorded(_)),
        "{:?}",
        outcomes[2]
    );
    assert_eq!(
        stored_references(&platform, &first, &officer).await,
        ["LI-1", "LI-4"]
    );
    assert_eq!(
        stored_references(&platform, &second, &officer).await,
        ["LI-3"]
    );

    // An identifier patient-index finds invalid fails the one-call lookup:
    // the items are then looked up one by one, and only it is refused.
    let invalid = LocalIdentifier {
        value: "x".repeat(500),
        ..first_identifier.clone()
    };
    let outcomes = record(
        &platform,
        vec![
            by_identifier(&invalid, "LI-5"),
            by_identifier(&second_identifier, "LI-6"),
        ],
        &platform.aggregator,
    )
    .await
    .expect("the batch is taken");
    assert!(
        matches!(&outcomes[0], Outcome::Refused(reason) if reason.contains("at most 128 characters")),
        "{:?}",
        outcomes[0]
    );
    assert!(
        matches!(&outcomes[1], Outcome::Recorded(_)),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(
        stored_references(&platform, &second, &officer).await,
        ["LI-3", "LI-6"]
    );
}
