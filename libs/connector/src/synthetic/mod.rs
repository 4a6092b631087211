//! A deterministic synthetic region: organisations in the style of
//! DESIGN.md, people with valid NHS Numbers, and their histories across all
//! ten categories as `RecordUpdate`s that pass [`crate::validate`].
//!
//! The same seed and size always give the same region, byte for byte.
//! People and histories are generated on demand, so a region of a million
//! people costs no memory until it is iterated.
//!
//! ```
//! use mcr_connector::synthetic::Region;
//!
//! let region = Region::generate(7, 100);
//! let updates: Vec<_> = region.updates().collect();
//! assert!(updates.len() > 100);
//! assert!(updates.iter().all(|u| mcr_connector::validate::validate_update(u).is_ok()));
//! ```

mod calendar;
mod fhir;
mod history;
mod organisations;
mod people;
mod random;
#[cfg(test)]
mod tests;

use mcr_proto::records::v1::RecordUpdate;

pub use organisations::{ORGANISATIONS, Organisation};
pub use people::Person;

/// 2026-01-01T00:00:00Z: "now" inside every synthetic region, so a seed
/// gives the same region whenever it is generated. Histories lie before it;
/// booked appointments up to six months after it.
pub const ANCHOR_SECONDS: i64 = 1_767_225_600;

/// A synthetic region: its organisations and `persons` people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    seed: u64,
    persons: usize,
}

impl Region {
    /// The region of `persons` people generated from `seed`.
    pub fn generate(seed: u64, persons: usize) -> Self {
        Self { seed, persons }
    }

    /// The organisations of the region (the same in every region).
    pub fn organisations(&self) -> &'static [Organisation] {
        ORGANISATIONS
    }

    /// How many people the region has.
    pub fn len(&self) -> usize {
        self.persons
    }

    /// Whether the region has nobody.
    pub fn is_empty(&self) -> bool {
        self.persons == 0
    }

    /// The person at `index`, or `None` past the end.
    pub fn person(&self, index: usize) -> Option<Person> {
        (index < self.persons).then(|| Person::generate(self.seed, index, ANCHOR_SECONDS))
    }

    /// Every person, in order.
    pub fn persons(&self) -> impl Iterator<Item = Person> + '_ {
        (0..self.persons).map(|index| Person::generate(self.seed, index, ANCHOR_SECONDS))
    }

    /// The updates every organisation publishes about `person`, in the
    /// order they would publish them (a version 2 after its version 1).
    pub fn updates_of(&self, person: &Person) -> Vec<RecordUpdate> {
        history::of(person, self.seed, ANCHOR_SECONDS)
    }

    /// Every update of the region, person by person.
    pub fn updates(&self) -> Updates<'_> {
        Updates {
            region: self,
            next_person: 0,
            pending: Vec::new().into_iter(),
        }
    }
}

/// The updates of a region, generated person by person as they are taken.
#[derive(Debug)]
pub struct Updates<'r> {
    region: &'r Region,
    next_person: usize,
    pending: std::vec::IntoIter<RecordUpdate>,
}

impl Iterator for Updates<'_> {
    type Item = RecordUpdate;

    fn next(&mut self) -> Option<RecordUpdate> {
        loop {
            if let Some(update) = self.pending.next() {
                return Some(update);
            }
            let person = self.region.person(self.next_person)?;
            self.next_person += 1;
            self.pending = self.region.updates_of(&person).into_iter();
        }
    }
}
