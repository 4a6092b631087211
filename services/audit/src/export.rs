//! ExportEvents' stream: stored events in sequence order, for a SIEM.

use std::time::Duration;

use mcr_proto::audit::v1::{ExportEventsRequest, ExportEventsResponse};
use sqlx::PgPool;
use tonic::Status;

use crate::convert;
use crate::error::AuditError;
use crate::store;

/// Events read per query while exporting.
const EXPORT_CHUNK: u32 = 500;
/// How often a following export looks for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// Sends events in sequence order until the range ends (or, following,
/// until the client goes away).
pub async fn export(
    pool: PgPool,
    asked: ExportEventsRequest,
    sender: tokio::sync::mpsc::Sender<Result<ExportEventsResponse, Status>>,
) {
    let mut next = asked.from_sequence.max(1);
    let last = if asked.to_sequence == 0 {
        u64::MAX >> 1
    } else {
        asked.to_sequence
    };
    loop {
        let rows =
            match store::events_in_order(&pool, next, last, &asked.actions, EXPORT_CHUNK).await {
                Ok(rows) => rows,
                Err(error) => {
                    let _ = sender.send(Err(AuditError::from(error).into())).await;
                    return;
                }
            };
        let exhausted = rows.len() < EXPORT_CHUNK as usize;
        for row in rows {
            next = row.sequence() + 1;
            let message = convert::stored_event(row, asked.include_fhir)
                .map(|event| ExportEventsResponse { event: Some(event) })
                .map_err(Status::from);
            if sender.send(message).await.is_err() {
                return;
            }
        }
        if next > last {
            return;
        }
        if exhausted {
            if !asked.follow {
                return;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}
