//! What the demo region holds, decided without I/O: the professionals,
//! which persons get which consent facts, and the walkthrough printed at
//! the end.

use mcr_connector::synthetic::{Organisation, Person, Region};
use mcr_proto::common::v1::{OrganisationType, Role};

/// Password of every demo professional. Local demos only: never use a
/// seeded platform for real records.
pub const DEMO_PASSWORD: &str = "demo-password-2026";

/// The operator organisation the privacy officer works for.
pub const OPERATOR: &str = "MCR001";

/// A demo professional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Professional {
    pub username: &'static str,
    pub given: &'static str,
    pub family: &'static str,
    pub role: Role,
    pub organisation_code: &'static str,
    pub job_title: &'static str,
}

fn first_of(region: &Region, kind: OrganisationType) -> &'static str {
    region
        .organisations()
        .iter()
        .find(|organisation| organisation.organisation_type == kind)
        .map_or(OPERATOR, |organisation| organisation.code)
}

/// One professional per role, each at an organisation of the fitting type.
pub fn professionals(region: &Region) -> Vec<Professional> {
    let gp = first_of(region, OrganisationType::GpPractice);
    let acute = first_of(region, OrganisationType::AcuteTrust);
    let community = first_of(region, OrganisationType::CommunityTrust);
    let ambulance = first_of(region, OrganisationType::AmbulanceTrust);
    let council = first_of(region, OrganisationType::LocalAuthoritySocialCare);
    let professional = |username, given, family, role, organisation_code, job_title| Professional {
        username,
        given,
        family,
        role,
        organisation_code,
        job_title,
    };
    vec![
        professional(
            "demo.gp",
            "Grace",
            "Patel",
            Role::ClinicalPractitioner,
            gp,
            "General practitioner",
        ),
        professional(
            "demo.consultant",
            "Omar",
            "Hughes",
            Role::ClinicalPractitioner,
            acute,
            "Consultant physician",
        ),
        professional(
            "demo.nurse",
            "Nia",
            "Evans",
            Role::Nurse,
            acute,
            "Ward sister",
        ),
        professional(
            "demo.midwife",
            "Mary",
            "Okafor",
            Role::Midwife,
            acute,
            "Community midwife",
        ),
        professional(
            "demo.health-visitor",
            "Hannah",
            "Reid",
            Role::HealthVisitor,
            community,
            "Health visitor",
        ),
        professional(
            "demo.paramedic",
            "Paul",
            "Mensah",
            Role::Paramedic,
            ambulance,
            "Paramedic",
        ),
        professional(
            "demo.pharmacist",
            "Priya",
            "Shah",
            Role::Pharmacist,
            gp,
            "Practice pharmacist",
        ),
        professional(
            "demo.social-worker",
            "Sam",
            "Doyle",
            Role::SocialWorker,
            council,
            "Social worker",
        ),
        professional(
            "demo.receptionist",
            "Rita",
            "Cole",
            Role::AdminClerical,
            gp,
            "Receptionist",
        ),
        professional(
            "demo.privacy",
            "Priscilla",
            "Ward",
            Role::PrivacyOfficer,
            OPERATOR,
            "Privacy officer",
        ),
    ]
}

/// The consent facts of one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    pub opted_out: bool,
    /// Permission for the demo GP's practice to view.
    pub gp_permission: bool,
    /// Permission for the acute trust to view.
    pub hospital_permission: bool,
    /// The person asked for their mental health entries to be withheld.
    pub restricted: bool,
}

/// Facts by position: one in 25 opted out; everyone registered at the demo
/// GP's practice gives it permission (the practice's patients, as at a
/// consultation), one in three the hospital; one in ten with permission
/// restricts mental health — and the demo patient always does, so the
/// walkthrough shows a withheld notice.
pub fn facts(person: &Person, demo_practice: &str, demo_patient: usize) -> Facts {
    let opted_out = person.index % 25 == 7;
    if opted_out {
        return Facts {
            opted_out,
            ..Facts::default()
        };
    }
    let gp_permission = person.practice.code == demo_practice;
    let hospital_permission = person.index.is_multiple_of(3);
    let restricted = person.index == demo_patient
        || ((gp_permission || hospital_permission) && person.index % 10 == 4);
    Facts {
        opted_out,
        gp_permission,
        hospital_permission,
        restricted,
    }
}

/// The persons the walkthrough uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cast {
    /// Registered with the demo GP, permission given, mental health withheld.
    pub patient: Person,
    /// Opted out.
    pub opted_out: Person,
    /// Registered elsewhere, no permission for anyone: for break-glass.
    pub emergency: Person,
}

/// Picks the walkthrough's persons from the region.
pub fn cast(region: &Region, demo_practice: &str) -> Option<Cast> {
    let mut persons = region.persons();
    let patient = persons.by_ref().find(|person| {
        person.practice.code == demo_practice && !person.sensitive && person.index % 25 != 7
    })?;
    let opted_out = region.persons().find(|person| person.index % 25 == 7)?;
    let emergency = region.persons().find(|person| {
        person.practice.code != demo_practice
            && !person.sensitive
            && person.index % 25 != 7
            && !person.index.is_multiple_of(3)
    })?;
    Some(Cast {
        patient,
        opted_out,
        emergency,
    })
}

/// The demo GP's practice.
pub fn demo_practice(region: &Region) -> &'static Organisation {
    let code = first_of(region, OrganisationType::GpPractice);
    region
        .organisations()
        .iter()
        .find(|organisation| organisation.code == code)
        .unwrap_or(&region.organisations()[0])
}

/// What to try next, as exact commands.
pub fn walkthrough(cast: &Cast, practice: &Organisation, password: &str) -> String {
    let patient = &cast.patient.nhs_number;
    let opted_out = &cast.opted_out.nhs_number;
    let emergency = &cast.emergency.nhs_number;
    format!(
        "\
The demo region is ready. Every demo professional's password is: {password}
(local demo only). Users: demo.gp, demo.consultant, demo.nurse, demo.midwife,
demo.health-visitor, demo.paramedic, demo.pharmacist, demo.social-worker,
demo.receptionist, demo.privacy.

Try this (mcr is target/debug/mcr; `cargo install --path libs/cli` puts it on PATH):

  # 1. sign in as the demo GP at {practice_name}
  mcr login --username demo.gp

  # 2. view {patient_name}'s record (registered there, gave permission);
  #    their mental health entries are withheld at their request
  mcr record show {patient}

  # 3. a person who opted out: access is refused (and audited)
  mcr record show {opted_out}

  # 4. an emergency: a paramedic breaks glass for {emergency_name}
  mcr login --username demo.paramedic
  mcr record show {emergency}        # refused: no permission
  mcr consent break-glass {emergency} --reason life-threatening-emergency \\
      --justification \"unconscious after a fall, allergies needed\"
  mcr record show {emergency} --purpose emergency

  # 5. who saw {patient_name}'s record: their access report
  mcr login --username demo.privacy
  mcr audit report {patient}
  mcr audit verify

More: mcr person search --nhs-number {patient} · mcr consent summary {patient}
      mcr record show {patient} --json · mcr health · mcr --help
",
        practice_name = practice.name,
        patient_name = cast.patient.display_name(),
        emergency_name = cast.emergency.display_name(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_but_the_administrator_has_a_professional() {
        let region = Region::generate(1, 100);
        let roles: Vec<Role> = professionals(&region).iter().map(|p| p.role).collect();
        for value in 1..=9 {
            let role = Role::try_from(value).unwrap_or_default();
            assert!(roles.contains(&role), "{role:?}");
        }
    }

    #[test]
    fn the_cast_fits_its_parts() {
        let region = Region::generate(1, 500);
        let practice = demo_practice(&region).code;
        let cast = cast(&region, practice).unwrap_or_else(|| panic!("a cast in 500 persons"));
        let patient = facts(&cast.patient, practice, cast.patient.index);
        assert!(patient.gp_permission && patient.restricted && !patient.opted_out);
        assert!(facts(&cast.opted_out, practice, cast.patient.index).opted_out);
        let emergency = facts(&cast.emergency, practice, cast.patient.index);
        assert!(!emergency.gp_permission && !emergency.hospital_permission && !emergency.opted_out);
    }

    #[test]
    fn the_walkthrough_names_exact_commands() {
        let region = Region::generate(1, 500);
        let practice = demo_practice(&region);
        let cast = cast(&region, practice.code).unwrap_or_else(|| panic!("a cast"));
        let text = walkthrough(&cast, practice, DEMO_PASSWORD);
        assert!(text.contains(&format!("mcr record show {}\n", cast.patient.nhs_number)));
        assert!(text.contains(&format!("mcr audit report {}", cast.patient.nhs_number)));
        assert!(text.contains("--purpose emergency"));
    }
}
