//! Decision scenarios through gRPC against real identity, patient-index and
//! consent: facts recorded through the RPCs, decisions asked as the
//! record-aggregator asks them (service token + actor).

use std::time::Duration;

use mcr_proto::common::v1::{Actor, Category, Purpose, Role};
use mcr_proto::consent::v1::*;
use mcr_testkit_identity::with_token;
use time::OffsetDateTime;

use crate::support::{self, ORG, Platform, actor, by_id, by_nhs_number};

fn at(offset: time::Duration) -> Option<prost_types::Timestamp> {
    let instant = OffsetDateTime::now_utc() + offset;
    Some(prost_types::Timestamp {
        seconds: instant.unix_timestamp(),
        nanos: 0,
    })
}

pub async fn decide(
    platform: &Platform,
    person_id: &str,
    viewer: &Actor,
    purpose: Purpose,
) -> DecideResponse {
    platform
        .consent
        .clone()
        .decide(with_token(
            DecideRequest {
                actor: Some(viewer.clone()),
                person: by_id(person_id),
                purpose: purpose as i32,
                requested_categories: vec![],
            },
            &platform.aggregator,
        ))
        .await
        .expect("decide")
        .into_inner()
}

pub async fn relationship(
    platform: &Platform,
    person_id: &str,
    organisation: &str,
    reference: &str,
    end: Option<time::Duration>,
) {
    platform
        .consent
        .clone()
        .record_care_relationship(with_token(
            RecordCareRelationshipRequest {
                person: by_id(person_id),
                organisation_code: organisation.to_owned(),
                relationship_type: CareRelationshipType::Admission as i32,
                start_time: at(-time::Duration::days(30)),
                end_time: end.and_then(at),
                source_system: "PAS".to_owned(),
                source_reference: reference.to_owned(),
                ..RecordCareRelationshipRequest::default()
            },
            &platform.aggregator,
        ))
        .await
        .expect("recording a care relationship");
}

pub async fn permission(
    platform: &Platform,
    person_id: &str,
    token: &str,
    expires_in: time::Duration,
) -> PermissionToView {
    platform
        .consent
        .clone()
        .record_permission_to_view(with_token(
            RecordPermissionToViewRequest {
                person: by_id(person_id),
                basis: PermissionBasis::PersonConsented as i32,
                expires_at: at(expires_in),
                ..RecordPermissionToViewRequest::default()
            },
            token,
        ))
        .await
        .expect("recording a permission")
        .into_inner()
        .permission
        .expect("the permission")
}

fn codes(response: &DecideResponse) -> Vec<ReasonCode> {
    response
        .reasons
        .iter()
        .map(|reason| ReasonCode::try_from(reason.code).unwrap_or(ReasonCode::Unspecified))
        .collect()
}

#[tokio::test]
async fn decisions_follow_the_recorded_facts() {
    let platform = support::start().await;
    let nurse_token = platform.user(Role::Nurse, ORG).await;
    let nurse = support::actor_of(&nurse_token);
    let person = platform.person(None).await;

    // Nothing recorded; an unknown person id answers in exactly the same shape.
    let nothing = decide(&platform, &person, &nurse, Purpose::DirectCare).await;
    let unknown = decide(
        &platform,
        &uuid::Uuid::new_v4().to_string(),
        &nurse,
        Purpose::DirectCare,
    )
    .await;
    for response in [&nothing, &unknown] {
        assert_eq!(response.decision, Decision::Deny as i32);
        assert_eq!(codes(response), vec![ReasonCode::NoCareRelationship]);
        assert_eq!(
            response.reasons[0].text,
            format!("no care relationship between {ORG} and this person")
        );
        assert_eq!(response.purpose_of_use_code, "TREAT");
        assert!(response.policy_version.starts_with("cedar-"));
    }

    relationship(&platform, &person, ORG, "ADM-1", None).await;
    let no_permission = decide(&platform, &person, &nurse, Purpose::DirectCare).await;
    assert_eq!(no_permission.decision, Decision::Deny as i32);
    assert_eq!(codes(&no_permission), vec![ReasonCode::NoPermissionToView]);

    let given = permission(&platform, &person, &nurse_token, time::Duration::hours(8)).await;
    let permitted = decide(&platform, &person, &nurse, Purpose::DirectCare).await;
    assert_eq!(permitted.decision, Decision::Permit as i32, "{permitted:?}");
    assert_eq!(permitted.permitted_categories.len(), 10);
    assert_eq!(
        codes(&permitted),
        vec![ReasonCode::CareRelationshipAndPermission]
    );
    assert!(permitted.consent_version >= 2);
    assert!(!permitted.withhold_sensitive_demographics);

    // Restriction withholds exactly that category.
    let recorded = platform
        .consent
        .clone()
        .record_restriction(with_token(
            RecordRestrictionRequest {
                person: by_id(&person),
                target: Some(record_restriction_request::Target::Category(
                    Category::MentalHealth as i32,
                )),
                ..RecordRestrictionRequest::default()
            },
            &nurse_token,
        ))
        .await
        .expect("recording a restriction")
        .into_inner()
        .restriction
        .expect("the restriction");
    let restricted = decide(&platform, &person, &nurse, Purpose::DirectCare).await;
    assert_eq!(restricted.permitted_categories.len(), 9);
    assert!(
        !restricted
            .permitted_categories
            .contains(&(Category::MentalHealth as i32))
    );
    let reason = restricted
        .reasons
        .iter()
        .find(|reason| reason.code == ReasonCode::RestrictedByPerson as i32)
        .expect("a restriction reason");
    assert_eq!(
        reason.text,
        "MENTAL_HEALTH withheld at the person's request"
    );
    assert!(restricted.consent_version > permitted.consent_version);

    // Removed, the category is shown again; a restriction is removed once.
    let remove = || {
        let mut consent = platform.consent.clone();
        let request = with_token(
            RemoveRestrictionRequest {
                restriction_id: recorded.restriction_id.clone(),
                note: "the person changed their mind".to_owned(),
            },
            &nurse_token,
        );
        async move { consent.remove_restriction(request).await }
    };
    let removed = remove()
        .await
        .expect("removing the restriction")
        .into_inner()
        .restriction
        .expect("the restriction");
    assert!(removed.removed_at.is_some());
    assert_eq!(
        removed.removed.expect("who removed it").note,
        "the person changed their mind"
    );
    let unrestricted = decide(&platform, &person, &nurse, Purpose::DirectCare).await;
    assert_eq!(unrestricted.permitted_categories.len(), 10);
    assert!(unrestricted.consent_version > restricted.consent_version);
    let again = remove().await.expect_err("removing twice");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again:?}");

    // Withdrawn permission: deny again; a permission is withdrawn once.
    let withdraw = || {
        let mut consent = platform.consent.clone();
        let request = with_token(
            WithdrawPermissionToViewRequest {
                permission_id: given.permission_id.clone(),
                note: String::new(),
            },
            &nurse_token,
        );
        async move { consent.withdraw_permission_to_view(request).await }
    };
    let withdrawn_permission = withdraw()
        .await
        .expect("withdrawing")
        .into_inner()
        .permission
        .expect("the permission");
    assert!(withdrawn_permission.withdrawn_at.is_some());
    let withdrawn = decide(&platform, &person, &nurse, Purpose::DirectCare).await;
    assert_eq!(codes(&withdrawn), vec![ReasonCode::PermissionExpired]);
    let again = withdraw().await.expect_err("withdrawing twice");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again:?}");
    assert!(again.message().contains("already withdrawn"), "{again:?}");

    // A permission that expires while we wait.
    permission(&platform, &person, &nurse_token, time::Duration::seconds(2)).await;
    assert_eq!(
        decide(&platform, &person, &nurse, Purpose::DirectCare)
            .await
            .decision,
        Decision::Permit as i32
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let expired = decide(&platform, &person, &nurse, Purpose::DirectCare).await;
    assert_eq!(codes(&expired), vec![ReasonCode::PermissionExpired]);

    // Relationship that ended yesterday.
    let former = platform.person(None).await;
    relationship(
        &platform,
        &former,
        ORG,
        "ADM-2",
        Some(-time::Duration::days(1)),
    )
    .await;
    permission(&platform, &former, &nurse_token, time::Duration::hours(8)).await;
    let ended = decide(&platform, &former, &nurse, Purpose::DirectCare).await;
    assert_eq!(codes(&ended), vec![ReasonCode::CareRelationshipEnded]);
    assert!(
        ended.reasons[0].text.contains("ended on"),
        "{}",
        ended.reasons[0].text
    );

    // Opt-out beats everything.
    platform
        .consent
        .clone()
        .record_opt_out(with_token(
            RecordOptOutRequest {
                person: by_id(&former),
                ..RecordOptOutRequest::default()
            },
            &nurse_token,
        ))
        .await
        .expect("opting out");
    let opted_out = decide(&platform, &former, &nurse, Purpose::DirectCare).await;
    assert_eq!(codes(&opted_out), vec![ReasonCode::OptedOut]);
    let today = OffsetDateTime::now_utc().date();
    assert_eq!(
        opted_out.reasons[0].text,
        format!(
            "opted out on {:04}-{:02}-{:02}",
            today.year(),
            u8::from(today.month()),
            today.day()
        )
    );
    // ...but only to a viewer connected to the person: a nurse of another
    // organisation gets what she would get for a person who does not exist.
    let stranger = actor(Role::Nurse, "RYC");
    let nobody = uuid::Uuid::new_v4().to_string();
    for purpose in [Purpose::DirectCare, Purpose::Emergency] {
        let told = decide(&platform, &former, &stranger, purpose).await;
        let unknown = decide(&platform, &nobody, &stranger, purpose).await;
        assert_eq!(told.decision, Decision::Deny as i32);
        assert_eq!(told.reasons, unknown.reasons, "{purpose:?}");
        assert_eq!(told.obligations, unknown.obligations, "{purpose:?}");
        assert_eq!(told.withholdings, unknown.withholdings, "{purpose:?}");
    }
    let told = decide(&platform, &former, &stranger, Purpose::DirectCare).await;
    assert_eq!(codes(&told), vec![ReasonCode::NoCareRelationship]);
    assert_eq!(
        told.reasons[0].text,
        "no care relationship between RYC and this person"
    );
}

#[tokio::test]
async fn every_role_sees_exactly_its_policy_categories_through_grpc() {
    let platform = support::start().await;
    let nurse_token = platform.user(Role::Nurse, ORG).await;
    let person = platform.person(None).await;
    relationship(&platform, &person, ORG, "ADM-9", None).await;
    permission(&platform, &person, &nurse_token, time::Duration::hours(8)).await;
    // The provider key makes a repeat an update, not a second relationship.
    let repeat = platform
        .consent
        .clone()
        .record_care_relationship(with_token(
            RecordCareRelationshipRequest {
                person: by_id(&person),
                organisation_code: ORG.to_owned(),
                relationship_type: CareRelationshipType::Admission as i32,
                start_time: at(-time::Duration::days(2)),
                source_system: "PAS".to_owned(),
                source_reference: "ADM-9".to_owned(),
                ..RecordCareRelationshipRequest::default()
            },
            &platform.aggregator,
        ))
        .await
        .expect("recording the same relationship again")
        .into_inner();
    assert!(!repeat.created);
    let policy = mcr_consent::domain::AccessPolicy::shipped().expect("shipped policy");
    for role in mcr_consent::domain::policy::ALL_ROLES {
        let response = decide(&platform, &person, &actor(role, ORG), Purpose::DirectCare).await;
        let expected: Vec<i32> = policy
            .categories(role, mcr_consent::domain::Purpose::DirectCare)
            .to_vec()
            .into_iter()
            .map(|category| category as i32)
            .collect();
        assert_eq!(response.permitted_categories, expected, "{role:?}");
        let expected_decision = if expected.is_empty() {
            Decision::Deny
        } else {
            Decision::Permit
        };
        assert_eq!(response.decision, expected_decision as i32, "{role:?}");
        let sensitive =
            policy.sees_sensitive_demographics(role, mcr_consent::domain::Purpose::DirectCare);
        assert_eq!(
            response.withhold_sensitive_demographics, !sensitive,
            "{role:?}"
        );
    }
    // The matrix the README documents, spot-checked by name.
    let clerk = decide(
        &platform,
        &person,
        &actor(Role::AdminClerical, ORG),
        Purpose::DirectCare,
    )
    .await;
    assert_eq!(
        clerk.permitted_categories,
        vec![Category::Demographics as i32, Category::Appointments as i32]
    );
    let social = decide(
        &platform,
        &person,
        &actor(Role::SocialWorker, ORG),
        Purpose::DirectCare,
    )
    .await;
    assert!(
        !social
            .permitted_categories
            .contains(&(Category::TestResults as i32))
    );
    assert!(
        social
            .permitted_categories
            .contains(&(Category::SocialCare as i32))
    );
    // Another organisation has no relationship.
    let elsewhere = decide(
        &platform,
        &person,
        &actor(Role::ClinicalPractitioner, "RAJ"),
        Purpose::DirectCare,
    )
    .await;
    assert_eq!(codes(&elsewhere), vec![ReasonCode::NoCareRelationship]);
}

#[tokio::test]
async fn nhs_number_references_resolve_through_patient_index() {
    let platform = support::start().await;
    let person = platform.person(Some("9434765919")).await;
    let nurse = actor(Role::Nurse, ORG);
    let response = platform
        .consent
        .clone()
        .decide(with_token(
            DecideRequest {
                actor: Some(nurse.clone()),
                person: by_nhs_number("943 476 5919"),
                purpose: Purpose::DirectCare as i32,
                requested_categories: vec![],
            },
            &platform.aggregator,
        ))
        .await
        .expect("decide by NHS Number")
        .into_inner();
    assert_eq!(response.person_id, person);
    let unknown = platform
        .consent
        .clone()
        .decide(with_token(
            DecideRequest {
                actor: Some(nurse),
                person: by_nhs_number("4010232137"),
                purpose: Purpose::DirectCare as i32,
                requested_categories: vec![],
            },
            &platform.aggregator,
        ))
        .await
        .expect_err("nobody holds that NHS Number");
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
}
