//! Checks on every field that comes from outside, turning proto values into
//! checked domain values. Each error names the field as the proto does.

use mcr_proto::common::v1::{Address, HumanName, OrganisationType, Role};
use mcr_proto::identity::v1::{
    DataProtectionContact, ProfessionalRegistration, RegistrationBody, RoleProfileSpec,
};
use serde::{Deserialize, Serialize};

use crate::error::IdentityError;

type Checked<T> = Result<T, IdentityError>;

fn bounded(field: &'static str, value: &str, minimum: usize, maximum: usize) -> Checked<String> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length < minimum || length > maximum {
        let expectation = if minimum == 0 {
            format!("at most {maximum} characters")
        } else {
            format!("{minimum}-{maximum} characters")
        };
        return Err(IdentityError::invalid(
            field,
            format!("must be {expectation}, got {length}"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(IdentityError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// An ODS-style organisation code: 3-12 of A-Z and 0-9, stored upper-case.
pub fn organisation_code(field: &'static str, value: &str) -> Checked<String> {
    let code = value.trim().to_ascii_uppercase();
    let well_formed = (3..=12).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !well_formed {
        return Err(IdentityError::invalid(
            field,
            "must be 3-12 letters and digits, e.g. F81001",
        ));
    }
    Ok(code)
}

/// A sign-in name: 3-64 of a-z, 0-9, ".", "_", "-"; lower-cased.
pub fn username(value: &str) -> Checked<String> {
    let lowered = value.trim().to_lowercase();
    let well_formed = (3..=64).contains(&lowered.len())
        && lowered
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !well_formed {
        return Err(IdentityError::invalid(
            "username",
            "must be 3-64 characters of a-z, 0-9, '.', '_' and '-'",
        ));
    }
    Ok(lowered)
}

/// A new password: 12-128 characters (length beats composition rules, as NCSC advises).
pub fn new_password(value: &str) -> Checked<&str> {
    let length = value.chars().count();
    if !(12..=128).contains(&length) {
        return Err(IdentityError::invalid(
            "password",
            "must be 12-128 characters",
        ));
    }
    Ok(value)
}

/// An e-mail address: at most 254 characters with exactly one "@" inside.
pub fn email(field: &'static str, value: &str, required: bool) -> Checked<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() && !required {
        return Ok(String::new());
    }
    let well_formed = trimmed.len() <= 254
        && trimmed.matches('@').count() == 1
        && !trimmed.starts_with('@')
        && !trimmed.ends_with('@')
        && !trimmed.contains(char::is_whitespace);
    if !well_formed {
        return Err(IdentityError::invalid(
            field,
            "must be an e-mail address like dpo@example.nhs.uk",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A telephone number: digits, spaces, "+", "(", ")" and "-", at most 32.
pub fn phone(field: &'static str, value: &str) -> Checked<String> {
    let trimmed = value.trim();
    let well_formed = trimmed.len() <= 32
        && trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '(' | ')' | '-'));
    if !well_formed {
        return Err(IdentityError::invalid(
            field,
            "must be at most 32 digits, spaces, '+', '(', ')' or '-'",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A checked person's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonName {
    /// Title, e.g. "Dr".
    pub prefix: String,
    /// Given names, at least one.
    pub given: Vec<String>,
    /// Family name.
    pub family: String,
    /// Suffix.
    pub suffix: String,
}

impl PersonName {
    /// Checks a proto name: family and at least one given name required.
    pub fn from_proto(name: Option<&HumanName>) -> Checked<Self> {
        let name = name.ok_or_else(|| IdentityError::invalid("name", "is required"))?;
        if name.given.is_empty() || name.given.len() > 5 {
            return Err(IdentityError::invalid(
                "name.given",
                "must hold 1-5 given names",
            ));
        }
        let given = name
            .given
            .iter()
            .map(|given| bounded("name.given", given, 1, 100))
            .collect::<Checked<Vec<_>>>()?;
        Ok(Self {
            prefix: bounded("name.prefix", &name.prefix, 0, 40)?,
            given,
            family: bounded("name.family", &name.family, 1, 100)?,
            suffix: bounded("name.suffix", &name.suffix, 0, 40)?,
        })
    }

    /// Back to the proto form.
    pub fn to_proto(&self) -> HumanName {
        HumanName {
            prefix: self.prefix.clone(),
            given: self.given.clone(),
            family: self.family.clone(),
            suffix: self.suffix.clone(),
        }
    }

    /// "Dr Ada Lovelace".
    pub fn display(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if !self.prefix.is_empty() {
            parts.push(&self.prefix);
        }
        parts.extend(self.given.iter().map(String::as_str));
        parts.push(&self.family);
        parts.join(" ")
    }
}

/// A checked data protection contact, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Name or title.
    pub name: String,
    /// Address lines.
    pub lines: Vec<String>,
    /// Town or city.
    pub city: String,
    /// District or county.
    pub district: String,
    /// Postcode, upper-cased.
    pub postcode: String,
    /// ISO 3166 alpha-2 country.
    pub country: String,
    /// Telephone.
    pub phone: String,
    /// E-mail.
    pub email: String,
    /// Web page.
    pub web_url: String,
}

impl Contact {
    /// Checks a proto contact: a name, an address with a line and a postcode,
    /// and a way to reach them.
    pub fn from_proto(contact: Option<&DataProtectionContact>) -> Checked<Self> {
        let contact = contact
            .ok_or_else(|| IdentityError::invalid("data_protection_contact", "is required"))?;
        let address: &Address = contact.postal_address.as_ref().ok_or_else(|| {
            IdentityError::invalid("data_protection_contact.postal_address", "is required")
        })?;
        if address.lines.is_empty() || address.lines.len() > 5 {
            return Err(IdentityError::invalid(
                "data_protection_contact.postal_address.lines",
                "must hold 1-5 lines",
            ));
        }
        let lines = address
            .lines
            .iter()
            .map(|line| bounded("data_protection_contact.postal_address.lines", line, 1, 200))
            .collect::<Checked<Vec<_>>>()?;
        let postcode = bounded(
            "data_protection_contact.postal_address.postcode",
            &address.postcode,
            2,
            16,
        )?;
        let country = match address.country.trim() {
            "" => "GB".to_owned(),
            code if code.len() == 2 && code.chars().all(|c| c.is_ascii_alphabetic()) => {
                code.to_ascii_uppercase()
            }
            _ => {
                return Err(IdentityError::invalid(
                    "data_protection_contact.postal_address.country",
                    "must be an ISO 3166 alpha-2 code such as GB",
                ));
            }
        };
        let web_url = bounded("data_protection_contact.web_url", &contact.web_url, 0, 500)?;
        if !web_url.is_empty() && !web_url.starts_with("https://") {
            return Err(IdentityError::invalid(
                "data_protection_contact.web_url",
                "must start with https://",
            ));
        }
        Ok(Self {
            name: bounded("data_protection_contact.name", &contact.name, 1, 200)?,
            lines,
            city: bounded(
                "data_protection_contact.postal_address.city",
                &address.city,
                0,
                100,
            )?,
            district: bounded(
                "data_protection_contact.postal_address.district",
                &address.district,
                0,
                100,
            )?,
            postcode: postcode.to_ascii_uppercase(),
            country,
            phone: phone("data_protection_contact.phone", &contact.phone)?,
            email: email("data_protection_contact.email", &contact.email, false)?,
            web_url,
        })
    }

    /// Back to the proto form.
    pub fn to_proto(&self) -> DataProtectionContact {
        DataProtectionContact {
            name: self.name.clone(),
            postal_address: Some(Address {
                lines: self.lines.clone(),
                city: self.city.clone(),
                district: self.district.clone(),
                postcode: self.postcode.clone(),
                country: self.country.clone(),
            }),
            phone: self.phone.clone(),
            email: self.email.clone(),
            web_url: self.web_url.clone(),
        }
    }
}

/// A checked organisation to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganisation {
    /// ODS-style code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Type.
    pub organisation_type: OrganisationType,
    /// Data protection contact.
    pub contact: Contact,
}

impl NewOrganisation {
    /// Checks a CreateOrganisation request.
    pub fn from_request(
        request: &mcr_proto::identity::v1::CreateOrganisationRequest,
    ) -> Checked<Self> {
        let organisation_type = match OrganisationType::try_from(request.organisation_type) {
            Ok(OrganisationType::Unspecified) | Err(_) => {
                return Err(IdentityError::invalid(
                    "organisation_type",
                    "must be one of the OrganisationType values",
                ));
            }
            Ok(known) => known,
        };
        Ok(Self {
            code: organisation_code("organisation_code", &request.organisation_code)?,
            name: bounded("name", &request.name, 1, 200)?,
            organisation_type,
            contact: Contact::from_proto(request.data_protection_contact.as_ref())?,
        })
    }
}

/// A checked professional registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// `RegistrationBody` value.
    pub body: i32,
    /// Registration number.
    pub number: String,
}

/// Checks registrations: at most 5, each with a known body and a 1-20
/// character number of letters and digits.
pub fn registrations(registrations: &[ProfessionalRegistration]) -> Checked<Vec<Registration>> {
    if registrations.len() > 5 {
        return Err(IdentityError::invalid(
            "registrations",
            "at most 5 registrations",
        ));
    }
    registrations
        .iter()
        .map(|registration| {
            match RegistrationBody::try_from(registration.body) {
                Ok(RegistrationBody::Unspecified) | Err(_) => {
                    return Err(IdentityError::invalid(
                        "registrations.body",
                        "must be a RegistrationBody value",
                    ));
                }
                Ok(_) => {}
            }
            let number = bounded("registrations.number", &registration.number, 1, 20)?;
            if !number.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(IdentityError::invalid(
                    "registrations.number",
                    "must be letters and digits only",
                ));
            }
            Ok(Registration {
                body: registration.body,
                number,
            })
        })
        .collect()
}

/// A checked role profile to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoleProfile {
    /// Organisation the user works for in this role.
    pub organisation_code: String,
    /// Role.
    pub role: Role,
    /// RBAC job-role code; the role's value name when not given.
    pub role_code: String,
    /// Job title.
    pub job_title: String,
}

impl NewRoleProfile {
    /// Checks a role profile spec.
    pub fn from_proto(spec: Option<&RoleProfileSpec>) -> Checked<Self> {
        let spec = spec.ok_or_else(|| IdentityError::invalid("role_profile", "is required"))?;
        let role = match Role::try_from(spec.role) {
            Ok(Role::Unspecified) | Err(_) => {
                return Err(IdentityError::invalid(
                    "role_profile.role",
                    "must be one of the Role values",
                ));
            }
            Ok(role) => role,
        };
        let role_code = bounded("role_profile.role_code", &spec.role_code, 0, 20)?;
        Ok(Self {
            organisation_code: organisation_code(
                "role_profile.organisation_code",
                &spec.organisation_code,
            )?,
            role,
            role_code: if role_code.is_empty() {
                role.as_str_name().to_owned()
            } else {
                role_code
            },
            job_title: bounded("role_profile.job_title", &spec.job_title, 0, 100)?,
        })
    }
}

/// Checks requested scopes against the catalogue.
pub fn scopes(field: &'static str, requested: &[String]) -> Checked<Vec<String>> {
    if requested.len() > 20 {
        return Err(IdentityError::invalid(field, "at most 20 scopes"));
    }
    requested
        .iter()
        .map(|scope| {
            if mcr_auth::scopes::ALL.contains(&scope.as_str()) {
                Ok(scope.clone())
            } else {
                Err(IdentityError::invalid(
                    field,
                    format!("unknown scope {scope:?}"),
                ))
            }
        })
        .collect()
}

/// A UUID from a request field.
pub fn uuid(field: &'static str, value: &str) -> Checked<uuid::Uuid> {
    uuid::Uuid::parse_str(value.trim()).map_err(|_| IdentityError::invalid(field, "must be a UUID"))
}

/// Bounds free text such as reasons and notes.
pub fn free_text(field: &'static str, value: &str, maximum: usize) -> Checked<String> {
    bounded(field, value, 0, maximum)
}

/// Bounds a required short name.
pub fn required_name(field: &'static str, value: &str, maximum: usize) -> Checked<String> {
    bounded(field, value, 1, maximum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_codes_are_upper_cased_and_bounded() {
        assert_eq!(
            organisation_code("code", " f81001 ").ok(),
            Some("F81001".to_owned())
        );
        for bad in ["", "AB", "ABCDEFGHIJKLM", "F81-001", "F81 001"] {
            assert!(organisation_code("code", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usernames_are_lower_cased_and_restricted() {
        assert_eq!(
            username("Dr.Ada_Lovelace").ok(),
            Some("dr.ada_lovelace".to_owned())
        );
        for bad in ["ab", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_need_twelve_characters_and_errors_name_the_field() {
        let error = new_password("short").expect_err("too short");
        assert!(error.to_string().starts_with("password:"), "{error}");
        assert!(new_password("correct horse battery").is_ok());
        assert!(new_password(&"p".repeat(129)).is_err());
    }

    #[test]
    fn a_contact_needs_an_address_line_and_postcode() {
        let mut contact = DataProtectionContact {
            name: "Data Protection Officer".to_owned(),
            postal_address: Some(Address {
                lines: vec!["1 High Street".to_owned()],
                city: "Harlow".to_owned(),
                district: String::new(),
                postcode: "cm20 1qx".to_owned(),
                country: String::new(),
            }),
            phone: "01279 444455".to_owned(),
            email: "dpo@example.nhs.uk".to_owned(),
            web_url: String::new(),
        };
        let checked = Contact::from_proto(Some(&contact)).expect("valid contact");
        assert_eq!(checked.postcode, "CM20 1QX");
        assert_eq!(checked.country, "GB");
        assert_eq!(checked.to_proto().email, "dpo@example.nhs.uk");
        contact.email = "not-an-email".to_owned();
        let error = Contact::from_proto(Some(&contact)).expect_err("bad email");
        assert!(
            error.to_string().contains("data_protection_contact.email"),
            "{error}"
        );
        assert!(Contact::from_proto(None).is_err());
    }

    #[test]
    fn a_role_profile_needs_a_role_and_defaults_its_code() {
        let spec = RoleProfileSpec {
            organisation_code: "f81001".to_owned(),
            role: Role::Nurse as i32,
            role_code: String::new(),
            job_title: "Practice nurse".to_owned(),
        };
        let checked = NewRoleProfile::from_proto(Some(&spec)).expect("valid profile");
        assert_eq!(checked.role_code, "ROLE_NURSE");
        assert_eq!(checked.organisation_code, "F81001");
        let unspecified = RoleProfileSpec {
            role: 0,
            ..spec.clone()
        };
        assert!(NewRoleProfile::from_proto(Some(&unspecified)).is_err());
        let unknown = RoleProfileSpec { role: 99, ..spec };
        assert!(NewRoleProfile::from_proto(Some(&unknown)).is_err());
    }

    #[test]
    fn unknown_scopes_are_refused() {
        assert!(scopes("scopes", &["records:read".to_owned()]).is_ok());
        let error = scopes("scopes", &["records:write".to_owned()]).expect_err("unknown");
        assert!(error.to_string().contains("records:write"));
    }

    #[test]
    fn names_need_family_and_given() {
        let name = HumanName {
            prefix: "Dr".to_owned(),
            given: vec!["Ada".to_owned()],
            family: "Lovelace".to_owned(),
            suffix: String::new(),
        };
        assert_eq!(
            PersonName::from_proto(Some(&name))
                .map(|name| name.display())
                .ok(),
            Some("Dr Ada Lovelace".to_owned())
        );
        let no_given = HumanName {
            given: vec![],
            ..name
        };
        assert!(PersonName::from_proto(Some(&no_given)).is_err());
    }
}
