//! Publishing: stored once, refused before sending when invalid, with the
//! de-duplication id and trace context on the headers, fast in batches.

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use mcr_connector::builder::RecordUpdateBuilder;
use mcr_connector::publisher::{PublishError, Publisher, RetryPolicy};
use mcr_connector::stream::RECORDS_STREAM;
use mcr_proto::common::v1::Category;
use mcr_proto::records::v1::{DeadLetterReason, RecordUpdate};
use prost::Message;
use serde_json::json;
use tracing::Instrument;

struct Fixture {
    environment: mcr_testkit::TestEnvironment,
    jetstream: jetstream::Context,
    publisher: Publisher,
}

async fn fixture() -> Fixture {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let client = match async_nats::connect("nats://127.0.0.1:4222").await {
        Ok(client) => client,
        Err(error) => panic!(
            "nats is not reachable at 127.0.0.1:4222 ({error}); start it with ./scripts/dev-stack"
        ),
    };
    let jetstream = jetstream::new(client);
    let publisher = Publisher::new(jetstream.clone()).with_namespace(&environment.id);
    if let Err(error) = publisher.ensure_streams().await {
        panic!("{error}");
    }
    Fixture {
        environment,
        jetstream,
        publisher,
    }
}

impl Fixture {
    async fn stored_messages(&self) -> u64 {
        let name = format!("{}_{RECORDS_STREAM}", self.environment.id);
        let mut stream = self
            .jetstream
            .get_stream(&name)
            .await
            .unwrap_or_else(|error| panic!("stream {name} must exist: {error}"));
        stream
            .info()
            .await
            .unwrap_or_else(|error| panic!("{error}"))
            .state
            .messages
    }

    async fn first_message(&self) -> jetstream::Message {
        let name = format!("{}_{RECORDS_STREAM}", self.environment.id);
        let stream = self
            .jetstream
            .get_stream(&name)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let mut messages = consumer
            .messages()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
            Ok(Some(Ok(message))) => message,
            _ => panic!("expected a message on the records stream"),
        }
    }
}

fn observation(entry: &str, version: u64) -> RecordUpdate {
    let built = RecordUpdateBuilder::upsert("RQW", "WINPATH", Category::TestResults)
        .patient("PAS", "H100200")
        .entry(entry, version)
        .effective_time(prost_types::Timestamp {
            seconds: 1_764_000_000,
            nanos: 0,
        })
        .resource(&json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "valueQuantity": {"value": 135, "unit": "g/L"}
        }))
        .display_summary("Haemoglobin 135 g/L")
        .build();
    built.unwrap_or_else(|rejection| panic!("the fixture must be valid: {rejection}"))
}

#[tokio::test]
async fn a_duplicate_publish_is_stored_once() {
    let fixture = fixture().await;
    let update = observation("obs-1", 1);
    let first = fixture.publisher.publish(&update).await;
    let second = fixture.publisher.publish(&update).await;
    assert!(matches!(first, Ok(ref ack) if !ack.duplicate), "{first:?}");
    assert!(matches!(second, Ok(ref ack) if ack.duplicate), "{second:?}");
    assert_eq!(fixture.stored_messages().await, 1);
    crate::remove_streams(&fixture.environment.id).await;
}

#[tokio::test]
async fn an_invalid_update_is_refused_before_it_is_sent() {
    let fixture = fixture().await;
    let mut update = observation("obs-2", 1);
    update.resource_type = "MedicationStatement".to_owned();
    let outcome = fixture.publisher.publish(&update).await;
    match outcome {
        Err(PublishError::Invalid(rejection)) => {
            assert_eq!(rejection.reason, DeadLetterReason::ResourceTypeMismatch);
        }
        other => panic!("expected an invalid-update error, got {other:?}"),
    }
    assert_eq!(fixture.stored_messages().await, 0);
    crate::remove_streams(&fixture.environment.id).await;
}

#[tokio::test]
async fn the_message_carries_its_id_and_trace_context_on_its_subject() {
    let fixture = fixture().await;
    let update = observation("obs-3", 4);
    let span = tracing::info_span!("connector-test");
    let outcome = fixture.publisher.publish(&update).instrument(span).await;
    assert!(outcome.is_ok(), "{outcome:?}");

    let message = fixture.first_message().await;
    assert_eq!(
        message.subject.as_str(),
        fixture
            .environment
            .subject("mcr.records.v1.RQW.test_results")
    );
    let headers = message.headers.clone().unwrap_or_default();
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|value| value.as_str()),
        Some("RQW:WINPATH:obs-3:4")
    );
    assert!(
        headers.get("traceparent").is_some(),
        "the W3C trace context must travel with the update"
    );
    let decoded = RecordUpdate::decode(message.payload.clone());
    assert_eq!(decoded.ok(), Some(update));
    crate::remove_streams(&fixture.environment.id).await;
}

#[tokio::test]
async fn a_missing_stream_is_reported_not_retried_for_ever() {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let client = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let publisher = Publisher::new(jetstream::new(client))
        .with_namespace(&environment.id)
        .with_retry(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        });
    let outcome = publisher.publish(&observation("obs-4", 1)).await;
    assert!(
        matches!(outcome, Err(PublishError::Refused { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_batch_keeps_acks_in_flight_and_reports_every_update() {
    let fixture = fixture().await;
    let mut updates: Vec<RecordUpdate> = (0..2_000)
        .map(|index| observation(&format!("batch-{index}"), 1))
        .collect();
    updates.push(observation("batch-0", 1));
    let mut invalid = observation("batch-invalid", 1);
    invalid.version = 0;
    updates.push(invalid);

    let report = fixture.publisher.publish_all(updates).await;
    assert_eq!(report.stored, 2_000);
    assert_eq!(report.duplicates, 1);
    assert_eq!(report.failures.len(), 1);
    assert!(matches!(report.failures[0].1, PublishError::Invalid(_)));
    assert_eq!(fixture.stored_messages().await, 2_000);
    crate::remove_streams(&fixture.environment.id).await;
}
