//! Sessions revoked before their tokens expire, learnt from identity's
//! `SessionRevoked` events on NATS.
//!
//! The events sit in a JetStream stream kept for longer than any access token
//! lives, and every verifier replays it from the start when it (re)connects:
//! a replica started after a revocation still refuses the session. Revocation
//! reaches every verifier within about a second; if NATS is down, the access
//! token lifetime (5 minutes by default) bounds the exposure.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{consumer, stream};
use futures::StreamExt;
use mcr_proto::identity::v1::SessionRevoked;
use mcr_runtime::nats::NatsBus;
use prost::Message;
use tokio_util::sync::CancellationToken;

/// The subject identity publishes `SessionRevoked` on.
pub const REVOKED_SUBJECT: &str = "mcr.identity.v1.revoked";
/// The stream that keeps revocations.
pub const REVOCATIONS_STREAM: &str = "MCR_IDENTITY_REVOCATIONS";
/// How long revocations are kept: far longer than any access token lives.
pub const REVOCATIONS_KEPT_FOR: Duration = Duration::from_secs(24 * 60 * 60);

/// The stream configuration; publisher and followers both ensure it.
pub fn revocations_stream_config() -> stream::Config {
    stream::Config {
        name: REVOCATIONS_STREAM.to_owned(),
        subjects: vec![REVOKED_SUBJECT.to_owned()],
        max_age: REVOCATIONS_KEPT_FOR,
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// Revoked session ids, each kept until its tokens would have expired anyway.
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    revoked_until: Arc<RwLock<HashMap<String, i64>>>,
}

impl RevocationList {
    /// Refuses `session_id` until `valid_until` (seconds since the epoch).
    pub fn revoke(&self, session_id: &str, valid_until: i64) {
        let now = unix_now();
        let mut revoked = match self.revoked_until.write() {
            Ok(revoked) => revoked,
            Err(poisoned) => poisoned.into_inner(),
        };
        revoked.retain(|_, until| *until > now);
        revoked.insert(session_id.to_owned(), valid_until);
    }

    /// Whether `session_id` is revoked.
    pub fn is_revoked(&self, session_id: &str) -> bool {
        let revoked = match self.revoked_until.read() {
            Ok(revoked) => revoked,
            Err(poisoned) => poisoned.into_inner(),
        };
        revoked.contains_key(session_id)
    }

    /// Applies one `SessionRevoked` event.
    pub fn apply(&self, event: &SessionRevoked) {
        let valid_until = event.access_tokens_valid_until.as_ref().map_or_else(
            || unix_now() + REVOCATIONS_KEPT_FOR.as_secs() as i64,
            |at| at.seconds,
        );
        self.revoke(&event.session_id, valid_until);
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Follows the revocation stream into `list` until `stop`, reconnecting by itself.
pub async fn follow_revocations(nats: NatsBus, list: RevocationList, stop: CancellationToken) {
    let mut retry_delay = Duration::from_millis(200);
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = follow_once(&nats, &list) => outcome,
        };
        if let Err(reason) = outcome {
            tracing::warn!(%reason, retry_in_ms = retry_delay.as_millis() as u64, "following session revocations failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retry_delay) => {}
        }
        retry_delay = (retry_delay * 2).min(Duration::from_secs(5));
    }
}

async fn follow_once(nats: &NatsBus, list: &RevocationList) -> Result<(), String> {
    let stream = nats
        .ensure_stream(revocations_stream_config())
        .await
        .map_err(|error| error.to_string())?;
    // An ordered consumer is ephemeral and replays from the start: cheap,
    // because the stream holds only a day of revocations.
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|error| error.to_string())?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| error.to_string())?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| error.to_string())?;
        match SessionRevoked::decode(message.payload.as_ref()) {
            Ok(event) => {
                list.apply(&event);
                tracing::info!(session_id = %event.session_id, "session revoked");
            }
            Err(error) => {
                tracing::warn!(%error, subject = %message.subject, "undecodable revocation skipped")
            }
        }
    }
    Err("the revocation stream ended".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_session_is_refused_until_it_would_have_expired() {
        let list = RevocationList::default();
        assert!(!list.is_revoked("session"));
        list.revoke("session", unix_now() + 60);
        assert!(list.is_revoked("session"));
        list.revoke("old", unix_now() - 1);
        // Revoking again prunes what has expired.
        list.revoke("another", unix_now() + 60);
        assert!(!list.is_revoked("old"));
        assert!(list.is_revoked("session"));
    }
}
