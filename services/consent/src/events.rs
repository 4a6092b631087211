//! What consent announces: ConsentChanged on JetStream (per person, through
//! a transactional outbox) and BreakGlassAlert on core NATS.

use std::time::Duration;

use mcr_proto::consent::v1::BreakGlassAlert;
use mcr_runtime::nats::NatsBus;
use prost::Message;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::ConsentError;
use crate::store;

pub use mcr_runtime::streams::CONSENT_EVENTS_STREAM;
/// Prefix of the per-person subject: `mcr.consent.v1.changed.<person_id>`.
pub const CONSENT_CHANGED_SUBJECT_PREFIX: &str = "mcr.consent.v1.changed.";
/// Break-glass alerts for privacy officers (core NATS, like audit's alerts).
pub const BREAK_GLASS_ALERT_SUBJECT: &str = "mcr.alerts.v1.break_glass";

/// How often the relay looks for events left unpublished (a crash between
/// commit and publish, or NATS down when the change was made).
const RELAY_INTERVAL: Duration = Duration::from_secs(2);
/// Events younger than this are still being published by their RPC.
const RELAY_GRACE: time::Duration = time::Duration::seconds(3);

/// The subject (unscoped) of a person's changes.
pub fn changed_subject(person_id: Uuid) -> String {
    format!("{CONSENT_CHANGED_SUBJECT_PREFIX}{person_id}")
}

/// Creates the ConsentChanged stream when missing: once per batch of
/// publishes, not per event (each check is a JetStream API round trip).
async fn ensure_changes_stream(nats: &NatsBus) -> Result<(), ConsentError> {
    nats.ensure_stream(mcr_runtime::streams::consent_events_stream_config())
        .await
        .map(|_| ())
        .map_err(|error| ConsentError::Messaging(error.to_string()))
}

/// Publishes a ConsentChanged (already encoded) and waits for the ack. The
/// caller has ensured the stream ([`ensure_changes_stream`]).
#[tracing::instrument(name = "nats.publish_consent_changed", skip_all, fields(%event_id))]
async fn publish_changed(
    nats: &NatsBus,
    event_id: Uuid,
    person_id: Uuid,
    payload: Vec<u8>,
) -> Result<(), ConsentError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event_id.to_string().as_str());
    mcr_runtime::propagation::inject_current_into_nats(&mut headers);
    let subject = changed_subject(person_id);
    nats.jetstream()
        .publish_with_headers(nats.subject(&subject), headers, payload.into())
        .await
        .map_err(|error| ConsentError::Messaging(format!("publishing {subject} failed: {error}")))?
        .await
        .map_err(|error| {
            ConsentError::Messaging(format!("jetstream did not acknowledge {subject}: {error}"))
        })?;
    Ok(())
}

/// Publishes committed outbox rows now (each `(event_id, person_id,
/// payload)`) and marks the published ones sent in one statement. A failure
/// is logged, not returned: the changes are committed, Decide already
/// applies them, and the relay re-sends what was not marked.
pub async fn announce_all(nats: &NatsBus, pool: &PgPool, events: Vec<(Uuid, Uuid, Vec<u8>)>) {
    if let Err(error) = ensure_changes_stream(nats).await {
        tracing::error!(%error, events = events.len(), "consent changes committed but not announced yet; the relay will retry");
        return;
    }
    let publishes = events.into_iter().map(|(event_id, person_id, payload)| async move {
        match publish_changed(nats, event_id, person_id, payload).await {
            Ok(()) => Some(event_id),
            Err(error) => {
                tracing::error!(%error, %event_id, "consent change committed but not announced yet; the relay will retry");
                None
            }
        }
    });
    let published: Vec<Uuid> = futures::future::join_all(publishes)
        .await
        .into_iter()
        .flatten()
        .collect();
    if let Err(error) = store::mark_published(pool, &published).await {
        tracing::warn!(%error, events = published.len(), "events published but not marked; the relay will re-send them (de-duplicated)");
    }
}

/// The outbox relay: publishes changes whose RPC did not (crash, NATS
/// down), oldest first, until `stop`.
pub async fn run_relay(nats: NatsBus, pool: PgPool, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RELAY_INTERVAL) => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            relayed = relay_once(&nats, &pool) => if let Err(error) = relayed {
                tracing::warn!(%error, "consent outbox relay pass failed; retrying");
            },
        }
    }
}

/// One relay pass; returns how many events it published.
pub async fn relay_once(nats: &NatsBus, pool: &PgPool) -> Result<usize, ConsentError> {
    let mut tx = store::begin(pool).await?;
    let pending =
        store::claim_unpublished(&mut tx, OffsetDateTime::now_utc() - RELAY_GRACE, 500).await?;
    if !pending.is_empty() {
        ensure_changes_stream(nats).await?;
    }
    let mut published = 0;
    for (event_id, person_id, payload) in pending {
        publish_changed(nats, event_id, person_id, payload).await?;
        store::mark_published_in(&mut tx, event_id).await?;
        published += 1;
    }
    tx.commit().await?;
    if published > 0 {
        tracing::info!(published, "consent outbox relay published leftover events");
    }
    Ok(published)
}

/// Raises a break-glass alert (core NATS; privacy officers' tools listen).
#[tracing::instrument(name = "nats.publish_break_glass_alert", skip_all)]
pub async fn publish_alert(nats: &NatsBus, alert: &BreakGlassAlert) -> Result<(), ConsentError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", alert.alert_id.as_str());
    headers.insert("Mcr-Alert-Source", "consent");
    mcr_runtime::propagation::inject_current_into_nats(&mut headers);
    nats.client()
        .publish_with_headers(
            nats.subject(BREAK_GLASS_ALERT_SUBJECT),
            headers,
            alert.encode_to_vec().into(),
        )
        .await
        .map_err(|error| {
            ConsentError::Messaging(format!("publishing the break-glass alert failed: {error}"))
        })?;
    // Core NATS buffers; flush so the alert has left before the RPC returns.
    nats.client().flush().await.map_err(|error| {
        ConsentError::Messaging(format!("flushing the break-glass alert failed: {error}"))
    })?;
    Ok(())
}
