//! Checked filters of QueryEvents and GetSubjectAccessReport, and their page cursor.

use mcr_proto::audit::v1::{AuditAction, AuditOutcome, QueryEventsRequest};
use time::OffsetDateTime;
use uuid::Uuid;

/// Why a filter was refused: the field and what is wrong.
pub type Invalid = (&'static str, String);

/// QueryEvents filters, checked. Combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Events about this person.
    pub person_id: Option<Uuid>,
    /// Events by this actor.
    pub actor_user_id: Option<String>,
    /// Events by actors of this organisation.
    pub organisation_code: Option<String>,
    /// Events of these actions (empty: all).
    pub actions: Vec<i32>,
    /// Only this outcome.
    pub outcome: Option<i32>,
    /// At or after.
    pub from_time: Option<OffsetDateTime>,
    /// Before.
    pub to_time: Option<OffsetDateTime>,
}

impl EventFilter {
    /// Checks a QueryEvents request.
    pub fn from_request(request: &QueryEventsRequest) -> Result<Self, Invalid> {
        let person_id = optional_uuid("person_id", &request.person_id)?;
        let actor_user_id = optional_text("actor_user_id", &request.actor_user_id, 200)?;
        let organisation_code = optional_text("organisation_code", &request.organisation_code, 12)?
            .map(|code| code.to_ascii_uppercase());
        let mut actions = Vec::with_capacity(request.actions.len());
        for action in &request.actions {
            match AuditAction::try_from(*action) {
                Ok(AuditAction::Unspecified) | Err(_) => {
                    return Err(("actions", format!("{action} is not a known AuditAction")));
                }
                Ok(_) => actions.push(*action),
            }
        }
        actions.sort_unstable();
        actions.dedup();
        let outcome = match AuditOutcome::try_from(request.outcome) {
            Ok(AuditOutcome::Unspecified) => None,
            Ok(_) => Some(request.outcome),
            Err(_) => return Err(("outcome", "not a known AuditOutcome".to_owned())),
        };
        let (from_time, to_time) =
            time_range(request.from_time.as_ref(), request.to_time.as_ref())?;
        Ok(Self {
            person_id,
            actor_user_id,
            organisation_code,
            actions,
            outcome,
            from_time,
            to_time,
        })
    }
}

/// Checks an optional time range: each a valid timestamp, from before to.
pub fn time_range(
    from: Option<&prost_types::Timestamp>,
    to: Option<&prost_types::Timestamp>,
) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>), Invalid> {
    let from_time = from.map(|at| instant("from_time", at)).transpose()?;
    let to_time = to.map(|at| instant("to_time", at)).transpose()?;
    if let (Some(from), Some(to)) = (from_time, to_time)
        && from >= to
    {
        return Err(("to_time", "must be after from_time".to_owned()));
    }
    Ok((from_time, to_time))
}

fn instant(field: &'static str, at: &prost_types::Timestamp) -> Result<OffsetDateTime, Invalid> {
    let nanos = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| (field, "not a valid timestamp".to_owned()))
}

/// A required UUID.
pub fn required_uuid(field: &'static str, value: &str) -> Result<Uuid, Invalid> {
    if value.is_empty() {
        return Err((field, "required".to_owned()));
    }
    Uuid::parse_str(value).map_err(|_| (field, "must be a UUID".to_owned()))
}

fn optional_uuid(field: &'static str, value: &str) -> Result<Option<Uuid>, Invalid> {
    if value.is_empty() {
        return Ok(None);
    }
    required_uuid(field, value).map(Some)
}

fn optional_text(
    field: &'static str,
    value: &str,
    maximum: usize,
) -> Result<Option<String>, Invalid> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > maximum {
        return Err((field, format!("at most {maximum} characters")));
    }
    Ok(Some(value.to_owned()))
}

/// The position after an event in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// `occurred_at` of the last event returned.
    pub occurred_at: OffsetDateTime,
    /// Its sequence.
    pub sequence: u64,
}

impl Cursor {
    /// `"<unix nanos>:<sequence>"`, the text inside a page token.
    pub fn encode(&self) -> String {
        format!(
            "{}:{}",
            self.occurred_at.unix_timestamp_nanos(),
            self.sequence
        )
    }

    /// Reads what [`Cursor::encode`] wrote.
    pub fn decode(text: &str) -> Option<Self> {
        let (nanos, sequence) = text.split_once(':')?;
        Some(Self {
            occurred_at: OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?,
            sequence: sequence.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_and_normalised() {
        let request = QueryEventsRequest {
            person_id: "0193a6a4-3b7e-7cc0-8000-0000000000aa".to_owned(),
            organisation_code: "rqw".to_owned(),
            actions: vec![2, 1, 2],
            ..Default::default()
        };
        let filter = EventFilter::from_request(&request);
        assert_eq!(
            filter
                .as_ref()
                .map(|f| (f.actions.clone(), f.organisation_code.clone())),
            Ok((vec![1, 2], Some("RQW".to_owned())))
        );
    }

    #[test]
    fn bad_filters_name_the_field() {
        let bad_person = QueryEventsRequest {
            person_id: "x".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            EventFilter::from_request(&bad_person).map_err(|(field, _)| field),
            Err("person_id")
        );
        let unspecified_action = QueryEventsRequest {
            actions: vec![0],
            ..Default::default()
        };
        assert_eq!(
            EventFilter::from_request(&unspecified_action).map_err(|(field, _)| field),
            Err("actions")
        );
        let backwards = QueryEventsRequest {
            from_time: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            to_time: Some(prost_types::Timestamp {
                seconds: 5,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            EventFilter::from_request(&backwards).map_err(|(field, _)| field),
            Err("to_time")
        );
    }

    #[test]
    fn a_cursor_round_trips() {
        let cursor = Cursor {
            occurred_at: OffsetDateTime::from_unix_timestamp_nanos(1_790_000_000_123_456_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            sequence: 77,
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("garbage"), None);
    }
}
