//! Name comparators: given and family names, compared together because a swap between them
//! is one keying error, not two disagreements.

use strsim::jaro_winkler;

use super::comparators::{Comparison, EXACT, Level, MISSING};
use super::config::{FamilyNameComparison, GivenNameComparison};
use super::profile::{MatchProfile, NameKey};

fn similarity(left: &NameKey, right: &NameKey) -> f64 {
    jaro_winkler(&left.compact, &right.compact)
}

/// Compares the names of two records: (given-name comparison, family-name comparison).
///
/// Swaps are reported from the point of view of the names themselves: the given-name field
/// says `swapped_with_family` when one record's given name is the other's family name.
pub(crate) fn compare_names(
    query: &MatchProfile,
    candidate: &MatchProfile,
    given_config: &GivenNameComparison,
    family_config: &FamilyNameComparison,
) -> (Comparison, Comparison) {
    let given = compare_given(&query.given, &candidate.given, given_config);
    let family = compare_family(query, candidate, family_config);
    let strong = |comparison: &Comparison, high: f64| {
        comparison.level == Level::Exact || comparison.level == Level::JaroWinkler(high)
    };
    let given_strong = strong(&given, given_config.high_similarity);
    let family_strong = strong(&family, family_config.high_similarity);
    if given_strong && family_strong {
        return (given, family);
    }
    let (Some(query_given), Some(query_family), Some(candidate_given), Some(candidate_family)) = (
        query.given.first(),
        query.family.as_ref(),
        candidate.given.first(),
        candidate.family.as_ref(),
    ) else {
        return (given, family);
    };
    // Each given name against the other record's family name, and the other way round.
    let candidate_given_as_family = similarity(query_family, candidate_given);
    let candidate_family_as_given = similarity(query_given, candidate_family);
    let given_crossed = candidate_given_as_family >= given_config.high_similarity;
    let family_crossed = candidate_family_as_given >= family_config.high_similarity;
    let given_swapped = Comparison::new(Level::SwappedWithFamily, candidate_given_as_family);
    let family_swapped = Comparison::new(Level::SwappedWithGiven, candidate_family_as_given);
    // "Lee Lee" matches itself both ways: only call it a swap when that explains more.
    let crossed_total = candidate_given_as_family + candidate_family_as_given;
    if given_crossed && family_crossed && crossed_total > given.similarity + family.similarity {
        return (given_swapped, family_swapped);
    }
    // Half a swap: one name sits in the other slot and the other slot holds something else
    // (a name typed into the wrong box, then the box it belonged in reused). The name found
    // counts as a swapped agreement; the slot it came from has nothing to compare.
    if !given_strong && !family_strong {
        if given_crossed {
            return (given_swapped, MISSING);
        }
        if family_crossed {
            return (MISSING, family_swapped);
        }
    }
    (given, family)
}

/// First given names, in order of strength: exact, one typo, a middle name in use, same
/// sound, loosely similar, an initial.
fn compare_given(
    query: &[NameKey],
    candidate: &[NameKey],
    config: &GivenNameComparison,
) -> Comparison {
    let (Some(query_first), Some(candidate_first)) = (query.first(), candidate.first()) else {
        return MISSING;
    };
    if query_first.compact == candidate_first.compact {
        return EXACT;
    }
    let first_similarity = similarity(query_first, candidate_first);
    if first_similarity >= config.high_similarity {
        return Comparison::new(Level::JaroWinkler(config.high_similarity), first_similarity);
    }
    // Only pairs that involve someone's first name: twins "Anna Marie" and "Lucy Marie" share
    // a middle name, which says nothing about being one person.
    let equals = |name: &NameKey, other: &NameKey| name.compact == other.compact;
    let first_meets_other = query
        .iter()
        .skip(1)
        .any(|name| equals(name, candidate_first))
        || candidate
            .iter()
            .skip(1)
            .any(|name| equals(name, query_first));
    if first_meets_other {
        return Comparison::new(Level::OtherGivenName, 1.0);
    }
    if query_first.sounds_like(candidate_first) {
        return Comparison::new(Level::Phonetic, first_similarity);
    }
    if first_similarity >= config.low_similarity {
        return Comparison::new(Level::JaroWinkler(config.low_similarity), first_similarity);
    }
    let is_initial_of = |short: &NameKey, long: &NameKey| {
        short.compact.len() == 1 && long.compact.starts_with(&short.compact)
    };
    if is_initial_of(query_first, candidate_first) || is_initial_of(candidate_first, query_first) {
        return Comparison::new(Level::Initial, first_similarity);
    }
    Comparison::new(Level::Disagree, first_similarity)
}

/// Current family names, then previous ones: exact, one typo, a previous name, same sound,
/// loosely similar.
fn compare_family(
    query: &MatchProfile,
    candidate: &MatchProfile,
    config: &FamilyNameComparison,
) -> Comparison {
    let (Some(query_family), Some(candidate_family)) =
        (query.family.as_ref(), candidate.family.as_ref())
    else {
        return MISSING;
    };
    if query_family.compact == candidate_family.compact {
        return EXACT;
    }
    let current_similarity = similarity(query_family, candidate_family);
    if current_similarity >= config.high_similarity {
        return Comparison::new(
            Level::JaroWinkler(config.high_similarity),
            current_similarity,
        );
    }
    // A maiden name on one side may be the current name on the other, or both may list it.
    let candidate_names: Vec<&NameKey> = std::iter::once(candidate_family)
        .chain(&candidate.previous_family)
        .collect();
    let meets_previous = std::iter::once(query_family)
        .chain(&query.previous_family)
        .enumerate()
        .any(|(query_index, query_name)| {
            candidate_names
                .iter()
                .enumerate()
                .any(|(candidate_index, candidate_name)| {
                    (query_index, candidate_index) != (0, 0)
                        && query_name.compact == candidate_name.compact
                })
        });
    if meets_previous {
        return Comparison::new(Level::PreviousName, 1.0);
    }
    if query_family.sounds_like(candidate_family) {
        return Comparison::new(Level::Phonetic, current_similarity);
    }
    if current_similarity >= config.low_similarity {
        return Comparison::new(
            Level::JaroWinkler(config.low_similarity),
            current_similarity,
        );
    }
    Comparison::new(Level::Disagree, current_similarity)
}
