//! ConsentChanged events, the outbox relay and the summary (with FHIR).

use std::time::Duration;

use futures::StreamExt;
use mcr_proto::common::v1::Role;
use mcr_proto::consent::v1::*;
use mcr_runtime::McrService;
use mcr_testkit_identity::with_token;
use prost::Message;

use crate::support::{self, ORG, by_id};

async fn next_change(
    subscriber: &mut async_nats::Subscriber,
) -> (ConsentChanged, async_nats::HeaderMap) {
    let message = tokio::time::timeout(Duration::from_secs(8), subscriber.next())
        .await
        .expect("a ConsentChanged in time")
        .expect("a message");
    let event = ConsentChanged::decode(message.payload.as_ref()).expect("a ConsentChanged");
    (event, message.headers.clone().unwrap_or_default())
}

#[tokio::test]
async fn every_change_publishes_consent_changed_with_the_new_version() {
    let platform = support::start().await;
    let clerk = platform.user(Role::AdminClerical, ORG).await;
    let person = platform.person(None).await;
    let subject = platform.environment.subject(&format!(
        "{}{person}",
        mcr_consent::CONSENT_CHANGED_SUBJECT_PREFIX
    ));
    let mut changes = platform.nats.subscribe(subject).await.expect("subscribing");

    let recorded = platform
        .consent
        .clone()
        .record_opt_out(with_token(
            RecordOptOutRequest {
                person: by_id(&person),
                note: "told reception".to_owned(),
                ..RecordOptOutRequest::default()
            },
            &clerk,
        ))
        .await
        .expect("opting out")
        .into_inner();
    assert!(!recorded.already_in_force);
    let opt_out = recorded.opt_out.expect("opt-out");
    let (first, headers) = next_change(&mut changes).await;
    assert_eq!(first.change_kind, ConsentChangeKind::OptOutRecorded as i32);
    assert_eq!(first.consent_version, 1);
    assert_eq!(first.fact_id, opt_out.opt_out_id);
    assert_eq!(first.person_id, person);
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned()),
        Some(first.event_id.clone())
    );

    // Idempotent: nothing new recorded, no event, same version.
    let again = platform
        .consent
        .clone()
        .record_opt_out(with_token(
            RecordOptOutRequest {
                person: by_id(&person),
                ..RecordOptOutRequest::default()
            },
            &clerk,
        ))
        .await
        .expect("opting out again")
        .into_inner();
    assert!(again.already_in_force);
    assert_eq!(
        again.opt_out.expect("opt-out").opt_out_id,
        opt_out.opt_out_id
    );

    platform
        .consent
        .clone()
        .withdraw_opt_out(with_token(
            WithdrawOptOutRequest {
                person: by_id(&person),
                note: String::new(),
            },
            &clerk,
        ))
        .await
        .expect("withdrawing");
    let (second, _) = next_change(&mut changes).await;
    assert_eq!(
        second.change_kind,
        ConsentChangeKind::OptOutWithdrawn as i32
    );
    assert_eq!(
        second.consent_version, 2,
        "the idempotent repeat did not bump the version"
    );
    let none_left = platform
        .consent
        .clone()
        .withdraw_opt_out(with_token(
            WithdrawOptOutRequest {
                person: by_id(&person),
                note: String::new(),
            },
            &clerk,
        ))
        .await
        .expect_err("nothing to withdraw");
    assert_eq!(none_left.code(), tonic::Code::FailedPrecondition);

    // The events are on the stream too (durable for the aggregator).
    let jetstream = async_nats::jetstream::new(platform.nats.clone());
    let stream_name = format!(
        "{}_{}",
        platform.environment.id,
        mcr_consent::CONSENT_EVENTS_STREAM
    );
    let mut stream = jetstream
        .get_stream(&stream_name)
        .await
        .expect("the namespaced consent stream");
    let info = stream.info().await.expect("stream info");
    assert!(info.state.messages >= 2, "{:?}", info.state);
}

#[tokio::test]
async fn the_outbox_relay_publishes_events_a_crash_left_behind() {
    let platform = support::start().await;
    let person = uuid::Uuid::new_v4();
    let subject = platform.environment.subject(&format!(
        "{}{person}",
        mcr_consent::CONSENT_CHANGED_SUBJECT_PREFIX
    ));
    let mut changes = platform.nats.subscribe(subject).await.expect("subscribing");
    // A change committed by a replica that died before publishing.
    let database = platform
        .environment
        .database_name(&mcr_consent::ConsentService::SPEC);
    let pool = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:5432/{database}"))
        .await
        .expect("consent's database");
    let event_id = uuid::Uuid::now_v7();
    let event = ConsentChanged {
        event_id: event_id.to_string(),
        person_id: person.to_string(),
        change_kind: ConsentChangeKind::RestrictionRecorded as i32,
        fact_id: uuid::Uuid::now_v7().to_string(),
        consent_version: 7,
        ..ConsentChanged::default()
    };
    sqlx::query(
        "INSERT INTO consent_change (event_id, person_id, change_kind, fact_id, consent_version, occurred_at,
             actor_user_id, actor_organisation_code, source_system, note, fact, event)
         VALUES ($1, $2, 7, $3, 7, now() - interval '1 minute', 'u', 'RQW', '', '', '', $4)",
    )
    .bind(event_id)
    .bind(person)
    .bind(uuid::Uuid::now_v7())
    .bind(event.encode_to_vec())
    .execute(&pool)
    .await
    .expect("inserting a leftover outbox row");
    let (relayed, _) = next_change(&mut changes).await;
    assert_eq!(relayed.event_id, event_id.to_string());
    assert_eq!(relayed.consent_version, 7);
    let mut published = None;
    for _ in 0..20 {
        published = sqlx::query_scalar::<_, Option<time::OffsetDateTime>>(
            "SELECT published_at FROM consent_change WHERE event_id = $1",
        )
        .bind(event_id)
        .fetch_one(&pool)
        .await
        .expect("reading the outbox row");
        if published.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published.is_some(), "the relay marks what it published");
}

#[tokio::test]
async fn summary_returns_facts_history_and_fhir_consents() {
    let platform = support::start().await;
    let nurse = platform.user(Role::Nurse, ORG).await;
    let outsider = platform.user(Role::Nurse, "RAJ").await;
    let officer = platform.user(Role::PrivacyOfficer, "MCR001").await;
    let person = platform.person(None).await;
    crate::decisions::relationship(&platform, &person, ORG, "ADM-77", None).await;
    crate::decisions::permission(&platform, &person, &nurse, time::Duration::hours(4)).await;
    let consent = platform.consent.clone();
    consent
        .clone()
        .record_opt_out(with_token(
            RecordOptOutRequest {
                person: by_id(&person),
                ..RecordOptOutRequest::default()
            },
            &nurse,
        ))
        .await
        .expect("opt out");
    consent
        .clone()
        .withdraw_opt_out(with_token(
            WithdrawOptOutRequest {
                person: by_id(&person),
                note: String::new(),
            },
            &nurse,
        ))
        .await
        .expect("opt back in");
    let summary = consent
        .clone()
        .get_consent_summary(with_token(
            GetConsentSummaryRequest {
                person: by_id(&person),
                include_history: true,
                include_fhir: true,
            },
            &nurse,
        ))
        .await
        .expect("summary")
        .into_inner();
    assert!(summary.opt_out.is_none());
    assert_eq!(summary.opt_out_history.len(), 1);
    assert_eq!(summary.permissions.len(), 1);
    assert_eq!(summary.care_relationships.len(), 1);
    assert_eq!(summary.consent_version, 4);
    assert_eq!(summary.fhir_consents_json.len(), 3);
    for json in &summary.fhir_consents_json {
        let resource: serde_json::Value = serde_json::from_str(json).expect("FHIR JSON");
        assert_eq!(resource["resourceType"], "Consent");
        assert!(
            ["active", "inactive"].contains(&resource["status"].as_str().unwrap_or_default()),
            "{resource}"
        );
        assert_eq!(resource["scope"]["coding"][0]["code"], "patient-privacy");
        assert_eq!(
            resource["category"][0]["coding"][0]["system"],
            "http://loinc.org"
        );
        assert_eq!(
            resource["patient"]["reference"],
            format!("Patient/{person}")
        );
        assert!(resource["provision"]["type"].is_string());
    }
    let statuses: Vec<String> = summary
        .fhir_consents_json
        .iter()
        .map(|json| {
            serde_json::from_str::<serde_json::Value>(json).expect("json")["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        statuses.contains(&"inactive".to_owned()),
        "the withdrawn opt-out is inactive: {statuses:?}"
    );

    let denied = consent
        .clone()
        .get_consent_summary(with_token(
            GetConsentSummaryRequest {
                person: by_id(&person),
                ..GetConsentSummaryRequest::default()
            },
            &outsider,
        ))
        .await
        .expect_err("no relationship between RAJ and the person");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let as_officer = consent
        .clone()
        .get_consent_summary(with_token(
            GetConsentSummaryRequest {
                person: by_id(&person),
                ..GetConsentSummaryRequest::default()
            },
            &officer,
        ))
        .await
        .expect("a privacy officer reads any summary")
        .into_inner();
    assert!(
        as_officer.opt_out_history.is_empty(),
        "history only when asked"
    );
    assert!(as_officer.fhir_consents_json.is_empty());
}

#[tokio::test]
async fn facts_follow_patient_index_merges_and_unmerges() {
    use mcr_proto::common::v1::Purpose;
    use mcr_proto::patient_index::v1::{
        MergePersonsRequest, UnmergePersonRequest, unmerge_person_request,
    };
    let platform = support::start().await;
    let admin = platform.identity.admin_token().await;
    let clerk = platform.user(Role::AdminClerical, ORG).await;
    let nurse = platform.user(Role::Nurse, ORG).await;
    let surviving = platform.person(None).await;
    let merged = platform.person(None).await;
    for person in [&surviving, &merged] {
        crate::decisions::relationship(&platform, person, ORG, &format!("ADM-{person}"), None)
            .await;
        crate::decisions::permission(&platform, person, &nurse, time::Duration::hours(4)).await;
    }
    platform
        .consent
        .clone()
        .record_opt_out(with_token(
            RecordOptOutRequest {
                person: by_id(&merged),
                ..RecordOptOutRequest::default()
            },
            &clerk,
        ))
        .await
        .expect("opting out the person about to be merged away");
    let viewer = support::actor_of(&nurse);
    let opted_out = |response: &DecideResponse| {
        response.reasons.first().map(|r| r.code) == Some(ReasonCode::OptedOut as i32)
    };
    assert!(!opted_out(
        &crate::decisions::decide(&platform, &surviving, &viewer, Purpose::DirectCare).await
    ));

    let merge_id = platform
        .index
        .clone()
        .merge_persons(with_token(
            MergePersonsRequest {
                surviving_person_id: surviving.clone(),
                merged_person_id: merged.clone(),
                reason: "same person registered twice".to_owned(),
                review_item_id: String::new(),
            },
            &admin,
        ))
        .await
        .expect("merging")
        .into_inner()
        .merge_id;
    let mut followed = false;
    for _ in 0..50 {
        if opted_out(
            &crate::decisions::decide(&platform, &surviving, &viewer, Purpose::DirectCare).await,
        ) {
            followed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        followed,
        "the merged-away person's opt-out must deny the survivor"
    );
    let summary = platform
        .consent
        .clone()
        .get_consent_summary(with_token(
            GetConsentSummaryRequest {
                person: by_id(&surviving),
                ..GetConsentSummaryRequest::default()
            },
            &nurse,
        ))
        .await
        .expect("summary")
        .into_inner();
    assert_eq!(summary.care_relationships.len(), 2);
    assert_eq!(summary.opt_out.expect("opt-out moved").person_id, surviving);

    platform
        .index
        .clone()
        .unmerge_person(with_token(
            UnmergePersonRequest {
                target: Some(unmerge_person_request::Target::MergeId(merge_id)),
                reason: "two people after all".to_owned(),
            },
            &admin,
        ))
        .await
        .expect("unmerging");
    let mut restored = false;
    for _ in 0..50 {
        let survivor =
            crate::decisions::decide(&platform, &surviving, &viewer, Purpose::DirectCare).await;
        let again =
            crate::decisions::decide(&platform, &merged, &viewer, Purpose::DirectCare).await;
        if !opted_out(&survivor) && opted_out(&again) {
            assert_eq!(
                survivor.decision,
                Decision::Permit as i32,
                "the survivor's own facts stayed"
            );
            restored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        restored,
        "an unmerge moves exactly the merged person's facts back"
    );
}
