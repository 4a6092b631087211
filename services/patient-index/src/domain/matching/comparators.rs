//! Field comparators: each returns the agreement level two profiles reach on one field.

use std::fmt;

use strsim::{jaro_winkler, osa_distance};
use time::Date;

use super::config::AddressComparison;
use super::profile::{AddressToken, PostcodeKey};

/// The level of agreement a comparator found. `Display` gives the `comparison_level` string of
/// the proto's FieldContribution, e.g. "exact", "jaro_winkler>=0.92", "day_month_transposed".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    /// Missing on either side: weight 0.
    Missing,
    /// Equal after normalisation.
    Exact,
    /// Jaro-Winkler similarity at least the threshold given.
    JaroWinkler(f64),
    /// Double Metaphone codes agree.
    Phonetic,
    /// A first given name equals the other side's second or later given name.
    OtherGivenName,
    /// An initial that starts the other side's given name.
    Initial,
    /// A previous family name agrees.
    PreviousName,
    /// One record's given name is the other's family name (reported on the given-name field;
    /// with a full swap, the family-name field reports [`Level::SwappedWithGiven`] too).
    SwappedWithFamily,
    /// One record's family name is the other's given name (reported on the family-name field).
    SwappedWithGiven,
    /// Dates of birth with day and month swapped.
    DayMonthTransposed,
    /// Dates of birth agreeing in two of year, month and day.
    OneComponentDifferent,
    /// Postcodes one edit apart.
    OneCharacterDifferent,
    /// GB postcodes with the same outward code.
    SameOutwardCode,
    /// Address token overlap at least the threshold given.
    TokenOverlap(f64),
    /// Both present, no agreement level reached.
    Disagree,
}

impl fmt::Display for Level {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => formatter.write_str("missing"),
            Self::Exact => formatter.write_str("exact"),
            Self::JaroWinkler(threshold) => write!(formatter, "jaro_winkler>={threshold:.2}"),
            Self::Phonetic => formatter.write_str("phonetic"),
            Self::OtherGivenName => formatter.write_str("other_given_name"),
            Self::Initial => formatter.write_str("initial"),
            Self::PreviousName => formatter.write_str("previous_name"),
            Self::SwappedWithFamily => formatter.write_str("swapped_with_family"),
            Self::SwappedWithGiven => formatter.write_str("swapped_with_given"),
            Self::DayMonthTransposed => formatter.write_str("day_month_transposed"),
            Self::OneComponentDifferent => formatter.write_str("one_component_different"),
            Self::OneCharacterDifferent => formatter.write_str("one_character_different"),
            Self::SameOutwardCode => formatter.write_str("same_outward_code"),
            Self::TokenOverlap(threshold) => write!(formatter, "token_overlap>={threshold:.2}"),
            Self::Disagree => formatter.write_str("disagree"),
        }
    }
}

/// A level with the similarity the comparator measured (1.0 for exact, 0.0 for missing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Comparison {
    pub(crate) level: Level,
    pub(crate) similarity: f64,
}

impl Comparison {
    pub(crate) const fn new(level: Level, similarity: f64) -> Self {
        Self { level, similarity }
    }
}

pub(crate) const MISSING: Comparison = Comparison::new(Level::Missing, 0.0);
pub(crate) const EXACT: Comparison = Comparison::new(Level::Exact, 1.0);

/// Dates of birth: exact, day and month transposed, or one of the three parts different.
pub(crate) fn compare_birth_dates(query: Option<Date>, candidate: Option<Date>) -> Comparison {
    let (Some(query), Some(candidate)) = (query, candidate) else {
        return MISSING;
    };
    if query == candidate {
        return EXACT;
    }
    let (query_month, candidate_month) = (u8::from(query.month()), u8::from(candidate.month()));
    if query.year() == candidate.year()
        && query_month == candidate.day()
        && query.day() == candidate_month
    {
        return Comparison::new(Level::DayMonthTransposed, 2.0 / 3.0);
    }
    let agreeing = [
        query.year() == candidate.year(),
        query_month == candidate_month,
        query.day() == candidate.day(),
    ];
    if agreeing.iter().filter(|agrees| **agrees).count() == 2 {
        return Comparison::new(Level::OneComponentDifferent, 2.0 / 3.0);
    }
    Comparison::new(Level::Disagree, 0.0)
}

/// Postcodes: exact, one edit apart, or (GB) the same outward code. Postcodes of different
/// countries disagree.
pub(crate) fn compare_postcodes(
    query: Option<&PostcodeKey>,
    candidate: Option<&PostcodeKey>,
) -> Comparison {
    let (Some(query), Some(candidate)) = (query, candidate) else {
        return MISSING;
    };
    if query.country != candidate.country {
        return Comparison::new(Level::Disagree, 0.0);
    }
    if query.compact == candidate.compact {
        return EXACT;
    }
    if osa_distance(&query.compact, &candidate.compact) == 1 {
        return Comparison::new(Level::OneCharacterDifferent, 0.75);
    }
    if query.outward.is_some() && query.outward == candidate.outward {
        return Comparison::new(Level::SameOutwardCode, 0.5);
    }
    Comparison::new(Level::Disagree, 0.0)
}

/// Addresses by token overlap: the Dice coefficient 2·matched / (n₁ + n₂), where a token
/// matches an unused token of the other side that is equal or, for words, Jaro-Winkler close
/// (numbers must be equal: 12 and 13 are different houses).
pub(crate) fn compare_addresses(
    query: &[AddressToken],
    candidate: &[AddressToken],
    config: &AddressComparison,
) -> Comparison {
    if query.is_empty() || candidate.is_empty() {
        return MISSING;
    }
    let mut used = vec![false; candidate.len()];
    let mut query_matched = vec![false; query.len()];
    // Exact matches first, so a fuzzy match never takes a token another one equals.
    for (query_index, token) in query.iter().enumerate() {
        let found = candidate
            .iter()
            .enumerate()
            .position(|(index, other)| !used[index] && other.as_str() == token.as_str());
        if let Some(index) = found {
            used[index] = true;
            query_matched[query_index] = true;
        }
    }
    let exact = query_matched.iter().filter(|matched| **matched).count();
    if exact == query.len() && exact == candidate.len() {
        return EXACT;
    }
    let mut matched = exact;
    for (query_index, token) in query.iter().enumerate() {
        if query_matched[query_index] || token.has_digit() {
            continue;
        }
        let found = candidate.iter().enumerate().position(|(index, other)| {
            !used[index]
                && !other.has_digit()
                && token.may_reach(other, config.token_similarity)
                && jaro_winkler(token.as_str(), other.as_str()) >= config.token_similarity
        });
        if let Some(index) = found {
            used[index] = true;
            matched += 1;
        }
    }
    // Token counts are tiny (at most a few dozen), so the conversion to f64 is exact.
    let overlap = (2 * matched) as f64 / (query.len() + candidate.len()) as f64;
    let level = if overlap >= config.high_overlap {
        Level::TokenOverlap(config.high_overlap)
    } else if overlap >= config.medium_overlap {
        Level::TokenOverlap(config.medium_overlap)
    } else if overlap >= config.low_overlap {
        Level::TokenOverlap(config.low_overlap)
    } else {
        Level::Disagree
    };
    Comparison {
        level,
        similarity: overlap,
    }
}

/// Equality of two optional values (sex, phone digits, NHS Number).
pub(crate) fn compare_equal<T: PartialEq>(query: Option<&T>, candidate: Option<&T>) -> Comparison {
    match (query, candidate) {
        (Some(query), Some(candidate)) if query == candidate => EXACT,
        (Some(_), Some(_)) => Comparison::new(Level::Disagree, 0.0),
        _ => MISSING,
    }
}
