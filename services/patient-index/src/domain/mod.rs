//! The patient index's domain, without I/O: checked demographics and the matcher.
//!
//! - Validation ([`PersonDemographics`], [`SearchQuery`], [`LocalIdentifier`], [`NhsNumber`],
//!   [`Postcode`]) turns proto messages into values that satisfy the contract, once, at the
//!   edge. Errors are one type, [`DomainError`], whose `InvalidField` names the field as the
//!   proto does ("demographics.address.postcode"), for an INVALID_ARGUMENT status.
//! - Matching ([`matching`]) decides whether a registration is a person the index already
//!   holds.
//!
//! # The matching model
//!
//! Linking happens in three steps, of which only the first and last touch the store:
//!
//! 1. **Deterministic.** A registration with a verified NHS Number (UK Core 01) links to the
//!    person holding that number, if any.
//! 2. **Blocking.** Otherwise the registration's [`MatchProfile`] gives [`candidate_keys`]
//!    (date of birth, postcode, family-name sound with birth year, name-pair sound); the
//!    store returns the persons indexed under any of them ([`blocking_keys`] says what to
//!    index). A keying error in any single field still leaves a shared key.
//! 3. **Scoring.** [`MatchModel::score`] compares the registration with each candidate in
//!    the Fellegi–Sunter way: each field comparator (Jaro–Winkler and Double Metaphone on
//!    names, swapped names, date-of-birth transpositions and partial agreement, postcode and
//!    outward code, address token overlap, sex, phone, NHS Number) reaches a level whose
//!    weight is `log2(m/u)`; the weights add up to the match weight. At or above the
//!    auto-link threshold the registration joins that person; between review and auto-link
//!    a new person is created and queued as a possible duplicate; below, a new person is
//!    created. Household fields are capped together, and a disagreeing given name or date of
//!    birth withholds an automatic link (twins; father and son), because a wrong link is
//!    worse than a missed one: a missed one reaches a human through the review queue.
//!
//! Each outcome carries the per-field contributions, so every link can be explained.

mod codes;
mod contact;
mod dates;
mod demographics;
mod error;
mod identifier;
pub mod matching;
mod nhs_number;
mod postcode;
mod search_query;
mod text;

#[cfg(test)]
mod demographics_tests;
#[cfg(test)]
mod hostile_properties;

pub use codes::{NhsNumberVerification, Sex};
pub use contact::{Email, MAX_EMAIL_CHARS, MAX_PHONE_CHARS, Phone};
pub use dates::{EARLIEST_DATE, parse_past_date};
pub use demographics::{
    Address, MAX_ADDRESS_LINE_CHARS, MAX_ADDRESS_LINES, MAX_GIVEN_NAMES, MAX_NAME_AFFIX_CHARS,
    MAX_NAME_CHARS, MAX_PREVIOUS_NAMES, PersonDemographics, PersonName,
};
pub use error::DomainError;
pub use identifier::LocalIdentifier;
pub use matching::{
    AutoLinkWithheld, BlockingKey, BlockingKeyKind, FieldContribution, MatchConfig, MatchDecision,
    MatchField, MatchGrade, MatchModel, MatchOutcome, MatchProfile, RegistrationChoice,
    blocking_keys, candidate_keys, choose_registration,
};
pub use nhs_number::{NhsNumber, NhsNumberError};
pub use postcode::{CountryCode, MAX_OTHER_POSTCODE_CHARS, Postcode, PostcodeError};
pub use search_query::SearchQuery;
