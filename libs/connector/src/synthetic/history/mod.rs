//! One person's history across the region: what each organisation that
//! knows them publishes, in the order it would publish it.

use mcr_proto::common::v1::{Category, OrganisationType};
use mcr_proto::consent::v1::CareRelationshipType;
use mcr_proto::records::v1::RecordUpdate;
use serde_json::Value;

use super::calendar::SECONDS_PER_DAY;
use super::fhir::{self, Code};
use super::organisations::{Organisation, the};
use super::people::Person;
use super::random::Random;
use crate::builder::RecordUpdateBuilder;

mod providers;

const YEAR: i64 = 365 * SECONDS_PER_DAY;

/// A care relationship an update carries: kind, provider reference, start
/// and end.
type Carried = (CareRelationshipType, String, i64, Option<i64>);

struct History<'p> {
    person: &'p Person,
    random: Random,
    anchor: i64,
    updates: Vec<RecordUpdate>,
    sequence: usize,
}

/// Every update of `person`, deterministic in `seed`.
pub(crate) fn of(person: &Person, seed: u64, anchor: i64) -> Vec<RecordUpdate> {
    let mut history = History {
        person,
        random: Random::derive(seed, ((person.index as u64) << 1) | 1),
        anchor,
        updates: Vec::with_capacity(24),
        sequence: 0,
    };
    let shared_medicine = history.gp();
    let age = person.age_at(anchor);
    if history.random.chance(45) {
        history.acute(shared_medicine);
    }
    if history.random.chance(6) {
        history.mental_health();
    }
    if history.random.chance(if age >= 70 { 40 } else { 10 }) {
        history.community();
    }
    for (kind, percent) in [
        (OrganisationType::AmbulanceTrust, 6),
        (OrganisationType::Nhs111Provider, 10),
        (OrganisationType::OutOfHours, 6),
    ] {
        if history.random.chance(percent) {
            history.urgent_care(the(kind));
        }
    }
    if history.random.chance(if age >= 65 { 20 } else { 2 }) {
        history.social_care();
    }
    history.updates
}

impl History<'_> {
    /// The GP record; returns the long-term medicine and its start, which
    /// the hospital may report too (the same fact from two sources).
    fn gp(&mut self) -> Option<(Code, i64)> {
        let practice = self.person.practice;
        let local = self.local(practice);
        let registered = self.past(20);
        let patient = fhir::patient(self.person, &local);
        let registration = (
            CareRelationshipType::Registration,
            format!("reg-{local}"),
            registered,
            None,
        );
        self.upsert(
            practice,
            Category::Demographics,
            &format!("patient-{local}"),
            1,
            registered,
            patient,
            "Registered patient details".to_owned(),
            Some(registration),
        );

        let age = self.person.age_at(self.anchor);
        let conditions = if age >= 60 {
            self.random.below(4)
        } else if age >= 18 {
            self.random.below(2)
        } else {
            0
        };
        let mut shared = None;
        for _ in 0..conditions {
            let (problem, medicine) = *self.random.pick(fhir::LONG_TERM_CONDITIONS);
            let onset = self.past(10);
            let id = self.entry_id("cond");
            let resource = fhir::condition(&id, self.person, &local, problem, onset);
            self.upsert(
                practice,
                Category::ClinicalHistory,
                &id,
                1,
                onset,
                resource,
                problem.display.to_owned(),
                None,
            );
            let started = onset + self.random.between(0, 30) * SECONDS_PER_DAY;
            let id = self.entry_id("med");
            let resource =
                fhir::medication_statement(&id, self.person, &local, medicine, started, "active");
            self.upsert(
                practice,
                Category::Medications,
                &id,
                1,
                day_start(started),
                resource,
                medicine.display.to_owned(),
                None,
            );
            if self.random.chance(15) {
                // Stopped later: the same entry at version 2.
                let resource = fhir::medication_statement(
                    &id,
                    self.person,
                    &local,
                    medicine,
                    started,
                    "completed",
                );
                self.upsert(
                    practice,
                    Category::Medications,
                    &id,
                    2,
                    day_start(started),
                    resource,
                    format!("{} (stopped)", medicine.display),
                    None,
                );
            } else {
                shared = Some((medicine, started));
            }
        }
        if self.random.chance(30) {
            let medicine = *self.random.pick(fhir::SHORT_COURSES);
            let started = self.past(2);
            let id = self.entry_id("med");
            let resource = fhir::medication_statement(
                &id,
                self.person,
                &local,
                medicine,
                started,
                "completed",
            );
            self.upsert(
                practice,
                Category::Medications,
                &id,
                1,
                day_start(started),
                resource,
                medicine.display.to_owned(),
                None,
            );
        }
        for _ in 0..self.random.below(3) {
            let measured = *self.random.pick(fhir::GP_MEASURES);
            let at = self.past(3);
            let value = self.random.between(measured.low, measured.high);
            let id = self.entry_id("obs");
            let resource =
                fhir::observation(&id, self.person, &local, measured, value, at, "vital-signs");
            self.upsert(
                practice,
                Category::TestResults,
                &id,
                1,
                at,
                resource,
                format!("{} {value} {}", measured.code.display, measured.unit),
                None,
            );
            if self.random.chance(3) {
                // Recorded against the wrong patient: withdrawn.
                self.delete(practice, Category::TestResults, &id, 2, "Observation");
            }
        }
        if self.random.chance(25) {
            let allergen = *self.random.pick(fhir::ALLERGENS);
            let recorded = self.past(15);
            let id = self.entry_id("alg");
            let resource = fhir::allergy(&id, self.person, &local, allergen, recorded);
            self.upsert(
                practice,
                Category::PlansAndAlerts,
                &id,
                1,
                recorded,
                resource,
                format!("Allergy: {}", allergen.display),
                None,
            );
        }
        let future = self.random.chance(40);
        let start = if future {
            self.future(60)
        } else {
            self.past(1)
        };
        self.appointment(
            practice,
            &local,
            "GP appointment",
            start,
            10,
            future,
            future,
        );
        shared
    }

    /// An appointment; `carries` when it makes the organisation directly
    /// involved (not for another provider's appointment the GP notes).
    #[allow(clippy::too_many_arguments)]
    fn appointment(
        &mut self,
        organisation: &Organisation,
        local: &str,
        description: &str,
        start: i64,
        minutes: i64,
        future: bool,
        carries: bool,
    ) {
        let id = self.entry_id("appt");
        let status = if future { "booked" } else { "fulfilled" };
        let resource =
            fhir::appointment(&id, self.person, local, description, start, minutes, status);
        let carried = carries.then(|| {
            (
                CareRelationshipType::ScheduledAppointment,
                id.clone(),
                start,
                None,
            )
        });
        self.upsert(
            organisation,
            Category::Appointments,
            &id,
            1,
            start,
            resource,
            description.to_owned(),
            carried,
        );
    }

    fn vital_sign(&mut self, organisation: &Organisation, local: &str, at: i64) {
        let measured = *self.random.pick(fhir::VITAL_SIGNS);
        let value = self.random.between(measured.low, measured.high);
        let id = self.entry_id("vit");
        let resource =
            fhir::observation(&id, self.person, local, measured, value, at, "vital-signs");
        self.upsert(
            organisation,
            Category::EmergencyCare,
            &id,
            1,
            at,
            resource,
            format!("{} {value} {}", measured.code.display, measured.unit),
            None,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn upsert(
        &mut self,
        organisation: &Organisation,
        category: Category,
        entry_id: &str,
        version: u64,
        effective: i64,
        resource: Value,
        summary: String,
        carried: Option<Carried>,
    ) {
        let mut builder = self
            .start(
                RecordUpdateBuilder::upsert(organisation.code, organisation.system, category),
                organisation,
                entry_id,
                version,
            )
            .effective_time(prost_types::Timestamp {
                seconds: effective,
                nanos: 0,
            })
            .resource(&resource)
            .display_summary(&summary);
        if let Some((kind, reference, start, end)) = carried {
            builder = builder.carries(
                kind,
                &reference,
                prost_types::Timestamp {
                    seconds: start,
                    nanos: 0,
                },
                end.map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
            );
        }
        self.updates.push(builder.build_unchecked());
    }

    fn delete(
        &mut self,
        organisation: &Organisation,
        category: Category,
        entry_id: &str,
        version: u64,
        resource_type: &str,
    ) {
        let builder = self
            .start(
                RecordUpdateBuilder::delete(organisation.code, organisation.system, category),
                organisation,
                entry_id,
                version,
            )
            .resource_type(resource_type);
        self.updates.push(builder.build_unchecked());
    }

    fn start(
        &self,
        builder: RecordUpdateBuilder,
        organisation: &Organisation,
        entry_id: &str,
        version: u64,
    ) -> RecordUpdateBuilder {
        let identifier = self.person.local_identifier(organisation);
        builder
            .patient(&identifier.system, &identifier.value)
            .entry(entry_id, version)
            .demographics(self.person.demographics())
    }

    fn local(&self, organisation: &Organisation) -> String {
        self.person.local_identifier(organisation).value
    }

    /// An entry id unique within the region: kind, person, sequence.
    fn entry_id(&mut self, kind: &str) -> String {
        self.sequence += 1;
        format!("{kind}-{}-{}", self.person.index, self.sequence)
    }

    /// A minute within the last `years` years (not before birth).
    fn past(&mut self, years: i64) -> i64 {
        let earliest =
            (self.anchor - years * YEAR).max(self.person.birth_seconds + SECONDS_PER_DAY);
        let latest = (self.anchor - SECONDS_PER_DAY).max(earliest);
        self.random.between(earliest, latest) / 60 * 60
    }

    /// A quarter hour in working hours within `days` days after the anchor.
    fn future(&mut self, days: i64) -> i64 {
        let day = self.anchor / SECONDS_PER_DAY + self.random.between(1, days.max(1));
        let quarter = self.random.between(9 * 4, 17 * 4);
        day * SECONDS_PER_DAY + quarter * 900
    }
}

/// Midnight UTC of the day of `seconds`: medication dates are dates.
fn day_start(seconds: i64) -> i64 {
    seconds.div_euclid(SECONDS_PER_DAY) * SECONDS_PER_DAY
}
