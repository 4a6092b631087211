//! Publishing `AuditEvent`s durably to the audit stream.
//!
//! Every service that grants or refuses access records it with
//! [`AuditPublisher::publish`] **before** any data leaves: the call returns
//! only once JetStream has acknowledged the event, so a caller that sees an
//! error must fail the request (`UNAVAILABLE`) — no audit, no data.
//!
//! Events go to `mcr.audit.v1.<action>` (the `AuditAction` value name without
//! its prefix, lower case: `mcr.audit.v1.view_record`) in the stream
//! [`AUDIT_STREAM`], with `Nats-Msg-Id` = `event_id` so a retried publish
//! within [`DUPLICATE_WINDOW`] is stored once by JetStream (and the audit
//! service de-duplicates on `event_id` for ever after), and with the W3C trace
//! context of the current span.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream;
use mcr_proto::audit::v1::{AuditAction, AuditEvent};
use mcr_runtime::nats::{NatsBus, NatsError};
use prost::Message;

/// The JetStream stream holding published audit events until the audit
/// service has stored them (name before any namespace).
pub const AUDIT_STREAM: &str = "MCR_AUDIT";
/// Every subject of the audit stream.
pub const AUDIT_SUBJECTS: &str = "mcr.audit.v1.>";
/// The prefix of each action's subject.
pub const AUDIT_SUBJECT_PREFIX: &str = "mcr.audit.v1.";
/// How long JetStream remembers a `Nats-Msg-Id`: a publish retried within it
/// is stored once. Longer windows cost server memory; the audit service's own
/// de-duplication on `event_id` covers any later redelivery.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long the stream keeps an event. The audit service stores each event
/// within moments; this only bounds how long it may be down without losing
/// anything.
pub const AUDIT_STREAM_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The audit stream's configuration; publishers and the audit service both
/// ensure it (names are unscoped; [`NatsBus::ensure_stream`] applies the namespace).
pub fn audit_stream_config() -> stream::Config {
    stream::Config {
        name: AUDIT_STREAM.to_owned(),
        subjects: vec![AUDIT_SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: AUDIT_STREAM_MAX_AGE,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// The subject (unscoped) of `action`: `mcr.audit.v1.view_record`; `None`
/// for `AUDIT_ACTION_UNSPECIFIED`, which is never published.
pub fn subject_for(action: AuditAction) -> Option<String> {
    if action == AuditAction::Unspecified {
        return None;
    }
    let name = action.as_str_name();
    let suffix = name.strip_prefix("AUDIT_ACTION_").unwrap_or(name);
    Some(format!(
        "{AUDIT_SUBJECT_PREFIX}{}",
        suffix.to_ascii_lowercase()
    ))
}

/// Why an audit event was not recorded. Every variant means the access must
/// not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum AuditPublishError {
    /// The event cannot be published as it is (a bug in the caller).
    #[error("audit event is invalid: {0}")]
    InvalidEvent(String),
    /// The audit stream could not be created or found.
    #[error(transparent)]
    Stream(#[from] NatsError),
    /// NATS did not take the message.
    #[error("publishing the audit event failed: {0}")]
    Publish(String),
    /// JetStream did not confirm that it stored the message.
    #[error("jetstream did not acknowledge the audit event: {0}")]
    NotAcknowledged(String),
}

/// Publishes audit events and waits for JetStream to store each one.
/// Cheap to clone; clones share the "stream ensured" state.
#[derive(Debug, Clone)]
pub struct AuditPublisher {
    nats: NatsBus,
    stream_ensured: Arc<tokio::sync::OnceCell<()>>,
}

impl AuditPublisher {
    /// A publisher on `nats` (its namespace applies to stream and subjects).
    pub fn new(nats: NatsBus) -> Self {
        Self {
            nats,
            stream_ensured: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Records `event` durably: ensures the stream (once per publisher; a
    /// failure is retried on the next call), publishes with `Nats-Msg-Id` =
    /// `event_id` and the current trace context, and waits for the ack.
    pub async fn publish(&self, event: &AuditEvent) -> Result<(), AuditPublishError> {
        if event.event_id.is_empty() {
            return Err(AuditPublishError::InvalidEvent(
                "event_id is required".to_owned(),
            ));
        }
        let action = AuditAction::try_from(event.action).unwrap_or(AuditAction::Unspecified);
        let Some(subject) = subject_for(action) else {
            return Err(AuditPublishError::InvalidEvent(
                "action must be set (not AUDIT_ACTION_UNSPECIFIED)".to_owned(),
            ));
        };
        self.stream_ensured
            .get_or_try_init(|| async {
                self.nats
                    .ensure_stream(audit_stream_config())
                    .await
                    .map(|_| ())
            })
            .await?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.as_str());
        mcr_runtime::propagation::inject_current_into_nats(&mut headers);
        let acknowledgement = self
            .nats
            .jetstream()
            .publish_with_headers(
                self.nats.subject(&subject),
                headers,
                event.encode_to_vec().into(),
            )
            .await
            .map_err(|error| AuditPublishError::Publish(error.to_string()))?;
        acknowledgement
            .await
            .map_err(|error| AuditPublishError::NotAcknowledged(error.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_has_its_lower_case_subject() {
        assert_eq!(
            subject_for(AuditAction::ViewRecord).as_deref(),
            Some("mcr.audit.v1.view_record")
        );
        assert_eq!(
            subject_for(AuditAction::SubjectAccessReport).as_deref(),
            Some("mcr.audit.v1.subject_access_report")
        );
        assert_eq!(subject_for(AuditAction::Unspecified), None);
    }

    #[test]
    fn the_stream_is_durable_and_deduplicates() {
        let config = audit_stream_config();
        assert_eq!(config.name, "MCR_AUDIT");
        assert_eq!(config.subjects, vec!["mcr.audit.v1.>".to_owned()]);
        assert_eq!(config.storage, stream::StorageType::File);
        assert!(config.duplicate_window >= Duration::from_secs(60));
    }
}
