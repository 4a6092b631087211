//! Organisations, users, role profiles, lockout and suspension.

use mcr_proto::common::v1::{OrganisationType, PageRequest, Role};
use mcr_proto::identity::v1::*;

use mcr_testkit_identity::{self as support, PASSWORD, with_token};

#[tokio::test]
async fn organisations_are_validated_unique_and_paged() {
    let identity = support::start(&[]).await;
    let admin = identity.admin_token().await;
    for code in ["F81001", "F81002", "F81003"] {
        identity
            .create_organisation(&admin, code, OrganisationType::GpPractice)
            .await;
    }
    let mut client = identity.client.clone();

    let duplicate = client
        .create_organisation(with_token(
            CreateOrganisationRequest {
                organisation_code: "F81001".to_owned(),
                ..CreateOrganisationRequest::default()
            },
            &admin,
        ))
        .await
        .expect_err("missing fields");
    assert_eq!(duplicate.code(), tonic::Code::InvalidArgument);
    assert!(
        duplicate.message().starts_with("organisation_type")
            || duplicate.message().starts_with("name"),
        "{}",
        duplicate.message()
    );

    let fetched = client
        .get_organisation(with_token(
            GetOrganisationRequest {
                organisation_code: "f81002".to_owned(),
            },
            &admin,
        ))
        .await
        .expect("get")
        .into_inner()
        .organisation
        .expect("organisation");
    assert_eq!(fetched.organisation_code, "F81002");
    let contact = fetched.data_protection_contact.expect("contact");
    assert_eq!(contact.email, "dpo@example.nhs.uk");

    let missing = client
        .get_organisation(with_token(
            GetOrganisationRequest {
                organisation_code: "Y99999".to_owned(),
            },
            &admin,
        ))
        .await
        .expect_err("unknown code");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let list = |page_token: String| ListOrganisationsRequest {
        organisation_type: OrganisationType::GpPractice as i32,
        page: Some(PageRequest {
            page_size: 2,
            page_token,
        }),
        ..ListOrganisationsRequest::default()
    };
    let first = client
        .list_organisations(with_token(list(String::new()), &admin))
        .await
        .expect("page 1")
        .into_inner();
    let codes: Vec<_> = first
        .organisations
        .iter()
        .map(|organisation| organisation.organisation_code.as_str())
        .collect();
    assert_eq!(codes, ["F81001", "F81002"]);
    let token = first.page.expect("page").next_page_token;
    assert!(!token.is_empty());
    let second = client
        .list_organisations(with_token(list(token.clone()), &admin))
        .await
        .expect("page 2")
        .into_inner();
    let codes: Vec<_> = second
        .organisations
        .iter()
        .map(|organisation| organisation.organisation_code.as_str())
        .collect();
    assert_eq!(codes, ["F81003"]);
    assert!(second.page.expect("page").next_page_token.is_empty());

    let mut other_query = list(token);
    other_query.organisation_type = OrganisationType::AcuteTrust as i32;
    let misused = client
        .list_organisations(with_token(other_query, &admin))
        .await
        .expect_err("token of another query");
    assert_eq!(misused.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn a_user_with_several_role_profiles_chooses_one_per_session() {
    let identity = support::start(&[]).await;
    let admin = identity.admin_token().await;
    identity
        .create_organisation(&admin, "F81001", OrganisationType::GpPractice)
        .await;
    identity
        .create_organisation(&admin, "RQW", OrganisationType::AcuteTrust)
        .await;
    identity
        .create_user(
            &admin,
            "locum.doctor",
            &[
                ("F81001", Role::ClinicalPractitioner),
                ("RQW", Role::ClinicalPractitioner),
            ],
        )
        .await;

    let choice = identity
        .sign_in("locum.doctor", PASSWORD, "")
        .await
        .expect("credentials are right");
    assert!(choice.role_profile_selection_required);
    assert!(
        choice.tokens.is_none(),
        "no token until a profile is chosen"
    );
    assert_eq!(choice.role_profiles.len(), 2);
    let hospital = choice
        .role_profiles
        .iter()
        .find(|profile| profile.organisation_code == "RQW")
        .expect("the hospital profile");

    let tokens = identity
        .tokens("locum.doctor", PASSWORD, &hospital.role_profile_id)
        .await;
    assert_eq!(
        tokens.role_profile.expect("profile").organisation_code,
        "RQW"
    );
    let claims =
        jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&tokens.access_token)
            .expect("claims")
            .claims;
    assert_eq!(claims["org"], "RQW");
    assert_eq!(claims["rpid"], hospital.role_profile_id.as_str());
    assert_eq!(claims["role"], "ROLE_CLINICAL_PRACTITIONER");

    let not_theirs = identity
        .sign_in("locum.doctor", PASSWORD, &uuid::Uuid::new_v4().to_string())
        .await
        .expect_err("a profile of someone else");
    assert_eq!(not_theirs.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_a_clear_message() {
    let identity = support::start(&[("MCR_IDENTITY__LOCKOUT_THRESHOLD", "3")]).await;
    let admin = identity.admin_token().await;
    identity
        .create_organisation(&admin, "F81001", OrganisationType::GpPractice)
        .await;
    identity
        .create_user(&admin, "nurse.two", &[("F81001", Role::Nurse)])
        .await;

    for attempt in 1..=2 {
        let wrong = identity
            .sign_in("nurse.two", "not the password at all", "")
            .await
            .expect_err("wrong password");
        assert_eq!(
            wrong.code(),
            tonic::Code::Unauthenticated,
            "attempt {attempt}"
        );
        assert_eq!(wrong.message(), "wrong username or password");
    }
    let locked = identity
        .sign_in("nurse.two", "not the password at all", "")
        .await
        .expect_err("third failure");
    assert_eq!(locked.code(), tonic::Code::FailedPrecondition);
    assert!(
        locked.message().contains("locked") && locked.message().contains("UTC"),
        "{}",
        locked.message()
    );
    let still_locked = identity
        .sign_in("nurse.two", PASSWORD, "")
        .await
        .expect_err("locked even with the right password");
    assert_eq!(still_locked.code(), tonic::Code::FailedPrecondition);

    let unknown_user = identity
        .sign_in("nobody.here", PASSWORD, "")
        .await
        .expect_err("unknown user");
    assert_eq!(
        unknown_user.message(),
        "wrong username or password",
        "never says which was wrong"
    );
}

#[tokio::test]
async fn a_suspended_user_cannot_sign_in_and_loses_their_sessions() {
    let identity = support::start(&[]).await;
    let admin = identity.admin_token().await;
    identity
        .create_organisation(&admin, "F81001", OrganisationType::GpPractice)
        .await;
    let user = identity
        .create_user(&admin, "social.worker", &[("F81001", Role::SocialWorker)])
        .await;
    let tokens = identity.tokens("social.worker", PASSWORD, "").await;

    let suspended = identity
        .client
        .clone()
        .set_user_status(with_token(
            SetUserStatusRequest {
                user_id: user.user_id.clone(),
                status: UserStatus::Suspended as i32,
                reason: "left the organisation".to_owned(),
            },
            &admin,
        ))
        .await
        .expect("suspending")
        .into_inner();
    assert_eq!(
        suspended.revoked_session_ids,
        vec![tokens.session_id.clone()]
    );
    assert_eq!(
        suspended.user.expect("user").status,
        UserStatus::Suspended as i32
    );

    let refused = identity
        .sign_in("social.worker", PASSWORD, "")
        .await
        .expect_err("suspended");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("suspended"),
        "{}",
        refused.message()
    );
    let refresh = identity
        .client
        .clone()
        .refresh_token(RefreshTokenRequest {
            refresh_token: tokens.refresh_token,
        })
        .await
        .expect_err("the session was revoked");
    assert_eq!(refresh.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn the_last_administrator_cannot_be_suspended_and_removed_profiles_end_sessions() {
    let identity = support::start(&[]).await;
    let admin_tokens = identity
        .tokens(support::ADMIN_USERNAME, support::ADMIN_PASSWORD, "")
        .await;
    let admin_user_id = admin_tokens
        .role_profile
        .as_ref()
        .expect("profile")
        .user_id
        .clone();
    let mut client = identity.client.clone();
    let last = client
        .set_user_status(with_token(
            SetUserStatusRequest {
                user_id: admin_user_id,
                status: UserStatus::Suspended as i32,
                reason: String::new(),
            },
            &admin_tokens.access_token,
        ))
        .await
        .expect_err("the last administrator");
    assert_eq!(last.code(), tonic::Code::FailedPrecondition);

    identity
        .create_organisation(
            &admin_tokens.access_token,
            "F81001",
            OrganisationType::GpPractice,
        )
        .await;
    let user = identity
        .create_user(
            &admin_tokens.access_token,
            "health.visitor",
            &[("F81001", Role::HealthVisitor)],
        )
        .await;
    let profile_id = user.role_profiles[0].role_profile_id.clone();
    let tokens = identity.tokens("health.visitor", PASSWORD, "").await;
    let removed = client
        .remove_role_profile(with_token(
            RemoveRoleProfileRequest {
                role_profile_id: profile_id.clone(),
                reason: "moved team".to_owned(),
            },
            &admin_tokens.access_token,
        ))
        .await
        .expect("removing")
        .into_inner();
    assert_eq!(removed.revoked_session_ids, vec![tokens.session_id]);
    let again = client
        .remove_role_profile(with_token(
            RemoveRoleProfileRequest {
                role_profile_id: profile_id,
                reason: String::new(),
            },
            &admin_tokens.access_token,
        ))
        .await
        .expect_err("already removed");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    let no_profile = identity
        .sign_in("health.visitor", PASSWORD, "")
        .await
        .expect_err("no active profile");
    assert_eq!(no_profile.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn bad_user_fields_are_invalid_argument_naming_the_field() {
    let identity = support::start(&[]).await;
    let admin = identity.admin_token().await;
    let refused = identity
        .client
        .clone()
        .create_user(with_token(
            CreateUserRequest {
                username: "ok.name".to_owned(),
                name: Some(mcr_proto::common::v1::HumanName {
                    prefix: String::new(),
                    given: vec!["A".to_owned()],
                    family: "B".to_owned(),
                    suffix: String::new(),
                }),
                password: "short".to_owned(),
                ..CreateUserRequest::default()
            },
            &admin,
        ))
        .await
        .expect_err("weak password");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().starts_with("password:"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn every_sign_in_attempt_is_audited_without_the_password() {
    use futures::StreamExt;
    use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome};
    use prost::Message;

    let identity = support::start(&[]).await;
    let nats = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .expect("nats");
    let mut audited = nats
        .subscribe(identity.environment.subject("mcr.audit.v1.authenticate"))
        .await
        .expect("subscribe");
    let refused = identity
        .sign_in(support::ADMIN_USERNAME, "a wrong password here", "")
        .await
        .expect_err("wrong");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let tokens = identity
        .tokens(support::ADMIN_USERNAME, support::ADMIN_PASSWORD, "")
        .await;

    let mut events = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(5), audited.next())
            .await
            .expect("an audit event within 5 s")
            .expect("a message");
        let text = String::from_utf8_lossy(&message.payload).to_string();
        assert!(
            !text.contains("a wrong password here") && !text.contains(support::ADMIN_PASSWORD),
            "no password in the audit trail"
        );
        events.push(AuditEvent::decode(message.payload.as_ref()).expect("an AuditEvent"));
    }
    assert!(
        events
            .iter()
            .all(|event| event.action == AuditAction::Authenticate as i32)
    );
    assert_eq!(events[0].outcome, AuditOutcome::Denied as i32);
    assert_eq!(events[0].reasons[0].code, "wrong_credentials");
    assert_eq!(
        events[0].target_reference,
        format!("username:{}", support::ADMIN_USERNAME)
    );
    assert_eq!(events[1].outcome, AuditOutcome::Permitted as i32);
    assert_eq!(
        events[1].actor.as_ref().expect("actor").session_id,
        tokens.session_id
    );
}
