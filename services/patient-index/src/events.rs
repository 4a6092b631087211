//! What the index announces: merges, unmerges and relinked identifiers, on
//! JetStream so the record-aggregator can re-key and invalidate views.

use mcr_runtime::nats::NatsBus;
use prost::Message;

use crate::error::IndexError;

/// A person was merged into another.
pub const PERSON_MERGED_SUBJECT: &str = "mcr.index.v1.person.merged";
/// A merge was undone.
pub const PERSON_UNMERGED_SUBJECT: &str = "mcr.index.v1.person.unmerged";
/// A local identifier moved to another person.
pub const IDENTIFIER_RELINKED_SUBJECT: &str = "mcr.index.v1.identifier.relinked";

/// Publishes `event` on `subject` and waits for JetStream's ack, so a merge
/// the caller saw succeed is announced durably.
pub async fn publish(
    nats: &NatsBus,
    subject: &str,
    event_id: &str,
    event: &impl Message,
) -> Result<(), IndexError> {
    nats.ensure_stream(mcr_runtime::streams::index_events_stream_config())
        .await
        .map_err(|error| IndexError::Messaging(error.to_string()))?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event_id);
    mcr_runtime::propagation::inject_current_into_nats(&mut headers);
    nats.jetstream()
        .publish_with_headers(nats.subject(subject), headers, event.encode_to_vec().into())
        .await
        .map_err(|error| IndexError::Messaging(format!("publishing {subject} failed: {error}")))?
        .await
        .map_err(|error| {
            IndexError::Messaging(format!("jetstream did not acknowledge {subject}: {error}"))
        })?;
    Ok(())
}
