//! The privacy officers' review queue.

use mcr_auth::Principal;
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::common::v1::PageResponse;
use mcr_proto::consent::v1::*;
use mcr_runtime::paging::{next_page_token, parse_page};
use prost::Message;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Change, ConsentApi};
use crate::convert::{provenance, timestamp};
use crate::domain::validate;
use crate::error::ConsentError;
use crate::store::{self, FactTable, QueueQuery, ReviewRow};

/// Largest page of the queue (the contract's limit).
const MAX_QUEUE_PAGE: u32 = 200;

impl ConsentApi {
    /// The item with its subject filled in.
    async fn review_item_message(&self, row: &ReviewRow) -> Result<ReviewItem, ConsentError> {
        let mut items = self.review_item_messages(std::slice::from_ref(row)).await?;
        items
            .pop()
            .ok_or_else(|| ConsentError::Corrupt("review item vanished".to_owned()))
    }

    /// Items with their subjects: two queries whatever the page size.
    async fn review_item_messages(
        &self,
        rows: &[ReviewRow],
    ) -> Result<Vec<ReviewItem>, ConsentError> {
        let grant_ids: Vec<Uuid> = rows
            .iter()
            .filter(|row| row.kind == ReviewItemKind::BreakGlass as i16)
            .map(|row| row.subject_id)
            .collect();
        let relationship_ids: Vec<Uuid> = rows
            .iter()
            .filter(|row| row.kind != ReviewItemKind::BreakGlass as i16)
            .map(|row| row.subject_id)
            .collect();
        let grants = if grant_ids.is_empty() {
            Vec::new()
        } else {
            store::bodies_by_ids(&self.pool, "break_glass_grant", &grant_ids).await?
        };
        let relationships = if relationship_ids.is_empty() {
            Vec::new()
        } else {
            store::bodies_by_ids(&self.pool, "care_relationship", &relationship_ids).await?
        };
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let mut item = ReviewItem::decode(row.body.as_slice())?;
            let subject = if row.kind == ReviewItemKind::BreakGlass as i16 {
                grants
                    .iter()
                    .find(|(id, _)| *id == row.subject_id)
                    .map(|(_, body)| {
                        BreakGlassGrant::decode(body.as_slice())
                            .map(review_item::Subject::BreakGlassGrant)
                    })
                    .transpose()?
            } else {
                relationships
                    .iter()
                    .find(|(id, _)| *id == row.subject_id)
                    .map(|(_, body)| {
                        CareRelationship::decode(body.as_slice())
                            .map(review_item::Subject::CareRelationship)
                    })
                    .transpose()?
            };
            // After a merge the row names the current owner; bodies may not.
            item.person_id = row.person_id.to_string();
            item.subject = subject.map(|subject| match subject {
                review_item::Subject::BreakGlassGrant(mut grant) => {
                    grant.person_id = item.person_id.clone();
                    review_item::Subject::BreakGlassGrant(grant)
                }
                review_item::Subject::CareRelationship(mut relationship) => {
                    relationship.person_id = item.person_id.clone();
                    review_item::Subject::CareRelationship(relationship)
                }
            });
            items.push(item);
        }
        Ok(items)
    }

    #[tracing::instrument(name = "consent.record_break_glass_review", skip_all)]
    pub(crate) async fn review(
        &self,
        caller: &Principal,
        body: &RecordBreakGlassReviewRequest,
    ) -> Result<RecordBreakGlassReviewResponse, ConsentError> {
        let id = validate::uuid("review_item_id", &body.review_item_id)?;
        let outcome = ReviewOutcome::try_from(body.outcome).unwrap_or(ReviewOutcome::Unspecified);
        let note = match outcome {
            ReviewOutcome::Unspecified => {
                return Err(ConsentError::invalid(
                    "outcome",
                    "is required: REVIEW_OUTCOME_APPROPRIATE or REVIEW_OUTCOME_INAPPROPRIATE",
                ));
            }
            ReviewOutcome::Appropriate => validate::text("note", &body.note, 0, 2000)?,
            ReviewOutcome::Inappropriate => validate::text("note", &body.note, 10, 2000)?,
        };
        let not_found = || ConsentError::NotFound(format!("review item {id} does not exist"));
        let person_id = store::review_item(&self.pool, id)
            .await?
            .ok_or_else(not_found)?
            .person_id;
        let now = OffsetDateTime::now_utc();
        let mut tx = store::begin(&self.pool).await?;
        let version = store::bump_version(&mut tx, person_id, now).await?;
        let row = store::review_item_for_update(&mut tx, id)
            .await?
            .ok_or_else(not_found)?;
        if row.outcome != ReviewOutcome::Unspecified as i16 {
            return Err(ConsentError::FailedPrecondition(
                "this item has already been reviewed".to_owned(),
            ));
        }
        if row.raised_by_user_id == caller.subject {
            return Err(ConsentError::PermissionDenied(
                "a reviewer cannot review their own break-glass or self-declared relationship"
                    .to_owned(),
            ));
        }
        let actor = caller.actor();
        let mut item = ReviewItem::decode(row.body.as_slice())?;
        item.outcome = outcome as i32;
        item.reviewed_by = Some(actor.clone());
        item.reviewed_at = Some(timestamp(now));
        item.review_note = note.clone();
        let encoded_item = item.encode_to_vec();
        store::record_review(&mut tx, id, outcome as i16, &encoded_item).await?;
        if row.kind == ReviewItemKind::BreakGlass as i16 {
            if let Some((_, stored)) =
                store::fact_for_update(&mut tx, FactTable::BreakGlassGrant, row.subject_id).await?
            {
                let mut grant = BreakGlassGrant::decode(stored.as_slice())?;
                grant.review_outcome = outcome as i32;
                store::update_body(
                    &mut tx,
                    FactTable::BreakGlassGrant,
                    row.subject_id,
                    &grant.encode_to_vec(),
                )
                .await?;
            }
        } else if outcome == ReviewOutcome::Inappropriate
            && let Some((_, stored)) =
                store::fact_for_update(&mut tx, FactTable::CareRelationship, row.subject_id).await?
        {
            // An inappropriate self-declared relationship stops counting at once.
            let mut relationship = CareRelationship::decode(stored.as_slice())?;
            let open = relationship
                .end_time
                .is_none_or(|end| end.seconds > now.unix_timestamp());
            if open {
                relationship.end_time = Some(timestamp(now));
                relationship.ended = Some(provenance(
                    &actor,
                    now,
                    "",
                    "ended: review found it inappropriate",
                ));
                store::close_fact(
                    &mut tx,
                    FactTable::CareRelationship,
                    row.subject_id,
                    now,
                    &relationship.encode_to_vec(),
                )
                .await?;
            }
        }
        self.commit_change(
            tx,
            Change {
                person_id,
                kind: ConsentChangeKind::ReviewRecorded,
                fact_id: id,
                actor,
                version,
                now,
                source_system: String::new(),
                note,
                fact: encoded_item,
                audit_action: AuditAction::Review,
                description: format!("review recorded: {}", outcome.as_str_name()),
                break_glass_grant_id: None,
            },
        )
        .await?;
        let reviewed = ReviewRow {
            outcome: outcome as i16,
            body: item.encode_to_vec(),
            ..row
        };
        Ok(RecordBreakGlassReviewResponse {
            item: Some(self.review_item_message(&reviewed).await?),
        })
    }

    #[tracing::instrument(name = "consent.list_review_queue", skip_all)]
    pub(crate) async fn review_queue(
        &self,
        _caller: &Principal,
        body: &ListReviewQueueRequest,
    ) -> Result<ListReviewQueueResponse, ConsentError> {
        let kind = ReviewItemKind::try_from(body.kind).map_err(|_| {
            ConsentError::invalid("kind", format!("{} is not a review item kind", body.kind))
        })?;
        let organisation_code = if body.organisation_code.trim().is_empty() {
            String::new()
        } else {
            validate::organisation_code("organisation_code", &body.organisation_code)?
        };
        let page_request = body.page.clone().unwrap_or_default();
        if page_request.page_size > MAX_QUEUE_PAGE {
            return Err(ConsentError::invalid(
                "page.page_size",
                format!("must be at most {MAX_QUEUE_PAGE}"),
            ));
        }
        let fingerprint = format!(
            "{}|{}|{}",
            kind as i32, body.include_reviewed, organisation_code
        );
        let page = parse_page(
            page_request.page_size,
            &page_request.page_token,
            &fingerprint,
        )?;
        let after = match &page.after {
            Some(cursor) => Some(parse_cursor(cursor)?),
            None => None,
        };
        let mut rows = store::review_queue(
            &self.pool,
            &QueueQuery {
                kind: kind as i16,
                include_reviewed: body.include_reviewed,
                organisation_code,
                after,
                limit: i64::from(page.size) + 1,
            },
        )
        .await?;
        let more = rows.len() > page.size as usize;
        rows.truncate(page.size as usize);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => next_page_token(
                &format!("{}:{}", last.queued_at.unix_timestamp_nanos(), last.id),
                &fingerprint,
            ),
            _ => String::new(),
        };
        Ok(ListReviewQueueResponse {
            items: self.review_item_messages(&rows).await?,
            page: Some(PageResponse { next_page_token }),
        })
    }
}

fn parse_cursor(cursor: &str) -> Result<(OffsetDateTime, Uuid), ConsentError> {
    let invalid = || {
        ConsentError::invalid(
            "page.page_token",
            "is not valid for this query; start again without a token",
        )
    };
    let (nanos, id) = cursor.split_once(':').ok_or_else(invalid)?;
    let nanos: i128 = nanos.parse().map_err(|_| invalid())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid())?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((at, id))
}
