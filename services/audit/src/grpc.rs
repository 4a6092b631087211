//! The gRPC adapter: check the caller's scope, convert, call the store and
//! domain, record the call itself in the audit stream, map errors. No rules
//! live here.

use mcr_audit_client::AuditPublisher;
use mcr_auth::{Principal, principal, scopes};
use mcr_proto::audit::v1::audit_server::Audit;
use mcr_proto::audit::v1::*;
use mcr_proto::common::v1::PageResponse;
use mcr_runtime::paging;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::checkpointer::Checkpointer;
use crate::convert::{self, timestamp};
use crate::domain::chain::BreakKind;
use crate::domain::query::{self, Cursor, EventFilter};
use crate::domain::report;
use crate::error::AuditError;
use crate::organisations::Organisations;
use crate::{store, verify};

/// The `mcr.audit.v1.Audit` handlers.
#[derive(Debug, Clone)]
pub struct AuditApi {
    pub(crate) pool: PgPool,
    pub(crate) publisher: AuditPublisher,
    pub(crate) checkpointer: Checkpointer,
    pub(crate) organisations: Organisations,
    pub(crate) shutdown: CancellationToken,
}

type Answer<T> = Result<Response<T>, Status>;

/// Largest page of a subject access report.
const MAX_REPORT_PAGE: u32 = 1_000;

impl AuditApi {
    /// Records this call in the audit stream before any data is returned:
    /// no audit, no data.
    async fn record(
        &self,
        caller: &Principal,
        action: AuditAction,
        person_id: &str,
        description: String,
        permitted: bool,
    ) -> Result<(), AuditError> {
        let outcome = if permitted {
            AuditOutcome::Permitted
        } else {
            AuditOutcome::Denied
        };
        let event = AuditEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            occurred_at: Some(timestamp(OffsetDateTime::now_utc())),
            source_service: "audit".to_owned(),
            actor: Some(caller.actor()),
            action: action as i32,
            person_id: person_id.to_owned(),
            outcome: outcome as i32,
            trace_id: mcr_runtime::propagation::current_trace_id().unwrap_or_default(),
            description,
            ..Default::default()
        };
        self.publisher.publish(&event).await?;
        Ok(())
    }

    /// PERMISSION_DENIED unless `caller` has `scope`; a refusal is audited too.
    async fn require(
        &self,
        caller: &Principal,
        scope: &str,
        action: AuditAction,
        person_id: &str,
    ) -> Result<(), Status> {
        if let Err(status) = caller.require_scope(scope) {
            // Best effort: the refusal stands whether or not it is recorded.
            if let Err(error) = self
                .record(
                    caller,
                    action,
                    person_id,
                    format!("refused: needs {scope}"),
                    false,
                )
                .await
            {
                tracing::warn!(%error, "recording a refused audit call failed");
            }
            return Err(status);
        }
        Ok(())
    }
}

fn page_of<T>(mut rows: Vec<T>, size: u32, cursor: impl Fn(&T) -> String) -> (Vec<T>, String) {
    // One extra row was asked for: it tells whether another page follows.
    if rows.len() > size as usize {
        rows.truncate(size as usize);
        let token = rows.last().map(&cursor).unwrap_or_default();
        (rows, token)
    } else {
        (rows, String::new())
    }
}

fn cursor_of(page: &paging::Page) -> Result<Option<Cursor>, AuditError> {
    page.after
        .as_deref()
        .map(|text| {
            Cursor::decode(text).ok_or_else(|| {
                AuditError::invalid("page", "page.page_token is not valid for this query")
            })
        })
        .transpose()
}

#[tonic::async_trait]
impl Audit for AuditApi {
    async fn query_events(
        &self,
        request: Request<QueryEventsRequest>,
    ) -> Answer<QueryEventsResponse> {
        let caller = principal(&request)?.clone();
        let query = request.into_inner();
        let filter = EventFilter::from_request(&query).map_err(AuditError::from)?;
        // Without audit:read a caller may see only their own actions.
        let own_events = filter.actor_user_id.as_deref() == Some(caller.subject.as_str());
        if !own_events {
            self.require(
                &caller,
                scopes::AUDIT_READ,
                AuditAction::QueryAudit,
                &query.person_id,
            )
            .await?;
        }
        let fingerprint = format!("{filter:?}");
        let page_request = query.page.clone().unwrap_or_default();
        let page = paging::parse_page(
            page_request.page_size,
            &page_request.page_token,
            &fingerprint,
        )
        .map_err(AuditError::from)?;
        let rows = store::query_events(&self.pool, &filter, cursor_of(&page)?, page.size + 1)
            .await
            .map_err(AuditError::from)?;
        let (rows, next_page_token) = page_of(rows, page.size, |last| {
            paging::next_page_token(&last.cursor().encode(), &fingerprint)
        });
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            events.push(convert::stored_event(row, query.include_fhir)?);
        }
        self.record(
            &caller,
            AuditAction::QueryAudit,
            &query.person_id,
            format!("queried audit events ({} returned)", events.len()),
            true,
        )
        .await?;
        Ok(Response::new(QueryEventsResponse {
            events,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn get_subject_access_report(
        &self,
        request: Request<GetSubjectAccessReportRequest>,
    ) -> Answer<GetSubjectAccessReportResponse> {
        let caller = principal(&request)?.clone();
        let authorization = request.metadata().get("authorization").cloned();
        let asked = request.into_inner();
        self.require(
            &caller,
            scopes::AUDIT_READ,
            AuditAction::SubjectAccessReport,
            &asked.person_id,
        )
        .await?;
        let person_id =
            query::required_uuid("person_id", &asked.person_id).map_err(AuditError::from)?;
        let (from_time, to_time) =
            query::time_range(asked.from_time.as_ref(), asked.to_time.as_ref())
                .map_err(AuditError::from)?;
        let filter = EventFilter {
            person_id: Some(person_id),
            actions: report::ACCESS_ACTIONS
                .iter()
                .map(|action| *action as i32)
                .collect(),
            outcome: (!asked.include_denied).then_some(AuditOutcome::Permitted as i32),
            from_time,
            to_time,
            ..Default::default()
        };
        let page_request = asked.page.clone().unwrap_or_default();
        if page_request.page_size > MAX_REPORT_PAGE {
            return Err(AuditError::invalid(
                "page",
                format!("page.page_size is above the maximum of {MAX_REPORT_PAGE}"),
            )
            .into());
        }
        let size = if page_request.page_size == 0 {
            100
        } else {
            page_request.page_size
        };
        let fingerprint = format!("report {filter:?}");
        // Only the token is checked here; the size bound is the report's own.
        let page = paging::parse_page(1, &page_request.page_token, &fingerprint)
            .map_err(AuditError::from)?;
        let rows = store::query_events(&self.pool, &filter, cursor_of(&page)?, size + 1)
            .await
            .map_err(AuditError::from)?;
        let (rows, next_page_token) = page_of(rows, size, |last| {
            paging::next_page_token(&last.cursor().encode(), &fingerprint)
        });
        let mut decoded = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(event) = convert::stored_event(row, false)?.event {
                decoded.push(event);
            }
        }
        let codes: Vec<String> = decoded
            .iter()
            .filter_map(|event| {
                event
                    .actor
                    .as_ref()
                    .map(|actor| actor.organisation_code.clone())
            })
            .collect();
        let contacts = self
            .organisations
            .contacts(codes, authorization.as_ref())
            .await?;
        let entries: Vec<SubjectAccessEntry> = decoded
            .iter()
            .map(|event| {
                let code = event
                    .actor
                    .as_ref()
                    .map(|actor| actor.organisation_code.as_str())
                    .unwrap_or_default();
                let name = contacts
                    .get(code)
                    .map_or(code, |contact| contact.name.as_str());
                report::entry(event, name)
            })
            .collect();
        let organisations: Vec<OrganisationContact> = contacts.into_values().collect();
        let generated_at = OffsetDateTime::now_utc();
        let report_text = report::report_text(&entries, &organisations, generated_at);
        self.record(
            &caller,
            AuditAction::SubjectAccessReport,
            &asked.person_id,
            format!(
                "produced a subject access report ({} accesses)",
                entries.len()
            ),
            true,
        )
        .await?;
        Ok(Response::new(GetSubjectAccessReportResponse {
            person_id: person_id.to_string(),
            entries,
            organisations,
            report_text,
            generated_at: Some(timestamp(generated_at)),
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn verify_chain(
        &self,
        request: Request<VerifyChainRequest>,
    ) -> Answer<VerifyChainResponse> {
        let caller = principal(&request)?.clone();
        self.require(&caller, scopes::AUDIT_READ, AuditAction::QueryAudit, "")
            .await?;
        let range = request.into_inner();
        if range.to_sequence != 0 && range.from_sequence > range.to_sequence {
            return Err(
                AuditError::invalid("from_sequence", "must not be after to_sequence").into(),
            );
        }
        let trusted = self
            .checkpointer
            .trusted_keys()
            .await
            .map_err(AuditError::from)?;
        let verification =
            verify::verify(&self.pool, &trusted, range.from_sequence, range.to_sequence).await?;
        let (first_broken_sequence, break_kind, detail) = match &verification.first_break {
            Some(found) => (
                found.sequence,
                chain_break_kind(found.kind) as i32,
                found.detail.clone(),
            ),
            None => (0, ChainBreakKind::Unspecified as i32, String::new()),
        };
        if let Some(found) = &verification.first_break {
            tracing::error!(sequence = found.sequence, detail = %found.detail, "audit chain verification found a break");
        }
        Ok(Response::new(VerifyChainResponse {
            ok: verification.first_break.is_none(),
            first_broken_sequence,
            break_kind,
            detail,
            verified_from: verification.verified_from,
            verified_to: verification.verified_to,
            events_verified: verification.events_verified,
            head_sequence: verification.head.sequence,
            head_hash: verification.head.hash.to_vec(),
            latest_checkpoint: verification.latest_checkpoint.map(convert::checkpoint),
            checkpoints_verified: verification.checkpoints_verified,
        }))
    }

    async fn export_events(
        &self,
        request: Request<ExportEventsRequest>,
    ) -> Answer<tonic::codegen::BoxStream<ExportEventsResponse>> {
        let caller = principal(&request)?.clone();
        self.require(&caller, scopes::AUDIT_EXPORT, AuditAction::ExportAudit, "")
            .await?;
        let asked = request.into_inner();
        if asked.to_sequence != 0 && asked.to_sequence < asked.from_sequence {
            return Err(
                AuditError::invalid("to_sequence", "must not be before from_sequence").into(),
            );
        }
        for action in &asked.actions {
            if AuditAction::try_from(*action).is_err() || *action == 0 {
                return Err(AuditError::invalid(
                    "actions",
                    format!("{action} is not a known AuditAction"),
                )
                .into());
            }
        }
        let oldest = store::oldest_sequence(&self.pool)
            .await
            .map_err(AuditError::from)?;
        if let Some(oldest) = oldest
            && asked.from_sequence != 0
            && asked.from_sequence < oldest
        {
            return Err(AuditError::OutOfRange(format!(
                "sequence {} was removed by retention; the oldest available is {oldest}",
                asked.from_sequence
            ))
            .into());
        }
        self.record(
            &caller,
            AuditAction::ExportAudit,
            "",
            format!(
                "exported audit events from sequence {}",
                asked.from_sequence.max(1)
            ),
            true,
        )
        .await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let pool = self.pool.clone();
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = sender.closed() => {}
                () = crate::export::export(pool, asked, sender.clone()) => {}
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

fn chain_break_kind(kind: BreakKind) -> ChainBreakKind {
    match kind {
        BreakKind::HashMismatch => ChainBreakKind::HashMismatch,
        BreakKind::PreviousHashMismatch => ChainBreakKind::PreviousHashMismatch,
        BreakKind::SequenceGap => ChainBreakKind::SequenceGap,
        BreakKind::Truncated => ChainBreakKind::Truncated,
        BreakKind::CheckpointMismatch => ChainBreakKind::CheckpointMismatch,
        BreakKind::CheckpointSignatureInvalid => ChainBreakKind::CheckpointSignatureInvalid,
    }
}
