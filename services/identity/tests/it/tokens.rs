//! Tokens as other services see them: verification, refresh, revocation,
//! key rotation, service and external tokens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcr_auth::jwks::IdentityJwks;
use mcr_auth::{AuthError, TokenVerifier, VerifierConfig};
use mcr_proto::common::v1::{OrganisationType, Role};
use mcr_proto::identity::v1::*;
use mcr_runtime::nats::NatsBus;
use mcr_runtime::settings::NatsSettings;
use tokio_util::sync::CancellationToken;

use mcr_testkit_identity::{self as support, PASSWORD, with_token};

/// A verifier as another service builds it: JWKS from identity over gRPC.
fn verifier_of(identity: &support::Identity) -> TokenVerifier {
    let jwks = IdentityJwks::new(&identity.service.grpc_endpoint()).expect("a valid endpoint");
    TokenVerifier::new(
        VerifierConfig {
            issuer: "https://identity.mcr.local".to_owned(),
            audience: "mcr".to_owned(),
            leeway_seconds: 30,
        },
        Some(Arc::new(jwks)),
    )
}

#[tokio::test]
async fn another_service_verifies_tokens_locally_with_the_published_keys() {
    let identity = support::start(&[]).await;
    let tokens = identity
        .tokens(support::ADMIN_USERNAME, support::ADMIN_PASSWORD, "")
        .await;
    let verifier = verifier_of(&identity);
    let principal = verifier
        .verify_refreshing(&tokens.access_token)
        .await
        .expect("a fresh token verifies");
    assert_eq!(principal.role, Role::SystemAdministrator);
    assert_eq!(principal.organisation_code, "MCR001");
    assert_eq!(
        principal.session_id.as_deref(),
        Some(tokens.session_id.as_str())
    );
    assert!(principal.has_scope("identity:admin"));
    // Verification is local: with identity gone, the cached keys still verify.
    identity.service.stop().await.expect("clean stop");
    assert!(verifier.verify(&tokens.access_token).is_ok());
}

#[tokio::test]
async fn requests_without_a_valid_token_or_scope_are_refused() {
    let identity = support::start(&[]).await;
    let mut client = identity.client.clone();
    let no_token = client
        .list_organisations(ListOrganisationsRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(no_token.code(), tonic::Code::Unauthenticated);
    assert!(
        no_token.message().contains("Bearer"),
        "{}",
        no_token.message()
    );

    let admin = identity.admin_token().await;
    let mut tampered = admin.clone();
    tampered.insert(tampered.len() / 2, 'x');
    let refused = client
        .list_organisations(with_token(ListOrganisationsRequest::default(), &tampered))
        .await
        .expect_err("tampered token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    identity
        .create_organisation(&admin, "F81001", OrganisationType::GpPractice)
        .await;
    identity
        .create_user(&admin, "nurse.one", &[("F81001", Role::Nurse)])
        .await;
    let nurse = identity
        .tokens("nurse.one", PASSWORD, "")
        .await
        .access_token;
    assert!(
        client
            .list_organisations(with_token(ListOrganisationsRequest::default(), &nurse))
            .await
            .is_ok()
    );
    let denied = client
        .create_organisation(with_token(CreateOrganisationRequest::default(), &nurse))
        .await
        .expect_err("a nurse is not an administrator");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(
        denied.message().contains("identity:admin"),
        "{}",
        denied.message()
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_ends_the_session() {
    let identity = support::start(&[]).await;
    let first = identity
        .tokens(support::ADMIN_USERNAME, support::ADMIN_PASSWORD, "")
        .await;
    let mut client = identity.client.clone();
    let second = client
        .refresh_token(RefreshTokenRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .expect("first use rotates")
        .into_inner()
        .tokens
        .expect("tokens");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.session_id, first.session_id);

    let reuse = client
        .refresh_token(RefreshTokenRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .expect_err("second use of the same token");
    assert_eq!(reuse.code(), tonic::Code::Unauthenticated);
    assert!(
        reuse.message().contains("already used"),
        "{}",
        reuse.message()
    );
    // The whole session ended: even the legitimately rotated token is dead.
    let after = client
        .refresh_token(RefreshTokenRequest {
            refresh_token: second.refresh_token,
        })
        .await
        .expect_err("the session was revoked");
    assert_eq!(after.code(), tonic::Code::Unauthenticated);
    let unknown = client
        .refresh_token(RefreshTokenRequest {
            refresh_token: "not-a-real-token".to_owned(),
        })
        .await
        .expect_err("unknown token");
    assert_eq!(unknown.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn revocation_is_honoured_by_a_second_service_within_seconds() {
    let identity = support::start(&[]).await;
    let tokens = identity
        .tokens(support::ADMIN_USERNAME, support::ADMIN_PASSWORD, "")
        .await;

    // The "second service": its own verifier, following revocations on NATS.
    let verifier = verifier_of(&identity);
    let nats = NatsBus::connect(
        &NatsSettings {
            url: "nats://127.0.0.1:4222".to_owned(),
            namespace: identity.environment.id.clone(),
            connect_timeout_ms: 2000,
        },
        "second-service",
    )
    .await
    .expect("nats");
    let stop = CancellationToken::new();
    tokio::spawn(mcr_auth::follow_revocations(
        nats,
        verifier.revocations().clone(),
        stop.clone(),
    ));
    assert!(
        verifier
            .verify_refreshing(&tokens.access_token)
            .await
            .is_ok()
    );

    let revoked = identity
        .client
        .clone()
        .revoke_token(with_token(
            RevokeTokenRequest {
                target: Some(revoke_token_request::Target::SessionId(
                    tokens.session_id.clone(),
                )),
                note: "signing out".to_owned(),
            },
            &tokens.access_token,
        ))
        .await
        .expect("signing out")
        .into_inner();
    assert_eq!(revoked.revoked_session_ids, vec![tokens.session_id.clone()]);

    let revoked_at = Instant::now();
    loop {
        match verifier.verify(&tokens.access_token) {
            Err(AuthError::Revoked) => break,
            Ok(_) if revoked_at.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => {
                panic!("the second service must refuse the revoked session within 5 s: {other:?}")
            }
        }
    }
    stop.cancel();
    // Identity itself refuses it too.
    let refused = identity
        .client
        .clone()
        .list_organisations(with_token(
            ListOrganisationsRequest::default(),
            &tokens.access_token,
        ))
        .await
        .expect_err("revoked session");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(
        refused.message().contains("revoked"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn key_rotation_keeps_tokens_signed_before_it_valid() {
    let identity = support::start(&[
        ("MCR_IDENTITY__KEY_ROTATION_INTERVAL_SECONDS", "1"),
        ("MCR_IDENTITY__JWKS_MAX_AGE_SECONDS", "1"),
        ("MCR_IDENTITY__KEY_CHECK_INTERVAL_MS", "200"),
    ])
    .await;
    let before = identity
        .tokens(support::ADMIN_USERNAME, support::ADMIN_PASSWORD, "")
        .await
        .access_token;
    let old_kid = jsonwebtoken::decode_header(&before)
        .expect("header")
        .kid
        .expect("kid");

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let jwks = identity
            .client
            .clone()
            .get_jwks(GetJwksRequest {})
            .await
            .expect("jwks")
            .into_inner();
        let old_is_previous = jwks
            .keys
            .iter()
            .any(|key| key.kid == old_kid && key.status == KeyStatus::Previous as i32);
        if old_is_previous {
            assert!(
                jwks.keys
                    .iter()
                    .any(|key| key.status == KeyStatus::Current as i32)
            );
            assert!(jwks.jwks_json.contains(&old_kid));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the key never rotated: {:?}",
            jwks.keys
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = identity
        .tokens(support::ADMIN_USERNAME, support::ADMIN_PASSWORD, "")
        .await
        .access_token;
    let new_kid = jsonwebtoken::decode_header(&after)
        .expect("header")
        .kid
        .expect("kid");
    assert_ne!(
        new_kid, old_kid,
        "tokens after the rotation are signed with the new key"
    );

    let verifier = verifier_of(&identity);
    assert!(
        verifier.verify_refreshing(&before).await.is_ok(),
        "a token from before the rotation stays valid"
    );
    assert!(verifier.verify_refreshing(&after).await.is_ok());
}

#[tokio::test]
async fn service_accounts_get_only_the_scopes_they_are_allowed() {
    let identity = support::start(&[]).await;
    let admin = identity.admin_token().await;
    identity
        .create_organisation(&admin, "RQW", OrganisationType::AcuteTrust)
        .await;
    let mut client = identity.client.clone();
    let created = client
        .create_service_account(with_token(
            CreateServiceAccountRequest {
                name: "rqw-connector".to_owned(),
                organisation_code: "RQW".to_owned(),
                allowed_scopes: vec!["index:write".to_owned(), "records:read".to_owned()],
            },
            &admin,
        ))
        .await
        .expect("creating a service account")
        .into_inner();
    let account = created.service_account.expect("account");
    assert!(!created.client_secret.is_empty());

    let granted = client
        .issue_service_token(IssueServiceTokenRequest {
            client_id: account.client_id.clone(),
            client_secret: created.client_secret.clone(),
            scopes: vec!["index:write".to_owned()],
        })
        .await
        .expect("client credentials")
        .into_inner();
    assert_eq!(granted.scopes, vec!["index:write".to_owned()]);
    let principal = verifier_of(&identity)
        .verify_refreshing(&granted.access_token)
        .await
        .expect("verifies");
    assert_eq!(principal.kind, mcr_auth::PrincipalKind::Service);
    assert_eq!(principal.organisation_code, "RQW");
    assert!(principal.has_scope("index:write") && !principal.has_scope("records:read"));

    let escalation = client
        .issue_service_token(IssueServiceTokenRequest {
            client_id: account.client_id.clone(),
            client_secret: created.client_secret.clone(),
            scopes: vec!["identity:admin".to_owned()],
        })
        .await
        .expect_err("a scope the account is not allowed");
    assert_eq!(escalation.code(), tonic::Code::PermissionDenied);
    let wrong_secret = client
        .issue_service_token(IssueServiceTokenRequest {
            client_id: account.client_id,
            client_secret: "guess".to_owned(),
            scopes: vec![],
        })
        .await
        .expect_err("wrong secret");
    assert_eq!(wrong_secret.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn an_external_issuers_id_token_is_exchanged_for_a_mapped_user() {
    let external_key = mcr_auth::SigningKeyPair::generate().expect("key");
    let jwk = external_key.jwk(KeyStatus::Current);
    let jwks_json = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"{}","x":"{}"}}]}}"#,
        jwk.kid, jwk.x
    );
    let config_path = std::env::temp_dir().join(format!(
        "mcr-identity-external-{}.toml",
        uuid::Uuid::new_v4()
    ));
    std::fs::write(
        &config_path,
        format!(
            "[[identity.external_issuers]]\nissuer = \"https://nhs-login.test\"\naudience = \"mcr-client\"\njwks_json = '{jwks_json}'\n"
        ),
    )
    .expect("writing the settings file");
    let config_path_text = config_path.display().to_string();
    let identity = support::start(&[("MCR_CONFIG_FILE", config_path_text.as_str())]).await;
    let admin = identity.admin_token().await;
    identity
        .create_organisation(&admin, "F81001", OrganisationType::GpPractice)
        .await;
    let mut client = identity.client.clone();
    client
        .create_user(with_token(
            CreateUserRequest {
                username: "gp.external".to_owned(),
                name: Some(mcr_proto::common::v1::HumanName {
                    prefix: "Dr".to_owned(),
                    given: vec!["Grace".to_owned()],
                    family: "Hopper".to_owned(),
                    suffix: String::new(),
                }),
                email: String::new(),
                password: PASSWORD.to_owned(),
                registrations: vec![],
                role_profiles: vec![RoleProfileSpec {
                    organisation_code: "F81001".to_owned(),
                    role: Role::ClinicalPractitioner as i32,
                    role_code: String::new(),
                    job_title: String::new(),
                }],
                external_subjects: vec!["https://nhs-login.test|uid-12345".to_owned()],
            },
            &admin,
        ))
        .await
        .expect("creating a mapped user");

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let id_token = |audience: &str, subject: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(external_key.kid.clone());
        let claims = serde_json::json!({
            "iss": "https://nhs-login.test", "aud": audience, "sub": subject,
            "iat": now, "nbf": now, "exp": now + 300,
        });
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(&external_key.private_pkcs8_der),
        )
        .expect("signing the id token")
    };
    let exchanged = client
        .exchange_external_token(ExchangeExternalTokenRequest {
            id_token: id_token("mcr-client", "uid-12345"),
            role_profile_id: String::new(),
        })
        .await
        .expect("a valid id token")
        .into_inner();
    let tokens = exchanged.tokens.expect("tokens");
    let principal = verifier_of(&identity)
        .verify_refreshing(&tokens.access_token)
        .await
        .expect("verifies");
    assert_eq!(principal.role, Role::ClinicalPractitioner);

    let wrong_audience = client
        .exchange_external_token(ExchangeExternalTokenRequest {
            id_token: id_token("someone-else", "uid-12345"),
            role_profile_id: String::new(),
        })
        .await
        .expect_err("wrong audience");
    assert_eq!(wrong_audience.code(), tonic::Code::Unauthenticated);
    let unmapped = client
        .exchange_external_token(ExchangeExternalTokenRequest {
            id_token: id_token("mcr-client", "uid-99999"),
            role_profile_id: String::new(),
        })
        .await
        .expect_err("no mapped user");
    assert_eq!(unmapped.code(), tonic::Code::NotFound);
    std::fs::remove_file(config_path).ok();
}

#[tokio::test]
async fn another_service_calls_with_a_cached_service_token_that_verifies() {
    let identity = support::start(&[]).await;
    let account = identity
        .service_account("aggregator-test", "RQW", &["index:read", "consent:decide"])
        .await;
    let settings = mcr_runtime::settings::AuthSettings {
        issuer: "https://identity.mcr.local".to_owned(),
        audience: "mcr".to_owned(),
        identity_url: identity.identity_url(),
        leeway_seconds: 30,
        client_id: account.client_id.clone(),
        client_secret: account.client_secret.clone(),
        caller_limits: mcr_runtime::settings::CallerLimits::default(),
    };
    let tokens = mcr_auth::ServiceTokens::new(&settings).expect("credentials are configured");
    let first = tokens
        .authorization()
        .await
        .expect("identity issues a token");
    let second = tokens.authorization().await.expect("the cached token");
    assert_eq!(first, second, "a live token is reused, not reissued");

    let bearer = first.to_str().expect("ASCII");
    let token = bearer.strip_prefix("Bearer ").expect("a bearer header");
    let principal = verifier_of(&identity)
        .verify_refreshing(token)
        .await
        .expect("the service token verifies");
    assert_eq!(principal.subject, account.client_id);
    assert!(principal.has_scope("consent:decide"));
    assert!(!principal.has_scope("index:write"));

    let wrong = mcr_auth::ServiceTokens::new(&mcr_runtime::settings::AuthSettings {
        client_secret: "not the secret".to_owned(),
        ..settings.clone()
    })
    .expect("credentials are configured");
    let refused = wrong
        .authorization()
        .await
        .expect_err("a wrong secret gets no token");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert!(
        refused.message().contains("auth.client_secret"),
        "{}",
        refused.message()
    );

    let unconfigured = mcr_auth::ServiceTokens::new(&mcr_runtime::settings::AuthSettings {
        client_id: String::new(),
        ..settings
    })
    .expect("a service without credentials still starts");
    let refused = unconfigured
        .authorization()
        .await
        .expect_err("no credentials, no token");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert!(
        refused.message().contains("MCR_AUTH__CLIENT_ID"),
        "{}",
        refused.message()
    );
}
