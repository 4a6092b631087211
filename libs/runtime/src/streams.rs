//! The JetStream streams one service publishes and another consumes, defined
//! once so publisher and consumer create the same stream whichever starts
//! first. Names and subjects are unscoped ([`crate::nats::NatsBus`] applies
//! the namespace).

use std::time::Duration;

use async_nats::jetstream::stream;

/// How long event streams keep events: consumers must see every merge and
/// consent change, and a week covers any outage.
const EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// A publish retried (or re-published by an outbox relay) within this window
/// is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Patient-index's merges, unmerges and relinked identifiers.
pub const INDEX_EVENTS_STREAM: &str = "MCR_INDEX_EVENTS";
/// Consent's `ConsentChanged` events, one subject per person.
pub const CONSENT_EVENTS_STREAM: &str = "MCR_CONSENT_EVENTS";

/// The stream of patient-index events (`mcr.index.v1.>`).
pub fn index_events_stream_config() -> stream::Config {
    event_stream(INDEX_EVENTS_STREAM, "mcr.index.v1.>")
}

/// The stream of consent events (`mcr.consent.v1.>`).
pub fn consent_events_stream_config() -> stream::Config {
    event_stream(CONSENT_EVENTS_STREAM, "mcr.consent.v1.>")
}

fn event_stream(name: &str, subjects: &str) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![subjects.to_owned()],
        storage: stream::StorageType::File,
        max_age: EVENT_RETENTION,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}
