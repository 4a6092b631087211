//! The gRPC adapter: check the caller, validate, call the domain and the
//! store, announce and audit. One module per group of RPCs.

mod break_glass;
mod decide;
mod facts;
mod relationship_input;
mod relationships;
mod restrictions;
mod review;
mod summary;

use std::sync::Arc;

use mcr_auth::{Principal, principal};
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::common::v1::{Actor, Purpose};
use mcr_proto::consent::v1::consent_server::Consent;
use mcr_proto::consent::v1::*;
use mcr_runtime::nats::NatsBus;
use prost::Message;
use sqlx::PgPool;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::audit::{Audited, Auditor};
use crate::convert::timestamp;
use crate::domain::AccessPolicy;
use crate::error::ConsentError;
use crate::index::PersonDirectory;
use crate::store::{self, ChangeRow, FactTable, Tx};
use crate::{Limits, events};

/// The `mcr.consent.v1.Consent` handlers.
#[derive(Debug, Clone)]
pub struct ConsentApi {
    pub(crate) pool: PgPool,
    pub(crate) nats: NatsBus,
    pub(crate) policy: Arc<AccessPolicy>,
    pub(crate) directory: PersonDirectory,
    pub(crate) auditor: Auditor,
    pub(crate) limits: Limits,
}

type Answer<T> = Result<Response<T>, Status>;

fn caller_with(request: &Request<impl Sized>, scope: &str) -> Result<Principal, Status> {
    let caller = principal(request)?;
    caller.require_scope(scope)?;
    Ok(caller.clone())
}

/// One change, ready to be committed, audited and announced.
pub(crate) struct Change {
    pub person_id: Uuid,
    pub kind: ConsentChangeKind,
    pub fact_id: Uuid,
    pub actor: Actor,
    pub version: u64,
    pub now: OffsetDateTime,
    pub source_system: String,
    pub note: String,
    /// The fact's proto, as it is after the change.
    pub fact: Vec<u8>,
    pub audit_action: AuditAction,
    pub description: String,
    /// For break-glass: the grant (audited with purpose EMERGENCY).
    pub break_glass_grant_id: Option<Uuid>,
}

/// A stored fact opened to be closed (a permission withdrawn, a restriction
/// removed): the person's consent version bumped and the fact's row locked
/// in `tx`, so two closings of one fact serialise and the second sees the
/// first's.
pub(crate) struct OpenFact<M> {
    pub tx: Tx,
    pub table: FactTable,
    pub id: Uuid,
    pub person_id: Uuid,
    pub version: u64,
    pub now: OffsetDateTime,
    pub fact: M,
}

impl ConsentApi {
    /// Opens fact `id` of `table`; NOT_FOUND naming the `noun` when there is none.
    pub(crate) async fn open_fact<M: Message + Default>(
        &self,
        table: FactTable,
        id: Uuid,
        noun: &str,
    ) -> Result<OpenFact<M>, ConsentError> {
        let not_found = || ConsentError::NotFound(format!("{noun} {id} does not exist"));
        let person_id = store::person_of_fact(&self.pool, table, id)
            .await?
            .ok_or_else(not_found)?;
        let now = OffsetDateTime::now_utc();
        let mut tx = store::begin(&self.pool).await?;
        let version = store::bump_version(&mut tx, person_id, now).await?;
        let (_, stored) = store::fact_for_update(&mut tx, table, id)
            .await?
            .ok_or_else(not_found)?;
        Ok(OpenFact {
            tx,
            table,
            id,
            person_id,
            version,
            now,
            fact: M::decode(stored.as_slice())?,
        })
    }

    /// Stores the opened fact as closed (the caller has set its closing
    /// fields) and commits the change; returns the fact.
    pub(crate) async fn commit_closed_fact<M: Message>(
        &self,
        open: OpenFact<M>,
        kind: ConsentChangeKind,
        actor: Actor,
        note: String,
        description: &str,
    ) -> Result<M, ConsentError> {
        let OpenFact {
            mut tx,
            table,
            id,
            person_id,
            version,
            now,
            fact,
        } = open;
        let encoded = fact.encode_to_vec();
        store::close_fact(&mut tx, table, id, now, &encoded).await?;
        self.commit_change(
            tx,
            Change {
                person_id,
                kind,
                fact_id: id,
                actor,
                version,
                now,
                source_system: String::new(),
                note,
                fact: encoded,
                audit_action: AuditAction::ConsentChange,
                description: description.to_owned(),
                break_glass_grant_id: None,
            },
        )
        .await?;
        Ok(fact)
    }

    /// Appends the change to the history/outbox, audits it (fail closed:
    /// the transaction is rolled back when audit does not take it),
    /// commits, then publishes ConsentChanged and waits for JetStream.
    pub(crate) async fn commit_change(&self, tx: Tx, change: Change) -> Result<(), ConsentError> {
        self.commit_changes(tx, vec![change]).await
    }

    /// [`Self::commit_change`] for many changes in one transaction: each
    /// person's Decide snapshot is rebuilt once, the audit events are
    /// published together (all must be acked before the commit), and the
    /// ConsentChanged events are announced together after it.
    #[tracing::instrument(name = "consent.commit_changes", skip_all, fields(changes = changes.len()))]
    pub(crate) async fn commit_changes(
        &self,
        mut tx: Tx,
        changes: Vec<Change>,
    ) -> Result<(), ConsentError> {
        let mut persons: Vec<Uuid> = changes.iter().map(|change| change.person_id).collect();
        persons.sort_unstable();
        persons.dedup();
        // Decide's snapshot changes in the same transaction as the facts.
        store::refresh_decision_facts(&mut tx, &persons).await?;
        let mut rows = Vec::with_capacity(changes.len());
        let mut announcements = Vec::with_capacity(changes.len());
        let mut audits = Vec::with_capacity(changes.len());
        for change in changes {
            let event_id = Uuid::now_v7();
            let event = ConsentChanged {
                event_id: event_id.to_string(),
                person_id: change.person_id.to_string(),
                change_kind: change.kind as i32,
                fact_id: change.fact_id.to_string(),
                consent_version: change.version,
                actor: Some(change.actor.clone()),
                occurred_at: Some(timestamp(change.now)),
            }
            .encode_to_vec();
            rows.push(ChangeRow {
                event_id,
                person_id: change.person_id,
                change_kind: change.kind as i16,
                fact_id: change.fact_id,
                consent_version: change.version,
                occurred_at: change.now,
                actor_user_id: change.actor.user_id.clone(),
                actor_organisation_code: change.actor.organisation_code.clone(),
                source_system: change.source_system.clone(),
                note: change.note.clone(),
                fact: change.fact,
                event: event.clone(),
            });
            announcements.push((event_id, change.person_id, event));
            let grant_id = change.break_glass_grant_id;
            let audited = Audited {
                person_id: Some(change.person_id),
                description: change.description,
                reasons: Vec::new(),
                target_reference: change.fact_id.to_string(),
            };
            audits.push(async move {
                self.auditor
                    .record(&change.actor, change.audit_action, true, audited, |event| {
                        if let Some(grant_id) = grant_id {
                            event.break_glass_grant_id = grant_id.to_string();
                            event.purpose = Purpose::Emergency as i32;
                            event.purpose_of_use_code = "ETREAT".to_owned();
                        }
                    })
                    .await
            });
        }
        store::append_changes(&mut tx, &rows).await?;
        futures::future::try_join_all(audits).await?;
        tx.commit().await?;
        events::announce_all(&self.nats, &self.pool, announcements).await;
        Ok(())
    }
}

#[tonic::async_trait]
impl Consent for ConsentApi {
    async fn record_opt_out(
        &self,
        request: Request<RecordOptOutRequest>,
    ) -> Answer<RecordOptOutResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_WRITE)?;
        Ok(Response::new(
            self.opt_out(&caller, request.get_ref()).await?,
        ))
    }

    async fn withdraw_opt_out(
        &self,
        request: Request<WithdrawOptOutRequest>,
    ) -> Answer<WithdrawOptOutResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_WRITE)?;
        Ok(Response::new(
            self.withdraw_opt_out(&caller, request.get_ref()).await?,
        ))
    }

    async fn record_permission_to_view(
        &self,
        request: Request<RecordPermissionToViewRequest>,
    ) -> Answer<RecordPermissionToViewResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_WRITE)?;
        Ok(Response::new(
            self.permission(&caller, request.get_ref()).await?,
        ))
    }

    async fn withdraw_permission_to_view(
        &self,
        request: Request<WithdrawPermissionToViewRequest>,
    ) -> Answer<WithdrawPermissionToViewResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_WRITE)?;
        Ok(Response::new(
            self.withdraw_permission(&caller, request.get_ref()).await?,
        ))
    }

    async fn record_care_relationship(
        &self,
        request: Request<RecordCareRelationshipRequest>,
    ) -> Answer<RecordCareRelationshipResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_WRITE)?;
        Ok(Response::new(
            self.relationship(&caller, request.get_ref()).await?,
        ))
    }

    async fn record_care_relationships(
        &self,
        request: Request<RecordCareRelationshipsRequest>,
    ) -> Answer<RecordCareRelationshipsResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_WRITE)?;
        Ok(Response::new(
            self.relationships(&caller, request.get_ref()).await?,
        ))
    }

    async fn end_care_relationship(
        &self,
        request: Request<EndCareRelationshipRequest>,
    ) -> Answer<EndCareRelationshipResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_WRITE)?;
        Ok(Response::new(
            self.end_relationship(&caller, request.get_ref()).await?,
        ))
    }

    async fn record_restriction(
        &self,
        request: Request<RecordRestrictionRequest>,
    ) -> Answer<RecordRestrictionResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_WRITE)?;
        Ok(Response::new(
            self.restriction(&caller, request.get_ref()).await?,
        ))
    }

    async fn remove_restriction(
        &self,
        request: Request<RemoveRestrictionRequest>,
    ) -> Answer<RemoveRestrictionResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_WRITE)?;
        Ok(Response::new(
            self.remove_restriction(&caller, request.get_ref()).await?,
        ))
    }

    async fn break_glass(&self, request: Request<BreakGlassRequest>) -> Answer<BreakGlassResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_BREAK_GLASS)?;
        Ok(Response::new(
            self.grant_break_glass(&caller, request.get_ref()).await?,
        ))
    }

    async fn decide(&self, request: Request<DecideRequest>) -> Answer<DecideResponse> {
        let caller = principal(&request)?.clone();
        Ok(Response::new(
            self.decide_for(&caller, request.get_ref()).await?,
        ))
    }

    async fn get_consent_summary(
        &self,
        request: Request<GetConsentSummaryRequest>,
    ) -> Answer<GetConsentSummaryResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_READ)?;
        Ok(Response::new(
            self.summary(&caller, request.get_ref()).await?,
        ))
    }

    async fn record_break_glass_review(
        &self,
        request: Request<RecordBreakGlassReviewRequest>,
    ) -> Answer<RecordBreakGlassReviewResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_REVIEW)?;
        Ok(Response::new(
            self.review(&caller, request.get_ref()).await?,
        ))
    }

    async fn list_review_queue(
        &self,
        request: Request<ListReviewQueueRequest>,
    ) -> Answer<ListReviewQueueResponse> {
        let caller = caller_with(&request, mcr_auth::scopes::CONSENT_REVIEW)?;
        Ok(Response::new(
            self.review_queue(&caller, request.get_ref()).await?,
        ))
    }
}
