//! Data-quality work: relinking identifiers, merging and unmerging persons.
//! Each change is committed, then announced on NATS before the call returns.

use mcr_proto::common::v1 as common;
use mcr_proto::patient_index::v1 as proto;
use mcr_runtime::nats::NatsBus;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::convert::timestamp;
use crate::domain::LocalIdentifier;
use crate::error::IndexError;
use crate::events;
use crate::store::{self, curation};

/// Relinks, merges and unmerges.
#[derive(Debug, Clone)]
pub struct Curation {
    pub pool: PgPool,
    pub nats: NatsBus,
}

fn event_id() -> String {
    Uuid::now_v7().to_string()
}

impl Curation {
    async fn active_person(&self, person_id: Uuid) -> Result<store::PersonRow, IndexError> {
        let person = store::person(&self.pool, person_id)
            .await?
            .ok_or_else(|| IndexError::NotFound(format!("person {person_id} does not exist")))?;
        if !person.is_active() {
            return Err(IndexError::FailedPrecondition(format!(
                "person {person_id} was merged into {}; use that person",
                person
                    .merged_into
                    .map(|id| id.to_string())
                    .unwrap_or_default()
            )));
        }
        Ok(person)
    }

    /// Links `identifier` to `person_id`; moving an existing link needs `may_relink`.
    pub async fn link(
        &self,
        identifier: &LocalIdentifier,
        person_id: Uuid,
        relink: bool,
        may_relink: bool,
        actor: &common::Actor,
        reason: &str,
    ) -> Result<Option<Uuid>, IndexError> {
        let person = self.active_person(person_id).await?;
        let existing = store::person_of_identifier(&self.pool, identifier).await?;
        match existing {
            Some(link) if link.person_id == person_id => return Ok(None),
            Some(link) if !relink => {
                return Err(IndexError::FailedPrecondition(format!(
                    "this identifier is linked to person {}; set relink to move it",
                    link.person_id
                )));
            }
            Some(_) if !may_relink => {
                return Err(IndexError::FailedPrecondition(
                    "moving a linked identifier needs scope index:admin".to_owned(),
                ));
            }
            _ => {}
        }
        let previous = curation::relink(
            &self.pool,
            identifier,
            person_id,
            &person.demographics,
            actor,
            reason,
        )
        .await?;
        if let Some(from_person) = previous.filter(|from| *from != person_id) {
            let event = proto::IdentifierRelinked {
                event_id: event_id(),
                identifier: Some(identifier.to_proto()),
                from_person_id: from_person.to_string(),
                to_person_id: person_id.to_string(),
                actor: Some(actor.clone()),
                occurred_at: Some(timestamp(OffsetDateTime::now_utc())),
                reason: reason.to_owned(),
            };
            events::publish(
                &self.nats,
                events::IDENTIFIER_RELINKED_SUBJECT,
                &event.event_id,
                &event,
            )
            .await?;
        }
        Ok(previous)
    }

    /// Merges `merged` into `surviving` and announces it.
    pub async fn merge(
        &self,
        surviving: Uuid,
        merged: Uuid,
        actor: &common::Actor,
        reason: &str,
        review_item_id: Option<Uuid>,
    ) -> Result<curation::MergeRow, IndexError> {
        let survivor = self.active_person(surviving).await?;
        let other = self.active_person(merged).await?;
        let (survivor_demographics, other_demographics) =
            (survivor.demographics()?, other.demographics()?);
        let verified = proto::NhsNumberVerificationStatus::PresentAndVerified as i32;
        if survivor_demographics.nhs_number_verification_status == verified
            && other_demographics.nhs_number_verification_status == verified
            && survivor_demographics.nhs_number != other_demographics.nhs_number
        {
            return Err(IndexError::FailedPrecondition(
                "the two persons have different verified NHS Numbers, so they are different people"
                    .to_owned(),
            ));
        }
        let merge =
            curation::merge(&self.pool, surviving, merged, actor, reason, review_item_id).await?;
        let event = proto::PersonMerged {
            event_id: event_id(),
            merge_id: merge.id.to_string(),
            surviving_person_id: surviving.to_string(),
            merged_person_id: merged.to_string(),
            moved_identifiers: merge
                .moved_identifiers
                .iter()
                .map(store::IdentifierJson::to_proto)
                .collect(),
            actor: Some(actor.clone()),
            occurred_at: Some(timestamp(merge.merged_at)),
            reason: reason.to_owned(),
        };
        events::publish(
            &self.nats,
            events::PERSON_MERGED_SUBJECT,
            &event.event_id,
            &event,
        )
        .await?;
        Ok(merge)
    }

    /// Undoes a merge exactly and announces it.
    pub async fn unmerge(
        &self,
        merge: &curation::MergeRow,
        actor: &common::Actor,
        reason: &str,
    ) -> Result<OffsetDateTime, IndexError> {
        let unmerged_at = curation::unmerge(&self.pool, merge, actor, reason).await?;
        let event = proto::PersonUnmerged {
            event_id: event_id(),
            merge_id: merge.id.to_string(),
            surviving_person_id: merge.surviving_person_id.to_string(),
            restored_person_id: merge.merged_person_id.to_string(),
            restored_identifiers: merge
                .moved_identifiers
                .iter()
                .map(store::IdentifierJson::to_proto)
                .collect(),
            actor: Some(actor.clone()),
            occurred_at: Some(timestamp(unmerged_at)),
            reason: reason.to_owned(),
        };
        events::publish(
            &self.nats,
            events::PERSON_UNMERGED_SUBJECT,
            &event.event_id,
            &event,
        )
        .await?;
        Ok(unmerged_at)
    }
}
