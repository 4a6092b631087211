//! Stored rows → proto messages.

use mcr_proto::audit::v1::{AuditEvent, Checkpoint, StoredAuditEvent};
use prost::Message;

use crate::domain::fhir;
use crate::error::AuditError;
use crate::store::EventRow;
use crate::store::checkpoints::CheckpointRow;

pub use mcr_proto::timestamps::timestamp;

/// A stored event as sent, decoded from the chained bytes (so what is shown
/// is exactly what was hashed).
pub fn stored_event(row: EventRow, include_fhir: bool) -> Result<StoredAuditEvent, AuditError> {
    let event = AuditEvent::decode(row.canonical.as_slice()).map_err(|error| {
        AuditError::Internal(format!(
            "stored event {} does not decode: {error}",
            row.sequence
        ))
    })?;
    let fhir_audit_event_json = if include_fhir {
        fhir::audit_event(&event).to_string()
    } else {
        String::new()
    };
    Ok(StoredAuditEvent {
        sequence: row.sequence(),
        event: Some(event),
        stored_at: Some(timestamp(row.stored_at)),
        hash: row.hash,
        previous_hash: row.previous_hash,
        fhir_audit_event_json,
    })
}

/// A checkpoint as sent.
pub fn checkpoint(row: CheckpointRow) -> Checkpoint {
    Checkpoint {
        sequence: u64::try_from(row.sequence).unwrap_or(0),
        head_hash: row.head_hash,
        created_at: Some(timestamp(row.created_at)),
        signature: row.signature,
        key_id: row.key_id,
        public_key: row.public_key,
        merkle_root_hash: Vec::new(),
    }
}
