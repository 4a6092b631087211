//! A person's demographics as checked domain values, converted from and to the proto.
//!
//! Validation happens once, here, on receive: every later stage (matching, the store, the
//! gRPC replies) works with values that already satisfy the contract in
//! `proto/mcr/patient_index/v1/patient_index.proto`.

use mcr_proto::common::v1 as common;
use mcr_proto::patient_index::v1 as proto;
use time::Date;

use super::contact::{Email, Phone};
use super::dates::parse_past_date;
use super::text::optional_text;
use super::{CountryCode, DomainError, NhsNumber, NhsNumberVerification, Postcode, Sex};

/// Longest family or given name, and longest city or district, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest name prefix ("Dr") or suffix ("Jr").
pub const MAX_NAME_AFFIX_CHARS: usize = 40;
/// Most given names in one name.
pub const MAX_GIVEN_NAMES: usize = 5;
/// Most previous names (maiden names, aliases).
pub const MAX_PREVIOUS_NAMES: usize = 10;
/// Most address lines.
pub const MAX_ADDRESS_LINES: usize = 5;
/// Longest address line.
pub const MAX_ADDRESS_LINE_CHARS: usize = 100;

/// A person's name. Every part is optional; text is trimmed and bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonName {
    /// Title, e.g. "Dr".
    pub prefix: Option<String>,
    /// Given names in order (at most [`MAX_GIVEN_NAMES`]); the first is the one people use.
    pub given: Vec<String>,
    /// Family name.
    pub family: Option<String>,
    /// Suffix, e.g. "Jr".
    pub suffix: Option<String>,
}

impl PersonName {
    /// Checks a proto name; field paths in errors are relative ("family", "given[1]").
    pub fn from_proto(name: &common::HumanName) -> Result<Self, DomainError> {
        if name.given.len() > MAX_GIVEN_NAMES {
            return Err(DomainError::invalid(
                "given",
                format!("must have at most {MAX_GIVEN_NAMES} names"),
            ));
        }
        let mut given = Vec::with_capacity(name.given.len());
        for (index, value) in name.given.iter().enumerate() {
            match optional_text(format!("given[{index}]"), value, MAX_NAME_CHARS)? {
                Some(text) => given.push(text),
                None => {
                    return Err(DomainError::invalid(
                        format!("given[{index}]"),
                        "must not be blank",
                    ));
                }
            }
        }
        Ok(Self {
            prefix: optional_text("prefix", &name.prefix, MAX_NAME_AFFIX_CHARS)?,
            given,
            family: optional_text("family", &name.family, MAX_NAME_CHARS)?,
            suffix: optional_text("suffix", &name.suffix, MAX_NAME_AFFIX_CHARS)?,
        })
    }

    /// Whether no part is present.
    pub fn is_empty(&self) -> bool {
        self.prefix.is_none()
            && self.given.is_empty()
            && self.family.is_none()
            && self.suffix.is_none()
    }

    /// The proto form.
    pub fn to_proto(&self) -> common::HumanName {
        common::HumanName {
            prefix: self.prefix.clone().unwrap_or_default(),
            given: self.given.clone(),
            family: self.family.clone().unwrap_or_default(),
            suffix: self.suffix.clone().unwrap_or_default(),
        }
    }
}

/// A postal address. The postcode was checked against the country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Lines, most specific first (at most [`MAX_ADDRESS_LINES`]).
    pub lines: Vec<String>,
    /// Post town or city.
    pub city: Option<String>,
    /// District or county.
    pub district: Option<String>,
    /// Postcode, normalised when the country is GB.
    pub postcode: Option<Postcode>,
    /// Country (GB when the proto left it empty).
    pub country: CountryCode,
}

impl Address {
    /// Checks a proto address; `Ok(None)` when it has no lines, city, district or postcode.
    /// Field paths in errors are relative ("postcode", "lines[2]").
    pub fn from_proto(address: &common::Address) -> Result<Option<Self>, DomainError> {
        let country =
            CountryCode::parse(&address.country).map_err(|error| error.for_field("country"))?;
        if address.lines.len() > MAX_ADDRESS_LINES {
            return Err(DomainError::invalid(
                "lines",
                format!("must have at most {MAX_ADDRESS_LINES} lines"),
            ));
        }
        let mut lines = Vec::with_capacity(address.lines.len());
        for (index, line) in address.lines.iter().enumerate() {
            // The contract says each line is 1-100 characters: a blank line is a sender bug.
            match optional_text(format!("lines[{index}]"), line, MAX_ADDRESS_LINE_CHARS)? {
                Some(text) => lines.push(text),
                None => {
                    return Err(DomainError::invalid(
                        format!("lines[{index}]"),
                        "must not be blank",
                    ));
                }
            }
        }
        let city = optional_text("city", &address.city, MAX_NAME_CHARS)?;
        let district = optional_text("district", &address.district, MAX_NAME_CHARS)?;
        let postcode = Postcode::parse(&address.postcode, country)
            .map_err(|error| error.for_field("postcode"))?;
        if lines.is_empty() && city.is_none() && district.is_none() && postcode.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            lines,
            city,
            district,
            postcode,
            country,
        }))
    }

    /// The proto form.
    pub fn to_proto(&self) -> common::Address {
        common::Address {
            lines: self.lines.clone(),
            city: self.city.clone().unwrap_or_default(),
            district: self.district.clone().unwrap_or_default(),
            postcode: self
                .postcode
                .as_ref()
                .map(|postcode| postcode.as_str().to_owned())
                .unwrap_or_default(),
            country: self.country.as_str().to_owned(),
        }
    }
}

/// The demographics one provider holds for a person (the input of RegisterPerson), or the
/// index's best demographics for a person (the output of GetPerson).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonDemographics {
    /// NHS Number, when known.
    pub nhs_number: Option<NhsNumber>,
    /// Verification status of the NHS Number (always set when a number is present).
    pub nhs_number_verification: Option<NhsNumberVerification>,
    /// Current name (empty when not known).
    pub name: PersonName,
    /// Previous names: maiden names, aliases (at most [`MAX_PREVIOUS_NAMES`]).
    pub previous_names: Vec<PersonName>,
    /// Date of birth.
    pub birth_date: Option<Date>,
    /// Administrative sex.
    pub sex: Option<Sex>,
    /// Usual address.
    pub address: Option<Address>,
    /// Telephone.
    pub phone: Option<Phone>,
    /// E-mail.
    pub email: Option<Email>,
    /// Date of death.
    pub death_date: Option<Date>,
    /// Sensitive demographics (PDS "S" flag).
    pub sensitive: bool,
}

impl PersonDemographics {
    /// Checks the demographics of a request against the contract. `today` (the current UTC
    /// date) bounds the dates; it is a parameter so the domain stays free of clocks.
    ///
    /// Error field paths start with `demographics.` because both requests that carry a
    /// `Demographics` (RegisterPerson, and Person in replies) name that field so.
    pub fn from_proto(
        demographics: &proto::Demographics,
        today: Date,
    ) -> Result<Self, DomainError> {
        Self::check(demographics, today).map_err(|error| error.within("demographics"))
    }

    fn check(demographics: &proto::Demographics, today: Date) -> Result<Self, DomainError> {
        let nhs_number = if demographics.nhs_number.trim().is_empty() {
            None
        } else {
            Some(
                NhsNumber::parse(&demographics.nhs_number)
                    .map_err(|error| error.for_field("nhs_number"))?,
            )
        };
        let nhs_number_verification = NhsNumberVerification::from_proto(
            demographics.nhs_number_verification_status,
            nhs_number.is_some(),
        )?;
        let name = match &demographics.name {
            Some(name) => PersonName::from_proto(name).map_err(|error| error.within("name"))?,
            None => PersonName::default(),
        };
        if demographics.previous_names.len() > MAX_PREVIOUS_NAMES {
            return Err(DomainError::invalid(
                "previous_names",
                format!("must have at most {MAX_PREVIOUS_NAMES} names"),
            ));
        }
        let mut previous_names = Vec::with_capacity(demographics.previous_names.len());
        for (index, previous) in demographics.previous_names.iter().enumerate() {
            let checked = PersonName::from_proto(previous)
                .map_err(|error| error.within(&format!("previous_names[{index}]")))?;
            if !checked.is_empty() {
                previous_names.push(checked);
            }
        }
        let birth_date = parse_past_date("birth_date", &demographics.birth_date, today)?;
        let death_date = parse_past_date("death_date", &demographics.death_date, today)?;
        if let (Some(birth), Some(death)) = (birth_date, death_date)
            && death < birth
        {
            return Err(DomainError::invalid(
                "death_date",
                "must not be before birth_date",
            ));
        }
        let address = match &demographics.address {
            Some(address) => {
                Address::from_proto(address).map_err(|error| error.within("address"))?
            }
            None => None,
        };
        Ok(Self {
            nhs_number,
            nhs_number_verification,
            name,
            previous_names,
            birth_date,
            sex: Sex::from_proto("sex", demographics.sex)?,
            address,
            phone: Phone::parse("phone", &demographics.phone)?,
            email: Email::parse("email", &demographics.email)?,
            death_date,
            sensitive: demographics.sensitive,
        })
    }

    /// Whether the NHS Number is present and verified (UK Core 01): the one case in which the
    /// index links on the number alone.
    pub fn has_verified_nhs_number(&self) -> bool {
        self.nhs_number.is_some()
            && self.nhs_number_verification == Some(NhsNumberVerification::PresentAndVerified)
    }

    /// The proto form, with normalised values (NHS Number without spaces, GB postcode with one
    /// space, dates as "YYYY-MM-DD").
    pub fn to_proto(&self) -> proto::Demographics {
        let date = |date: Option<Date>| date.map(|date| date.to_string()).unwrap_or_default();
        proto::Demographics {
            nhs_number: self
                .nhs_number
                .as_ref()
                .map(|number| number.as_str().to_owned())
                .unwrap_or_default(),
            nhs_number_verification_status: self
                .nhs_number_verification
                .map_or(
                    proto::NhsNumberVerificationStatus::Unspecified,
                    NhsNumberVerification::to_proto,
                )
                .into(),
            name: (!self.name.is_empty()).then(|| self.name.to_proto()),
            previous_names: self
                .previous_names
                .iter()
                .map(PersonName::to_proto)
                .collect(),
            birth_date: date(self.birth_date),
            sex: self
                .sex
                .map_or(proto::Sex::Unspecified, Sex::to_proto)
                .into(),
            address: self.address.as_ref().map(Address::to_proto),
            phone: self
                .phone
                .as_ref()
                .map(|phone| phone.as_str().to_owned())
                .unwrap_or_default(),
            email: self
                .email
                .as_ref()
                .map(|email| email.as_str().to_owned())
                .unwrap_or_default(),
            death_date: date(self.death_date),
            sensitive: self.sensitive,
        }
    }
}

impl TryFrom<(&proto::Demographics, Date)> for PersonDemographics {
    type Error = DomainError;

    /// Same as [`PersonDemographics::from_proto`]; the date is today's.
    fn try_from((demographics, today): (&proto::Demographics, Date)) -> Result<Self, Self::Error> {
        Self::from_proto(demographics, today)
    }
}
