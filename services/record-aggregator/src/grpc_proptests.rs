//! Property tests of the view request's decoding: whatever person
//! reference, purpose, categories and window a caller sends, checking it
//! never panics, and a refusal names the field it is about.

use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{LocalIdentifier, PersonReference};
use proptest::prelude::*;

use super::view_request;
use crate::error::AggregatorError;

fn reference() -> impl Strategy<Value = Option<PersonReference>> {
    let text = prop_oneof![any::<String>(), "[0-9 ]{0,14}", "[0-9a-f-]{36}"];
    prop_oneof![
        Just(None),
        Just(Some(PersonReference { reference: None })),
        text.clone().prop_map(|id| Some(PersonReference {
            reference: Some(Reference::PersonId(id))
        })),
        text.clone().prop_map(|number| Some(PersonReference {
            reference: Some(Reference::NhsNumber(number))
        })),
        (text.clone(), text.clone(), text).prop_map(|(organisation_code, system, value)| Some(
            PersonReference {
                reference: Some(Reference::LocalIdentifier(LocalIdentifier {
                    organisation_code,
                    system,
                    value,
                })),
            }
        )),
    ]
}

fn instant() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    prop::option::of(
        (
            prop_oneof![any::<i64>(), -6_000_000_000i64..8_000_000_000],
            prop_oneof![any::<i32>(), 0i32..1_000_000_000],
        )
            .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_view_request_is_checked_without_panic(
        person in reference(),
        purpose in prop_oneof![any::<i32>(), 0i32..4],
        categories in prop::collection::vec(prop_oneof![any::<i32>(), 0i32..12], 0..12),
        from in instant(),
        to in instant(),
    ) {
        match view_request(person.as_ref(), purpose, &categories, (from.as_ref(), to.as_ref()), String::new()) {
            Ok(checked) => {
                prop_assert!(checked.person.reference.is_some());
                prop_assert!(!checked.categories.is_empty());
                if let (Some(from), Some(to)) = (checked.window.from, checked.window.to) {
                    prop_assert!(from < to);
                }
            }
            Err(AggregatorError::Invalid { field, reason }) => {
                prop_assert!(
                    ["person", "purpose", "categories", "effective_from", "effective_to"]
                        .iter()
                        .any(|prefix| field.starts_with(prefix)),
                    "{field}"
                );
                prop_assert!(!reason.is_empty());
                let status = tonic::Status::from(AggregatorError::Invalid { field, reason });
                prop_assert_eq!(status.code(), tonic::Code::InvalidArgument);
            }
            Err(other) => prop_assert!(false, "not a field error: {other:?}"),
        }
    }
}
