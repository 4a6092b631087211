//! Property tests: whatever string arrives as a bearer token, the verifier
//! answers with an error (never a panic, never a principal) unless it is
//! exactly a token the issuer signed.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcr_proto::identity::v1::KeyStatus;
use proptest::prelude::*;

use crate::claims::{AccessClaims, PrincipalKind};
use crate::refusals::{ClaimedCaller, reason_code};
use crate::signing::SigningKeyPair;
use crate::verifier::{TokenVerifier, VerifierConfig};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

struct Issuer {
    key: SigningKeyPair,
    verifier: TokenVerifier,
    token: String,
}

/// One key, verifier and genuine token for every case (key generation and
/// signing are the slow part).
fn issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let key = SigningKeyPair::generate().expect("key generation");
        let verifier = TokenVerifier::new(
            VerifierConfig {
                issuer: "https://identity.test".to_owned(),
                audience: "mcr".to_owned(),
                leeway_seconds: 0,
            },
            None,
        );
        verifier.set_keys(&[key.jwk(KeyStatus::Current)]);
        let claims = AccessClaims {
            iss: "https://identity.test".to_owned(),
            aud: "mcr".to_owned(),
            sub: "user-1".to_owned(),
            kind: PrincipalKind::User,
            exp: now() + 3_600,
            nbf: now() - 5,
            iat: now() - 5,
            jti: "jti".to_owned(),
            sid: Some("session-1".to_owned()),
            org: "RQW".to_owned(),
            rpid: Some("profile-1".to_owned()),
            role: Some("ROLE_NURSE".to_owned()),
            role_code: None,
            scope: "records:read".to_owned(),
            name: "Nurse".to_owned(),
        };
        let token = key.sign(&claims).expect("signing");
        Issuer {
            key,
            verifier,
            token,
        }
    })
}

/// A JSON value of bounded depth for header and payload fuzzing.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        ".{0,20}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("alg".to_owned()),
                    Just("kid".to_owned()),
                    Just("sub".to_owned()),
                    Just("role".to_owned()),
                    Just("exp".to_owned()),
                    "[a-z]{1,5}"
                ],
                inner,
                0..6
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_are_refused_with_a_reason(token in any::<String>()) {
        let refused = issuer().verifier.verify(&token);
        prop_assert!(refused.is_err());
        let error = refused.err().unwrap_or(crate::AuthError::Malformed);
        prop_assert!(!error.to_string().is_empty());
        prop_assert!(tonic::Status::from(error.clone()).code() == tonic::Code::Unauthenticated);
        prop_assert!(reason_code(&error).starts_with("TOKEN_"));
        // Peeking for the audit never panics either.
        let _ = ClaimedCaller::peek(Some(&token), &error);
    }

    #[test]
    fn three_part_tokens_of_arbitrary_json_are_refused(
        header in json_value(),
        payload in json_value(),
        signature in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(&signature)
        );
        prop_assert!(issuer().verifier.verify(&token).is_err());
    }

}

proptest! {
    // Each case here costs a full signature check (or a key generation)
    // in a debug build: fewer cases, still every part of the token.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_change_to_a_genuine_token_is_refused(position in 0usize..2048, byte in any::<u8>()) {
        let issuer = issuer();
        let mut bytes = issuer.token.clone().into_bytes();
        let position = position % bytes.len();
        prop_assume!(bytes[position] != byte);
        bytes[position] = byte;
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        // Base64url has spare bits in its last character: a change there
        // can decode to the same bytes, which is the same token.
        let same_token = mutated.split('.').zip(issuer.token.split('.')).all(|(a, b)| {
            URL_SAFE_NO_PAD.decode(a).ok().zip(URL_SAFE_NO_PAD.decode(b).ok()).is_some_and(|(a, b)| a == b)
        }) && mutated.split('.').count() == 3;
        prop_assume!(!same_token);
        prop_assert!(issuer.verifier.verify(&mutated).is_err(), "{mutated}");
    }

    #[test]
    fn claims_signed_by_another_key_are_refused_whatever_they_say(subject in ".{0,40}", role in "ROLE_[A-Z_]{1,30}") {
        let issuer = issuer();
        let mut impostor = SigningKeyPair::generate().expect("key generation");
        impostor.kid = issuer.key.kid.clone();
        let payload = serde_json::json!({
            "iss": "https://identity.test", "aud": "mcr", "sub": subject, "kind": "user",
            "exp": now() + 300, "nbf": now() - 5, "iat": now() - 5, "jti": "j",
            "sid": "s", "org": "RQW", "rpid": "p", "role": role, "scope": "identity:admin", "name": "n"
        });
        let claims: AccessClaims = serde_json::from_value(payload).expect("claims");
        let token = impostor.sign(&claims).expect("signing");
        prop_assert_eq!(issuer.verifier.verify(&token), Err(crate::AuthError::BadSignature));
    }
}

#[test]
fn the_genuine_token_verifies() {
    let issuer = issuer();
    assert!(issuer.verifier.verify(&issuer.token).is_ok());
}
