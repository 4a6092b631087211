//! Blocking keys: shapes, and the promise that one keying error still shares a key.

use time::macros::date;

use super::tests::{BORN, address, person};
use super::*;
use crate::domain::{PersonName, SearchQuery};

#[test]
fn a_typo_in_any_one_field_still_shares_a_candidate_key() {
    let original = person("Amelia", "Hartley", BORN);
    let mut variants = Vec::new();
    variants.push(person("Emilia", "Hartley", BORN));
    variants.push(person("Amelia", "Hurtley", BORN));
    variants.push(person("Amelia", "Hartley", date!(1948 - 03 - 07)));
    let mut moved = person("Amelia", "Hartley", BORN);
    moved.address = Some(address(&["12 Mulberry Green"], "Harlow", "CM17 0EY"));
    variants.push(moved);
    variants.push(person("Hartley", "Amelia", date!(1985 - 03 - 07)));
    let indexed = blocking_keys(&MatchProfile::from(&original));
    for variant in &variants {
        let keys = candidate_keys(&MatchProfile::from(variant));
        assert!(
            keys.iter().any(|key| indexed.contains(key)),
            "no shared key for {variant:?}"
        );
    }
}

#[test]
fn blocking_keys_have_the_documented_shapes() {
    let mut amelia = person("Amelia", "Hartley", BORN);
    amelia.previous_names.push(PersonName {
        family: Some("Okafor".to_owned()),
        ..Default::default()
    });
    let keys: Vec<String> = blocking_keys(&MatchProfile::from(&amelia))
        .iter()
        .map(|key| key.to_string())
        .collect();
    for expected in [
        "dob:1984-03-07",
        "pc:GB:CM170ET",
        "fy:HRTL:1984",
        "fy:AKFR:1984",
        "gf:AML|HRTL",
        "fn:HRTL",
    ] {
        assert!(
            keys.contains(&expected.to_owned()),
            "{expected} not in {keys:?}"
        );
    }
    let query = candidate_keys(&MatchProfile::from(&amelia));
    assert!(
        query
            .iter()
            .all(|key| key.kind() != BlockingKeyKind::Family)
    );
    let family_only = SearchQuery {
        family_name: Some("Hartley".to_owned()),
        given_name: None,
        birth_date: None,
        postcode: None,
        sex: None,
    };
    let keys: Vec<String> = candidate_keys(&MatchProfile::from(&family_only))
        .iter()
        .map(|key| key.to_string())
        .collect();
    assert_eq!(keys, ["fn:HRTL"]);
}
