//! Hostile-input properties: deep nesting, arbitrary JSON documents,
//! absurd timestamps and arbitrary NHS Number text are judged without a
//! panic, and every rejection is a clear sentence that names a field and
//! never echoes what was sent.

use mcr_proto::records::v1::DeadLetterReason;
use proptest::prelude::*;
use prost::Message;
use serde_json::{Value, json};

use super::tests::{NOW, valid_update};
use super::*;

/// A clear rejection: names a field or the message, and carries none of the
/// hostile input (`echo`, when it is long enough to be recognisable).
fn assert_clear(rejection: &Rejection, echo: &str) -> Result<(), TestCaseError> {
    prop_assert!(rejection.reason != DeadLetterReason::Unspecified);
    prop_assert!(!rejection.text.is_empty());
    prop_assert!(rejection.text.len() <= 500, "{}", rejection.text);
    if echo.chars().count() >= 12 {
        prop_assert!(
            !rejection.text.contains(echo),
            "{} echoes the input",
            rejection.text
        );
    }
    Ok(())
}

/// `levels` of nested arrays (or objects) around a string.
fn nested(levels: usize, objects: bool) -> String {
    let (open, close) = if objects {
        ("{\"a\":", "}")
    } else {
        ("[", "]")
    };
    format!("{}\"x\"{}", open.repeat(levels), close.repeat(levels))
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("resourceType".to_owned()),
                    Just("status".to_owned()),
                    Just("subject".to_owned()),
                    Just("code".to_owned()),
                    ".{0,8}"
                ],
                inner,
                0..8
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn nesting_of_any_depth_is_judged_without_overflow(levels in prop_oneof![1usize..80, 80usize..20_000], objects in any::<bool>()) {
        let mut update = valid_update();
        let mut resource: Value = serde_json::from_str(&update.fhir_resource_json).unwrap_or_default();
        // Splice the nesting into an extension of an otherwise valid resource.
        resource["note"] = Value::String(String::new());
        let text = resource.to_string().replacen("\"note\":\"\"", &format!("\"note\":{}", nested(levels, objects)), 1);
        update.fhir_resource_json = text;
        match validate_update_at(&update, NOW) {
            Ok(()) => prop_assert!(levels < MAX_FHIR_JSON_DEPTH),
            Err(rejection) => {
                prop_assert!(levels + 1 > MAX_FHIR_JSON_DEPTH, "{}", rejection.text);
                prop_assert_eq!(rejection.reason, DeadLetterReason::InvalidFhirResource);
                prop_assert!(rejection.text.contains("nests deeper"), "{}", rejection.text);
            }
        }
    }

    #[test]
    fn arbitrary_json_documents_are_accepted_or_clearly_refused(document in arbitrary_json()) {
        let mut update = valid_update();
        update.fhir_resource_json = document.to_string();
        if let Err(rejection) = validate_update_at(&update, NOW) {
            assert_clear(&rejection, &update.fhir_resource_json)?;
        }
    }

    #[test]
    fn arbitrary_text_as_fhir_json_is_clearly_refused(text in any::<String>()) {
        let mut update = valid_update();
        update.fhir_resource_json = text.clone();
        let outcome = validate_update_at(&update, NOW);
        prop_assert!(outcome.is_err());
        if let Err(rejection) = outcome {
            assert_clear(&rejection, &text)?;
        }
    }

    #[test]
    fn absurd_timestamps_are_refused_not_panicked_on(seconds in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -3_786_825_600i64..NOW], nanos in prop_oneof![any::<i32>(), 0i32..1_000_000_000], field in 0usize..2) {
        let mut update = valid_update();
        let stamp = Some(prost_types::Timestamp { seconds, nanos });
        match field {
            0 => update.effective_time = stamp,
            _ => update.source_time = stamp,
        }
        let outcome = validate_update_at(&update, NOW);
        let sensible = (-3_786_825_600..=NOW + 2 * 366 * 86_400).contains(&seconds)
            && (0..1_000_000_000).contains(&nanos);
        if let Err(rejection) = &outcome {
            assert_clear(rejection, "")?;
        }
        if !(0..1_000_000_000).contains(&nanos) || seconds < -3_786_825_600 && field == 0 {
            prop_assert!(outcome.is_err(), "{seconds}.{nanos} accepted");
        }
        if sensible && field == 0 {
            prop_assert!(outcome.is_ok(), "{seconds}.{nanos}: {outcome:?}");
        }
    }

    #[test]
    fn arbitrary_nhs_number_text_is_accepted_only_when_valid(text in prop_oneof![any::<String>(), "[0-9 ]{0,14}", "[0-9]{10}"]) {
        let mut update = valid_update();
        if let Some(demographics) = update.demographics.as_mut() {
            demographics.nhs_number = text.clone();
        }
        match validate_update_at(&update, NOW) {
            Ok(()) => prop_assert!(text.is_empty() || crate::nhs_number::is_valid(&text)),
            Err(rejection) => {
                prop_assert_eq!(rejection.reason, DeadLetterReason::InvalidNhsNumber);
                prop_assert!(rejection.text.starts_with("demographics.nhs_number"));
                assert_clear(&rejection, &text)?;
            }
        }
    }

    #[test]
    fn decoded_garbage_is_refused_with_a_reason(payload in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Err(rejection) = decode_and_validate("mcr.records.v1.RQW.medications", &payload) {
            assert_clear(&rejection, "")?;
        }
    }
}

#[test]
fn a_message_over_the_limit_is_too_large_before_it_is_decoded() {
    let mut update = valid_update();
    update.display_summary = "x".repeat(MAX_MESSAGE_BYTES);
    let rejection = decode_and_validate("mcr.records.v1.RQW.medications", &update.encode_to_vec())
        .expect_err("over the limit");
    assert_eq!(rejection.reason, DeadLetterReason::TooLarge);
    assert!(rejection.text.contains("at most"), "{}", rejection.text);
}

#[test]
fn invalid_utf8_in_a_string_field_is_undecodable() {
    let mut update = valid_update();
    update.local_entry_id = "ZZZZZZZZ".to_owned();
    let mut bytes = update.encode_to_vec();
    let at = bytes
        .windows(8)
        .position(|window| window == b"ZZZZZZZZ")
        .expect("the marker is in the encoding");
    bytes[at..at + 8].copy_from_slice(&[0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0xff]);
    let rejection =
        decode_and_validate("mcr.records.v1.RQW.medications", &bytes).expect_err("not UTF-8");
    assert_eq!(rejection.reason, DeadLetterReason::Undecodable);
}
