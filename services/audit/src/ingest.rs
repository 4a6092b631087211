//! The durable consumer that stores published events: batch, chain, commit,
//! then ack.
//!
//! Crash safety comes from the order of the steps. An event is acked only
//! after the transaction that stored it committed; if the process dies
//! before the ack, JetStream redelivers it after `ack_wait` and the append
//! skips it because its `event_id` is already stored. So stopping (or being
//! killed) at any await point loses nothing and duplicates nothing, and the
//! future may simply be dropped on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::{AckKind, Message};
use mcr_audit_client::audit_stream_config;
use mcr_runtime::nats::NatsBus;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::alerts::Alerts;
use crate::config::AuditConfig;
use crate::domain::event::{self, ValidEvent};
use crate::store;

/// The durable consumer's name (shared by every replica, so JetStream
/// spreads events over them).
pub const CONSUMER: &str = "audit-store";
/// Where undecodable or invalid events go, with the reason. Not under
/// `mcr.audit.v1.>`, which the audit stream itself captures.
pub const DEADLETTER_SUBJECT: &str = "mcr.deadletter.v1.audit";
/// Dead-lettered events, by reason kind.
pub const DEADLETTER_METRIC: &str = "mcr_audit_deadletter_total";
/// Events stored.
pub const STORED_METRIC: &str = "mcr_audit_events_stored_total";
/// Seconds from receiving a batch to having acked it and raised its alerts.
pub const BATCH_SECONDS_METRIC: &str = "mcr_audit_batch_seconds";
/// The sequence of the newest event this replica committed to the chain.
/// Replicas append under one lock, so the chain's head is the maximum over
/// replicas (`max(mcr_audit_chain_head_sequence)`); a head that stops rising
/// while events are published means storing has stalled.
pub const CHAIN_HEAD_METRIC: &str = "mcr_audit_chain_head_sequence";

/// What the consumer needs.
#[derive(Clone)]
pub struct Ingest {
    pub pool: PgPool,
    pub nats: NatsBus,
    pub config: Arc<AuditConfig>,
    pub alerts: Alerts,
    /// The runtime's task tracker: shutdown waits for a batch's acks.
    pub tasks: TaskTracker,
}

/// A batch after its transaction: what is left to ack, reject and alert on.
pub struct StoredBatch {
    accepted: Vec<(Message, tracing::Span)>,
    events: Vec<ValidEvent>,
    rejected: Vec<(Message, String, tracing::Span)>,
    appended: Vec<store::Appended>,
    started: std::time::Instant,
}

impl Ingest {
    /// Consumes until `stop`, re-attaching after any failure.
    pub async fn run(self, attached: Arc<AtomicBool>, stop: CancellationToken) {
        let flag = Arc::clone(&attached);
        mcr_runtime::nats::consume_until_stopped("audit consumer", attached, stop, || {
            self.consume(&flag)
        })
        .await;
    }

    async fn consume(&self, attached: &AtomicBool) -> Result<(), String> {
        let stream = self
            .nats
            .ensure_stream(audit_stream_config())
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
        // The acks and alerts of one batch run while the next is stored; at
        // most one batch is in that state, so memory stays bounded.
        let mut finishing: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let (batch, failure) =
                mcr_runtime::nats::next_batch(&mut messages, batch_size, linger).await;
            if batch.is_empty() {
                return Err(failure.unwrap_or_default());
            }
            let stored = self.store(batch).await?;
            if let Some(previous) = finishing.take() {
                let _ = previous.await;
            }
            let ingest = self.clone();
            finishing = Some(self.tasks.spawn(async move { ingest.finish(stored).await }));
            if let Some(reason) = failure {
                return Err(reason);
            }
        }
    }

    /// Decodes, validates and stores one batch in one transaction. On a
    /// database failure nothing is acked (the events are redelivered).
    pub async fn store(&self, batch: Vec<Message>) -> Result<StoredBatch, String> {
        let started = std::time::Instant::now();
        let received_at = OffsetDateTime::now_utc();
        let mut stored = StoredBatch {
            accepted: Vec::with_capacity(batch.len()),
            events: Vec::with_capacity(batch.len()),
            rejected: Vec::new(),
            appended: Vec::new(),
            started,
        };
        for message in batch {
            // One span per event, continuing the publisher's trace.
            let span = tracing::info_span!("audit.ingest", subject = %message.subject);
            if let Some(headers) = &message.headers {
                let _ = span.set_parent(mcr_runtime::propagation::context_from_nats(headers));
            }
            match event::accept(&message.payload, received_at) {
                Ok(valid) => {
                    stored.accepted.push((message, span));
                    stored.events.push(valid);
                }
                Err(reason) => stored.rejected.push((message, reason, span)),
            }
        }
        if !stored.events.is_empty() {
            match store::append_batch(&self.pool, &stored.events).await {
                Ok(appended) => stored.appended = appended,
                Err(error) => {
                    for (message, _) in &stored.accepted {
                        let _ = message
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                            .await;
                    }
                    return Err(format!("storing a batch of audit events failed: {error}"));
                }
            }
        }
        metrics::counter!(STORED_METRIC).increment(stored.appended.len() as u64);
        if let Some(head) = stored
            .appended
            .iter()
            .map(|appended| appended.sequence)
            .max()
        {
            metrics::gauge!(CHAIN_HEAD_METRIC).set(head as f64);
        }
        tracing::debug!(
            events = stored.events.len(),
            stored = stored.appended.len(),
            store_ms = started.elapsed().as_millis() as u64,
            "audit batch stored"
        );
        Ok(stored)
    }

    /// After the commit: acks the stored events (duplicates too),
    /// dead-letters the rejected ones, raises the alerts.
    pub async fn finish(&self, stored: StoredBatch) {
        for ((message, span), valid) in stored.accepted.iter().zip(&stored.events) {
            async {
                if let Err(error) = message.ack().await {
                    // Redelivered later and skipped as a duplicate: nothing lost.
                    tracing::warn!(%error, event_id = %valid.columns.event_id, "ack failed");
                }
            }
            .instrument(span.clone())
            .await;
        }
        for (message, reason, span) in &stored.rejected {
            self.dead_letter(message, reason)
                .instrument(span.clone())
                .await;
        }
        let new: Vec<&ValidEvent> = stored
            .appended
            .iter()
            .filter_map(|appended| stored.events.get(appended.index))
            .collect();
        self.alerts.after_append(&new).await;
        metrics::histogram!(BATCH_SECONDS_METRIC).record(stored.started.elapsed().as_secs_f64());
    }

    async fn dead_letter(&self, message: &Message, reason: &str) {
        let kind = if reason.starts_with("payload") {
            "undecodable"
        } else {
            "invalid"
        };
        metrics::counter!(DEADLETTER_METRIC, "reason" => kind).increment(1);
        tracing::warn!(%reason, subject = %message.subject, "audit event rejected to the dead-letter subject");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Mcr-Reason", reason);
        headers.insert("Mcr-Original-Subject", message.subject.as_str());
        mcr_runtime::propagation::inject_current_into_nats(&mut headers);
        let published = self
            .nats
            .client()
            .publish_with_headers(
                self.nats.subject(DEADLETTER_SUBJECT),
                headers,
                message.payload.clone(),
            )
            .await;
        if let Err(error) = published {
            // Not terminated: it will be redelivered and dead-lettered again.
            tracing::error!(%error, "publishing to the dead-letter subject failed");
            return;
        }
        // Never retried: it would be rejected for the same reason forever.
        if let Err(error) = message.ack_with(AckKind::Term).await {
            tracing::warn!(%error, "terminating a rejected audit event failed");
        }
    }
}
