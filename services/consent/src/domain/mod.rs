//! Consent's rules, free of I/O: input checks, the decision over a person's
//! facts, the access policy and the FHIR view of the facts.

pub mod decide;
pub mod facts;
pub mod fhir;
pub mod policy;
pub mod validate;

use mcr_proto::common::v1::Category;

pub use decide::{DecideInput, Decision, decide};
pub use facts::*;
pub use policy::{AccessPolicy, PolicyError};
pub use validate::DomainError;

/// The ten categories, in contract order.
pub const ALL_CATEGORIES: [Category; 10] = [
    Category::Demographics,
    Category::Medications,
    Category::TestResults,
    Category::Correspondence,
    Category::ClinicalHistory,
    Category::EmergencyCare,
    Category::Appointments,
    Category::PlansAndAlerts,
    Category::MentalHealth,
    Category::SocialCare,
];

/// Purpose of use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Direct care (HL7 TREAT).
    DirectCare,
    /// Emergency treatment (HL7 ETREAT); needs a break-glass grant.
    Emergency,
}

impl Purpose {
    /// HL7 v3 PurposeOfUse code.
    pub fn code(self) -> &'static str {
        match self {
            Purpose::DirectCare => "TREAT",
            Purpose::Emergency => "ETREAT",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Purpose::DirectCare => 0,
            Purpose::Emergency => 1,
        }
    }
}

/// A set of categories as a bit mask (bit n = category value n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CategorySet(u16);

impl CategorySet {
    /// No category.
    pub const EMPTY: CategorySet = CategorySet(0);
    /// All ten.
    pub const ALL: CategorySet = CategorySet(0b111_1111_1110);

    /// The categories in `categories`; an empty slice means all ten.
    pub fn from_list_or_all(categories: &[Category]) -> Self {
        if categories.is_empty() {
            return Self::ALL;
        }
        let mut set = Self::EMPTY;
        for category in categories {
            set.insert(*category);
        }
        set
    }

    /// Adds `category` (UNSPECIFIED is ignored).
    pub fn insert(&mut self, category: Category) {
        if category != Category::Unspecified {
            self.0 |= 1 << (category as i32);
        }
    }

    /// Whether `category` is in the set.
    pub fn contains(self, category: Category) -> bool {
        category != Category::Unspecified && self.0 & (1 << (category as i32)) != 0
    }

    /// Removes `category`.
    pub fn remove(&mut self, category: Category) {
        self.0 &= !(1 << (category as i32));
    }

    /// Categories in both.
    pub fn intersection(self, other: CategorySet) -> CategorySet {
        CategorySet(self.0 & other.0)
    }

    /// Categories in either.
    pub fn union(self, other: CategorySet) -> CategorySet {
        CategorySet(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The categories, in contract order.
    pub fn to_vec(self) -> Vec<Category> {
        ALL_CATEGORIES
            .into_iter()
            .filter(|category| self.contains(*category))
            .collect()
    }
}

/// The category's name without its prefix: `MENTAL_HEALTH`.
pub fn category_name(category: Category) -> &'static str {
    let name = category.as_str_name();
    name.strip_prefix("CATEGORY_").unwrap_or(name)
}

/// A date for human text: `2026-11-25`.
pub fn date_text(at: time::OffsetDateTime) -> String {
    let date = at.date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}
