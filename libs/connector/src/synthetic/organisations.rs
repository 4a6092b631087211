//! The organisations of the synthetic region, in the style of DESIGN.md:
//! West Essex and Hertfordshire GP practices, the acute, mental health and
//! community trusts, ambulance, 111, out-of-hours and two councils.
//!
//! Codes are ODS-style; councils use their GSS codes, which fit the same
//! 3-12 letters-and-digits form.

use mcr_proto::common::v1::OrganisationType;

/// One provider organisation and the system its connector speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// ODS-style code, upper case.
    pub code: &'static str,
    /// Name as identity would hold it.
    pub name: &'static str,
    /// Kind of organisation.
    pub organisation_type: OrganisationType,
    /// The source system of its record updates.
    pub system: &'static str,
    /// The system (namespace) of its local patient identifiers.
    pub identifier_system: &'static str,
    /// The county it serves ("Essex" or "Hertfordshire"); empty when it
    /// serves both.
    pub county: &'static str,
}

const fn organisation(
    code: &'static str,
    name: &'static str,
    organisation_type: OrganisationType,
    system: &'static str,
    identifier_system: &'static str,
    county: &'static str,
) -> Organisation {
    Organisation {
        code,
        name,
        organisation_type,
        system,
        identifier_system,
        county,
    }
}

use OrganisationType as Kind;

/// Every organisation of the region, GP practices first.
pub const ORGANISATIONS: &[Organisation] = &[
    organisation(
        "F81601",
        "The Maltings Surgery, Harlow",
        Kind::GpPractice,
        "EMIS",
        "EMIS",
        "Essex",
    ),
    organisation(
        "F81602",
        "Church Langley Medical Practice",
        Kind::GpPractice,
        "EMIS",
        "EMIS",
        "Essex",
    ),
    organisation(
        "F81603",
        "Epping Forest Health Centre",
        Kind::GpPractice,
        "SystmOne",
        "SystmOne",
        "Essex",
    ),
    organisation(
        "E82601",
        "Bishop's Stortford Riverside Surgery",
        Kind::GpPractice,
        "SystmOne",
        "SystmOne",
        "Hertfordshire",
    ),
    organisation(
        "E82602",
        "Hertford Castle Street Practice",
        Kind::GpPractice,
        "EMIS",
        "EMIS",
        "Hertfordshire",
    ),
    organisation(
        "E82603",
        "Stevenage Old Town Medical Centre",
        Kind::GpPractice,
        "SystmOne",
        "SystmOne",
        "Hertfordshire",
    ),
    organisation(
        "RQW",
        "The Princess Alexandra Hospital NHS Trust",
        Kind::AcuteTrust,
        "PAS",
        "PAS",
        "",
    ),
    organisation(
        "RWR",
        "Hertfordshire Partnership University NHS Foundation Trust",
        Kind::MentalHealthTrust,
        "RiO",
        "RiO",
        "",
    ),
    organisation(
        "RY4",
        "Hertfordshire Community NHS Trust",
        Kind::CommunityTrust,
        "SystmOne",
        "SystmOne",
        "",
    ),
    organisation(
        "RYC",
        "East of England Ambulance Service NHS Trust",
        Kind::AmbulanceTrust,
        "ePCR",
        "ePCR",
        "",
    ),
    organisation(
        "NL111",
        "Herts and West Essex NHS 111",
        Kind::Nhs111Provider,
        "Adastra",
        "Adastra",
        "",
    ),
    organisation(
        "NLOOH",
        "Herts Urgent Care Out of Hours",
        Kind::OutOfHours,
        "Adastra",
        "Adastra",
        "",
    ),
    organisation(
        "E10000012",
        "Essex County Council Adult Social Care",
        Kind::LocalAuthoritySocialCare,
        "Mosaic",
        "Mosaic",
        "Essex",
    ),
    organisation(
        "E10000015",
        "Hertfordshire County Council Adult Care Services",
        Kind::LocalAuthoritySocialCare,
        "LiquidLogic",
        "LAS",
        "Hertfordshire",
    ),
];

/// The GP practices of `county`.
pub(crate) fn practices_in(county: &str) -> impl Iterator<Item = &'static Organisation> {
    ORGANISATIONS.iter().filter(move |organisation| {
        organisation.organisation_type == Kind::GpPractice && organisation.county == county
    })
}

/// The one organisation of `organisation_type` (the region has one of each
/// kind but GP practices and councils).
pub(crate) fn the(organisation_type: OrganisationType) -> &'static Organisation {
    ORGANISATIONS
        .iter()
        .find(|organisation| organisation.organisation_type == organisation_type)
        .unwrap_or(&ORGANISATIONS[0])
}

/// The council of `county`.
pub(crate) fn council_of(county: &str) -> &'static Organisation {
    ORGANISATIONS
        .iter()
        .find(|organisation| {
            organisation.organisation_type == Kind::LocalAuthoritySocialCare
                && organisation.county == county
        })
        .unwrap_or_else(|| the(Kind::LocalAuthoritySocialCare))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::is_organisation_code;

    #[test]
    fn every_code_is_ods_style_and_unique() {
        let mut codes: Vec<&str> = ORGANISATIONS.iter().map(|o| o.code).collect();
        assert!(codes.iter().all(|code| is_organisation_code(code)));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ORGANISATIONS.len());
    }

    #[test]
    fn the_region_has_every_kind_design_md_names() {
        for kind in [
            Kind::GpPractice,
            Kind::AcuteTrust,
            Kind::MentalHealthTrust,
            Kind::CommunityTrust,
            Kind::AmbulanceTrust,
            Kind::Nhs111Provider,
            Kind::OutOfHours,
        ] {
            assert_eq!(the(kind).organisation_type, kind);
        }
        assert_eq!(council_of("Essex").code, "E10000012");
        assert_eq!(council_of("Hertfordshire").code, "E10000015");
        assert_eq!(practices_in("Essex").count(), 3);
        assert_eq!(practices_in("Hertfordshire").count(), 3);
    }
}
