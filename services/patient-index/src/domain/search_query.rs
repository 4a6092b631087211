//! The demographic query of SearchPersons, checked.

use mcr_proto::patient_index::v1 as proto;
use time::Date;

use super::dates::parse_past_date;
use super::demographics::MAX_NAME_CHARS;
use super::text::optional_text;
use super::{CountryCode, DomainError, Postcode, Sex};

/// Demographic search terms, combined with AND and compared fuzzily (the same comparators as
/// registration). At least one of family name, date of birth or postcode is present: those
/// are the fields the blocking keys are built from, so a query never scans the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Family name (also matched against previous names).
    pub family_name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Date of birth.
    pub birth_date: Option<Date>,
    /// Postcode, normalised when the country is GB.
    pub postcode: Option<Postcode>,
    /// Sex; `None` means not used.
    pub sex: Option<Sex>,
}

impl SearchQuery {
    /// Checks a demographic query. Error field paths start with `demographics.` (the name of
    /// the oneof field in SearchPersonsRequest); `today` bounds the date of birth.
    pub fn from_proto(query: &proto::DemographicQuery, today: Date) -> Result<Self, DomainError> {
        Self::check(query, today).map_err(|error| error.within("demographics"))
    }

    fn check(query: &proto::DemographicQuery, today: Date) -> Result<Self, DomainError> {
        let country =
            CountryCode::parse(&query.country).map_err(|error| error.for_field("country"))?;
        let checked = Self {
            family_name: optional_text("family_name", &query.family_name, MAX_NAME_CHARS)?,
            given_name: optional_text("given_name", &query.given_name, MAX_NAME_CHARS)?,
            birth_date: parse_past_date("birth_date", &query.birth_date, today)?,
            postcode: Postcode::parse(&query.postcode, country)
                .map_err(|error| error.for_field("postcode"))?,
            sex: Sex::from_proto("sex", query.sex)?,
        };
        if checked.family_name.is_none()
            && checked.birth_date.is_none()
            && checked.postcode.is_none()
        {
            return Err(DomainError::invalid(
                "family_name",
                "a demographic search needs at least one of family_name, birth_date or postcode",
            ));
        }
        Ok(checked)
    }
}

impl TryFrom<(&proto::DemographicQuery, Date)> for SearchQuery {
    type Error = DomainError;

    /// Same as [`SearchQuery::from_proto`]; the date is today's.
    fn try_from((query, today): (&proto::DemographicQuery, Date)) -> Result<Self, Self::Error> {
        Self::from_proto(query, today)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2025 - 06 - 15);

    fn field_of(query: &proto::DemographicQuery) -> Option<String> {
        SearchQuery::from_proto(query, TODAY)
            .err()
            .and_then(|error| error.field().map(str::to_owned))
    }

    #[test]
    fn a_query_with_a_blocking_field_is_accepted_and_normalised() {
        let query = proto::DemographicQuery {
            family_name: " Smith ".to_owned(),
            postcode: "cm201qx".to_owned(),
            ..Default::default()
        };
        let checked = SearchQuery::from_proto(&query, TODAY);
        assert_eq!(
            checked.as_ref().map(|q| q.family_name.clone()),
            Ok(Some("Smith".to_owned()))
        );
        assert_eq!(
            checked.map(|q| q.postcode.map(|postcode| postcode.as_str().to_owned())),
            Ok(Some("CM20 1QX".to_owned()))
        );
    }

    #[test]
    fn a_query_without_a_blocking_field_is_rejected() {
        let query = proto::DemographicQuery {
            given_name: "Ann".to_owned(),
            sex: proto::Sex::Female.into(),
            ..Default::default()
        };
        assert_eq!(
            field_of(&query).as_deref(),
            Some("demographics.family_name")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let bad_postcode = proto::DemographicQuery {
            postcode: "not a postcode".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            field_of(&bad_postcode).as_deref(),
            Some("demographics.postcode")
        );
        let foreign = proto::DemographicQuery {
            postcode: "not a postcode".to_owned(),
            country: "FR".to_owned(),
            ..Default::default()
        };
        assert_eq!(field_of(&foreign), None);
        let future = proto::DemographicQuery {
            birth_date: "2030-01-01".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            field_of(&future).as_deref(),
            Some("demographics.birth_date")
        );
        let country = proto::DemographicQuery {
            family_name: "X".to_owned(),
            country: "GBR".to_owned(),
            ..Default::default()
        };
        assert_eq!(field_of(&country).as_deref(), Some("demographics.country"));
        let sex = proto::DemographicQuery {
            family_name: "X".to_owned(),
            sex: 42,
            ..Default::default()
        };
        assert_eq!(field_of(&sex).as_deref(), Some("demographics.sex"));
    }
}
