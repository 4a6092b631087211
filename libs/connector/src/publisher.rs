//! Publishing record updates to JetStream: validated first, with
//! `Nats-Msg-Id` for de-duplication and the W3C trace context, acknowledged
//! by the server, retried when the failure is transient.
//!
//! [`Publisher::publish`] sends one update and waits for its ack;
//! [`Publisher::publish_all`] keeps up to `max_in_flight` acks outstanding,
//! which is what lets one connection carry tens of thousands of updates a
//! second.

use std::time::Duration;

use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::{self, publish::PublishAck};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use mcr_proto::common::v1::Category;
use mcr_proto::records::v1::RecordUpdate;
use prost::Message;

use crate::stream::{dead_letter_stream_config, records_stream_config};
use crate::validate::{MAX_MESSAGE_BYTES, Rejection, subject_for, validate_update};

/// How often and how patiently a failed publish is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled after each failure.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts over about three seconds: enough to ride out a NATS
    /// reconnect or a leader election, short enough that a connector
    /// notices a real outage.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let doubling = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff)
    }
}

/// Why an update was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The update breaks the contract; it was not sent.
    #[error("the update was not published because it is invalid: {0}")]
    Invalid(#[from] Rejection),
    /// The server refused it in a way retrying cannot fix.
    #[error("jetstream refused the update on {subject}: {reason}")]
    Refused {
        /// The subject it was published on (namespaced).
        subject: String,
        /// What the server or client said.
        reason: String,
    },
    /// Every attempt failed with a transient error; it may be stored or not.
    #[error("jetstream did not acknowledge the update after {attempts} attempts: {reason}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// A stream could not be created or read.
    #[error("the jetstream stream {stream} could not be ensured: {reason}")]
    Stream {
        /// The stream's name (namespaced).
        stream: String,
        /// What the server said.
        reason: String,
    },
}

/// What [`Publisher::publish_all`] did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Updates stored by this batch.
    pub stored: u64,
    /// Updates JetStream already held (same `Nats-Msg-Id` within the
    /// duplicate window); harmless.
    pub duplicates: u64,
    /// Updates not stored: their message id and why.
    pub failures: Vec<(String, PublishError)>,
}

impl BatchReport {
    /// Updates acknowledged, stored now or before.
    pub fn acknowledged(&self) -> u64 {
        self.stored + self.duplicates
    }
}

/// Publishes record updates to JetStream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    jetstream: jetstream::Context,
    namespace: String,
    retry: RetryPolicy,
    max_in_flight: usize,
}

impl Publisher {
    /// A publisher on `jetstream`, without a namespace, with the default
    /// retry policy and up to 1024 acks in flight in batches.
    pub fn new(jetstream: jetstream::Context) -> Self {
        Self {
            jetstream,
            namespace: String::new(),
            retry: RetryPolicy::default(),
            max_in_flight: 1024,
        }
    }

    /// Prefixes every subject and stream with `namespace` (as
    /// `mcr_runtime::nats::NatsBus` does), so tests stay apart.
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    /// How many acks [`Publisher::publish_all`] waits for at once (at least 1).
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight.max(1);
        self
    }

    /// The subject `update` goes to, namespace included.
    pub fn subject(&self, update: &RecordUpdate) -> String {
        let category = Category::try_from(update.category).unwrap_or_default();
        let subject = subject_for(&update.source_organisation_code, category);
        mcr_runtime::nats::scoped_subject(&self.namespace, &subject)
    }

    /// Creates the records and dead-letter streams when missing (within the
    /// namespace). Connectors with publish-only permissions skip this: the
    /// aggregator creates them.
    pub async fn ensure_streams(&self) -> Result<(), PublishError> {
        for mut config in [records_stream_config(), dead_letter_stream_config()] {
            if !self.namespace.is_empty() {
                config.name = format!("{}_{}", self.namespace, config.name);
            }
            config.subjects = config
                .subjects
                .iter()
                .map(|subject| mcr_runtime::nats::scoped_subject(&self.namespace, subject))
                .collect();
            let stream = config.name.clone();
            self.jetstream
                .get_or_create_stream(config)
                .await
                .map_err(|error| PublishError::Stream {
                    stream,
                    reason: error.to_string(),
                })?;
        }
        Ok(())
    }

    /// Validates, publishes and waits for JetStream's ack, retrying
    /// transient failures. `ack.duplicate` tells that the same message id
    /// was already stored.
    pub async fn publish(&self, update: &RecordUpdate) -> Result<PublishAck, PublishError> {
        let outgoing = self.prepare(update)?;
        self.send(outgoing).await
    }

    /// Publishes every update with many acks in flight. Invalid updates are
    /// reported and skipped; the others are all tried.
    pub async fn publish_all<I>(&self, updates: I) -> BatchReport
    where
        I: IntoIterator<Item = RecordUpdate>,
    {
        let mut report = BatchReport::default();
        let mut in_flight = FuturesUnordered::new();
        for update in updates {
            let outgoing = match self.prepare(&update) {
                Ok(outgoing) => outgoing,
                Err(error) => {
                    report.failures.push((update.message_id, error));
                    continue;
                }
            };
            while in_flight.len() >= self.max_in_flight {
                if let Some(outcome) = in_flight.next().await {
                    record(&mut report, outcome);
                }
            }
            in_flight.push(async move {
                let message_id = outgoing.message_id.clone();
                (message_id, self.send(outgoing).await)
            });
        }
        while let Some(outcome) = in_flight.next().await {
            record(&mut report, outcome);
        }
        report
    }

    fn prepare(&self, update: &RecordUpdate) -> Result<Outgoing, PublishError> {
        validate_update(update)?;
        let payload = update.encode_to_vec();
        if payload.len() > MAX_MESSAGE_BYTES {
            return Err(PublishError::Invalid(Rejection::new(
                mcr_proto::records::v1::DeadLetterReason::TooLarge,
                format!(
                    "the encoded update is {} bytes; at most {MAX_MESSAGE_BYTES} are accepted",
                    payload.len()
                ),
            )));
        }
        Ok(Outgoing {
            subject: self.subject(update),
            message_id: update.message_id.clone(),
            payload: Bytes::from(payload),
        })
    }

    async fn send(&self, outgoing: Outgoing) -> Result<PublishAck, PublishError> {
        let mut attempt = 1;
        loop {
            let failure = match self.send_once(&outgoing).await {
                Ok(ack) => return Ok(ack),
                Err(failure) => failure,
            };
            match failure {
                // Right after a NATS restart JetStream answers "no
                // responders" until it has loaded its streams: worth the
                // retries, but a stream that stays missing is a refusal.
                Failure::NoStream(reason) if attempt >= self.retry.max_attempts => {
                    return Err(PublishError::Refused {
                        subject: outgoing.subject,
                        reason,
                    });
                }
                Failure::Permanent(reason) => {
                    return Err(PublishError::Refused {
                        subject: outgoing.subject,
                        reason,
                    });
                }
                Failure::Transient(reason) if attempt >= self.retry.max_attempts => {
                    return Err(PublishError::Unavailable {
                        attempts: attempt,
                        reason,
                    });
                }
                Failure::Transient(reason) | Failure::NoStream(reason) => {
                    tracing::debug!(
                        subject = %outgoing.subject,
                        attempt,
                        %reason,
                        "record update publish failed; retrying"
                    );
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn send_once(&self, outgoing: &Outgoing) -> Result<PublishAck, Failure> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", outgoing.message_id.as_str());
        mcr_runtime::propagation::inject_current_into_nats(&mut headers);
        let pending: PublishAckFuture = self
            .jetstream
            .publish_with_headers(outgoing.subject.clone(), headers, outgoing.payload.clone())
            .await
            .map_err(classify)?;
        pending.await.map_err(classify)
    }
}

struct Outgoing {
    subject: String,
    message_id: String,
    payload: Bytes,
}

enum Failure {
    Transient(String),
    NoStream(String),
    Permanent(String),
}

fn classify(error: async_nats::jetstream::context::PublishError) -> Failure {
    match error.kind() {
        PublishErrorKind::StreamNotFound => Failure::NoStream(
            "no stream captures this subject: create the MCR_RECORDS stream first (Publisher::ensure_streams, mcr-connector --ensure-streams, or start the record aggregator)"
                .to_owned(),
        ),
        PublishErrorKind::MaxPayloadExceeded
        | PublishErrorKind::WrongLastMessageId
        | PublishErrorKind::WrongLastSequence => Failure::Permanent(error.to_string()),
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending
        | PublishErrorKind::Other => Failure::Transient(error.to_string()),
    }
}

fn record(
    report: &mut BatchReport,
    (message_id, outcome): (String, Result<PublishAck, PublishError>),
) {
    match outcome {
        Ok(ack) if ack.duplicate => report.duplicates += 1,
        Ok(_) => report.stored += 1,
        Err(error) => report.failures.push((message_id, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(400));
        assert_eq!(policy.backoff(4), Duration::from_millis(500));
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(500));
    }
}
