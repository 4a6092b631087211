//! The matching configuration: thresholds and the m/u probabilities the weights come from.
//!
//! Every comparison has ordered agreement levels, each with
//! - `m`: the probability that a true match reaches that level, and
//! - `u`: the probability that two different people reach it by chance.
//!
//! A level's weight is `log2(m / u)`. Disagreement is what is left over: its weight is
//! `log2((1 - Σm) / (1 - Σu))` over the field's levels, which for a single level is the
//! classic `log2((1 - m) / (1 - u))`. A field missing on either side weighs 0.
//!
//! The defaults are set from what is known about UK registers rather than fitted to one data
//! set: name frequencies (a common given name is ~2% of people, so `u` for exact given-name
//! agreement is ~0.006; family names are more varied), about 31,000 possible birth dates in
//! use, ~15 households per full postcode, and the error rates of keyed records (a name typo in
//! a few percent of records, moves of house far more often than changes of birth date).
//!
//! # How the defaults decide
//!
//! Auto-link at 26, review at 18, household (postcode + address + phone) capped at 14. With
//! every field present, weights rounded:
//!
//! | pair | weight | decision |
//! |---|---|---|
//! | same name, date of birth, sex and household | 7.2 + 8.7 + 14.9 + 1.0 + 14 = 45.8 | auto-link |
//! | one typo in the given name | 4.1 + 8.7 + 14.9 + 1.0 + 14 = 42.7 | auto-link |
//! | day and month of birth transposed | 7.2 + 8.7 + 8.4 + 1.0 + 14 = 39.3 | auto-link |
//! | name, date of birth and sex, no address held | 7.2 + 8.7 + 14.9 + 1.0 = 31.8 | auto-link |
//! | the same after a move (postcode and address disagree) | 31.8 − 2.9 − 3.3 = 25.5 | review |
//! | twins: given names disagree | −4.9 + 8.7 + 14.9 + 1.0 + 14 = 33.7 | review (guard) |
//! | father and son: dates of birth disagree | 7.2 + 8.7 − 5.1 + 1.0 + 14 = 25.8 | review |
//! | siblings: given names and dates of birth disagree | −4.9 + 8.7 − 5.1 + 1.0 + 14 = 13.7 | no match |
//!
//! Known gaps: the `u` of a name is an average, so a very common name (John Smith) weighs
//! more than it should (term-frequency adjustment would need name counts from the store);
//! and a record without a date of birth that agrees on full name and household links, which
//! a father and son of the same name would also do.

use serde::Deserialize;

pub use super::field_config::{
    AddressComparison, AgreementComparison, BirthDateComparison, FamilyNameComparison,
    GivenNameComparison, PostcodeComparison,
};
use crate::domain::DomainError;

/// The `m` and `u` probabilities of one agreement level.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Probabilities {
    /// P(level | same person).
    pub m: f64,
    /// P(level | different people).
    pub u: f64,
}

/// Shorthand for the defaults.
pub(crate) const fn p(m: f64, u: f64) -> Probabilities {
    Probabilities { m, u }
}

impl Probabilities {
    /// `log2(m / u)`.
    pub fn weight(&self) -> f64 {
        (self.m / self.u).log2()
    }
}

/// Disagreement weight of a field whose agreement levels are `levels`.
pub(crate) fn disagreement_weight<'a>(levels: impl IntoIterator<Item = &'a Probabilities>) -> f64 {
    let (sum_m, sum_u) = levels
        .into_iter()
        .fold((0.0, 0.0), |(m, u), level| (m + level.m, u + level.u));
    ((1.0 - sum_m) / (1.0 - sum_u)).log2()
}

/// Thresholds, guards and comparison probabilities of the matcher; the `matching` section of
/// the service's settings. Every field has a default (`#[serde(default)]`), so a file need
/// only name what it changes. Check it with [`super::MatchModel::new`] before use.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MatchConfig {
    /// Total weight at or above which a candidate is linked automatically (grade certain).
    pub auto_link_threshold: f64,
    /// Total weight at or above which a candidate is queued for review (grade probable).
    pub review_threshold: f64,
    /// Total weight at or above which a candidate is still shown by a search (grade possible).
    pub possible_threshold: f64,
    /// Prior probability that a compared pair is the same person, for the reported match
    /// probability only (decisions use the weight). The `u` probabilities describe pairs of
    /// people drawn from the whole population, so the prior is about one over its size
    /// (1.5 million in West Essex and Hertfordshire).
    pub prior_match_probability: f64,
    /// Most weight postcode, address and phone may add together. They agree for everyone in a
    /// household, so summed as if independent they would let a household member pass for the
    /// person; capped, they say "same household" once.
    pub max_household_weight: f64,
    /// Withhold an automatic link when both records have a given name and they disagree or
    /// agree only loosely (by sound, or below the high Jaro-Winkler similarity): twins share
    /// surname, address and date of birth and differ only there, often by names like Jack and
    /// Jake.
    pub block_auto_link_on_given_name_disagreement: bool,
    /// Withhold an automatic link when both records have a date of birth and they disagree:
    /// a father and son of the same name at the same address differ only there.
    pub block_auto_link_on_birth_date_disagreement: bool,
    /// Given name.
    pub given_name: GivenNameComparison,
    /// Family name (and previous names).
    pub family_name: FamilyNameComparison,
    /// Date of birth.
    pub birth_date: BirthDateComparison,
    /// Sex (male, female, other; "unknown" counts as missing).
    pub sex: AgreementComparison,
    /// Postcode when both are GB postcodes (~15 households each).
    pub postcode_gb: PostcodeComparison,
    /// Postcode for any other country (often a whole town or suburb).
    pub postcode_other: PostcodeComparison,
    /// Address lines and city.
    pub address: AddressComparison,
    /// Telephone.
    pub phone: AgreementComparison,
    /// NHS Number (both present).
    pub nhs_number: AgreementComparison,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            auto_link_threshold: 26.0,
            review_threshold: 18.0,
            possible_threshold: 8.0,
            prior_match_probability: 1e-6,
            max_household_weight: 14.0,
            block_auto_link_on_given_name_disagreement: true,
            block_auto_link_on_birth_date_disagreement: true,
            given_name: GivenNameComparison::default(),
            family_name: FamilyNameComparison::default(),
            birth_date: BirthDateComparison::default(),
            sex: AgreementComparison {
                agree: p(0.97, 0.5),
            },
            postcode_gb: PostcodeComparison {
                exact: p(0.80, 0.000_03),
                one_character_different: p(0.02, 0.000_3),
                same_outward_code: Some(p(0.05, 0.003)),
            },
            postcode_other: PostcodeComparison {
                exact: p(0.80, 0.001),
                one_character_different: p(0.05, 0.01),
                same_outward_code: None,
            },
            address: AddressComparison::default(),
            // Landlines are shared by a household and numbers change often: strong when equal,
            // weak when not.
            phone: AgreementComparison {
                agree: p(0.50, 0.000_001),
            },
            // Different numbers for one person happen (temporary numbers, keying slips the
            // check digit missed) but rarely.
            nhs_number: AgreementComparison {
                agree: p(0.99, 0.000_000_001),
            },
        }
    }
}

impl MatchConfig {
    /// Checks every probability and threshold, naming the first bad setting.
    pub fn validate(&self) -> Result<(), DomainError> {
        let checks: [(&'static str, Vec<&Probabilities>); 9] = [
            ("given_name", self.given_name.levels().to_vec()),
            ("family_name", self.family_name.levels().to_vec()),
            ("birth_date", self.birth_date.levels().to_vec()),
            ("sex", vec![&self.sex.agree]),
            ("phone", vec![&self.phone.agree]),
            ("nhs_number", vec![&self.nhs_number.agree]),
            ("address", self.address.levels().to_vec()),
            ("postcode_gb", self.postcode_gb.levels().collect()),
            ("postcode_other", self.postcode_other.levels().collect()),
        ];
        for (field, levels) in &checks {
            check_levels(field, levels)?;
        }
        let similarities = [
            (
                "given_name",
                self.given_name.low_similarity,
                self.given_name.high_similarity,
            ),
            (
                "family_name",
                self.family_name.low_similarity,
                self.family_name.high_similarity,
            ),
            (
                "address",
                self.address.low_overlap,
                self.address.medium_overlap,
            ),
            (
                "address",
                self.address.medium_overlap,
                self.address.high_overlap,
            ),
        ];
        for (field, low, high) in similarities {
            if !(0.0 < low && low <= high && high <= 1.0) {
                return Err(DomainError::config(
                    field,
                    "similarity thresholds must satisfy 0 < low <= high <= 1",
                ));
            }
        }
        if !(0.0 < self.address.token_similarity && self.address.token_similarity <= 1.0) {
            return Err(DomainError::config(
                "address.token_similarity",
                "must be in (0, 1]",
            ));
        }
        let thresholds_ordered = self.auto_link_threshold >= self.review_threshold
            && self.review_threshold >= self.possible_threshold
            && self.possible_threshold.is_finite()
            && self.auto_link_threshold.is_finite();
        if !thresholds_ordered {
            return Err(DomainError::config(
                "auto_link_threshold",
                "thresholds must be finite and auto_link >= review >= possible",
            ));
        }
        if !(self.prior_match_probability > 0.0 && self.prior_match_probability < 1.0) {
            return Err(DomainError::config(
                "prior_match_probability",
                "must be strictly between 0 and 1",
            ));
        }
        if !(self.max_household_weight > 0.0 && self.max_household_weight.is_finite()) {
            return Err(DomainError::config(
                "max_household_weight",
                "must be a positive number",
            ));
        }
        Ok(())
    }
}

fn check_levels(field: &'static str, levels: &[&Probabilities]) -> Result<(), DomainError> {
    for level in levels {
        let in_range = |value: f64| value > 0.0 && value < 1.0;
        if !in_range(level.m) || !in_range(level.u) {
            return Err(DomainError::config(
                field,
                "every m and u must be strictly between 0 and 1",
            ));
        }
    }
    let sum_m: f64 = levels.iter().map(|level| level.m).sum();
    let sum_u: f64 = levels.iter().map(|level| level.u).sum();
    if sum_m >= 1.0 || sum_u >= 1.0 {
        return Err(DomainError::config(
            field,
            "the m (and the u) of a field's levels must sum to less than 1, leaving room for disagreement",
        ));
    }
    Ok(())
}
