//! Following patient-index and consent: merges, unmerges and relinks move
//! identifiers (and so their entries) between persons; consent changes void
//! the person's view. Both bump the view version in PostgreSQL before the
//! event is acked, so no cached view outlives the change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::{AckKind, Message, stream};
use mcr_connector::validate::DEAD_LETTER_SUBJECT;
use mcr_proto::consent::v1::ConsentChanged;
use mcr_proto::patient_index::v1::{IdentifierRelinked, PersonMerged, PersonUnmerged};
use mcr_proto::records::v1::{DeadLetter, DeadLetterReason};
use mcr_proto::timestamps::timestamp;
use mcr_runtime::nats::NatsBus;
use mcr_runtime::streams::{consent_events_stream_config, index_events_stream_config};
use prost::Message as _;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::AggregatorError;
use crate::store::{self, PatientKey};

/// Views invalidated, by the event that caused it.
pub const INVALIDATIONS_METRIC: &str = "mcr_records_view_invalidations_total";

/// At most this many events are taken at once, waiting at most
/// [`EVENT_LINGER`] for them: consent changes come in bursts (one per care
/// relationship an ingest batch forwards), and bumping each person's view in
/// its own statement cost a synced commit per event.
const EVENT_BATCH: usize = 500;
const EVENT_LINGER: Duration = Duration::from_millis(5);

/// Which events a follower consumes.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// Merges, unmerges and relinks.
    PatientIndex,
    /// Consent changes.
    Consent,
}

impl Source {
    fn stream(self) -> stream::Config {
        match self {
            Self::PatientIndex => index_events_stream_config(),
            Self::Consent => consent_events_stream_config(),
        }
    }

    fn consumer(self) -> &'static str {
        match self {
            Self::PatientIndex => "record-aggregator-index-events",
            Self::Consent => "record-aggregator-consent-events",
        }
    }
}

/// What becomes of one event's message.
#[derive(Clone)]
enum Settlement {
    /// Applied: acked, counted under this event kind.
    Applied(&'static str),
    /// Not an event we can read: dead-lettered, never retried.
    Malformed(String),
    /// Not applied now: redelivered.
    Retry,
}

/// Why an event was not applied.
enum Failure {
    /// Not an event we can read: dead-lettered, never retried.
    Malformed(String),
    /// The database failed: redelivered.
    Transient(AggregatorError),
}

/// Applies one source's events to links and view versions.
#[derive(Debug, Clone)]
pub struct Follower {
    pub pool: PgPool,
    pub nats: NatsBus,
    pub source: Source,
}

impl Follower {
    /// Follows until `stop`, re-attaching after any failure.
    pub async fn run(self, attached: Arc<AtomicBool>, stop: CancellationToken) {
        let flag = Arc::clone(&attached);
        let what = format!("{:?} event follower", self.source);
        mcr_runtime::nats::consume_until_stopped(&what, attached, stop, || async {
            Err(self.follow(&flag).await)
        })
        .await;
    }

    async fn follow(&self, attached: &AtomicBool) -> String {
        let stream = match self.nats.ensure_stream(self.source.stream()).await {
            Ok(stream) => stream,
            Err(error) => return error.to_string(),
        };
        let consumer = self
            .nats
            .ensure_pull_consumer(
                &stream,
                pull::Config {
                    durable_name: Some(self.source.consumer().to_owned()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    ..Default::default()
                },
            )
            .await;
        let consumer = match consumer {
            Ok(consumer) => consumer,
            Err(error) => return error.to_string(),
        };
        let mut messages = match consumer.messages().await {
            Ok(messages) => messages,
            Err(error) => return error.to_string(),
        };
        attached.store(true, Ordering::Release);
        loop {
            let (batch, failure) =
                mcr_runtime::nats::next_batch(&mut messages, EVENT_BATCH, EVENT_LINGER).await;
            if !batch.is_empty() {
                self.handle(batch).await;
            }
            if let Some(reason) = failure {
                return reason;
            }
        }
    }

    /// Applies a batch of events, each acked, dead-lettered or nak'd. The
    /// batch's span links to each event's trace (a span has one parent; a
    /// batch serves many).
    async fn handle(&self, batch: Vec<Message>) {
        let span = tracing::info_span!(
            "records.invalidate",
            messaging.system = "nats",
            messaging.consumer.group.name = self.source.consumer(),
            messaging.batch.message_count = batch.len()
        );
        for headers in batch.iter().filter_map(|message| message.headers.as_ref()) {
            mcr_runtime::propagation::link_to_nats_message(&span, headers);
        }
        // Instrumented, not entered: a guard held across the awaits below
        // would leave the span current on the worker thread for other tasks.
        async {
            match self.source {
                // Merges and relinks are rare, and each moves identifiers
                // the next may move again: one transaction each, in order.
                Source::PatientIndex => {
                    for message in batch {
                        let outcome = self
                            .apply_index_event(&message.subject, &message.payload)
                            .await;
                        self.settle(&message, settlement(outcome)).await;
                    }
                }
                Source::Consent => self.apply_consent_events(batch).await,
            }
        }
        .instrument(span)
        .await;
    }

    async fn settle(&self, message: &Message, settlement: Settlement) {
        let ack = match settlement {
            Settlement::Applied(kind) => {
                metrics::counter!(INVALIDATIONS_METRIC, "event" => kind).increment(1);
                message.ack().await
            }
            Settlement::Malformed(reason) => {
                self.dead_letter(message, reason).await;
                message.ack_with(AckKind::Term).await
            }
            Settlement::Retry => {
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await
            }
        };
        if let Err(error) = ack {
            tracing::warn!(%error, "acking an event failed; its redelivery is harmless");
        }
    }

    async fn apply_index_event(
        &self,
        subject: &str,
        payload: &[u8],
    ) -> Result<&'static str, Failure> {
        let malformed = |error: prost::DecodeError| {
            Failure::Malformed(format!("undecodable index event: {error}"))
        };
        let (moves, kind) = if subject.ends_with("person.merged") {
            let event = PersonMerged::decode(payload).map_err(malformed)?;
            let to = person(&event.surviving_person_id)?;
            let from = person(&event.merged_person_id)?;
            ((event.moved_identifiers, from, to), "person_merged")
        } else if subject.ends_with("person.unmerged") {
            let event = PersonUnmerged::decode(payload).map_err(malformed)?;
            let to = person(&event.restored_person_id)?;
            let from = person(&event.surviving_person_id)?;
            ((event.restored_identifiers, from, to), "person_unmerged")
        } else if subject.ends_with("identifier.relinked") {
            let event = IdentifierRelinked::decode(payload).map_err(malformed)?;
            let to = person(&event.to_person_id)?;
            let from = person(&event.from_person_id)?;
            (
                (event.identifier.into_iter().collect(), from, to),
                "identifier_relinked",
            )
        } else {
            return Err(Failure::Malformed(format!(
                "no index event is published on {subject}"
            )));
        };
        let (identifiers, from, to) = moves;
        let mut links: Vec<(PatientKey, Uuid)> = identifiers
            .into_iter()
            .map(|identifier| (PatientKey::from(identifier), to))
            .collect();
        links.sort();
        let applied = async {
            let mut transaction = self.pool.begin().await?;
            store::link_people(&mut transaction, &links).await?;
            store::bump_views(&mut *transaction, &[from, to]).await?;
            transaction.commit().await
        }
        .await;
        applied.map_err(|error| Failure::Transient(error.into()))?;
        Ok(kind)
    }

    /// Bumps the views of every person the batch's consent changes name,
    /// in one statement.
    async fn apply_consent_events(&self, batch: Vec<Message>) {
        let mut readable = Vec::with_capacity(batch.len());
        let mut persons = Vec::with_capacity(batch.len());
        for message in batch {
            match changed_person(&message.payload) {
                Ok(person) => {
                    persons.push(person);
                    readable.push(message);
                }
                Err(failure) => self.settle(&message, settlement(Err(failure))).await,
            }
        }
        if readable.is_empty() {
            return;
        }
        // One outcome for the batch (a failure is logged once, in settlement).
        let bumped = store::bump_views(&self.pool, &persons)
            .await
            .map(|()| "consent_changed")
            .map_err(|error| Failure::Transient(error.into()));
        let outcome = settlement(bumped);
        for message in &readable {
            self.settle(message, outcome.clone()).await;
        }
    }

    async fn dead_letter(&self, message: &Message, reason: String) {
        tracing::warn!(%reason, subject = %message.subject, "event dead-lettered");
        let letter = DeadLetter {
            reason: DeadLetterReason::Undecodable as i32,
            reason_text: reason,
            original_message: message.payload.to_vec(),
            original_subject: message.subject.to_string(),
            rejected_at: Some(timestamp(OffsetDateTime::now_utc())),
            ..Default::default()
        };
        let published = async {
            self.nats
                .jetstream()
                .publish(
                    self.nats.subject(DEAD_LETTER_SUBJECT),
                    letter.encode_to_vec().into(),
                )
                .await?
                .await
        }
        .await;
        if let Err(error) = published {
            tracing::error!(%error, "a malformed event could not be dead-lettered; it is dropped after logging");
        }
    }
}

/// What becomes of an event applied with `outcome` (a failure to apply is
/// logged here, once).
fn settlement(outcome: Result<&'static str, Failure>) -> Settlement {
    match outcome {
        Ok(kind) => Settlement::Applied(kind),
        Err(Failure::Malformed(reason)) => Settlement::Malformed(reason),
        Err(Failure::Transient(error)) => {
            tracing::warn!(%error, "applying events failed; they will be redelivered");
            Settlement::Retry
        }
    }
}

/// The person a consent change names.
fn changed_person(payload: &[u8]) -> Result<Uuid, Failure> {
    let event = ConsentChanged::decode(payload)
        .map_err(|error| Failure::Malformed(format!("undecodable consent event: {error}")))?;
    person(&event.person_id)
}

fn person(id: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(id)
        .map_err(|_| Failure::Malformed(format!("event names a malformed person id {id:?}")))
}
