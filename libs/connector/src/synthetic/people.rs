//! Synthetic people: names, dates of birth, West Essex and Hertfordshire
//! addresses, NHS Numbers in the 9xx range (never issued to real people)
//! and the identifier each organisation knows them by.

use mcr_proto::common::v1::{Address, HumanName, LocalIdentifier, OrganisationType};
use mcr_proto::patient_index::v1::{Demographics, NhsNumberVerificationStatus, Sex};

use super::calendar::{SECONDS_PER_DAY, iso_date};
use super::organisations::{Organisation, practices_in};
use super::random::Random;

const FEMALE_NAMES: &[&str] = &[
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Sophia", "Lily", "Freya", "Emily",
    "Margaret", "Patricia", "Susan", "Janet", "Linda", "Jean", "Priya", "Aisha", "Fatima", "Zofia",
    "Chloe", "Hannah", "Ruth", "Doreen", "Eileen",
];
const MALE_NAMES: &[&str] = &[
    "Oliver", "George", "Noah", "Arthur", "Harry", "Leo", "Jack", "Charlie", "Oscar", "Jacob",
    "David", "John", "Peter", "Michael", "Robert", "Brian", "Mohammed", "Arjun", "Tomasz", "Kwame",
    "Daniel", "Samuel", "Kenneth", "Roy", "Derek",
];
const FAMILY_NAMES: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Khan", "Ahmed", "Begum", "Nowak", "Mensah", "O'Brien", "Hughes",
    "Edwards", "Turner", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King",
    "Baker", "Harrison",
];
const STREETS: &[&str] = &[
    "High Street",
    "Station Road",
    "Church Lane",
    "Mill Road",
    "London Road",
    "The Maltings",
    "Fourth Avenue",
    "Priory Avenue",
    "Water Lane",
    "Hare Street",
    "Parsonage Lane",
    "Cambridge Road",
    "North Road",
    "Fore Street",
    "Bury Green",
];

/// Towns, their county and postcode districts.
const TOWNS: &[(&str, &str, &[&str])] = &[
    ("Harlow", "Essex", &["CM17", "CM18", "CM19", "CM20"]),
    ("Epping", "Essex", &["CM16"]),
    ("Waltham Abbey", "Essex", &["EN9"]),
    ("Bishop's Stortford", "Hertfordshire", &["CM22", "CM23"]),
    ("Hertford", "Hertfordshire", &["SG13", "SG14"]),
    ("Stevenage", "Hertfordshire", &["SG1", "SG2"]),
    ("Ware", "Hertfordshire", &["SG12"]),
];

/// Letters allowed in the inward part of a UK postcode.
const INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// One synthetic person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Position in the region (0-based).
    pub index: usize,
    /// NHS Number, ten digits with a valid check digit.
    pub nhs_number: String,
    /// Given name.
    pub given: &'static str,
    /// Family name.
    pub family: &'static str,
    /// Administrative sex (male or female).
    pub sex: Sex,
    /// Date of birth as seconds since the epoch (midnight UTC).
    pub birth_seconds: i64,
    /// House number and street.
    pub address_line: String,
    /// Town.
    pub city: &'static str,
    /// County ("Essex" or "Hertfordshire").
    pub county: &'static str,
    /// Postcode, e.g. "CM20 1QX".
    pub postcode: String,
    /// Mobile number from the range Ofcom keeps for drama.
    pub phone: String,
    /// Sensitive (PDS "S" flag): about one person in a hundred.
    pub sensitive: bool,
    /// The GP practice the person is registered with.
    pub practice: &'static Organisation,
}

impl Person {
    /// The person at `index` of the region generated from `seed`; the same
    /// arguments always give the same person.
    pub(crate) fn generate(seed: u64, index: usize, anchor: i64) -> Self {
        let mut random = Random::derive(seed, (index as u64) << 1);
        let sex = if random.chance(51) {
            Sex::Female
        } else {
            Sex::Male
        };
        let given = if sex == Sex::Female {
            random.pick(FEMALE_NAMES)
        } else {
            random.pick(MALE_NAMES)
        };
        let family = random.pick(FAMILY_NAMES);
        // Ages 0-95, weighted towards adults like a real list.
        let age_days = if random.chance(20) {
            random.between(30, 18 * 365)
        } else {
            random.between(18 * 365, 95 * 365)
        };
        let birth_day = anchor / SECONDS_PER_DAY - age_days;
        let (city, county, districts) = *random.pick(TOWNS);
        let district = random.pick(districts);
        let postcode = format!(
            "{district} {}{}{}",
            random.below(10),
            char::from(*random.pick(INWARD_LETTERS)),
            char::from(*random.pick(INWARD_LETTERS))
        );
        let practices: Vec<&'static Organisation> = practices_in(county).collect();
        let practice = *random.pick(&practices);
        Self {
            index,
            nhs_number: nhs_number_for(index),
            given,
            family,
            sex,
            birth_seconds: birth_day * SECONDS_PER_DAY,
            address_line: format!("{} {}", random.between(1, 180), random.pick(STREETS)),
            city,
            county,
            postcode,
            phone: format!("07700 900{:03}", random.below(1000)),
            sensitive: random.chance(1),
            practice,
        }
    }

    /// Date of birth "YYYY-MM-DD".
    pub fn birth_date(&self) -> String {
        iso_date(self.birth_seconds)
    }

    /// Age in whole years at `at` (seconds since the epoch), roughly.
    pub fn age_at(&self, at: i64) -> i64 {
        (at - self.birth_seconds) / (365 * SECONDS_PER_DAY + SECONDS_PER_DAY / 4)
    }

    /// "Given Family".
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given, self.family)
    }

    /// The identifier `organisation` knows the person by: a prefix by kind
    /// of organisation and the person's position, unique within it.
    pub fn local_identifier(&self, organisation: &Organisation) -> LocalIdentifier {
        let prefix = match organisation.organisation_type {
            OrganisationType::GpPractice => "P",
            OrganisationType::AcuteTrust => "H",
            OrganisationType::MentalHealthTrust => "M",
            OrganisationType::CommunityTrust => "C",
            OrganisationType::AmbulanceTrust => "A",
            OrganisationType::Nhs111Provider => "T",
            OrganisationType::OutOfHours => "O",
            OrganisationType::LocalAuthoritySocialCare => "S",
            _ => "X",
        };
        LocalIdentifier {
            organisation_code: organisation.code.to_owned(),
            system: organisation.identifier_system.to_owned(),
            value: format!("{prefix}{:08}", self.index),
        }
    }

    /// The demographics every organisation sends with its updates.
    pub fn demographics(&self) -> Demographics {
        Demographics {
            nhs_number: self.nhs_number.clone(),
            nhs_number_verification_status: NhsNumberVerificationStatus::PresentAndVerified as i32,
            name: Some(HumanName {
                given: vec![self.given.to_owned()],
                family: self.family.to_owned(),
                ..Default::default()
            }),
            birth_date: self.birth_date(),
            sex: self.sex as i32,
            address: Some(Address {
                lines: vec![self.address_line.clone()],
                city: self.city.to_owned(),
                district: self.county.to_owned(),
                postcode: self.postcode.clone(),
                country: "GB".to_owned(),
            }),
            phone: self.phone.clone(),
            sensitive: self.sensitive,
            ..Default::default()
        }
    }
}

/// A distinct valid NHS Number per index: the stems of consecutive persons
/// lie 13 apart from 900 000 000, and within those 13 at least one has a
/// valid check digit (a check value of 10 rules out about one in eleven).
/// Distinct for the first 7,692,307 people — five times the region DESIGN.md
/// plans for.
fn nhs_number_for(index: usize) -> String {
    let base = 900_000_000u32.saturating_add((index as u32).saturating_mul(13));
    (base..base.saturating_add(13))
        .find_map(crate::nhs_number::from_stem)
        .unwrap_or_else(|| "9000000009".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::ANCHOR_SECONDS;

    #[test]
    fn people_are_deterministic_and_have_valid_nhs_numbers() {
        let mut numbers = std::collections::HashSet::new();
        for index in 0..2_000 {
            let person = Person::generate(42, index, ANCHOR_SECONDS);
            assert_eq!(person, Person::generate(42, index, ANCHOR_SECONDS));
            assert!(crate::nhs_number::is_valid(&person.nhs_number));
            assert!(person.nhs_number.starts_with('9'));
            assert!(
                numbers.insert(person.nhs_number.clone()),
                "duplicate number"
            );
            assert_eq!(person.practice.county, person.county);
            assert!(person.birth_seconds < ANCHOR_SECONDS);
        }
    }

    #[test]
    fn each_organisation_has_its_own_identifier_for_a_person() {
        let person = Person::generate(1, 17, ANCHOR_SECONDS);
        let identifier = person.local_identifier(person.practice);
        assert_eq!(identifier.organisation_code, person.practice.code);
        assert_eq!(identifier.value, "P00000017");
    }
}
