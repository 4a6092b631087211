//! The pure part of recording care relationships: validating a request as
//! its caller may make it, and what recording it makes of the stored
//! relationship (no I/O, shared by the one-at-a-time and batch RPCs).

use mcr_auth::{Principal, PrincipalKind};
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::common::v1::Actor;
use mcr_proto::consent::v1::*;
use prost::Message;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::Change;
use crate::convert::{provenance, timestamp};
use crate::domain::validate;
use crate::error::ConsentError;
use crate::store::{RelationshipRow, SourceKey, StoredRelationship};

type Done<T> = Result<T, ConsentError>;

/// A relationship as validated, before its person is known to exist.
pub(super) struct ValidRelationship {
    pub(super) kind: CareRelationshipType,
    pub(super) self_declared: bool,
    pub(super) organisation: String,
    pub(super) team_code: String,
    pub(super) source_system: String,
    pub(super) source_reference: String,
    pub(super) reason: String,
    pub(super) start_time: OffsetDateTime,
    pub(super) end_time: Option<OffsetDateTime>,
}

/// Checks one relationship as `caller` may record it, without I/O.
pub(super) fn validate_relationship(
    caller: &Principal,
    body: &RecordCareRelationshipRequest,
    now: OffsetDateTime,
) -> Done<ValidRelationship> {
    let kind = CareRelationshipType::try_from(body.relationship_type)
        .unwrap_or(CareRelationshipType::Unspecified);
    if kind == CareRelationshipType::Unspecified {
        return Err(ConsentError::invalid("relationship_type", "is required"));
    }
    let self_declared = kind == CareRelationshipType::SelfDeclared;
    let organisation = match caller.kind {
        PrincipalKind::User => {
            if !self_declared {
                return Err(ConsentError::PermissionDenied(
                        "a professional may only self-declare a care relationship (CARE_RELATIONSHIP_TYPE_SELF_DECLARED); other kinds come from provider systems".to_owned(),
                    ));
            }
            let code = validate::organisation_code_or(
                "organisation_code",
                &body.organisation_code,
                &caller.organisation_code,
            )?;
            if code != caller.organisation_code {
                return Err(ConsentError::PermissionDenied(format!(
                    "a professional self-declares for their own organisation only ({})",
                    caller.organisation_code
                )));
            }
            code
        }
        PrincipalKind::Service => {
            if self_declared {
                return Err(ConsentError::invalid(
                    "relationship_type",
                    "CARE_RELATIONSHIP_TYPE_SELF_DECLARED is declared by professionals with a user token",
                ));
            }
            validate::organisation_code("organisation_code", &body.organisation_code)?
        }
    };
    let team_code = validate::text("team_code", &body.team_code, 0, 64)?;
    let (source_system, source_reference, reason) = if self_declared {
        (
            String::new(),
            String::new(),
            validate::text("reason", &body.reason, 10, 1000)?,
        )
    } else {
        (
            validate::text("source_system", &body.source_system, 1, 256)?,
            validate::text("source_reference", &body.source_reference, 1, 256)?,
            validate::text("reason", &body.reason, 0, 1000)?,
        )
    };
    let start_time = body
        .start_time
        .as_ref()
        .ok_or_else(|| ConsentError::invalid("start_time", "is required"))
        .and_then(|at| Ok(validate::instant("start_time", at)?))?;
    if start_time > now + Duration::days(366) {
        return Err(ConsentError::invalid(
            "start_time",
            "must be at most 1 year in the future",
        ));
    }
    let end_time = match &body.end_time {
        Some(at) => {
            let end = validate::instant("end_time", at)?;
            if end <= start_time {
                return Err(ConsentError::invalid(
                    "end_time",
                    "must be after start_time",
                ));
            }
            Some(end)
        }
        None => None,
    };
    Ok(ValidRelationship {
        kind,
        self_declared,
        organisation,
        team_code,
        source_system,
        source_reference,
        reason,
        start_time,
        end_time,
    })
}

/// Which person an item names, as a map key.
pub(super) fn reference_key(item: &RecordCareRelationshipRequest) -> Vec<u8> {
    item.person
        .as_ref()
        .map(Message::encode_to_vec)
        .unwrap_or_default()
}

/// An item's error as its refusal when retrying cannot help; anything
/// transient fails the whole batch.
pub(super) fn refusal(error: ConsentError) -> Done<String> {
    match error {
        ConsentError::Invalid(_)
        | ConsentError::NotFound(_)
        | ConsentError::FailedPrecondition(_)
        | ConsentError::PermissionDenied(_) => Ok(error.to_string()),
        transient => Err(transient),
    }
}

impl ValidRelationship {
    pub(super) fn source_key(&self) -> SourceKey {
        (
            self.organisation.clone(),
            self.source_system.clone(),
            self.source_reference.clone(),
        )
    }
}

/// What recording `valid` for `person_id` makes of the relationship stored
/// under the same source key (`existing`: id, person, body), if any: the
/// relationship, whether it is new, and its row.
pub(super) fn recorded_relationship(
    existing: Option<&StoredRelationship>,
    valid: &ValidRelationship,
    person_id: Uuid,
    actor: &Actor,
    now: OffsetDateTime,
) -> Done<(CareRelationship, bool, RelationshipRow)> {
    let recorded = Some(provenance(actor, now, &valid.source_system, ""));
    let (relationship, created) = match existing {
        Some((_, owner, _)) if *owner != person_id => {
            return Err(ConsentError::FailedPrecondition(
                "this source key (organisation, source_system, source_reference) is recorded for another person".to_owned(),
            ));
        }
        Some((_, _, stored)) => {
            let mut relationship = CareRelationship::decode(stored.as_slice())?;
            relationship.start_time = Some(timestamp(valid.start_time));
            relationship.end_time = valid.end_time.map(timestamp);
            relationship.team_code.clone_from(&valid.team_code);
            relationship.relationship_type = valid.kind as i32;
            relationship.reason.clone_from(&valid.reason);
            relationship.recorded = recorded;
            (relationship, false)
        }
        None => (
            CareRelationship {
                care_relationship_id: Uuid::now_v7().to_string(),
                person_id: person_id.to_string(),
                organisation_code: valid.organisation.clone(),
                team_code: valid.team_code.clone(),
                relationship_type: valid.kind as i32,
                start_time: Some(timestamp(valid.start_time)),
                end_time: valid.end_time.map(timestamp),
                source_system: valid.source_system.clone(),
                source_reference: valid.source_reference.clone(),
                reason: valid.reason.clone(),
                review_item_id: String::new(),
                recorded,
                ended: None,
            },
            true,
        ),
    };
    let id = Uuid::parse_str(&relationship.care_relationship_id)
        .map_err(|_| ConsentError::Corrupt("stored relationship id is not a UUID".to_owned()))?;
    let row = RelationshipRow {
        id,
        person_id,
        organisation_code: valid.organisation.clone(),
        source_system: valid.source_system.clone(),
        source_reference: valid.source_reference.clone(),
        start_time: valid.start_time,
        end_time: valid.end_time,
    };
    Ok((relationship, created, row))
}

/// The change a recorded relationship commits.
pub(super) fn relationship_change(
    person_id: Uuid,
    fact_id: Uuid,
    actor: Actor,
    version: u64,
    now: OffsetDateTime,
    valid: &ValidRelationship,
    fact: Vec<u8>,
) -> Change {
    Change {
        person_id,
        kind: ConsentChangeKind::CareRelationshipRecorded,
        fact_id,
        actor,
        version,
        now,
        source_system: valid.source_system.clone(),
        note: String::new(),
        fact,
        audit_action: AuditAction::ConsentChange,
        description: if valid.self_declared {
            "care relationship self-declared"
        } else {
            "care relationship recorded"
        }
        .to_owned(),
        break_glass_grant_id: None,
    }
}
