//! What identity announces on NATS: revoked sessions.

use mcr_auth::revocation::{REVOKED_SUBJECT, revocations_stream_config};
use mcr_proto::identity::v1::{RevocationReason, SessionRevoked};
use mcr_runtime::nats::NatsBus;
use prost::Message;
use time::OffsetDateTime;

use crate::error::IdentityError;
use crate::store::SessionRow;

/// Ensures the revocation stream exists (idempotent).
pub async fn ensure_streams(nats: &NatsBus) -> Result<(), IdentityError> {
    nats.ensure_stream(revocations_stream_config())
        .await
        .map(|_| ())
        .map_err(|error| IdentityError::Messaging(error.to_string()))
}

/// Publishes one `SessionRevoked` per session and waits for JetStream's acks,
/// so a revocation the caller saw succeed is durable.
pub async fn publish_revocations(
    nats: &NatsBus,
    sessions: &[SessionRow],
    reason: RevocationReason,
    revoked_by: Option<mcr_proto::common::v1::Actor>,
    access_tokens_valid_until: OffsetDateTime,
) -> Result<(), IdentityError> {
    let subject = nats.subject(REVOKED_SUBJECT);
    let mut acknowledgements = Vec::with_capacity(sessions.len());
    for session in sessions {
        let event = SessionRevoked {
            event_id: uuid::Uuid::now_v7().to_string(),
            session_id: session.id.to_string(),
            user_id: session.user_id.to_string(),
            revoked_at: Some(timestamp(
                session.revoked_at.unwrap_or_else(OffsetDateTime::now_utc),
            )),
            access_tokens_valid_until: Some(timestamp(access_tokens_valid_until)),
            reason: reason as i32,
            revoked_by: revoked_by.clone(),
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.as_str());
        mcr_runtime::propagation::inject_current_into_nats(&mut headers);
        let acknowledgement = nats
            .jetstream()
            .publish_with_headers(subject.clone(), headers, event.encode_to_vec().into())
            .await
            .map_err(|error| {
                IdentityError::Messaging(format!("publishing a revocation failed: {error}"))
            })?;
        acknowledgements.push(acknowledgement);
    }
    for acknowledgement in acknowledgements {
        acknowledgement.await.map_err(|error| {
            IdentityError::Messaging(format!(
                "jetstream did not acknowledge a revocation: {error}"
            ))
        })?;
    }
    Ok(())
}

pub use mcr_proto::timestamps::timestamp;
