//! Audit events consent records itself (fail closed: no audit, no action).

use mcr_audit_client::AuditPublisher;
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome, OutcomeReason};
use mcr_proto::common::v1::Actor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::convert::timestamp;
use crate::error::ConsentError;

/// Records consent's audit events through the shared publisher.
#[derive(Debug, Clone)]
pub struct Auditor {
    publisher: AuditPublisher,
}

/// What one audit event says, beyond what [`Auditor`] fills in.
#[derive(Debug, Clone, Default)]
pub struct Audited {
    pub person_id: Option<Uuid>,
    pub description: String,
    pub reasons: Vec<(String, String)>,
    pub target_reference: String,
}

impl Auditor {
    pub fn new(publisher: AuditPublisher) -> Self {
        Self { publisher }
    }

    /// Publishes and waits for JetStream; any failure refuses the action.
    #[tracing::instrument(name = "audit.publish", skip_all, fields(action = action.as_str_name()))]
    pub async fn record(
        &self,
        actor: &Actor,
        action: AuditAction,
        permitted: bool,
        audited: Audited,
        extra: impl FnOnce(&mut AuditEvent),
    ) -> Result<(), ConsentError> {
        let mut event = AuditEvent {
            event_id: Uuid::now_v7().to_string(),
            occurred_at: Some(timestamp(OffsetDateTime::now_utc())),
            source_service: "consent".to_owned(),
            actor: Some(actor.clone()),
            action: action as i32,
            person_id: audited
                .person_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            outcome: if permitted {
                AuditOutcome::Permitted
            } else {
                AuditOutcome::Denied
            } as i32,
            reasons: audited
                .reasons
                .into_iter()
                .map(|(code, text)| OutcomeReason { code, text })
                .collect(),
            trace_id: mcr_runtime::propagation::current_trace_id().unwrap_or_default(),
            target_reference: audited.target_reference,
            description: audited.description.chars().take(500).collect(),
            ..AuditEvent::default()
        };
        extra(&mut event);
        self.publisher
            .publish(&event)
            .await
            .map_err(|error| ConsentError::AuditUnavailable(error.to_string()))
    }
}
