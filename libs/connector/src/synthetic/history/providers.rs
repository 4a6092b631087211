//! What the organisations other than the GP practice publish: the acute
//! trust, mental health and community trusts, urgent care and councils.

use mcr_proto::common::v1::{Category, OrganisationType};
use mcr_proto::consent::v1::CareRelationshipType;

use super::{History, day_start};
use crate::synthetic::calendar::{SECONDS_PER_DAY, iso_date};
use crate::synthetic::fhir::{self, Code};
use crate::synthetic::organisations::{Organisation, council_of, the};

impl History<'_> {
    pub(super) fn acute(&mut self, shared_medicine: Option<(Code, i64)>) {
        let trust = the(OrganisationType::AcuteTrust);
        let local = self.local(trust);
        let complaint = *self.random.pick(fhir::PRESENTING_COMPLAINTS);
        let arrived = self.past(3);
        let left = arrived + self.random.between(2, 9) * 3_600;
        let id = self.entry_id("ed");
        let resource = fhir::encounter(
            &id,
            self.person,
            &local,
            ("EMER", "emergency"),
            complaint,
            arrived,
            left,
        );
        let carried = (
            CareRelationshipType::EmergencyEncounter,
            id.clone(),
            arrived,
            Some(left),
        );
        self.upsert(
            trust,
            Category::EmergencyCare,
            &id,
            1,
            arrived,
            resource,
            format!("ED attendance: {}", complaint.display),
            Some(carried),
        );
        self.vital_sign(trust, &local, arrived + 900);

        if self.random.chance(35) {
            let admitted = left;
            let discharged = admitted + self.random.between(1, 10) * SECONDS_PER_DAY;
            let id = self.entry_id("spell");
            let resource = fhir::encounter(
                &id,
                self.person,
                &local,
                ("IMP", "inpatient encounter"),
                complaint,
                admitted,
                discharged,
            );
            let carried = (
                CareRelationshipType::Admission,
                id.clone(),
                admitted,
                Some(discharged),
            );
            self.upsert(
                trust,
                Category::ClinicalHistory,
                &id,
                1,
                admitted,
                resource,
                "Inpatient admission".to_owned(),
                Some(carried),
            );
            if self.random.chance(50) {
                let performed = *self.random.pick(fhir::PROCEDURES);
                let at = admitted + SECONDS_PER_DAY / 2;
                let id = self.entry_id("proc");
                let resource = fhir::procedure(&id, self.person, &local, performed, at);
                self.upsert(
                    trust,
                    Category::ClinicalHistory,
                    &id,
                    1,
                    at,
                    resource,
                    performed.display.to_owned(),
                    None,
                );
            }
            let mut results = Vec::new();
            for measured in fhir::LAB_MEASURES {
                let value = self.random.between(measured.low, measured.high);
                let id = self.entry_id("lab");
                let resource = fhir::observation(
                    &id,
                    self.person,
                    &local,
                    *measured,
                    value,
                    admitted + 3_600,
                    "laboratory",
                );
                self.upsert(
                    trust,
                    Category::TestResults,
                    &id,
                    1,
                    admitted + 3_600,
                    resource,
                    format!("{} {value} {}", measured.code.display, measured.unit),
                    None,
                );
                results.push(id);
            }
            let id = self.entry_id("rep");
            let title = Code {
                code: "24323-8",
                display: "Comprehensive metabolic panel",
            };
            let resource = fhir::diagnostic_report(
                &id,
                self.person,
                &local,
                title,
                admitted + 3_600,
                &results,
            );
            self.upsert(
                trust,
                Category::TestResults,
                &id,
                1,
                admitted + 3_600,
                resource,
                "Blood test report".to_owned(),
                None,
            );
            let id = self.entry_id("dis");
            let resource = fhir::composition(
                &id,
                self.person,
                &local,
                trust.name,
                "Discharge summary",
                discharged,
            );
            self.upsert(
                trust,
                Category::Correspondence,
                &id,
                1,
                discharged,
                resource,
                format!("Discharge summary {}", iso_date(discharged)),
                None,
            );
        }
        if let Some((medicine, started)) = shared_medicine
            && self.random.chance(60)
        {
            // The hospital's copy of the GP's medication: same code, same date.
            let id = self.entry_id("med");
            let resource =
                fhir::medication_statement(&id, self.person, &local, medicine, started, "active");
            self.upsert(
                trust,
                Category::Medications,
                &id,
                1,
                day_start(started),
                resource,
                medicine.display.to_owned(),
                None,
            );
        }
        if self.random.chance(50) {
            let future = self.random.chance(50);
            let start = if future {
                self.future(120)
            } else {
                self.past(1)
            };
            self.appointment(
                trust,
                &local,
                "Outpatient: Cardiology clinic",
                start,
                30,
                future,
                future,
            );
            // The practice sees the same appointment in its own record.
            let practice = self.person.practice;
            let practice_local = self.local(practice);
            self.appointment(
                practice,
                &practice_local,
                "Outpatient: Cardiology clinic",
                start,
                30,
                future,
                false,
            );
            if !future {
                let id = self.entry_id("letter");
                let resource = fhir::document_reference(
                    &id,
                    self.person,
                    &local,
                    "Clinic letter",
                    start + 2 * SECONDS_PER_DAY,
                );
                self.upsert(
                    trust,
                    Category::Correspondence,
                    &id,
                    1,
                    start + 2 * SECONDS_PER_DAY,
                    resource,
                    "Clinic letter: Cardiology".to_owned(),
                    None,
                );
            }
        }
    }

    pub(super) fn mental_health(&mut self) {
        let trust = the(OrganisationType::MentalHealthTrust);
        let local = self.local(trust);
        let diagnosis = *self.random.pick(fhir::MENTAL_HEALTH_CONDITIONS);
        let referred = self.past(5);
        let id = self.entry_id("mhc");
        let resource = fhir::condition(&id, self.person, &local, diagnosis, referred);
        let carried = (
            CareRelationshipType::Referral,
            format!("ref-{id}"),
            referred,
            None,
        );
        self.upsert(
            trust,
            Category::MentalHealth,
            &id,
            1,
            referred,
            resource,
            diagnosis.display.to_owned(),
            Some(carried),
        );
        let id = self.entry_id("mhp");
        let opened = referred + 14 * SECONDS_PER_DAY;
        let resource = fhir::care_plan(
            &id,
            self.person,
            &local,
            "Care programme approach plan",
            opened,
        );
        let carried = (
            CareRelationshipType::OpenCase,
            format!("case-{id}"),
            opened,
            None,
        );
        self.upsert(
            trust,
            Category::MentalHealth,
            &id,
            1,
            opened,
            resource,
            "Mental health care plan".to_owned(),
            Some(carried),
        );
        if self.random.chance(40) {
            let id = self.entry_id("mhf");
            let resource = fhir::flag(
                &id,
                self.person,
                &local,
                "Risk assessment: see care plan",
                opened,
            );
            self.upsert(
                trust,
                Category::MentalHealth,
                &id,
                1,
                opened,
                resource,
                "Mental health alert".to_owned(),
                None,
            );
        }
    }

    pub(super) fn community(&mut self) {
        let trust = the(OrganisationType::CommunityTrust);
        let local = self.local(trust);
        let referred = self.past(2);
        let id = self.entry_id("cp");
        let resource = fhir::care_plan(&id, self.person, &local, "District nursing plan", referred);
        let carried = (
            CareRelationshipType::Referral,
            format!("ref-{id}"),
            referred,
            None,
        );
        self.upsert(
            trust,
            Category::PlansAndAlerts,
            &id,
            1,
            referred,
            resource,
            "District nursing plan".to_owned(),
            Some(carried),
        );
        let start = self.future(30);
        self.appointment(
            trust,
            &local,
            "District nurse home visit",
            start,
            45,
            true,
            true,
        );
    }

    pub(super) fn urgent_care(&mut self, provider: &Organisation) {
        let local = self.local(provider);
        let complaint = *self.random.pick(fhir::PRESENTING_COMPLAINTS);
        let start = self.past(2);
        let (class, label) = match provider.organisation_type {
            OrganisationType::AmbulanceTrust => (("FLD", "field"), "Ambulance incident"),
            OrganisationType::Nhs111Provider => (("VR", "virtual"), "NHS 111 call"),
            _ => (("AMB", "ambulatory"), "Out-of-hours GP contact"),
        };
        let end = start + self.random.between(10, 90) * 60;
        let id = self.entry_id("enc");
        let resource = fhir::encounter(&id, self.person, &local, class, complaint, start, end);
        let carried = (
            CareRelationshipType::EmergencyEncounter,
            id.clone(),
            start,
            Some(end),
        );
        self.upsert(
            provider,
            Category::EmergencyCare,
            &id,
            1,
            start,
            resource,
            format!("{label}: {}", complaint.display),
            Some(carried),
        );
        if provider.organisation_type == OrganisationType::AmbulanceTrust {
            self.vital_sign(provider, &local, start + 600);
        }
    }

    pub(super) fn social_care(&mut self) {
        let council = council_of(self.person.county);
        let local = self.local(council);
        let opened = self.past(3);
        let id = self.entry_id("eoc");
        let resource = fhir::episode_of_care(&id, self.person, &local, opened);
        let carried = (
            CareRelationshipType::OpenCase,
            format!("case-{id}"),
            opened,
            None,
        );
        self.upsert(
            council,
            Category::SocialCare,
            &id,
            1,
            opened,
            resource,
            "Adult social care case open".to_owned(),
            Some(carried),
        );
        let id = self.entry_id("team");
        let resource = fhir::care_team(
            &id,
            self.person,
            &local,
            "Locality social work team",
            "Social worker, locality team",
        );
        self.upsert(
            council,
            Category::SocialCare,
            &id,
            1,
            opened,
            resource,
            "Lead co-ordinator: locality social work team".to_owned(),
            None,
        );
        let id = self.entry_id("scp");
        let resource = fhir::care_plan(
            &id,
            self.person,
            &local,
            "Support plan: home care twice daily",
            opened + 21 * SECONDS_PER_DAY,
        );
        self.upsert(
            council,
            Category::SocialCare,
            &id,
            1,
            opened + 21 * SECONDS_PER_DAY,
            resource,
            "Social care support plan".to_owned(),
            None,
        );
    }
}
