//! Break-glass: permit with banner, alert, audit; review queue; opt-out wins.

use std::time::Duration;

use futures::StreamExt;
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome};
use mcr_proto::common::v1::{Purpose, Role};
use mcr_proto::consent::v1::*;
use mcr_testkit_identity::with_token;
use prost::Message;

use crate::support::{self, ORG, by_id};

fn break_glass_request(person_id: &str) -> BreakGlassRequest {
    BreakGlassRequest {
        person: by_id(person_id),
        reason_code: BreakGlassReason::PatientUnableToCommunicate as i32,
        justification: "unconscious on arrival, no relatives present".to_owned(),
        duration_minutes: 0,
    }
}

fn self_decide(person_id: &str, purpose: Purpose, token: &str) -> tonic::Request<DecideRequest> {
    with_token(
        DecideRequest {
            actor: None,
            person: by_id(person_id),
            purpose: purpose as i32,
            requested_categories: vec![],
        },
        token,
    )
}

#[tokio::test]
async fn break_glass_permits_emergency_with_banner_alert_audit_and_review() {
    let platform = support::start().await;
    let paramedic = platform.user(Role::Paramedic, "RYC").await;
    let officer = platform.user(Role::PrivacyOfficer, ORG).await;
    let person = platform.person(None).await;
    let mut alerts = platform
        .nats
        .subscribe(
            platform
                .environment
                .subject(mcr_consent::BREAK_GLASS_ALERT_SUBJECT),
        )
        .await
        .expect("subscribing to alerts");
    let mut audits = platform
        .nats
        .subscribe(platform.environment.subject("mcr.audit.v1.break_glass"))
        .await
        .expect("subscribing to audit");

    let before = platform
        .consent
        .clone()
        .decide(self_decide(&person, Purpose::Emergency, &paramedic))
        .await
        .expect("decide")
        .into_inner();
    assert_eq!(before.decision, Decision::Deny as i32);
    assert_eq!(
        before.reasons[0].code,
        ReasonCode::PurposeNotPermitted as i32
    );

    let granted = platform
        .consent
        .clone()
        .break_glass(with_token(break_glass_request(&person), &paramedic))
        .await
        .expect("breaking glass")
        .into_inner();
    let grant = granted.grant.expect("a grant");
    assert!(!granted.banner_text.is_empty());
    let minutes = (grant.expires_at.expect("expiry").seconds
        - grant.granted_at.expect("granted").seconds)
        / 60;
    assert_eq!(minutes, 240, "default duration");

    let alert = tokio::time::timeout(Duration::from_secs(5), alerts.next())
        .await
        .expect("an alert in time")
        .expect("an alert");
    let headers = alert.headers.clone().expect("alert headers");
    assert_eq!(
        headers.get("Mcr-Alert-Source").map(|v| v.as_str()),
        Some("consent")
    );
    let decoded = BreakGlassAlert::decode(alert.payload.as_ref()).expect("a BreakGlassAlert");
    assert_eq!(decoded.grant.expect("grant").grant_id, grant.grant_id);

    let audit = tokio::time::timeout(Duration::from_secs(5), audits.next())
        .await
        .expect("an audit event in time")
        .expect("audit");
    let event = AuditEvent::decode(audit.payload.as_ref()).expect("an AuditEvent");
    assert_eq!(event.action, AuditAction::BreakGlass as i32);
    assert_eq!(event.outcome, AuditOutcome::Permitted as i32);
    assert_eq!(event.break_glass_grant_id, grant.grant_id);
    assert_eq!(event.person_id, person);

    let during = platform
        .consent
        .clone()
        .decide(self_decide(&person, Purpose::Emergency, &paramedic))
        .await
        .expect("decide")
        .into_inner();
    assert_eq!(during.decision, Decision::Permit as i32, "{during:?}");
    assert_eq!(during.break_glass_grant_id, grant.grant_id);
    assert_eq!(during.purpose_of_use_code, "ETREAT");
    assert!(
        during
            .obligations
            .iter()
            .any(|o| o.obligation_type == ObligationType::ShowBreakGlassBanner as i32)
    );
    assert!(
        during
            .obligations
            .iter()
            .any(|o| o.obligation_type == ObligationType::Audit as i32)
    );
    // The grant is for emergencies: direct care still needs a relationship.
    let direct = platform
        .consent
        .clone()
        .decide(self_decide(&person, Purpose::DirectCare, &paramedic))
        .await
        .expect("decide")
        .into_inner();
    assert_eq!(direct.decision, Decision::Deny as i32);

    // Review queue: the privacy officer sees it and records the outcome once.
    let queue = platform
        .consent
        .clone()
        .list_review_queue(with_token(ListReviewQueueRequest::default(), &officer))
        .await
        .expect("listing the queue")
        .into_inner();
    assert_eq!(queue.items.len(), 1);
    let item = &queue.items[0];
    assert_eq!(item.kind, ReviewItemKind::BreakGlass as i32);
    assert_eq!(item.review_item_id, grant.review_item_id);
    match &item.subject {
        Some(review_item::Subject::BreakGlassGrant(subject)) => {
            assert_eq!(subject.grant_id, grant.grant_id)
        }
        other => panic!("expected the grant as subject, got {other:?}"),
    }
    let paramedic_cannot = platform
        .consent
        .clone()
        .list_review_queue(with_token(ListReviewQueueRequest::default(), &paramedic))
        .await
        .expect_err("a paramedic has no consent:review");
    assert_eq!(paramedic_cannot.code(), tonic::Code::PermissionDenied);
    let no_note = platform
        .consent
        .clone()
        .record_break_glass_review(with_token(
            RecordBreakGlassReviewRequest {
                review_item_id: item.review_item_id.clone(),
                outcome: ReviewOutcome::Inappropriate as i32,
                note: String::new(),
            },
            &officer,
        ))
        .await
        .expect_err("inappropriate needs a note");
    assert_eq!(no_note.code(), tonic::Code::InvalidArgument);
    assert!(
        no_note.message().starts_with("note:"),
        "{}",
        no_note.message()
    );
    let reviewed = platform
        .consent
        .clone()
        .record_break_glass_review(with_token(
            RecordBreakGlassReviewRequest {
                review_item_id: item.review_item_id.clone(),
                outcome: ReviewOutcome::Appropriate as i32,
                note: "unconscious, ED".to_owned(),
            },
            &officer,
        ))
        .await
        .expect("reviewing")
        .into_inner()
        .item
        .expect("the item");
    assert_eq!(reviewed.outcome, ReviewOutcome::Appropriate as i32);
    match reviewed.subject {
        Some(review_item::Subject::BreakGlassGrant(subject)) => {
            assert_eq!(subject.review_outcome, ReviewOutcome::Appropriate as i32)
        }
        other => panic!("expected the grant, got {other:?}"),
    }
    let again = platform
        .consent
        .clone()
        .record_break_glass_review(with_token(
            RecordBreakGlassReviewRequest {
                review_item_id: item.review_item_id.clone(),
                outcome: ReviewOutcome::Appropriate as i32,
                note: String::new(),
            },
            &officer,
        ))
        .await
        .expect_err("reviewed once");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    let open = platform
        .consent
        .clone()
        .list_review_queue(with_token(ListReviewQueueRequest::default(), &officer))
        .await
        .expect("queue")
        .into_inner();
    assert!(open.items.is_empty());
    let all = platform
        .consent
        .clone()
        .list_review_queue(with_token(
            ListReviewQueueRequest {
                include_reviewed: true,
                ..ListReviewQueueRequest::default()
            },
            &officer,
        ))
        .await
        .expect("queue")
        .into_inner();
    assert_eq!(all.items.len(), 1);
}

#[tokio::test]
async fn opt_out_beats_break_glass_and_the_refusal_is_audited() {
    let platform = support::start().await;
    let paramedic = platform.user(Role::Paramedic, "RYC").await;
    let person = platform.person(None).await;
    platform
        .consent
        .clone()
        .record_opt_out(with_token(
            RecordOptOutRequest {
                person: by_id(&person),
                ..RecordOptOutRequest::default()
            },
            &paramedic,
        ))
        .await
        .expect("opting out");
    let mut audits = platform
        .nats
        .subscribe(platform.environment.subject("mcr.audit.v1.break_glass"))
        .await
        .expect("subscribe");
    let refused = platform
        .consent
        .clone()
        .break_glass(with_token(break_glass_request(&person), &paramedic))
        .await
        .expect_err("opt-out wins");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let audit = tokio::time::timeout(Duration::from_secs(5), audits.next())
        .await
        .expect("audited in time")
        .expect("audit");
    let event = AuditEvent::decode(audit.payload.as_ref()).expect("an AuditEvent");
    assert_eq!(event.outcome, AuditOutcome::Denied as i32);
    let decision = platform
        .consent
        .clone()
        .decide(self_decide(&person, Purpose::Emergency, &paramedic))
        .await
        .expect("decide")
        .into_inner();
    assert_eq!(decision.decision, Decision::Deny as i32);
    // Without a grant the paramedic has no connection to the person, so
    // Decide answers as for anyone else without one, not with the opt-out.
    assert_eq!(
        decision.reasons[0].code,
        ReasonCode::PurposeNotPermitted as i32,
        "{:?}",
        decision.reasons
    );
}

#[tokio::test]
async fn self_declared_relationship_is_queued_and_ended_when_inappropriate() {
    let platform = support::start().await;
    let doctor = platform.user(Role::ClinicalPractitioner, ORG).await;
    let officer = platform.user(Role::PrivacyOfficer, "MCR001").await;
    let person = platform.person(None).await;
    let declared = platform
        .consent
        .clone()
        .record_care_relationship(with_token(
            RecordCareRelationshipRequest {
                person: by_id(&person),
                relationship_type: CareRelationshipType::SelfDeclared as i32,
                start_time: Some(prost_types::Timestamp {
                    seconds: time::OffsetDateTime::now_utc().unix_timestamp() - 60,
                    nanos: 0,
                }),
                reason: "covering the ward round for a colleague".to_owned(),
                ..RecordCareRelationshipRequest::default()
            },
            &doctor,
        ))
        .await
        .expect("self-declaring")
        .into_inner()
        .care_relationship
        .expect("relationship");
    assert!(!declared.review_item_id.is_empty());
    let other_kind = platform
        .consent
        .clone()
        .record_care_relationship(with_token(
            RecordCareRelationshipRequest {
                person: by_id(&person),
                relationship_type: CareRelationshipType::Admission as i32,
                start_time: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                source_system: "PAS".to_owned(),
                source_reference: "X".to_owned(),
                ..RecordCareRelationshipRequest::default()
            },
            &doctor,
        ))
        .await
        .expect_err("users only self-declare");
    assert_eq!(other_kind.code(), tonic::Code::PermissionDenied);
    let doctor_actor = support::actor_of(&doctor);
    crate::decisions::permission(&platform, &person, &doctor, time::Duration::hours(4)).await;
    let before =
        crate::decisions::decide(&platform, &person, &doctor_actor, Purpose::DirectCare).await;
    assert_eq!(before.decision, Decision::Permit as i32, "{before:?}");

    let queue = platform
        .consent
        .clone()
        .list_review_queue(with_token(
            ListReviewQueueRequest {
                kind: ReviewItemKind::SelfDeclaredCareRelationship as i32,
                ..ListReviewQueueRequest::default()
            },
            &officer,
        ))
        .await
        .expect("queue")
        .into_inner();
    assert_eq!(queue.items.len(), 1);
    assert_eq!(queue.items[0].review_item_id, declared.review_item_id);
    platform
        .consent
        .clone()
        .record_break_glass_review(with_token(
            RecordBreakGlassReviewRequest {
                review_item_id: declared.review_item_id.clone(),
                outcome: ReviewOutcome::Inappropriate as i32,
                note: "not on the rota that day".to_owned(),
            },
            &officer,
        ))
        .await
        .expect("reviewing");
    let after =
        crate::decisions::decide(&platform, &person, &doctor_actor, Purpose::DirectCare).await;
    assert_eq!(after.decision, Decision::Deny as i32);
    assert_eq!(
        after.reasons[0].code,
        ReasonCode::CareRelationshipEnded as i32
    );
}
