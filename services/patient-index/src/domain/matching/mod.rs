//! Probabilistic record comparison in the Fellegi–Sunter style.
//!
//! A query record (a registration or a search) is compared with each candidate the blocking
//! keys found ([`blocking_keys`]). Every field comparator returns an agreement level; each
//! level carries a weight `log2(m/u)` from [`MatchConfig`]; the weights add up to the total
//! match weight, and every term is reported ([`FieldContribution`]) so each decision can be
//! explained. The total is then held against two thresholds: at or above `auto_link` the
//! candidate is linked without a human, at or above `review` the new person is queued as a
//! possible duplicate, below that the candidate is no match. [`choose_registration`] turns
//! the outcomes of all of a registration's candidates into one choice.
//!
//! Two departures from the textbook model, both for precision (a wrong link shows one
//! person's record to another person's clinician; a missed link goes to the review queue):
//! - postcode, address and phone are shared by a household, so together they add at most
//!   `max_household_weight` rather than their independent sum;
//! - some disagreements are what tells family members apart (given name for twins, date of
//!   birth for a father and son of the same name), so by default they withhold the automatic
//!   link whatever the total; the pair goes to review instead ([`AutoLinkWithheld`]).

mod blocking;
mod comparators;
mod config;
mod field_config;
mod names;
mod outcome;
mod profile;
mod registration;

#[cfg(test)]
mod blocking_tests;
#[cfg(test)]
mod comparator_tests;
#[cfg(test)]
mod febrl_tests;
#[cfg(test)]
mod tests;

pub use blocking::{BlockingKey, BlockingKeyKind, blocking_keys, candidate_keys};
pub use comparators::Level;
pub use config::{
    AddressComparison, AgreementComparison, BirthDateComparison, FamilyNameComparison,
    GivenNameComparison, MatchConfig, PostcodeComparison, Probabilities,
};
pub use outcome::{
    AutoLinkWithheld, FieldContribution, MatchDecision, MatchField, MatchGrade, MatchOutcome,
};
pub use profile::{
    AddressToken, MatchProfile, NameKey, PostcodeKey, address_tokens, normalise_name,
};
pub use registration::{RegistrationChoice, choose_registration};

use comparators::{
    Comparison, compare_addresses, compare_birth_dates, compare_equal, compare_postcodes,
};
use config::disagreement_weight;
use names::compare_names;

use crate::domain::DomainError;

/// A checked [`MatchConfig`], ready to score pairs. Cheap to share: build one at start-up.
#[derive(Debug, Clone)]
pub struct MatchModel {
    config: MatchConfig,
}

impl MatchModel {
    /// Checks the configuration; an error names the first unusable setting.
    pub fn new(config: MatchConfig) -> Result<Self, DomainError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The configuration in force.
    pub fn config(&self) -> &MatchConfig {
        &self.config
    }

    /// Compares a query record (a registration or a search) with one candidate person found
    /// through the blocking keys, and decides for that pair. A registration weighs all its
    /// candidates' outcomes together with [`choose_registration`].
    pub fn score(&self, query: &MatchProfile, candidate: &MatchProfile) -> MatchOutcome {
        let config = &self.config;
        let (given, family) =
            compare_names(query, candidate, &config.given_name, &config.family_name);
        let birth_date = compare_birth_dates(query.birth_date, candidate.birth_date);
        let sex = compare_equal(query.sex.as_ref(), candidate.sex.as_ref());
        let postcode = compare_postcodes(query.postcode.as_ref(), candidate.postcode.as_ref());
        let address = compare_addresses(
            &query.address_tokens,
            &candidate.address_tokens,
            &config.address,
        );
        let phone = compare_equal(query.phone_digits.as_ref(), candidate.phone_digits.as_ref());
        let nhs_number = compare_equal(query.nhs_number.as_ref(), candidate.nhs_number.as_ref());
        let both_gb = query
            .postcode
            .as_ref()
            .zip(candidate.postcode.as_ref())
            .is_some_and(|(left, right)| left.country == "GB" && right.country == "GB");

        let mut contributions = vec![
            self.contribution(MatchField::NhsNumber, nhs_number),
            self.contribution(MatchField::FamilyName, family),
            self.contribution(MatchField::GivenName, given),
            self.contribution(MatchField::BirthDate, birth_date),
            self.contribution(MatchField::Sex, sex),
            self.postcode_contribution(postcode, both_gb),
            self.contribution(MatchField::Address, address),
            self.contribution(MatchField::Phone, phone),
        ];
        cap_household_weight(&mut contributions, config.max_household_weight);
        let weight: f64 = contributions
            .iter()
            .map(|contribution| contribution.weight)
            .sum();

        let reaches_auto_link = weight >= config.auto_link_threshold;
        // A guard only matters where the weight alone would have linked.
        let withheld = if reaches_auto_link {
            self.withheld(query, candidate, given.level, birth_date.level)
        } else {
            None
        };
        let both_verified = query.nhs_number_verified && candidate.nhs_number_verified;
        let (decision, withheld) = if both_verified && nhs_number.level == Level::Exact {
            (MatchDecision::AutoLink, None)
        } else if both_verified && nhs_number.level == Level::Disagree {
            // Two traced NHS Numbers are two people, whatever the demographics say.
            (MatchDecision::NoMatch, None)
        } else if reaches_auto_link && withheld.is_none() {
            (MatchDecision::AutoLink, None)
        } else if reaches_auto_link || weight >= config.review_threshold {
            (MatchDecision::Review, withheld)
        } else {
            (MatchDecision::NoMatch, None)
        };
        let grade = match decision {
            MatchDecision::AutoLink => Some(MatchGrade::Certain),
            MatchDecision::Review => Some(MatchGrade::Probable),
            MatchDecision::NoMatch if weight >= config.possible_threshold => {
                Some(MatchGrade::Possible)
            }
            MatchDecision::NoMatch => None,
        };
        let prior_log_odds =
            (config.prior_match_probability / (1.0 - config.prior_match_probability)).log2();
        MatchOutcome {
            weight,
            probability: 1.0 / (1.0 + (-(weight + prior_log_odds)).exp2()),
            decision,
            grade,
            withheld,
            contributions,
        }
    }

    fn withheld(
        &self,
        query: &MatchProfile,
        candidate: &MatchProfile,
        given: Level,
        birth_date: Level,
    ) -> Option<AutoLinkWithheld> {
        let nhs_numbers_differ =
            matches!((&query.nhs_number, &candidate.nhs_number), (Some(a), Some(b)) if a != b);
        if nhs_numbers_differ {
            Some(AutoLinkWithheld::NhsNumbersDiffer)
        } else if self.config.block_auto_link_on_given_name_disagreement
            && self.given_names_conflict(given)
        {
            Some(AutoLinkWithheld::GivenNamesDisagree)
        } else if self.config.block_auto_link_on_birth_date_disagreement
            && birth_date == Level::Disagree
        {
            Some(AutoLinkWithheld::BirthDatesDisagree)
        } else {
            None
        }
    }

    /// Whether given names may belong to two people: they disagree, or agree only loosely
    /// (similar spelling or sound). Twins are often given names like Jack and Jake or Lily
    /// and Lola, which Jaro-Winkler finds similar and Double Metaphone codes alike. A close
    /// spelling (one typo), an initial or a middle name used as first name do not count.
    fn given_names_conflict(&self, given: Level) -> bool {
        match given {
            Level::Disagree | Level::Phonetic => true,
            Level::JaroWinkler(threshold) => threshold < self.config.given_name.high_similarity,
            _ => false,
        }
    }

    fn contribution(&self, field: MatchField, comparison: Comparison) -> FieldContribution {
        let config = &self.config;
        let weight = match (field, comparison.level) {
            (_, Level::Missing) => 0.0,
            (MatchField::GivenName, level) => {
                let given = &config.given_name;
                match level {
                    Level::Exact => given.exact.weight(),
                    Level::JaroWinkler(threshold) if threshold >= given.high_similarity => {
                        given.jaro_winkler_high.weight()
                    }
                    Level::JaroWinkler(_) => given.jaro_winkler_low.weight(),
                    Level::OtherGivenName => given.other_given_name.weight(),
                    Level::Phonetic => given.phonetic.weight(),
                    Level::Initial => given.initial.weight(),
                    Level::SwappedWithFamily => given.swapped.weight(),
                    _ => disagreement_weight(given.levels()),
                }
            }
            (MatchField::FamilyName, level) => {
                let family = &config.family_name;
                match level {
                    Level::Exact => family.exact.weight(),
                    Level::JaroWinkler(threshold) if threshold >= family.high_similarity => {
                        family.jaro_winkler_high.weight()
                    }
                    Level::JaroWinkler(_) => family.jaro_winkler_low.weight(),
                    Level::PreviousName => family.previous_name.weight(),
                    Level::Phonetic => family.phonetic.weight(),
                    Level::SwappedWithGiven => family.swapped.weight(),
                    _ => disagreement_weight(family.levels()),
                }
            }
            (MatchField::BirthDate, level) => {
                let birth = &config.birth_date;
                match level {
                    Level::Exact => birth.exact.weight(),
                    Level::DayMonthTransposed => birth.day_month_transposed.weight(),
                    Level::OneComponentDifferent => birth.one_component_different.weight(),
                    _ => disagreement_weight(birth.levels()),
                }
            }
            (MatchField::Address, level) => {
                let address = &config.address;
                match level {
                    Level::Exact => address.exact.weight(),
                    Level::TokenOverlap(threshold) if threshold >= address.high_overlap => {
                        address.high.weight()
                    }
                    Level::TokenOverlap(threshold) if threshold >= address.medium_overlap => {
                        address.medium.weight()
                    }
                    Level::TokenOverlap(_) => address.low.weight(),
                    _ => disagreement_weight(address.levels()),
                }
            }
            (MatchField::Sex, level) => agreement_weight(&config.sex, level),
            (MatchField::Phone, level) => agreement_weight(&config.phone, level),
            (MatchField::NhsNumber, level) => agreement_weight(&config.nhs_number, level),
            // Postcodes go through postcode_contribution, which knows the country.
            (MatchField::Postcode, _) => 0.0,
        };
        FieldContribution {
            field,
            level: comparison.level,
            similarity: comparison.similarity,
            weight,
            capped: false,
        }
    }

    fn postcode_contribution(&self, comparison: Comparison, both_gb: bool) -> FieldContribution {
        let postcode = if both_gb {
            &self.config.postcode_gb
        } else {
            &self.config.postcode_other
        };
        let weight = match comparison.level {
            Level::Missing => 0.0,
            Level::Exact => postcode.exact.weight(),
            Level::OneCharacterDifferent => postcode.one_character_different.weight(),
            Level::SameOutwardCode => postcode
                .same_outward_code
                .map_or(0.0, |level| level.weight()),
            _ => disagreement_weight(postcode.levels()),
        };
        FieldContribution {
            field: MatchField::Postcode,
            level: comparison.level,
            similarity: comparison.similarity,
            weight,
            capped: false,
        }
    }
}

fn agreement_weight(comparison: &AgreementComparison, level: Level) -> f64 {
    match level {
        Level::Missing => 0.0,
        Level::Exact => comparison.agree.weight(),
        _ => disagreement_weight([&comparison.agree]),
    }
}

/// Scales the positive household weights (postcode, address, phone) down so they add up to at
/// most `cap`; disagreements keep their full (negative) weight.
fn cap_household_weight(contributions: &mut [FieldContribution], cap: f64) {
    let is_household = |field: MatchField| {
        matches!(
            field,
            MatchField::Postcode | MatchField::Address | MatchField::Phone
        )
    };
    let positive: f64 = contributions
        .iter()
        .filter(|contribution| is_household(contribution.field) && contribution.weight > 0.0)
        .map(|contribution| contribution.weight)
        .sum();
    if positive <= cap {
        return;
    }
    let scale = cap / positive;
    for contribution in contributions.iter_mut() {
        if is_household(contribution.field) && contribution.weight > 0.0 {
            contribution.weight *= scale;
            contribution.capped = true;
        }
    }
}
