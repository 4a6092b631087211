//! The auth layer around a stand-in handler: refusals reach the audit sink,
//! callers are held to their limits independently, and unreadable requests
//! answer INVALID_ARGUMENT.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcr_proto::identity::v1::KeyStatus;
use tokio::sync::mpsc;
use tonic::transport::server::TcpConnectInfo;
use tower::{Layer, Service, ServiceExt};

use crate::claims::{AccessClaims, PrincipalKind};
use crate::error::AuthError;
use crate::layer::AuthLayer;
use crate::limits::{CallerLimits, RateSettings};
use crate::refusals::RefusalAudit;
use crate::signing::SigningKeyPair;
use crate::verifier::{TokenVerifier, VerifierConfig};

const ISSUER: &str = "https://identity.test";
const AUDIENCE: &str = "mcr";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn claims(subject: &str) -> AccessClaims {
    AccessClaims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: subject.to_owned(),
        kind: PrincipalKind::User,
        exp: now() + 300,
        nbf: now() - 5,
        iat: now() - 5,
        jti: format!("jti-{subject}"),
        sid: Some(format!("session-{subject}")),
        org: "RQW".to_owned(),
        rpid: Some("profile".to_owned()),
        role: Some("ROLE_NURSE".to_owned()),
        role_code: None,
        scope: "records:read".to_owned(),
        name: "Nurse".to_owned(),
    }
}

struct Fixture {
    key: SigningKeyPair,
    verifier: TokenVerifier,
}

fn fixture() -> Fixture {
    let key = SigningKeyPair::generate().expect("key generation");
    let verifier = TokenVerifier::new(
        VerifierConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            leeway_seconds: 0,
        },
        None,
    );
    verifier.set_keys(&[key.jwk(KeyStatus::Current)]);
    Fixture { key, verifier }
}

type Response = http::Response<tonic::body::Body>;

/// A handler answering OK, or the status named by the `x-answer` header
/// (as tonic answers a request it cannot decode).
fn handler()
-> impl Service<http::Request<()>, Response = Response, Error = Infallible, Future = impl Send + 'static>
+ Clone
+ Send
+ 'static {
    tower::service_fn(|request: http::Request<()>| async move {
        let answer = match request.headers().get("x-answer").map(|v| v.as_bytes()) {
            Some(b"too-large") => tonic::Status::out_of_range(
                "Error, decoded message length too large: found 9000000 bytes, the limit is: 4194304 bytes",
            ),
            Some(b"not-utf8") => tonic::Status::internal(
                "failed to decode Protobuf message: GetCareRecordRequest.person: invalid string value: data is not UTF-8 encoded",
            ),
            Some(b"handler-out-of-range") => tonic::Status::out_of_range("from_sequence removed"),
            _ => tonic::Status::ok(""),
        };
        Ok::<_, Infallible>(answer.into_http())
    })
}

fn call_with(token: Option<&str>, answer: Option<&'static str>) -> http::Request<()> {
    let mut request = http::Request::builder()
        .uri("/mcr.records.v1.RecordAggregator/GetCareRecord")
        .body(())
        .expect("request");
    if let Some(token) = token {
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    if let Some(answer) = answer {
        request
            .headers_mut()
            .insert("x-answer", answer.parse().expect("header"));
    }
    request.extensions_mut().insert(TcpConnectInfo {
        local_addr: None,
        remote_addr: Some("192.0.2.44:51000".parse().expect("address")),
    });
    request
}

fn code_of(response: &Response) -> tonic::Code {
    tonic::Status::from_header_map(response.headers()).map_or(tonic::Code::Ok, |s| s.code())
}

#[tokio::test]
async fn one_caller_over_its_rate_is_refused_while_another_is_served() {
    let fixture = fixture();
    let tight = RateSettings {
        requests_per_second: 1,
        burst: 5,
        max_in_flight: 0,
    };
    let layer = AuthLayer::new(fixture.verifier.clone(), &[]).limit_callers(CallerLimits {
        users: tight,
        services: tight,
    });
    let mut service = layer.layer(handler());
    let greedy = fixture.key.sign(&claims("greedy")).expect("signing");
    let patient = fixture.key.sign(&claims("patient")).expect("signing");
    let mut codes = Vec::new();
    for _ in 0..20 {
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(call_with(Some(&greedy), None))
            .await
            .expect("infallible");
        codes.push(code_of(&response));
    }
    assert_eq!(codes.iter().filter(|c| **c == tonic::Code::Ok).count(), 5);
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == tonic::Code::ResourceExhausted)
            .count(),
        15
    );
    let other = service
        .ready()
        .await
        .expect("ready")
        .call(call_with(Some(&patient), None))
        .await
        .expect("infallible");
    assert_eq!(
        code_of(&other),
        tonic::Code::Ok,
        "the other caller is not starved"
    );
}

#[tokio::test]
async fn each_refused_token_reaches_the_audit_sink_without_the_token() {
    let fixture = fixture();
    let (sender, mut receiver) = mpsc::channel(16);
    let layer = AuthLayer::new(fixture.verifier.clone(), &["Authenticate"])
        .audit_refusals(RefusalAudit::to_channel(sender));
    let mut service = layer.layer(handler());

    let real = fixture.key.sign(&claims("nurse")).expect("signing");
    let parts: Vec<&str> = real.split('.').collect();
    let mut escalated = claims("nurse");
    escalated.role = Some("ROLE_SYSTEM_ADMINISTRATOR".to_owned());
    escalated.scope = "identity:admin audit:read".to_owned();
    let edited = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&escalated).expect("json")),
        parts[2]
    );
    let foreign = SigningKeyPair::generate()
        .expect("key")
        .sign(&claims("nurse"))
        .expect("signing");
    fixture
        .verifier
        .revocations()
        .revoke("session-nurse", now() + 300);

    let cases = [
        (Some(edited.as_str()), AuthError::BadSignature),
        (Some(foreign.as_str()), AuthError::UnknownKey),
        (Some(real.as_str()), AuthError::Revoked),
        (None, AuthError::MissingToken),
    ];
    for (token, expected) in cases {
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(call_with(token, None))
            .await
            .expect("infallible");
        assert_eq!(code_of(&response), tonic::Code::Unauthenticated);
        let refusal = receiver.recv().await.expect("a refusal is recorded");
        assert_eq!(refusal.reason, expected);
        assert_eq!(refusal.client_address, "192.0.2.44");
        assert_eq!(
            refusal.method,
            "/mcr.records.v1.RecordAggregator/GetCareRecord"
        );
        if let Some(token) = token {
            assert!(!format!("{refusal:?}").contains(token));
            assert_eq!(refusal.claimed.subject.as_deref(), Some("nurse"));
        }
        assert_eq!(
            refusal.claimed.signature_verified,
            expected == AuthError::Revoked,
            "{expected:?}"
        );
    }
    let public = http::Request::builder()
        .uri("/mcr.identity.v1.Identity/Authenticate")
        .body(())
        .expect("request");
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(public)
        .await
        .expect("infallible");
    assert_eq!(code_of(&response), tonic::Code::Ok);
    assert!(
        receiver.try_recv().is_err(),
        "public methods refuse nothing"
    );
}

#[tokio::test]
async fn unreadable_requests_are_invalid_argument_and_handler_statuses_untouched() {
    let fixture = fixture();
    let mut service = AuthLayer::new(fixture.verifier.clone(), &[]).layer(handler());
    let token = fixture.key.sign(&claims("reader")).expect("signing");
    for (answer, code, hint) in [
        (
            "too-large",
            tonic::Code::InvalidArgument,
            "grpc.max_message_bytes",
        ),
        ("not-utf8", tonic::Code::InvalidArgument, "UTF-8"),
        (
            "handler-out-of-range",
            tonic::Code::OutOfRange,
            "from_sequence",
        ),
    ] {
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(call_with(Some(&token), Some(answer)))
            .await
            .expect("infallible");
        let status = tonic::Status::from_header_map(response.headers()).expect("a status");
        assert_eq!(status.code(), code, "{answer}");
        assert!(status.message().contains(hint), "{status:?}");
    }
}
