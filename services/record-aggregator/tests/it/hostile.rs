//! Hostile callers: abused tokens are refused and audited, unreadable or
//! absurd requests are INVALID_ARGUMENT, and probing persons one has no
//! relationship with looks the same whether they exist or not — and
//! raises the unusual-access alert.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use mcr_auth::{AccessClaims, SigningKeyPair};
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome, UnusualAccessAlert};
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{PageRequest, PersonReference, Purpose, Role};
use mcr_proto::identity::v1::{RevokeTokenRequest, revoke_token_request};
use mcr_proto::records::v1::GetCareRecordRequest;
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::{Options, Platform, local_person, person_id};
use prost::Message;

use crate::support::*;

const GET_CARE_RECORD: &str = "/mcr.records.v1.RecordAggregator/GetCareRecord";

/// The claims a token carries (read, not verified: the test made it).
fn claims_of(token: &str) -> AccessClaims {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn direct_care(person: PersonReference) -> GetCareRecordRequest {
    GetCareRecordRequest {
        person: Some(person),
        purpose: Purpose::DirectCare as i32,
        ..Default::default()
    }
}

async fn view(
    platform: &Platform,
    token: &str,
    request: GetCareRecordRequest,
) -> Result<(), tonic::Status> {
    platform
        .records()
        .await
        .get_care_record(with_token(request, token))
        .await
        .map(|_| ())
}

/// The refusals the aggregator has put on the audit stream so far.
async fn refusals(platform: &Platform) -> Vec<AuditEvent> {
    audit_events(platform)
        .await
        .into_iter()
        .filter(|event| {
            event.source_service == "record-aggregator"
                && event.action() == AuditAction::Authenticate
                && event.outcome() == AuditOutcome::Denied
        })
        .collect()
}

/// Waits for a refusal with reason `code` by `user_id`.
async fn refusal_audited(platform: &Platform, code: &str, user_id: &str) -> AuditEvent {
    let deadline = tokio::time::Instant::now() + TIME;
    loop {
        let found = refusals(platform).await.into_iter().find(|event| {
            event.reasons.first().map(|reason| reason.code.as_str()) == Some(code)
                && event.actor.as_ref().map(|actor| actor.user_id.as_str()) == Some(user_id)
        });
        if let Some(event) = found {
            return event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {code} refusal of {user_id} audited: {:?}",
            refusals(platform).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn abused_tokens_are_refused_and_audited() {
    let platform = Platform::start().await;
    let token = platform
        .professional("dr.abuse", HOSPITAL, Role::Nurse)
        .await;
    let claims = claims_of(&token);
    let request = || direct_care(local_person(HOSPITAL, "EPR", "NOBODY"));
    // A working token first: refused only by consent, not by the layer.
    let allowed = view(&platform, &token, request()).await.unwrap_err();
    assert_eq!(allowed.code(), tonic::Code::PermissionDenied);

    // Role escalation: the payload edited, the signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let mut escalated = claims.clone();
    escalated.role = Some("ROLE_SYSTEM_ADMINISTRATOR".to_owned());
    escalated.scope = "identity:admin audit:read audit:export records:read".to_owned();
    let edited = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&escalated).unwrap()),
        parts[2]
    );
    // Another deployment's key, same claims: an unknown kid, and our kid.
    let theirs = SigningKeyPair::generate().unwrap();
    let foreign = theirs.sign(&claims).unwrap();
    let mut impostor = theirs.clone();
    impostor.kid =
        serde_json::from_slice::<serde_json::Value>(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap())
            .unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned();
    let impostor_token = impostor.sign(&claims).unwrap();

    for (abused, expected) in [
        (&edited, "the access token's signature is invalid"),
        (&foreign, "the access token was signed with an unknown key"),
        (&impostor_token, "the access token's signature is invalid"),
    ] {
        let refused = view(&platform, abused, request()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert_eq!(refused.message(), expected);
    }
    let unverified = format!("unverified:{}", claims.sub);
    let edited_event = refusal_audited(&platform, "TOKEN_BAD_SIGNATURE", &unverified).await;
    assert_eq!(
        edited_event.actor.as_ref().unwrap().organisation_code,
        "",
        "nothing of a forged token is recorded as fact"
    );
    assert!(edited_event.description.contains(GET_CARE_RECORD));
    assert_eq!(edited_event.client_address, "127.0.0.1");
    refusal_audited(&platform, "TOKEN_UNKNOWN_KEY", &unverified).await;

    // Sign out, then replay the token of the revoked session.
    let session = claims.sid.clone().unwrap();
    platform
        .identity
        .client
        .clone()
        .revoke_token(with_token(
            RevokeTokenRequest {
                target: Some(revoke_token_request::Target::SessionId(session.clone())),
                note: String::new(),
            },
            &token,
        ))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + TIME;
    let replayed = loop {
        let outcome = view(&platform, &token, request()).await.unwrap_err();
        if outcome.code() == tonic::Code::Unauthenticated || tokio::time::Instant::now() > deadline
        {
            break outcome;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(replayed.code(), tonic::Code::Unauthenticated);
    assert!(replayed.message().contains("revoked"), "{replayed:?}");
    // The signature is genuine, so the trail names the real user and session.
    let revoked_event = refusal_audited(&platform, "TOKEN_REVOKED", &claims.sub).await;
    let actor = revoked_event.actor.unwrap();
    assert_eq!(actor.session_id, session);
    assert_eq!(actor.organisation_code, HOSPITAL);

    for event in refusals(&platform).await {
        let text = format!("{event:?}");
        for secret in [&token, &edited, &foreign, &impostor_token] {
            assert!(
                !text.contains(secret.as_str()),
                "a token in the audit trail"
            );
        }
    }
}

async fn send_raw(platform: &Platform, token: &str, bytes: Vec<u8>) -> tonic::Status {
    mcr_testkit::grpc::unary_raw(
        platform.aggregator.channel().await,
        GET_CARE_RECORD,
        with_token(bytes, token),
    )
    .await
    .expect_err("a hostile request is refused")
}

#[tokio::test]
async fn unreadable_oversized_and_absurd_requests_are_invalid_argument() {
    let platform = Platform::start_with(Options {
        aggregator_overrides: vec![("MCR_GRPC__MAX_MESSAGE_BYTES".to_owned(), "65536".to_owned())],
        ..Default::default()
    })
    .await;
    let token = platform
        .professional("dr.hostile", HOSPITAL, Role::ClinicalPractitioner)
        .await;

    // Invalid UTF-8 where the contract says string: patch the bytes of a
    // well-formed request.
    let mut bytes = direct_care(local_person(HOSPITAL, "EPR", "ZZZZZZZZ")).encode_to_vec();
    let at = bytes
        .windows(8)
        .position(|window| window == b"ZZZZZZZZ")
        .unwrap();
    bytes[at..at + 8].copy_from_slice(&[0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0xff]);
    let not_utf8 = send_raw(&platform, &token, bytes).await;
    assert_eq!(
        not_utf8.code(),
        tonic::Code::InvalidArgument,
        "{not_utf8:?}"
    );
    assert!(not_utf8.message().contains("UTF-8"), "{not_utf8:?}");

    // Garbage that is no protobuf at all.
    let garbage = send_raw(&platform, &token, vec![0xff; 64]).await;
    assert_eq!(garbage.code(), tonic::Code::InvalidArgument, "{garbage:?}");

    // Bigger than grpc.max_message_bytes.
    let huge = direct_care(local_person(HOSPITAL, "EPR", &"9".repeat(200_000)));
    let oversized = view(&platform, &token, huge).await.unwrap_err();
    assert_eq!(
        oversized.code(),
        tonic::Code::InvalidArgument,
        "{oversized:?}"
    );
    assert!(
        oversized.message().contains("grpc.max_message_bytes"),
        "{oversized:?}"
    );

    let person = || local_person(HOSPITAL, "EPR", "H1");
    let at = |seconds: i64, nanos: i32| Some(prost_types::Timestamp { seconds, nanos });
    let cases = [
        (
            GetCareRecordRequest {
                page: Some(PageRequest {
                    page_size: u32::MAX,
                    page_token: String::new(),
                }),
                ..direct_care(person())
            },
            "page",
        ),
        (
            GetCareRecordRequest {
                page: Some(PageRequest {
                    page_size: 10,
                    page_token: "\u{0}not-a-token".to_owned(),
                }),
                ..direct_care(person())
            },
            "page",
        ),
        // Year 10000.
        (
            GetCareRecordRequest {
                effective_to: at(253_402_300_800, 0),
                ..direct_care(person())
            },
            "effective_to",
        ),
        // Before year 1; and the most negative instant there is.
        (
            GetCareRecordRequest {
                effective_from: at(-62_135_596_801, 0),
                ..direct_care(person())
            },
            "effective_from",
        ),
        (
            GetCareRecordRequest {
                effective_from: at(i64::MIN, 0),
                ..direct_care(person())
            },
            "effective_from",
        ),
        // Year 1200: representable, absurd for a care record.
        (
            GetCareRecordRequest {
                effective_from: at(-24_298_848_000, 0),
                ..direct_care(person())
            },
            "effective_from",
        ),
        (
            GetCareRecordRequest {
                effective_from: at(1_700_000_000, -1),
                ..direct_care(person())
            },
            "effective_from",
        ),
        (
            GetCareRecordRequest {
                effective_from: at(1_700_000_000, 0),
                effective_to: at(1_600_000_000, 0),
                ..direct_care(person())
            },
            "effective_from",
        ),
        (
            GetCareRecordRequest {
                purpose: i32::MAX,
                ..direct_care(person())
            },
            "purpose",
        ),
        (
            GetCareRecordRequest {
                categories: vec![-1],
                ..direct_care(person())
            },
            "categories",
        ),
        (
            direct_care(PersonReference {
                reference: Some(Reference::NhsNumber("1234567890".repeat(50))),
            }),
            "person.nhs_number",
        ),
        (
            direct_care(local_person(HOSPITAL, "EPR", "line\nbreak")),
            "person.local_identifier.value",
        ),
    ];
    for (request, field) in cases {
        let refused = view(&platform, &token, request).await.unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::InvalidArgument,
            "{field}: {refused:?}"
        );
        assert!(refused.message().starts_with(field), "{field}: {refused:?}");
    }
}

/// What a caller can observe of a refusal.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    code: tonic::Code,
    message: String,
    reason_codes: Option<String>,
    has_decision_id: bool,
}

fn shape(status: &tonic::Status) -> Shape {
    let metadata = status.metadata();
    Shape {
        code: status.code(),
        message: status.message().to_owned(),
        reason_codes: metadata
            .get("mcr-reason-codes")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        has_decision_id: metadata
            .get("mcr-decision-id")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
    }
}

#[tokio::test]
async fn probing_persons_looks_the_same_whether_they_exist_and_raises_the_alert() {
    let platform = Platform::start().await;
    // Audit with a low threshold, so a modest probe crosses it.
    let _audit = mcr_testkit::spawn_service::<mcr_audit::AuditService>(
        platform.environment(),
        &[
            ("MCR_AUTH__IDENTITY_URL", &platform.identity.identity_url()),
            ("MCR_AUDIT__UNUSUAL_ACCESS_THRESHOLD", "10"),
        ],
    )
    .await;
    let mut alerts = platform
        .nats()
        .subscribe(
            platform
                .environment()
                .subject(mcr_audit::UNUSUAL_ACCESS_SUBJECT),
        )
        .await
        .unwrap();

    const PROBES: u32 = 15;
    let numbers: Vec<String> = (100_000_000u32..)
        .filter_map(mcr_connector::nhs_number::from_stem)
        .take(2 * PROBES as usize)
        .collect();
    let (registered, unregistered) = numbers.split_at(PROBES as usize);
    let updates = registered
        .iter()
        .enumerate()
        .map(|(index, number)| {
            observation(
                HOSPITAL,
                &format!("P{index}"),
                &format!("obs-{index}"),
                1,
                "Hb 140",
            )
            .demographics(demographics(number, "Probe", "1980-01-01"))
            .build()
            .unwrap()
        })
        .collect();
    ingest(&platform, updates).await;

    let prober = platform
        .professional("dr.prober", "RGT", Role::ClinicalPractitioner)
        .await;
    let by_number = |number: &str| PersonReference {
        reference: Some(Reference::NhsNumber(number.to_owned())),
    };
    let mut existing = Vec::new();
    let mut missing = Vec::new();
    for (known, unknown) in registered.iter().zip(unregistered) {
        existing.push(
            view(&platform, &prober, direct_care(by_number(known)))
                .await
                .unwrap_err(),
        );
        missing.push(
            view(&platform, &prober, direct_care(by_number(unknown)))
                .await
                .unwrap_err(),
        );
    }
    existing.push(
        view(
            &platform,
            &prober,
            direct_care(local_person(HOSPITAL, "EPR", "P0")),
        )
        .await
        .unwrap_err(),
    );
    missing.push(
        view(
            &platform,
            &prober,
            direct_care(local_person(HOSPITAL, "EPR", "NOPE")),
        )
        .await
        .unwrap_err(),
    );
    missing.push(
        view(
            &platform,
            &prober,
            direct_care(person_id(&uuid::Uuid::new_v4().to_string())),
        )
        .await
        .unwrap_err(),
    );
    let expected = shape(&existing[0]);
    assert_eq!(expected.code, tonic::Code::PermissionDenied);
    assert_eq!(
        expected.reason_codes.as_deref(),
        Some("REASON_CODE_NO_CARE_RELATIONSHIP")
    );
    assert!(expected.has_decision_id);
    for refused in existing.iter().chain(&missing) {
        assert_eq!(shape(refused), expected, "every probe answers alike");
    }
    // Emergency without break-glass, too.
    let emergency = |person| GetCareRecordRequest {
        purpose: Purpose::Emergency as i32,
        ..direct_care(person)
    };
    let known = view(&platform, &prober, emergency(by_number(&registered[0])))
        .await
        .unwrap_err();
    let unknown = view(&platform, &prober, emergency(by_number(&unregistered[0])))
        .await
        .unwrap_err();
    assert_eq!(shape(&known), shape(&unknown));

    // The trail still tells them apart, and every probe is on it.
    let prober_id = claims_of(&prober).sub;
    let probes: Vec<AuditEvent> = audit_events(&platform)
        .await
        .into_iter()
        .filter(|event| {
            event.action() == AuditAction::ViewRecord
                && event
                    .actor
                    .as_ref()
                    .is_some_and(|actor| actor.user_id == prober_id)
        })
        .collect();
    assert_eq!(probes.len(), 2 * PROBES as usize + 5);
    assert!(
        probes
            .iter()
            .all(|event| event.outcome() == AuditOutcome::Denied)
    );
    let not_found = probes
        .iter()
        .filter(|event| {
            event
                .reasons
                .iter()
                .any(|reason| reason.code == "PERSON_NOT_FOUND")
        })
        .count();
    // Unregistered NHS Numbers, the unknown local identifier, the random
    // person id and the emergency probe: patient-index named nobody.
    assert_eq!(not_found, PROBES as usize + 3);

    let alert = match tokio::time::timeout(Duration::from_secs(30), alerts.next()).await {
        Ok(Some(message)) => UnusualAccessAlert::decode(message.payload.as_ref()).unwrap(),
        other => panic!("expected an unusual-access alert for the prober: {other:?}"),
    };
    assert_eq!(alert.actor.map(|actor| actor.user_id), Some(prober_id));
    assert_eq!(alert.threshold, 10);
    assert!(alert.distinct_persons > 10, "{}", alert.distinct_persons);
}
