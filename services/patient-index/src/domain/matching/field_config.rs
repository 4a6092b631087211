//! The per-field comparison settings of [`super::MatchConfig`]: similarity thresholds and
//! the `m`/`u` probabilities of each agreement level, with defaults and their reasons.

use serde::Deserialize;

use super::config::{Probabilities, p};

/// Given-name comparison: the first given name of each side, in order of strength.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct GivenNameComparison {
    /// Jaro-Winkler similarity at or above which names are "close" (one typo).
    pub high_similarity: f64,
    /// Jaro-Winkler similarity at or above which names are "similar".
    pub low_similarity: f64,
    /// Same name.
    pub exact: Probabilities,
    /// Jaro-Winkler at or above `high_similarity`.
    pub jaro_winkler_high: Probabilities,
    /// One side's first given name is the other's second or later (a person who goes by a
    /// middle name).
    pub other_given_name: Probabilities,
    /// Double Metaphone codes agree.
    pub phonetic: Probabilities,
    /// Jaro-Winkler at or above `low_similarity`.
    pub jaro_winkler_low: Probabilities,
    /// One side is an initial that starts the other.
    pub initial: Probabilities,
    /// Given and family names swapped between the records (both cross-compare close).
    pub swapped: Probabilities,
}

impl Default for GivenNameComparison {
    fn default() -> Self {
        Self {
            high_similarity: 0.92,
            low_similarity: 0.80,
            exact: p(0.85, 0.006),
            jaro_winkler_high: p(0.05, 0.003),
            other_given_name: p(0.02, 0.002),
            phonetic: p(0.02, 0.005),
            jaro_winkler_low: p(0.01, 0.02),
            initial: p(0.01, 0.05),
            swapped: p(0.01, 0.0001),
        }
    }
}

impl GivenNameComparison {
    pub(crate) fn levels(&self) -> [&Probabilities; 7] {
        [
            &self.exact,
            &self.jaro_winkler_high,
            &self.other_given_name,
            &self.phonetic,
            &self.jaro_winkler_low,
            &self.initial,
            &self.swapped,
        ]
    }
}

/// Family-name comparison: current names, then previous names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct FamilyNameComparison {
    /// Jaro-Winkler similarity at or above which names are "close" (one typo).
    pub high_similarity: f64,
    /// Jaro-Winkler similarity at or above which names are "similar".
    pub low_similarity: f64,
    /// Same current family name.
    pub exact: Probabilities,
    /// Jaro-Winkler at or above `high_similarity`.
    pub jaro_winkler_high: Probabilities,
    /// A previous family name (maiden name, alias) of one side equals a family name of the other.
    pub previous_name: Probabilities,
    /// Double Metaphone codes agree.
    pub phonetic: Probabilities,
    /// Jaro-Winkler at or above `low_similarity`.
    pub jaro_winkler_low: Probabilities,
    /// Given and family names swapped between the records.
    pub swapped: Probabilities,
}

impl Default for FamilyNameComparison {
    fn default() -> Self {
        Self {
            high_similarity: 0.92,
            low_similarity: 0.80,
            exact: p(0.85, 0.002),
            jaro_winkler_high: p(0.06, 0.002),
            previous_name: p(0.02, 0.0005),
            phonetic: p(0.02, 0.003),
            jaro_winkler_low: p(0.01, 0.02),
            swapped: p(0.01, 0.0001),
        }
    }
}

impl FamilyNameComparison {
    pub(crate) fn levels(&self) -> [&Probabilities; 6] {
        [
            &self.exact,
            &self.jaro_winkler_high,
            &self.previous_name,
            &self.phonetic,
            &self.jaro_winkler_low,
            &self.swapped,
        ]
    }
}

/// Date-of-birth comparison.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct BirthDateComparison {
    /// Same date.
    pub exact: Probabilities,
    /// Same year, day and month swapped (US-style keying).
    pub day_month_transposed: Probabilities,
    /// Two of year, month and day agree.
    pub one_component_different: Probabilities,
}

impl Default for BirthDateComparison {
    fn default() -> Self {
        Self {
            // About 31,000 dates of birth are in use (85 years of 365 days).
            exact: p(0.93, 0.000_03),
            day_month_transposed: p(0.01, 0.000_03),
            one_component_different: p(0.03, 0.004),
        }
    }
}

impl BirthDateComparison {
    pub(crate) fn levels(&self) -> [&Probabilities; 3] {
        [
            &self.exact,
            &self.day_month_transposed,
            &self.one_component_different,
        ]
    }
}

/// A comparison with a single agreement level (sex, phone, NHS Number).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgreementComparison {
    /// Values equal.
    pub agree: Probabilities,
}

/// Postcode comparison.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PostcodeComparison {
    /// Same postcode.
    pub exact: Probabilities,
    /// One character inserted, deleted, changed, or two adjacent ones swapped.
    pub one_character_different: Probabilities,
    /// Same GB outward code ("CM20"); `None` where postcodes have no outward code.
    #[serde(default)]
    pub same_outward_code: Option<Probabilities>,
}

impl PostcodeComparison {
    pub(crate) fn levels(&self) -> impl Iterator<Item = &Probabilities> {
        [&self.exact, &self.one_character_different]
            .into_iter()
            .chain(self.same_outward_code.as_ref())
    }
}

/// Address comparison by token overlap (Dice coefficient over fuzzy-matched tokens).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct AddressComparison {
    /// Jaro-Winkler similarity at or above which two tokens count as the same word.
    pub token_similarity: f64,
    /// Overlap at or above which the "high" level applies.
    pub high_overlap: f64,
    /// Overlap at or above which the "medium" level applies.
    pub medium_overlap: f64,
    /// Overlap at or above which the "low" level applies.
    pub low_overlap: f64,
    /// Same tokens.
    pub exact: Probabilities,
    /// Overlap at or above `high_overlap`.
    pub high: Probabilities,
    /// Overlap at or above `medium_overlap`.
    pub medium: Probabilities,
    /// Overlap at or above `low_overlap`.
    pub low: Probabilities,
}

impl Default for AddressComparison {
    fn default() -> Self {
        Self {
            token_similarity: 0.90,
            high_overlap: 0.80,
            medium_overlap: 0.50,
            low_overlap: 0.25,
            exact: p(0.60, 0.000_01),
            high: p(0.15, 0.000_1),
            medium: p(0.10, 0.001),
            low: p(0.05, 0.02),
        }
    }
}

impl AddressComparison {
    pub(crate) fn levels(&self) -> [&Probabilities; 4] {
        [&self.exact, &self.high, &self.medium, &self.low]
    }
}
