//! Blocking keys: the index lookups that find the candidates a record is compared with, so no
//! registration or search ever scans the whole index.
//!
//! A stored person is indexed under every key of [`blocking_keys`]; a query looks up the
//! keys of [`candidate_keys`] and scores the union of the persons found. The keys are chosen
//! so that a keying error in any one field, and in most pairs of fields, still leaves a key in
//! common with the true match:
//!
//! | key | value | survives an error in |
//! |---|---|---|
//! | `dob:` | date of birth | names, postcode, address |
//! | `pc:` | country and postcode, no spaces | names, date of birth |
//! | `fy:` | family-name phonetic code and birth year | given name, postcode, day or month of birth, a family-name typo that sounds the same |
//! | `gf:` | given- and family-name phonetic codes, in sorted order | date of birth, postcode, a given/family swap |
//! | `fn:` | family-name phonetic code alone | everything but the family name; indexed, but looked up only by a search that has nothing narrower |
//!
//! Previous family names produce `fy:`, `gf:` and `fn:` keys too, so a maiden name finds the
//! person. Block sizes at 1.5 million people: about 50 per date of birth and per GB postcode,
//! a few hundred for a common surname in one birth year or a common name pair; `fn:` for a
//! common surname holds tens of thousands, hence only as the last resort.

use std::fmt;

use super::profile::{MatchProfile, NameKey};

/// Which rule a key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockingKeyKind {
    /// `dob:` date of birth.
    BirthDate,
    /// `pc:` postcode.
    Postcode,
    /// `fy:` family-name phonetic code and birth year.
    FamilyAndBirthYear,
    /// `gf:` given- and family-name phonetic codes.
    NamePair,
    /// `fn:` family-name phonetic code alone.
    Family,
}

/// One blocking key, e.g. `dob:1970-01-31`, `pc:GB:CM201QX`, `fy:SM0:1970`, `gf:JN|SM0`.
/// Store and look it up as [`BlockingKey::as_str`]; the prefix keeps the kinds apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockingKey {
    kind: BlockingKeyKind,
    key: String,
}

impl BlockingKey {
    /// The kind of key.
    pub fn kind(&self) -> BlockingKeyKind {
        self.kind
    }

    /// The key as stored, prefix included.
    pub fn as_str(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for BlockingKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.key)
    }
}

/// Every key to index a stored person under (sorted, no duplicates).
pub fn blocking_keys(profile: &MatchProfile) -> Vec<BlockingKey> {
    let mut keys = Vec::new();
    if let Some(birth_date) = profile.birth_date {
        keys.push(key(BlockingKeyKind::BirthDate, format!("dob:{birth_date}")));
    }
    if let Some(postcode) = &profile.postcode {
        keys.push(key(
            BlockingKeyKind::Postcode,
            format!("pc:{}:{}", postcode.country, postcode.compact),
        ));
    }
    let family_names = profile
        .family
        .iter()
        .chain(&profile.previous_family)
        .filter(|name| !name.phonetic.is_empty());
    for family in family_names {
        if let Some(birth_date) = profile.birth_date {
            keys.push(key(
                BlockingKeyKind::FamilyAndBirthYear,
                format!("fy:{}:{}", family.phonetic, birth_date.year()),
            ));
        }
        if let Some(given) = profile
            .given
            .first()
            .filter(|given| !given.phonetic.is_empty())
        {
            keys.push(name_pair(given, family));
        }
        keys.push(key(
            BlockingKeyKind::Family,
            format!("fn:{}", family.phonetic),
        ));
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The keys a registration or search looks up: every key of [`blocking_keys`] except the
/// broad `fn:` ones, which are used only when nothing else is available (a search by family
/// name alone). Empty when the record has nothing to block on; such a record (an
/// unidentified patient) is never matched.
pub fn candidate_keys(profile: &MatchProfile) -> Vec<BlockingKey> {
    let all = blocking_keys(profile);
    if all.iter().all(|key| key.kind == BlockingKeyKind::Family) {
        return all;
    }
    all.into_iter()
        .filter(|key| key.kind != BlockingKeyKind::Family)
        .collect()
}

fn key(kind: BlockingKeyKind, key: String) -> BlockingKey {
    BlockingKey { kind, key }
}

fn name_pair(given: &NameKey, family: &NameKey) -> BlockingKey {
    // Sorted so that a record with given and family names swapped has the same key.
    let (first, second) = if given.phonetic <= family.phonetic {
        (&given.phonetic, &family.phonetic)
    } else {
        (&family.phonetic, &given.phonetic)
    };
    key(BlockingKeyKind::NamePair, format!("gf:{first}|{second}"))
}
