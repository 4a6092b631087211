//! Property tests: whatever arrives, judging it never panics, and what is
//! accepted is a valid update on its subject.

use mcr_proto::common::v1::Category;
use proptest::prelude::*;
use prost::Message;

use super::tests::{NOW, valid_update};
use super::*;

fn subject_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "mcr\\.records\\.v1\\.[A-Za-z0-9.]{0,14}",
        Just("mcr.records.v1.RQW.medications".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(subject in subject_strategy(), payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(update) = decode_and_validate(&subject, &payload) {
            prop_assert_eq!(validate_update(&update), Ok(()));
            prop_assert!(subject.eq_ignore_ascii_case(&subject_for(&update.source_organisation_code, Category::try_from(update.category).unwrap_or_default())));
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(position in 0usize..4096, byte in any::<u8>(), cut in 0usize..4096) {
        let mut bytes = valid_update().encode_to_vec();
        let length = bytes.len();
        bytes[position % length] = byte;
        bytes.truncate(length - cut % length);
        let outcome = decode_and_validate("mcr.records.v1.RQW.medications", &bytes);
        if let Ok(update) = outcome {
            prop_assert_eq!(validate_update(&update), Ok(()));
        }
    }

    #[test]
    fn arbitrary_json_never_panics(json in "[\\[\\]{}\":,a-zA-Z0-9 ]{0,200}") {
        let mut update = valid_update();
        update.fhir_resource_json = json;
        let _ = validate_update_at(&update, NOW);
    }

    #[test]
    fn arbitrary_text_fields_never_panic(text in any::<String>(), field in 0usize..6) {
        let mut update = valid_update();
        match field {
            0 => update.message_id = text,
            1 => update.source_organisation_code = text,
            2 => update.local_entry_id = text,
            3 => update.resource_type = text,
            4 => update.display_summary = text,
            _ => if let Some(demographics) = update.demographics.as_mut() { demographics.nhs_number = text },
        }
        let _ = validate_update_at(&update, NOW);
    }
}
