//! What a stored event is: an `AuditEvent` that passed validation, its
//! canonical encoding, and the columns it is found by.
//!
//! **Canonical encoding.** The event is decoded from the published bytes and
//! re-encoded with prost: fields in ascending field-number order, fields at
//! their default value omitted, repeated scalars packed, unknown fields
//! dropped. That is deterministic for a given message, so the chained bytes
//! depend only on what the event says, not on how the publisher's library
//! happened to serialise it. Those bytes are stored as they were hashed
//! (`audit_events.canonical`); every answer is decoded from them, and the
//! queryable columns are checked against them when the chain is verified.

use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome};
use prost::Message;
use time::OffsetDateTime;
use uuid::Uuid;

/// How far in the future `occurred_at` may be (clock skew between services).
pub const MAX_FUTURE_SKEW: time::Duration = time::Duration::minutes(5);

/// The columns an event is queried by, derived from the event itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// `event_id`, the de-duplication key.
    pub event_id: Uuid,
    /// `occurred_at`, truncated to microseconds as PostgreSQL keeps it.
    pub occurred_at: OffsetDateTime,
    /// `action` value.
    pub action: i32,
    /// `outcome` value.
    pub outcome: i32,
    /// `person_id`, when set.
    pub person_id: Option<Uuid>,
    /// `actor.user_id`.
    pub actor_user_id: String,
    /// `actor.organisation_code`.
    pub organisation_code: String,
}

/// An event accepted for storage.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    /// The event as decoded.
    pub event: AuditEvent,
    /// Its canonical encoding: what the chain hashes and the store keeps.
    pub canonical: Vec<u8>,
    /// Its queryable columns.
    pub columns: Columns,
}

/// The canonical encoding of `event` (see the module documentation).
pub fn canonical_encoding(event: &AuditEvent) -> Vec<u8> {
    event.encode_to_vec()
}

/// Decodes and validates a published event; the error says why it was
/// rejected (it goes to the dead-letter subject with that reason).
pub fn accept(payload: &[u8], received_at: OffsetDateTime) -> Result<ValidEvent, String> {
    let event = AuditEvent::decode(payload)
        .map_err(|error| format!("payload is not an AuditEvent: {error}"))?;
    let columns = columns(&event)?;
    if columns.occurred_at > received_at + MAX_FUTURE_SKEW {
        return Err("occurred_at: more than 5 minutes in the future".to_owned());
    }
    check_text("source_service", &event.source_service, 1, 64)?;
    check_text("description", &event.description, 0, 500)?;
    for reason in &event.reasons {
        check_text("reasons.code", &reason.code, 1, 64)?;
        check_text("reasons.text", &reason.text, 0, 500)?;
    }
    Ok(ValidEvent {
        canonical: canonical_encoding(&event),
        event,
        columns,
    })
}

/// The queryable columns of `event`, or why it cannot be stored.
pub fn columns(event: &AuditEvent) -> Result<Columns, String> {
    let event_id =
        Uuid::parse_str(&event.event_id).map_err(|_| "event_id: must be a UUID".to_owned())?;
    let occurred_at = event
        .occurred_at
        .as_ref()
        .and_then(|at| {
            // PostgreSQL keeps microseconds; the column must equal what is read back.
            let nanos =
                i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos / 1_000 * 1_000);
            OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
        })
        .ok_or_else(|| "occurred_at: required, a valid timestamp".to_owned())?;
    let actor = event
        .actor
        .as_ref()
        .ok_or_else(|| "actor: required".to_owned())?;
    check_text("actor.user_id", &actor.user_id, 1, 200)?;
    check_text("actor.organisation_code", &actor.organisation_code, 0, 12)?;
    match AuditAction::try_from(event.action) {
        Ok(AuditAction::Unspecified) | Err(_) => {
            return Err("action: required, a known AuditAction".to_owned());
        }
        Ok(_) => {}
    }
    match AuditOutcome::try_from(event.outcome) {
        Ok(AuditOutcome::Unspecified) | Err(_) => {
            return Err("outcome: required, PERMITTED or DENIED".to_owned());
        }
        Ok(_) => {}
    }
    let person_id = if event.person_id.is_empty() {
        None
    } else {
        Some(
            Uuid::parse_str(&event.person_id)
                .map_err(|_| "person_id: must be a UUID when set".to_owned())?,
        )
    };
    Ok(Columns {
        event_id,
        occurred_at,
        action: event.action,
        outcome: event.outcome,
        person_id,
        actor_user_id: actor.user_id.clone(),
        organisation_code: actor.organisation_code.clone(),
    })
}

fn check_text(field: &str, value: &str, minimum: usize, maximum: usize) -> Result<(), String> {
    let length = value.chars().count();
    if length < minimum || length > maximum {
        return Err(format!("{field}: must be {minimum}-{maximum} characters"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mcr_proto::common::v1::Actor;

    pub(crate) fn sample_event() -> AuditEvent {
        AuditEvent {
            event_id: "0193a6a4-3b7e-7cc0-8000-000000000001".to_owned(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_790_000_000,
                nanos: 123_456_789,
            }),
            source_service: "record-aggregator".to_owned(),
            actor: Some(Actor {
                user_id: "user-1".to_owned(),
                organisation_code: "RQW".to_owned(),
                role: 2,
                role_code: "R8001".to_owned(),
                display_name: "Nurse Jones".to_owned(),
                ..Default::default()
            }),
            action: AuditAction::ViewRecord as i32,
            person_id: "0193a6a4-3b7e-7cc0-8000-0000000000aa".to_owned(),
            purpose: 1,
            purpose_of_use_code: "TREAT".to_owned(),
            outcome: AuditOutcome::Permitted as i32,
            categories: vec![2, 3],
            entry_count: 7,
            ..Default::default()
        }
    }

    fn received() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_100).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn a_valid_event_is_accepted_with_its_columns() {
        let accepted = accept(&sample_event().encode_to_vec(), received());
        let Ok(valid) = accepted else {
            panic!("{accepted:?}")
        };
        assert_eq!(valid.columns.actor_user_id, "user-1");
        assert_eq!(valid.columns.organisation_code, "RQW");
        assert!(valid.columns.person_id.is_some());
        // Microseconds, as PostgreSQL stores them.
        assert_eq!(valid.columns.occurred_at.nanosecond() % 1_000, 0);
        assert_eq!(valid.canonical, sample_event().encode_to_vec());
    }

    #[test]
    fn the_canonical_encoding_is_the_same_however_it_was_serialised() {
        let mut bytes = sample_event().encode_to_vec();
        // Unknown field 99 (varint) appended: a newer publisher's addition.
        bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
        let accepted = accept(&bytes, received()).map(|valid| valid.canonical);
        assert_eq!(accepted, Ok(sample_event().encode_to_vec()));
    }

    type Change = Box<dyn Fn(&mut AuditEvent)>;

    #[test]
    fn invalid_events_say_which_field() {
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|event| event.event_id = "nope".to_owned()),
                "event_id",
            ),
            (Box::new(|event| event.occurred_at = None), "occurred_at"),
            (Box::new(|event| event.actor = None), "actor"),
            (Box::new(|event| event.action = 0), "action"),
            (Box::new(|event| event.outcome = 0), "outcome"),
            (
                Box::new(|event| event.person_id = "x".to_owned()),
                "person_id",
            ),
            (
                Box::new(|event| event.source_service.clear()),
                "source_service",
            ),
            (
                Box::new(|event| {
                    if let Some(at) = event.occurred_at.as_mut() {
                        at.seconds += 3_600;
                    }
                }),
                "occurred_at",
            ),
        ];
        for (change, field) in cases {
            let mut event = sample_event();
            change(&mut event);
            let outcome = accept(&event.encode_to_vec(), received());
            assert!(
                matches!(&outcome, Err(reason) if reason.starts_with(field)),
                "{field}: {outcome:?}"
            );
        }
        assert!(accept(b"\xff\xff\xff", received()).is_err());
    }
}
