//! Care relationships: recorded by connectors and services (with a provider
//! key, idempotent) or self-declared by a professional (queued for review).

use std::collections::HashMap;

use futures::StreamExt;
use mcr_auth::{Principal, PrincipalKind};
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{Actor, LocalIdentifier};
use mcr_proto::consent::v1::care_relationship_outcome::Outcome;
use mcr_proto::consent::v1::*;
use prost::Message;
use time::OffsetDateTime;
use uuid::Uuid;

use super::relationship_input::{
    ValidRelationship, recorded_relationship, reference_key, refusal, relationship_change,
    validate_relationship,
};
use super::{Change, ConsentApi};
use crate::convert::{provenance, timestamp};
use crate::domain::validate;
use crate::error::ConsentError;
use crate::store::{self, FactTable, RelationshipRow, ReviewRow, SourceKey};

type Done<T> = Result<T, ConsentError>;

/// Most items in one RecordCareRelationships call.
const MAX_BATCH: usize = 1000;
/// Person look-ups in flight at once for one batch.
const CONCURRENT_LOOKUPS: usize = 16;

impl ConsentApi {
    #[tracing::instrument(name = "consent.record_care_relationship", skip_all)]
    pub(crate) async fn relationship(
        &self,
        caller: &Principal,
        body: &RecordCareRelationshipRequest,
    ) -> Done<RecordCareRelationshipResponse> {
        let now = OffsetDateTime::now_utc();
        let valid = validate_relationship(caller, body, now)?;
        let person_id = self
            .directory
            .require_existing("person", body.person.as_ref())
            .await?;
        let mut tx = store::begin(&self.pool).await?;
        let (response, change) = self
            .store_relationship(&mut tx, caller.actor(), person_id, valid, now)
            .await?;
        self.commit_change(tx, change).await?;
        Ok(response)
    }

    /// Many provider relationships in one transaction. Items that can never
    /// be taken as they stand are refused one by one; anything transient
    /// (database, patient-index, audit) fails the whole call, so the caller
    /// retries it all (every item is idempotent on its source key).
    #[tracing::instrument(name = "consent.record_care_relationships", skip_all, fields(items = body.relationships.len()))]
    pub(crate) async fn relationships(
        &self,
        caller: &Principal,
        body: &RecordCareRelationshipsRequest,
    ) -> Done<RecordCareRelationshipsResponse> {
        if caller.kind != PrincipalKind::Service {
            return Err(ConsentError::PermissionDenied(
                "RecordCareRelationships takes provider relationships from a service token; a professional self-declares with RecordCareRelationship".to_owned(),
            ));
        }
        let count = body.relationships.len();
        if count == 0 || count > MAX_BATCH {
            return Err(ConsentError::invalid(
                "relationships",
                format!("must hold 1-{MAX_BATCH} items (got {count})"),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; count];
        let mut valid = Vec::with_capacity(count);
        for (index, item) in body.relationships.iter().enumerate() {
            match validate_relationship(caller, item, now) {
                Ok(relationship) => valid.push((index, relationship)),
                Err(error) => outcomes[index] = Some(Outcome::Refused(refusal(error)?)),
            }
        }
        let persons = self.persons_of(&body.relationships, &valid).await?;
        let mut ready = Vec::with_capacity(valid.len());
        for (index, relationship) in valid {
            match persons.get(&reference_key(&body.relationships[index])) {
                Some(Ok(person_id)) => ready.push((*person_id, index, relationship)),
                Some(Err(refused)) => outcomes[index] = Some(Outcome::Refused(refused.clone())),
                None => {
                    return Err(ConsentError::Corrupt(
                        "a person reference was left unresolved".to_owned(),
                    ));
                }
            }
        }
        // One lock order for every transaction: person rows by id.
        ready.sort_unstable_by_key(|(person_id, index, _)| (*person_id, *index));
        let mut persons: Vec<Uuid> = ready.iter().map(|(person_id, _, _)| *person_id).collect();
        persons.dedup();
        let mut tx = store::begin(&self.pool).await?;
        let versions = store::bump_versions(&mut tx, &persons, now).await?;
        let keys: Vec<SourceKey> = ready
            .iter()
            .map(|(_, _, relationship)| relationship.source_key())
            .collect();
        let mut stored = store::relationships_by_source_keys(&mut tx, &keys).await?;
        let actor = caller.actor();
        let mut changes = Vec::with_capacity(ready.len());
        let mut writes: Vec<(RelationshipRow, Vec<u8>)> = Vec::with_capacity(ready.len());
        let mut write_of: HashMap<Uuid, usize> = HashMap::new();
        for ((person_id, index, valid), key) in ready.into_iter().zip(keys) {
            let (relationship, created, row) =
                match recorded_relationship(stored.get(&key), &valid, person_id, &actor, now) {
                    Ok(recorded) => recorded,
                    Err(error) => {
                        outcomes[index] = Some(Outcome::Refused(refusal(error)?));
                        continue;
                    }
                };
            let version = versions.get(&person_id).copied().ok_or_else(|| {
                ConsentError::Corrupt("a person's consent version was not bumped".to_owned())
            })?;
            let encoded = relationship.encode_to_vec();
            // A later item with the same source key updates this one.
            stored.insert(key, (row.id, person_id, encoded.clone()));
            changes.push(relationship_change(
                person_id,
                row.id,
                actor.clone(),
                version,
                now,
                &valid,
                encoded.clone(),
            ));
            match write_of.get(&row.id) {
                Some(&at) => writes[at] = (row, encoded),
                None => {
                    write_of.insert(row.id, writes.len());
                    writes.push((row, encoded));
                }
            }
            outcomes[index] = Some(Outcome::Recorded(RecordCareRelationshipResponse {
                care_relationship: Some(relationship),
                created,
            }));
        }
        store::upsert_relationships(&mut tx, &writes).await?;
        if changes.is_empty() {
            tx.rollback().await?;
        } else {
            self.commit_changes(tx, changes).await?;
        }
        Ok(RecordCareRelationshipsResponse {
            outcomes: outcomes
                .into_iter()
                .map(|outcome| CareRelationshipOutcome { outcome })
                .collect(),
        })
    }

    /// The person each distinct reference of `valid` names (keyed by
    /// [`reference_key`]), or why it is refused: local identifiers (what
    /// connectors send) in one patient-index call, any other reference —
    /// or every one, when an identifier in the batch is invalid — looked up
    /// on its own, concurrently.
    async fn persons_of(
        &self,
        items: &[RecordCareRelationshipRequest],
        valid: &[(usize, ValidRelationship)],
    ) -> Done<HashMap<Vec<u8>, Result<Uuid, String>>> {
        let mut distinct = HashMap::new();
        for (index, _) in valid {
            let item = &items[*index];
            distinct
                .entry(reference_key(item))
                .or_insert_with(|| item.person.clone());
        }
        let (by_identifier, mut one_by_one): (Vec<_>, Vec<_>) =
            distinct.into_iter().partition(|(_, reference)| {
                matches!(
                    reference
                        .as_ref()
                        .and_then(|person| person.reference.as_ref()),
                    Some(Reference::LocalIdentifier(_))
                )
            });
        let mut persons = HashMap::with_capacity(by_identifier.len() + one_by_one.len());
        if !by_identifier.is_empty() {
            let identifiers: Vec<LocalIdentifier> = by_identifier
                .iter()
                .filter_map(
                    |(_, reference)| match reference.as_ref()?.reference.as_ref()? {
                        Reference::LocalIdentifier(identifier) => Some(identifier.clone()),
                        _ => None,
                    },
                )
                .collect();
            match self.directory.resolve_local_identifiers(&identifiers).await {
                Ok(resolved) => {
                    for ((key, _), person) in by_identifier.into_iter().zip(resolved) {
                        let person = match person {
                            Some(person_id) => Ok(person_id),
                            None => Err(refusal(ConsentError::NotFound(
                                "person: no person matches this reference".to_owned(),
                            ))?),
                        };
                        persons.insert(key, person);
                    }
                }
                Err(ConsentError::Invalid(_)) => one_by_one.extend(by_identifier),
                Err(transient) => return Err(transient),
            }
        }
        let found: Vec<(Vec<u8>, Done<Uuid>)> = futures::stream::iter(one_by_one)
            .map(|(key, reference)| async move {
                let person = self
                    .directory
                    .require_existing("person", reference.as_ref())
                    .await;
                (key, person)
            })
            .buffer_unordered(CONCURRENT_LOOKUPS)
            .collect()
            .await;
        for (key, person) in found {
            let person = match person {
                Ok(person_id) => Ok(person_id),
                Err(error) => Err(refusal(error)?),
            };
            persons.insert(key, person);
        }
        Ok(persons)
    }

    /// Writes one validated relationship for `person_id` in `tx` (with its
    /// review item when self-declared); returns the answer and the change
    /// to commit.
    async fn store_relationship(
        &self,
        tx: &mut store::Tx,
        actor: Actor,
        person_id: Uuid,
        valid: ValidRelationship,
        now: OffsetDateTime,
    ) -> Done<(RecordCareRelationshipResponse, Change)> {
        let version = store::bump_version(tx, person_id, now).await?;
        let existing = if valid.self_declared {
            None
        } else {
            store::relationship_by_source_key(
                tx,
                &valid.organisation,
                &valid.source_system,
                &valid.source_reference,
            )
            .await?
        };
        let (mut relationship, created, row) =
            recorded_relationship(existing.as_ref(), &valid, person_id, &actor, now)?;
        if valid.self_declared {
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
                tx,
                &ReviewRow {
                    id: review_item_id,
                    kind: ReviewItemKind::SelfDeclaredCareRelationship as i16,
                    person_id,
                    subject_id: row.id,
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
        let change = relationship_change(
            person_id,
            row.id,
            actor,
            version,
            now,
            &valid,
            encoded.clone(),
        );
        store::upsert_relationships(tx, &[(row, encoded)]).await?;
        Ok((
            RecordCareRelationshipResponse {
                care_relationship: Some(relationship),
                created,
            },
            change,
        ))
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
