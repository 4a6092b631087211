//! Retention: events stored longer ago than `audit.retention_seconds` are
//! removed from the oldest end.
//!
//! The removal is itself audited and checkpointed: a `RETENTION_PURGE` event
//! is published (and acknowledged by JetStream) before anything is removed —
//! no audit, no purge — and a checkpoint is taken after. The purge is
//! recorded with the hash of the last event removed, which anchors the chain
//! that remains, and it runs under the append lock, so replicas never purge
//! twice or while the chain is extended. The head is never removed.

use std::time::Duration;

use mcr_audit_client::AuditPublisher;
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome};
use mcr_proto::common::v1::{Actor, ActorKind};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::checkpointer::Checkpointer;
use crate::convert::timestamp;
use crate::store::retention as store;

/// Removes what is past retention.
#[derive(Debug, Clone)]
pub struct Retention {
    pub pool: PgPool,
    pub publisher: AuditPublisher,
    pub checkpointer: Checkpointer,
    pub keep_for: Duration,
}

impl Retention {
    /// Purges every `interval` until `stop`.
    pub async fn run(self, interval: Duration, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match self.purge_once().await {
                Ok(Some(removed)) => tracing::info!(removed, "events past retention removed"),
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(%reason, "retention purge failed; retrying at the next interval")
                }
            }
        }
    }

    /// One purge; the number of events removed, if any were due.
    pub async fn purge_once(&self) -> Result<Option<u64>, String> {
        let keep_for =
            time::Duration::try_from(self.keep_for).map_err(|error| error.to_string())?;
        let cutoff = OffsetDateTime::now_utc() - keep_for;
        let database = |error: sqlx::Error| format!("database: {error}");
        let Some(up_to) = store::purgeable_up_to(&self.pool, cutoff)
            .await
            .map_err(database)?
        else {
            return Ok(None);
        };
        let already = store::latest_purge(&self.pool).await.map_err(database)?;
        let from = already.as_ref().map_or(1, |(purged, _)| purged + 1);
        if up_to < from {
            return Ok(None);
        }
        let event_id = uuid::Uuid::now_v7();
        let announcement = AuditEvent {
            event_id: event_id.to_string(),
            occurred_at: Some(timestamp(OffsetDateTime::now_utc())),
            source_service: "audit".to_owned(),
            actor: Some(Actor {
                user_id: "audit".to_owned(),
                kind: ActorKind::Service as i32,
                display_name: "audit retention".to_owned(),
                ..Default::default()
            }),
            action: AuditAction::RetentionPurge as i32,
            outcome: AuditOutcome::Permitted as i32,
            target_reference: format!("sequences {from}..={up_to}"),
            description: format!(
                "removed audit events {from} to {up_to}, stored before {cutoff} (past retention)"
            ),
            ..Default::default()
        };
        // No audit, no purge.
        self.publisher
            .publish(&announcement)
            .await
            .map_err(|error| error.to_string())?;
        let removed = store::purge(&self.pool, up_to, event_id)
            .await
            .map_err(database)?;
        self.checkpointer.take().await.map_err(database)?;
        Ok(Some(removed))
    }
}
