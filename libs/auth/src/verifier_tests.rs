//! Every way a token can be wrong is refused with the right reason.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcr_proto::common::v1::Role;
use mcr_proto::identity::v1::KeyStatus;

use crate::claims::{AccessClaims, PrincipalKind};
use crate::error::AuthError;
use crate::signing::SigningKeyPair;
use crate::verifier::{TokenVerifier, VerifierConfig};

const ISSUER: &str = "https://identity.test";
const AUDIENCE: &str = "mcr";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: "user-1".to_owned(),
        kind: PrincipalKind::User,
        exp: now() + 300,
        nbf: now() - 5,
        iat: now() - 5,
        jti: "token-1".to_owned(),
        sid: Some("session-1".to_owned()),
        org: "F81001".to_owned(),
        rpid: Some("profile-1".to_owned()),
        role: Some("ROLE_CLINICAL_PRACTITIONER".to_owned()),
        role_code: Some("R8000".to_owned()),
        scope: "records:read index:read".to_owned(),
        name: "Dr Example".to_owned(),
    }
}

fn verifier_trusting(keys: &[&SigningKeyPair]) -> TokenVerifier {
    let verifier = TokenVerifier::new(
        VerifierConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            leeway_seconds: 0,
        },
        None,
    );
    let jwks: Vec<_> = keys.iter().map(|key| key.jwk(KeyStatus::Current)).collect();
    verifier.set_keys(&jwks);
    verifier
}

fn key() -> SigningKeyPair {
    SigningKeyPair::generate().expect("key generation")
}

#[test]
fn a_valid_token_gives_its_principal() {
    let key = key();
    let token = key.sign(&claims()).expect("signing");
    let principal = verifier_trusting(&[&key])
        .verify(&token)
        .expect("a valid token verifies");
    assert_eq!(principal.subject, "user-1");
    assert_eq!(principal.role, Role::ClinicalPractitioner);
    assert_eq!(principal.organisation_code, "F81001");
    assert!(principal.has_scope("records:read"));
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let key = key();
    let verifier = verifier_trusting(&[&key]);
    let mut expired = claims();
    expired.exp = now() - 10;
    assert_eq!(
        verifier.verify(&key.sign(&expired).expect("signing")),
        Err(AuthError::Expired)
    );
    let mut early = claims();
    early.nbf = now() + 120;
    assert_eq!(
        verifier.verify(&key.sign(&early).expect("signing")),
        Err(AuthError::NotYetValid)
    );
}

#[test]
fn wrong_issuer_and_wrong_audience_are_refused() {
    let key = key();
    let verifier = verifier_trusting(&[&key]);
    let mut other_issuer = claims();
    other_issuer.iss = "https://evil.test".to_owned();
    assert_eq!(
        verifier.verify(&key.sign(&other_issuer).expect("signing")),
        Err(AuthError::WrongIssuer)
    );
    let mut other_audience = claims();
    other_audience.aud = "another-platform".to_owned();
    assert_eq!(
        verifier.verify(&key.sign(&other_audience).expect("signing")),
        Err(AuthError::WrongAudience)
    );
}

#[test]
fn a_tampered_payload_fails_the_signature() {
    let key = key();
    let token = key.sign(&claims()).expect("signing");
    let parts: Vec<&str> = token.split('.').collect();
    let mut escalated = claims();
    escalated.role = Some("ROLE_SYSTEM_ADMINISTRATOR".to_owned());
    escalated.scope = "identity:admin".to_owned();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&escalated).expect("json"));
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        verifier_trusting(&[&key]).verify(&forged),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_token_from_another_deployments_key_is_refused() {
    let ours = key();
    let theirs = key();
    let token = theirs.sign(&claims()).expect("signing");
    assert_eq!(
        verifier_trusting(&[&ours]).verify(&token),
        Err(AuthError::UnknownKey)
    );
    // Even when the attacker reuses our kid, the signature gives them away.
    let mut impostor = theirs.clone();
    impostor.kid = ours.kid.clone();
    let token = impostor.sign(&claims()).expect("signing");
    assert_eq!(
        verifier_trusting(&[&ours]).verify(&token),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn alg_none_is_refused() {
    let key = key();
    let header = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
        key.kid
    ));
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).expect("json"));
    let unsigned = format!("{header}.{payload}.");
    assert_eq!(
        verifier_trusting(&[&key]).verify(&unsigned),
        Err(AuthError::AlgorithmNotAllowed)
    );
}

#[test]
fn hmac_signed_with_the_public_key_is_refused() {
    let key = key();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let public_x = key.jwk(KeyStatus::Current).x;
    let forged = jsonwebtoken::encode(
        &header,
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(public_x.as_bytes()),
    )
    .expect("hmac signing");
    assert_eq!(
        verifier_trusting(&[&key]).verify(&forged),
        Err(AuthError::AlgorithmNotAllowed)
    );
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    let verifier = verifier_trusting(&[&key()]);
    for garbage in ["", "abc", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"] {
        assert!(
            verifier.verify(garbage).is_err(),
            "{garbage:?} must be refused"
        );
    }
}

#[test]
fn a_revoked_session_is_refused() {
    let key = key();
    let verifier = verifier_trusting(&[&key]);
    let token = key.sign(&claims()).expect("signing");
    assert!(verifier.verify(&token).is_ok());
    verifier.revocations().revoke("session-1", now() + 300);
    assert_eq!(verifier.verify(&token), Err(AuthError::Revoked));
}

#[test]
fn keys_from_before_a_rotation_verify_until_removed() {
    let previous = key();
    let current = key();
    let verifier = verifier_trusting(&[&previous, &current]);
    assert!(
        verifier
            .verify(&previous.sign(&claims()).expect("signing"))
            .is_ok()
    );
    assert!(
        verifier
            .verify(&current.sign(&claims()).expect("signing"))
            .is_ok()
    );
    verifier.set_keys(&[current.jwk(KeyStatus::Current)]);
    assert_eq!(
        verifier.verify(&previous.sign(&claims()).expect("signing")),
        Err(AuthError::UnknownKey)
    );
}

#[test]
fn a_token_verified_before_still_expires() {
    let key = key();
    let verifier = verifier_trusting(&[&key]);
    let mut short_lived = claims();
    short_lived.exp = now() + 1;
    let token = key.sign(&short_lived).expect("signing");
    assert!(verifier.verify(&token).is_ok());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(
        verifier.verify(&token),
        Err(AuthError::Expired),
        "the cache never extends a token's life"
    );
}
