//! The publisher against the real NATS: durable, de-duplicated, on the right subject.

use futures::StreamExt;
use mcr_audit_client::{AUDIT_STREAM, AuditPublishError, AuditPublisher};
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome};
use mcr_runtime::nats::NatsBus;
use mcr_runtime::settings::NatsSettings;
use prost::Message;

async fn bus(environment: &mcr_testkit::TestEnvironment) -> NatsBus {
    let settings = NatsSettings {
        url: "nats://127.0.0.1:4222".to_owned(),
        namespace: environment.id.clone(),
        connect_timeout_ms: 2_000,
    };
    match NatsBus::connect(&settings, "audit-client-test").await {
        Ok(bus) => bus,
        Err(error) => panic!("nats: {error}"),
    }
}

fn event(action: AuditAction) -> AuditEvent {
    AuditEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 0,
        }),
        source_service: "record-aggregator".to_owned(),
        action: action as i32,
        outcome: AuditOutcome::Permitted as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_published_event_is_stored_once_on_its_action_subject() {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let nats = bus(&environment).await;
    let publisher = AuditPublisher::new(nats.clone());
    let viewed = event(AuditAction::ViewRecord);
    if let Err(error) = publisher.publish(&viewed).await {
        panic!("publish failed: {error}");
    }
    // A retry of the same event (same Nats-Msg-Id) is not stored again.
    if let Err(error) = publisher.clone().publish(&viewed).await {
        panic!("second publish failed: {error}");
    }
    publisher
        .publish(&event(AuditAction::BreakGlass))
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    let mut stream = nats
        .jetstream()
        .get_stream(nats.stream_name(AUDIT_STREAM))
        .await
        .unwrap_or_else(|error| panic!("the stream must exist: {error}"));
    let info = stream
        .info()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(info.state.messages, 2, "the duplicate must not be stored");

    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let mut messages = consumer
        .messages()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let first = match messages.next().await {
        Some(Ok(message)) => message,
        other => panic!("expected the first event: {:?}", other.map(|m| m.is_ok())),
    };
    assert_eq!(
        first.subject.as_str(),
        environment.subject("mcr.audit.v1.view_record")
    );
    let headers = first.headers.clone().unwrap_or_default();
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|value| value.as_str()),
        Some(viewed.event_id.as_str())
    );
    assert_eq!(
        AuditEvent::decode(first.payload.as_ref()).ok(),
        Some(viewed)
    );
}

#[tokio::test]
async fn an_event_without_an_action_is_refused_before_publishing() {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let publisher = AuditPublisher::new(bus(&environment).await);
    let outcome = publisher.publish(&event(AuditAction::Unspecified)).await;
    assert!(
        matches!(outcome, Err(AuditPublishError::InvalidEvent(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_unreachable_nats_is_an_error_not_a_silent_loss() {
    let closed_port = mcr_testkit::binary::free_port();
    let settings = NatsSettings {
        url: format!("nats://127.0.0.1:{closed_port}"),
        namespace: "unreachable".to_owned(),
        connect_timeout_ms: 200,
    };
    let nats = NatsBus::connect(&settings, "audit-client-test")
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let publisher = AuditPublisher::new(nats);
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        publisher.publish(&event(AuditAction::ViewRecord)),
    )
    .await;
    assert!(matches!(outcome, Ok(Err(_))), "{outcome:?}");
}
