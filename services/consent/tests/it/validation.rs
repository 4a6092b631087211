//! Validation errors name the field; auth is enforced on every RPC.

use mcr_proto::common::v1::{Actor, Category, Purpose, Role};
use mcr_proto::consent::v1::*;
use mcr_testkit_identity::with_token;

use crate::support::{self, ORG, actor, by_id};

fn assert_invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("invalid input must be refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with(field),
        "expected the message to name {field}: {}",
        status.message()
    );
}

#[tokio::test]
async fn validation_errors_name_the_field_and_auth_is_enforced() {
    let platform = support::start().await;
    let nurse = platform.user(Role::Nurse, ORG).await;
    let social_worker = platform.user(Role::SocialWorker, ORG).await;
    let person = platform.person(None).await;
    let consent = platform.consent.clone();
    let decide = |actor: Option<Actor>, purpose: Purpose, categories: Vec<i32>| DecideRequest {
        actor,
        person: by_id(&person),
        purpose: purpose as i32,
        requested_categories: categories,
    };

    // Authentication and scopes.
    let anonymous = consent
        .clone()
        .decide(tonic::Request::new(decide(
            None,
            Purpose::DirectCare,
            vec![],
        )))
        .await;
    assert_eq!(
        anonymous.expect_err("no token").code(),
        tonic::Code::Unauthenticated
    );
    let no_scope = consent
        .clone()
        .break_glass(with_token(
            BreakGlassRequest {
                person: by_id(&person),
                reason_code: 1,
                justification: "an emergency of some kind".to_owned(),
                duration_minutes: 0,
            },
            &social_worker,
        ))
        .await
        .expect_err("social workers have no consent:break-glass");
    assert_eq!(no_scope.code(), tonic::Code::PermissionDenied);
    assert!(
        no_scope.message().contains("consent:break-glass"),
        "{}",
        no_scope.message()
    );
    let service_glass = consent
        .clone()
        .break_glass(with_token(
            BreakGlassRequest {
                person: by_id(&person),
                ..BreakGlassRequest::default()
            },
            &platform.aggregator,
        ))
        .await
        .expect_err("services never break glass");
    assert_eq!(service_glass.code(), tonic::Code::PermissionDenied);
    let review = consent
        .clone()
        .list_review_queue(with_token(ListReviewQueueRequest::default(), &nurse))
        .await
        .expect_err("nurses do not review");
    assert_eq!(review.code(), tonic::Code::PermissionDenied);

    // Decide's fields.
    assert_invalid(
        consent
            .clone()
            .decide(with_token(
                decide(None, Purpose::Unspecified, vec![]),
                &nurse,
            ))
            .await,
        "purpose",
    );
    assert_invalid(
        consent
            .clone()
            .decide(with_token(
                decide(
                    None,
                    Purpose::DirectCare,
                    vec![Category::Unspecified as i32],
                ),
                &nurse,
            ))
            .await,
        "requested_categories[0]",
    );
    assert_invalid(
        consent
            .clone()
            .decide(with_token(
                decide(Some(actor(Role::Nurse, ORG)), Purpose::DirectCare, vec![]),
                &nurse,
            ))
            .await,
        "actor",
    );
    assert_invalid(
        consent
            .clone()
            .decide(with_token(
                decide(None, Purpose::DirectCare, vec![]),
                &platform.aggregator,
            ))
            .await,
        "actor",
    );
    let mut nameless = actor(Role::Nurse, ORG);
    nameless.role = Role::Unspecified as i32;
    assert_invalid(
        consent
            .clone()
            .decide(with_token(
                decide(Some(nameless), Purpose::DirectCare, vec![]),
                &platform.aggregator,
            ))
            .await,
        "actor.role",
    );
    assert_invalid(
        consent
            .clone()
            .decide(with_token(
                DecideRequest {
                    person: None,
                    purpose: Purpose::DirectCare as i32,
                    ..DecideRequest::default()
                },
                &nurse,
            ))
            .await,
        "person",
    );
    assert_invalid(
        consent
            .clone()
            .decide(with_token(
                DecideRequest {
                    person: by_id("not-a-uuid"),
                    purpose: 1,
                    ..DecideRequest::default()
                },
                &nurse,
            ))
            .await,
        "person.person_id",
    );

    // Changes' fields.
    assert_invalid(
        consent
            .clone()
            .break_glass(with_token(
                BreakGlassRequest {
                    person: by_id(&person),
                    reason_code: 1,
                    justification: "too short".to_owned(),
                    duration_minutes: 0,
                },
                &nurse,
            ))
            .await,
        "justification",
    );
    assert_invalid(
        consent
            .clone()
            .break_glass(with_token(
                BreakGlassRequest {
                    person: by_id(&person),
                    reason_code: 0,
                    justification: "a long enough reason".to_owned(),
                    duration_minutes: 0,
                },
                &nurse,
            ))
            .await,
        "reason_code",
    );
    assert_invalid(
        consent
            .clone()
            .break_glass(with_token(
                BreakGlassRequest {
                    person: by_id(&person),
                    reason_code: 1,
                    justification: "a long enough reason".to_owned(),
                    duration_minutes: 10_000,
                },
                &nurse,
            ))
            .await,
        "duration_minutes",
    );
    assert_invalid(
        consent
            .clone()
            .record_permission_to_view(with_token(
                RecordPermissionToViewRequest {
                    person: by_id(&person),
                    basis: 1,
                    ..RecordPermissionToViewRequest::default()
                },
                &nurse,
            ))
            .await,
        "expires_at",
    );
    assert_invalid(
        consent
            .clone()
            .record_permission_to_view(with_token(
                RecordPermissionToViewRequest {
                    person: by_id(&person),
                    basis: PermissionBasis::BestInterests as i32,
                    expires_at: Some(prost_types::Timestamp {
                        seconds: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
                        nanos: 0,
                    }),
                    ..RecordPermissionToViewRequest::default()
                },
                &nurse,
            ))
            .await,
        "best_interests",
    );
    assert_invalid(
        consent
            .clone()
            .record_restriction(with_token(
                RecordRestrictionRequest {
                    person: by_id(&person),
                    ..RecordRestrictionRequest::default()
                },
                &nurse,
            ))
            .await,
        "target",
    );
    assert_invalid(
        consent
            .clone()
            .record_care_relationship(with_token(
                RecordCareRelationshipRequest {
                    person: by_id(&person),
                    organisation_code: ORG.to_owned(),
                    relationship_type: CareRelationshipType::Referral as i32,
                    start_time: Some(prost_types::Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 0,
                    }),
                    source_system: "EPR".to_owned(),
                    ..RecordCareRelationshipRequest::default()
                },
                &platform.aggregator,
            ))
            .await,
        "source_reference",
    );
    let other_org = consent
        .clone()
        .record_permission_to_view(with_token(
            RecordPermissionToViewRequest {
                person: by_id(&person),
                organisation_code: "RAJ".to_owned(),
                basis: 1,
                expires_at: Some(prost_types::Timestamp {
                    seconds: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
                    nanos: 0,
                }),
                ..RecordPermissionToViewRequest::default()
            },
            &nurse,
        ))
        .await
        .expect_err("own organisation only");
    assert_eq!(other_org.code(), tonic::Code::PermissionDenied);

    // Writes check the person exists.
    let unknown = consent
        .clone()
        .record_opt_out(with_token(
            RecordOptOutRequest {
                person: by_id(&uuid::Uuid::new_v4().to_string()),
                ..RecordOptOutRequest::default()
            },
            &nurse,
        ))
        .await
        .expect_err("no such person");
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    let unknown_permission = consent
        .clone()
        .withdraw_permission_to_view(with_token(
            WithdrawPermissionToViewRequest {
                permission_id: uuid::Uuid::new_v4().to_string(),
                note: String::new(),
            },
            &nurse,
        ))
        .await
        .expect_err("no such permission");
    assert_eq!(unknown_permission.code(), tonic::Code::NotFound);
}
