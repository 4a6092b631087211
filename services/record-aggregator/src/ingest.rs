//! The durable consumer of provider updates: validate, resolve persons,
//! commit the batch in one transaction (entries, links, view versions),
//! forward care relationships to consent, then ack.
//!
//! Crash safety comes from the order. A message is acked only after its
//! effects committed; if the process dies first, JetStream redelivers it and
//! the upsert, keyed by entry id and guarded by the version, changes nothing
//! twice. Invalid messages are published to the dead-letter stream (with the
//! original bytes) before they are acked, so none is ever silently lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::{AckKind, Message};
use mcr_connector::stream::{dead_letter_stream_config, records_stream_config};
use mcr_connector::validate::{DEAD_LETTER_SUBJECT, FhirJson, Rejection, decode_and_validate_with};
use mcr_proto::patient_index::v1::Demographics;
use mcr_proto::records::v1::{DeadLetter, DeadLetterReason, RecordOperation, RecordUpdate};
use mcr_runtime::nats::NatsBus;
use prost::Message as _;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::IngestConfig;
use crate::dependencies::Consent;
use crate::domain::{entry_id, group_key};
use crate::error::AggregatorError;
use crate::people::{People, Resolution};
use crate::store::{self, EntryWrite, PatientKey};
use mcr_proto::timestamps::{offset_date_time, timestamp};

/// The durable consumer's name (shared by every replica).
pub const CONSUMER: &str = "record-aggregator-ingest";
/// Updates committed (stale versions and duplicates included).
pub const INGESTED_METRIC: &str = "mcr_records_ingested_total";
/// Dead-lettered updates, by reason.
pub const DEAD_LETTER_METRIC: &str = "mcr_records_dead_letters_total";
/// Seconds from the source producing an update to it being committed.
pub const LAG_METRIC: &str = "mcr_records_ingest_lag_seconds";
/// Seconds to process one batch.
pub const BATCH_SECONDS_METRIC: &str = "mcr_records_ingest_batch_seconds";

/// What the consumer needs.
#[derive(Debug, Clone)]
pub struct Ingest {
    pub pool: PgPool,
    pub nats: NatsBus,
    pub people: People,
    pub consent: Consent,
    pub config: Arc<IngestConfig>,
}

/// A batch's place in the forwarding order: it forwards its care
/// relationships after the previous batch did (`after` resolves; a dropped
/// sender counts), then signals `forwarded`.
#[derive(Debug)]
pub struct ForwardTurn {
    after: Option<oneshot::Receiver<()>>,
    forwarded: oneshot::Sender<()>,
}

/// What a batch's commit did with each update (indexes into the batch).
struct BatchOutcome {
    committed: Vec<usize>,
    /// Patient-index refused the person: dead-lettered, with the reason.
    rejected: Vec<(usize, String)>,
    /// The person is not registered yet: redelivered to wait for it.
    waiting: Vec<usize>,
}

/// A decoded, valid update, the message it came in and the entry write it
/// makes (which took the update's FHIR JSON: it is large, and only the
/// write needs it).
struct Accepted {
    message: Message,
    update: RecordUpdate,
    write: EntryWrite,
    span: tracing::Span,
}

impl Ingest {
    /// Consumes until `stop`, re-attaching after any failure.
    pub async fn run(self, attached: Arc<AtomicBool>, stop: CancellationToken) {
        let flag = Arc::clone(&attached);
        mcr_runtime::nats::consume_until_stopped("record ingest", attached, stop, || {
            self.consume(&flag)
        })
        .await;
    }

    async fn consume(&self, attached: &AtomicBool) -> Result<(), String> {
        self.nats
            .ensure_stream(dead_letter_stream_config())
            .await
            .map_err(|error| error.to_string())?;
        let stream = self
            .nats
            .ensure_stream(records_stream_config())
            .await
            .map_err(|error| error.to_string())?;
        let consumer = self
            .nats
            .ensure_pull_consumer(
                &stream,
                pull::Config {
                    durable_name: Some(CONSUMER.to_owned()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_millis(self.config.ack_wait_ms),
                    max_ack_pending: self.config.max_ack_pending,
                    ..Default::default()
                },
            )
            .await
            .map_err(|error| error.to_string())?;
        let batch_size = self.config.batch_size.max(1);
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(batch_size)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|error| error.to_string())?;
        attached.store(true, Ordering::Release);
        let linger = Duration::from_millis(self.config.batch_linger_ms);
        // Up to `concurrent_batches` batches decode, resolve and commit at
        // once (their transactions lock rows in one order, so they never
        // deadlock). Their care relationships still reach consent one batch
        // at a time, in the order the batches arrived, so a later update of
        // a relationship never overtakes an earlier one.
        let committing = Arc::new(Semaphore::new(self.config.concurrent_batches.max(1)));
        let mut last_forward: Option<oneshot::Receiver<()>> = None;
        loop {
            let (batch, failure) =
                mcr_runtime::nats::next_batch(&mut messages, batch_size, linger).await;
            if !batch.is_empty() {
                let Ok(permit) = Arc::clone(&committing).acquire_owned().await else {
                    return Err("the batch semaphore closed".to_owned());
                };
                let (forwarded, next) = oneshot::channel();
                let turn = ForwardTurn {
                    after: last_forward.replace(next),
                    forwarded,
                };
                let ingest = self.clone();
                tokio::spawn(
                    async move {
                        ingest.process(batch, turn).await;
                        drop(permit);
                    }
                    .in_current_span(),
                );
            }
            if let Some(reason) = failure {
                return Err(reason);
            }
        }
    }

    /// Processes one batch to the end: every message is acked (committed or
    /// dead-lettered) or nak'd for redelivery.
    #[tracing::instrument(name = "records.ingest_batch", skip_all, fields(messaging.system = "nats", messaging.batch.message_count = batch.len()))]
    pub async fn process(&self, batch: Vec<Message>, turn: ForwardTurn) {
        let started = Instant::now();
        let mut accepted = Vec::with_capacity(batch.len());
        for message in batch {
            let span = message_span(&message);
            let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
            if delivered > i64::from(self.config.max_deliveries) {
                let rejection = Rejection {
                    reason: DeadLetterReason::RetriesExhausted,
                    text: format!("processing failed on {} deliveries", delivered - 1),
                };
                self.dead_letter(&message, None, rejection).await;
                continue;
            }
            let subject = self.unscoped_subject(&message.subject);
            match decode_and_validate_with(&subject, &message.payload, entry_group_key) {
                Ok((mut update, group_key)) => {
                    let write = entry_write(&mut update, group_key);
                    accepted.push(Accepted {
                        message,
                        update,
                        write,
                        span,
                    });
                }
                Err(rejection) => self.dead_letter(&message, None, rejection).await,
            }
        }
        if accepted.is_empty() {
            return;
        }
        match self.commit(&accepted).await {
            Ok(BatchOutcome {
                committed,
                rejected,
                waiting,
            }) => {
                for index in waiting {
                    nak(&accepted[index].message).await;
                }
                for (index, reason) in rejected {
                    let item = &accepted[index];
                    let rejection = Rejection {
                        reason: DeadLetterReason::PersonRejected,
                        text: reason,
                    };
                    self.dead_letter(&item.message, Some(&item.update), rejection)
                        .await;
                }
                metrics::counter!(INGESTED_METRIC).increment(committed.len() as u64);
                metrics::histogram!(BATCH_SECONDS_METRIC).record(started.elapsed().as_secs_f64());
                // Consent's latency must not hold up the next commit. The
                // updates stay unacked until consent took their
                // relationships, so a crash here loses nothing. This batch
                // holds its commit slot until the batch before it has been
                // forwarded: that bounds what waits for consent.
                if let Some(previous) = turn.after {
                    // An error only means the previous batch had nothing
                    // to forward (or failed and was nak'd).
                    let _ = previous.await;
                }
                let ingest = self.clone();
                tokio::spawn(
                    async move {
                        ingest.forward_and_ack(&accepted, &committed).await;
                        let _ = turn.forwarded.send(());
                    }
                    .in_current_span(),
                );
            }
            Err(error) => {
                tracing::warn!(%error, updates = accepted.len(), "a batch could not be committed; it will be redelivered");
                for item in &accepted {
                    nak(&item.message).await;
                }
            }
        }
    }

    /// Resolves persons and commits the batch.
    async fn commit(&self, accepted: &[Accepted]) -> Result<BatchOutcome, AggregatorError> {
        let mut wanted: HashMap<PatientKey, Option<Demographics>> = HashMap::new();
        for item in accepted {
            let demographics = wanted.entry(item.write.patient.clone()).or_default();
            if demographics.is_none() {
                demographics.clone_from(&item.update.demographics);
            }
        }
        let resolved = self.people.resolve(&wanted).await?;
        let mut committed = Vec::new();
        let mut rejected = Vec::new();
        let mut waiting = Vec::new();
        // One write per entry: the highest version in the batch wins, as it
        // would have had the updates arrived in separate batches.
        let mut writes: HashMap<uuid::Uuid, &EntryWrite> = HashMap::new();
        let mut persons = Vec::new();
        for (index, item) in accepted.iter().enumerate() {
            match resolved.resolutions.get(&item.write.patient) {
                Some(Resolution::Person(person)) => {
                    persons.push(*person);
                    committed.push(index);
                    let write = &item.write;
                    match writes.get(&write.entry_id) {
                        Some(existing) if existing.version >= write.version => {}
                        _ => {
                            writes.insert(write.entry_id, write);
                        }
                    }
                }
                Some(Resolution::Rejected(reason)) => rejected.push((index, reason.clone())),
                Some(Resolution::Pending) => waiting.push(index),
                None => {
                    return Err(AggregatorError::Internal(
                        "an identifier was left unresolved".to_owned(),
                    ));
                }
            }
        }
        let mut writes: Vec<&EntryWrite> = writes.into_values().collect();
        // One lock order for every transaction, so concurrent batches never deadlock.
        writes.sort_unstable_by_key(|write| write.entry_id);
        let mut transaction = self.pool.begin().await?;
        let mut links = resolved.new_links;
        links.sort();
        persons.extend(store::link_people(&mut transaction, &links).await?);
        if !writes.is_empty() {
            store::write_entries(&mut transaction, &writes).await?;
        }
        store::bump_views(&mut *transaction, &persons).await?;
        transaction.commit().await?;
        let now = OffsetDateTime::now_utc();
        for &index in &committed {
            if let Some(source_time) = accepted[index]
                .update
                .source_time
                .as_ref()
                .and_then(offset_date_time)
            {
                metrics::histogram!(LAG_METRIC)
                    .record((now - source_time).as_seconds_f64().max(0.0));
            }
        }
        Ok(BatchOutcome {
            committed,
            rejected,
            waiting,
        })
    }

    /// Forwards the care relationships the committed updates carry (one
    /// call for the batch), then acks each update. If consent cannot take
    /// them now, the updates carrying one are nak'd: their redelivery
    /// changes no entry and forwards again (consent is idempotent on the
    /// relationship's source key).
    async fn forward_and_ack(&self, accepted: &[Accepted], committed: &[usize]) {
        let carrying: Vec<usize> = committed
            .iter()
            .copied()
            .filter(|&index| accepted[index].update.care_relationship.is_some())
            .collect();
        let forwarded = if carrying.is_empty() {
            Ok(())
        } else {
            let carried: Vec<_> = carrying
                .iter()
                .filter_map(|&index| {
                    let update = &accepted[index].update;
                    update
                        .care_relationship
                        .as_ref()
                        .map(|relationship| (update, relationship))
                })
                .collect();
            match self.consent.record_care_relationships(&carried).await {
                Ok(refusals) => {
                    for (&index, refusal) in carrying.iter().zip(refusals) {
                        if let Some(reason) = refusal {
                            tracing::warn!(parent: &accepted[index].span, %reason, "consent refused a carried care relationship");
                        }
                    }
                    Ok(())
                }
                Err(error) => {
                    tracing::warn!(%error, relationships = carrying.len(), "consent did not take the batch's care relationships; those updates will be redelivered");
                    Err(())
                }
            }
        };
        let acks = committed.iter().map(|&index| {
            let item = &accepted[index];
            let retry = forwarded.is_err() && item.update.care_relationship.is_some();
            async move {
                if retry {
                    nak(&item.message).await;
                } else if let Err(error) = item.message.ack().await {
                    tracing::warn!(parent: &item.span, %error, "ack failed; the update will be redelivered harmlessly");
                }
            }
        });
        futures::future::join_all(acks).await;
    }

    /// Publishes `message` to the dead-letter stream with `rejection`, then
    /// acks it; if the dead letter cannot be published it is nak'd instead.
    async fn dead_letter(
        &self,
        message: &Message,
        update: Option<&RecordUpdate>,
        rejection: Rejection,
    ) {
        let info = message.info().ok();
        let reason_label = rejection.reason.as_str_name();
        tracing::warn!(reason = reason_label, text = %rejection.text, subject = %message.subject, "update dead-lettered");
        let original_message_id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        let letter = DeadLetter {
            reason: rejection.reason as i32,
            reason_text: rejection.text,
            original_message: message.payload.to_vec(),
            original_subject: self.unscoped_subject(&message.subject),
            original_message_id,
            stream_sequence: info.as_ref().map_or(0, |info| info.stream_sequence),
            delivery_count: info
                .as_ref()
                .map_or(1, |info| u32::try_from(info.delivered).unwrap_or(u32::MAX)),
            source_organisation_code: update
                .map(|update| update.source_organisation_code.clone())
                .unwrap_or_default(),
            local_entry_id: update
                .map(|update| update.local_entry_id.clone())
                .unwrap_or_default(),
            rejected_at: Some(timestamp(OffsetDateTime::now_utc())),
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
        match published {
            Ok(_) => {
                metrics::counter!(DEAD_LETTER_METRIC, "reason" => reason_label).increment(1);
                if let Err(error) = message.ack_with(AckKind::Term).await {
                    tracing::warn!(%error, "ack of a dead-lettered update failed; it will be dead-lettered again");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the dead letter could not be published; the update will be redelivered");
                nak(message).await;
            }
        }
    }

    fn unscoped_subject(&self, subject: &str) -> String {
        let scoped_prefix = self.nats.subject("");
        subject
            .strip_prefix(scoped_prefix.as_str())
            .unwrap_or(subject)
            .to_owned()
    }
}

/// The span an update's own messages are logged under: a child of the
/// publisher's trace when the update carries one (so an SRE following it
/// sees it arrive), else the batch's span — a span of its own would be a
/// trace of one span nobody can find, at a cost on every update.
fn message_span(message: &Message) -> tracing::Span {
    let Some(parent) = message
        .headers
        .as_ref()
        .and_then(mcr_runtime::propagation::trace_of_nats_message)
    else {
        return tracing::Span::current();
    };
    let span = tracing::info_span!("records.ingest", messaging.destination.name = %message.subject);
    let _ = span.set_parent(parent);
    span
}

async fn nak(message: &Message) {
    if let Err(error) = message
        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
        .await
    {
        tracing::warn!(%error, "nak failed; the update will be redelivered after ack_wait");
    }
}

fn patient_key(update: &RecordUpdate) -> PatientKey {
    PatientKey::from(update.patient_identifier.clone().unwrap_or_default())
}

/// The group key of a valid update (empty for a delete), computed while
/// validation's parse of its resource is at hand.
fn entry_group_key(update: &RecordUpdate, resource: Option<&FhirJson<'_>>) -> String {
    let effective_time = update.effective_time.as_ref().and_then(offset_date_time);
    match (update.operation(), effective_time, resource) {
        (RecordOperation::Upsert, Some(at), Some(resource)) => group_key(
            update.category(),
            &update.resource_type,
            at,
            resource,
            &update.display_summary,
        ),
        _ => String::new(),
    }
}

/// The write `update` makes; it takes the update's FHIR JSON.
fn entry_write(update: &mut RecordUpdate, group_key: String) -> EntryWrite {
    EntryWrite {
        entry_id: entry_id(
            &update.source_organisation_code,
            &update.source_system,
            &update.local_entry_id,
        ),
        organisation_code: update.source_organisation_code.clone(),
        source_system: update.source_system.clone(),
        local_entry_id: update.local_entry_id.clone(),
        patient: patient_key(update),
        version: i64::try_from(update.version).unwrap_or(i64::MAX),
        deleted: update.operation() == RecordOperation::Delete,
        category: update.category(),
        effective_time: update.effective_time.as_ref().and_then(offset_date_time),
        resource_type: update.resource_type.clone(),
        fhir_resource: std::mem::take(&mut update.fhir_resource_json),
        display_summary: update.display_summary.clone(),
        group_key,
    }
}
