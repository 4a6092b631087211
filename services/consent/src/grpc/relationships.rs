//! Care relationships: recorded by connectors and services (with a provider
//! key, idempotent) or self-declared by a professional (queued for review).

use mcr_auth::{Principal, PrincipalKind};
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::consent::v1::*;
use prost::Message;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Change, ConsentApi};
use crate::convert::{provenance, timestamp};
use crate::domain::validate;
use crate::error::ConsentError;
use crate::store::{self, FactTable, RelationshipRow, ReviewRow};

type Done<T> = Result<T, ConsentError>;

impl ConsentApi {
    #[tracing::instrument(name = "consent.record_care_relationship", skip_all)]
    pub(crate) async fn relationship(
        &self,
        caller: &Principal,
        body: &RecordCareRelationshipRequest,
    ) -> Done<RecordCareRelationshipResponse> {
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
        let now = OffsetDateTime::now_utc();
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
        let person_id = self
            .directory
            .require_existing("person", body.person.as_ref())
            .await?;
        let actor = caller.actor();
        let mut tx = store::begin(&self.pool).await?;
        let version = store::bump_version(&mut tx, person_id, now).await?;
        let existing = if self_declared {
            None
        } else {
            store::relationship_by_source_key(
                &mut tx,
                &organisation,
                &source_system,
                &source_reference,
            )
            .await?
        };
        let (relationship, created) = match existing {
            Some((_, owner, _)) if owner != person_id => {
                return Err(ConsentError::FailedPrecondition(
                    "this source key (organisation, source_system, source_reference) is recorded for another person".to_owned(),
                ));
            }
            Some((_, _, stored)) => {
                let mut relationship = CareRelationship::decode(stored.as_slice())?;
                relationship.start_time = Some(timestamp(start_time));
                relationship.end_time = end_time.map(timestamp);
                relationship.team_code = team_code;
                relationship.relationship_type = kind as i32;
                relationship.reason = reason;
                relationship.recorded = Some(provenance(&actor, now, &source_system, ""));
                (relationship, false)
            }
            None => (
                CareRelationship {
                    care_relationship_id: Uuid::now_v7().to_string(),
                    person_id: person_id.to_string(),
                    organisation_code: organisation.clone(),
                    team_code,
                    relationship_type: kind as i32,
                    start_time: Some(timestamp(start_time)),
                    end_time: end_time.map(timestamp),
                    source_system: source_system.clone(),
                    source_reference: source_reference.clone(),
                    reason: reason.clone(),
                    review_item_id: String::new(),
                    recorded: Some(provenance(&actor, now, &source_system, "")),
                    ended: None,
                },
                true,
            ),
        };
        let mut relationship = relationship;
        let id = Uuid::parse_str(&relationship.care_relationship_id).map_err(|_| {
            ConsentError::Corrupt("stored relationship id is not a UUID".to_owned())
        })?;
        if self_declared {
            let review_item_id = Uuid::now_v7();
            relationship.review_item_id = review_item_id.to_string();
            let item = ReviewItem {
                review_item_id: review_item_id.to_string(),
                kind: ReviewItemKind::SelfDeclaredCareRelationship as i32,
                person_id: person_id.to_string(),
                queued_at: Some(timestamp(now)),
                ..ReviewItem::default()
            };
            store::insert_review_item(
                &mut tx,
                &ReviewRow {
                    id: review_item_id,
                    kind: ReviewItemKind::SelfDeclaredCareRelationship as i16,
                    person_id,
                    subject_id: id,
                    raised_by_user_id: actor.user_id.clone(),
                    raised_by_organisation_code: actor.organisation_code.clone(),
                    queued_at: now,
                    outcome: 0,
                    body: item.encode_to_vec(),
                },
            )
            .await?;
        }
        let encoded = relationship.encode_to_vec();
        store::upsert_relationship(
            &mut tx,
            &RelationshipRow {
                id,
                person_id,
                organisation_code: organisation,
                source_system: source_system.clone(),
                source_reference,
                start_time,
                end_time,
            },
            &encoded,
        )
        .await?;
        self.commit_change(
            tx,
            Change {
                person_id,
                kind: ConsentChangeKind::CareRelationshipRecorded,
                fact_id: id,
                actor,
                version,
                now,
                source_system,
                note: String::new(),
                fact: encoded,
                audit_action: AuditAction::ConsentChange,
                description: if self_declared {
                    "care relationship self-declared"
                } else {
                    "care relationship recorded"
                }
                .to_owned(),
                break_glass_grant_id: None,
            },
        )
        .await?;
        Ok(RecordCareRelationshipResponse {
            care_relationship: Some(relationship),
            created,
        })
    }

    #[tracing::instrument(name = "consent.end_care_relationship", skip_all)]
    pub(crate) async fn end_relationship(
        &self,
        caller: &Principal,
        body: &EndCareRelationshipRequest,
    ) -> Done<EndCareRelationshipResponse> {
        let note = validate::note("note", &body.note)?;
        let person_id = match &body.target {
            Some(end_care_relationship_request::Target::CareRelationshipId(id)) => {
                let id = validate::uuid("care_relationship_id", id)?;
                store::person_of_fact(&self.pool, FactTable::CareRelationship, id).await?
            }
            Some(end_care_relationship_request::Target::SourceKey(key)) => {
                let organisation = validate::organisation_code(
                    "source_key.organisation_code",
                    &key.organisation_code,
                )?;
                let system =
                    validate::text("source_key.source_system", &key.source_system, 1, 256)?;
                let reference =
                    validate::text("source_key.source_reference", &key.source_reference, 1, 256)?;
                store::person_of_source_key(&self.pool, &organisation, &system, &reference).await?
            }
            None => {
                return Err(ConsentError::invalid(
                    "target",
                    "is required: give care_relationship_id or source_key",
                ));
            }
        };
        let person_id = person_id
            .ok_or_else(|| ConsentError::NotFound("no such care relationship".to_owned()))?;
        let now = OffsetDateTime::now_utc();
        let end_time = match &body.end_time {
            Some(at) => validate::instant("end_time", at)?,
            None => now,
        };
        let mut tx = store::begin(&self.pool).await?;
        let version = store::bump_version(&mut tx, person_id, now).await?;
        // Locked after the person row, the same order every change takes.
        let stored = match &body.target {
            Some(end_care_relationship_request::Target::CareRelationshipId(id)) => {
                let id = validate::uuid("care_relationship_id", id)?;
                store::fact_for_update(&mut tx, FactTable::CareRelationship, id)
                    .await?
                    .map(|(_, body)| body)
            }
            Some(end_care_relationship_request::Target::SourceKey(key)) => {
                store::relationship_by_source_key(
                    &mut tx,
                    &key.organisation_code.trim().to_ascii_uppercase(),
                    key.source_system.trim(),
                    key.source_reference.trim(),
                )
                .await?
                .map(|(_, _, body)| body)
            }
            None => None,
        };
        let stored =
            stored.ok_or_else(|| ConsentError::NotFound("no such care relationship".to_owned()))?;
        let mut relationship = CareRelationship::decode(stored.as_slice())?;
        if caller.kind == PrincipalKind::User
            && relationship.organisation_code != caller.organisation_code
        {
            return Err(ConsentError::PermissionDenied(format!(
                "a professional ends care relationships of their own organisation only ({})",
                caller.organisation_code
            )));
        }
        if relationship
            .end_time
            .is_some_and(|end| end.seconds <= now.unix_timestamp())
        {
            return Err(ConsentError::FailedPrecondition(
                "this care relationship has already ended".to_owned(),
            ));
        }
        if relationship
            .start_time
            .is_some_and(|start| start.seconds > end_time.unix_timestamp())
        {
            return Err(ConsentError::invalid(
                "end_time",
                "must not be before the relationship's start_time",
            ));
        }
        let actor = caller.actor();
        relationship.end_time = Some(timestamp(end_time));
        relationship.ended = Some(provenance(&actor, now, "", &note));
        let id = Uuid::parse_str(&relationship.care_relationship_id).map_err(|_| {
            ConsentError::Corrupt("stored relationship id is not a UUID".to_owned())
        })?;
        let encoded = relationship.encode_to_vec();
        store::close_fact(&mut tx, FactTable::CareRelationship, id, end_time, &encoded).await?;
        self.commit_change(
            tx,
            Change {
                person_id,
                kind: ConsentChangeKind::CareRelationshipEnded,
                fact_id: id,
                actor,
                version,
                now,
                source_system: String::new(),
                note,
                fact: encoded,
                audit_action: AuditAction::ConsentChange,
                description: "care relationship ended".to_owned(),
                break_glass_grant_id: None,
            },
        )
        .await?;
        Ok(EndCareRelationshipResponse {
            care_relationship: Some(relationship),
        })
    }
}
