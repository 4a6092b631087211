//! The streams as the aggregator creates them (through `NatsBus`) and as the
//! publisher uses them agree; the dead-letter subject has its own stream;
//! a synthetic region goes through whole.

use async_nats::jetstream;
use mcr_connector::publisher::Publisher;
use mcr_connector::stream::{
    DEAD_LETTER_STREAM, RECORDS_STREAM, dead_letter_stream_config, records_stream_config,
};
use mcr_connector::synthetic::Region;
use mcr_connector::validate::DEAD_LETTER_SUBJECT;
use mcr_runtime::nats::NatsBus;
use mcr_runtime::settings::NatsSettings;

async fn bus(environment: &mcr_testkit::TestEnvironment) -> NatsBus {
    let settings = NatsSettings {
        url: "nats://127.0.0.1:4222".to_owned(),
        namespace: environment.id.clone(),
        connect_timeout_ms: 2_000,
    };
    NatsBus::connect(&settings, "connector-test")
        .await
        .unwrap_or_else(|error| panic!("nats: {error}"))
}

async fn messages(nats: &NatsBus, stream: &str) -> u64 {
    let mut stream = nats
        .jetstream()
        .get_stream(nats.stream_name(stream))
        .await
        .unwrap_or_else(|error| panic!("stream {stream} must exist: {error}"));
    stream
        .info()
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .state
        .messages
}

#[tokio::test]
async fn streams_ensured_by_the_bus_take_the_publishers_updates_and_dead_letters_apart() {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let nats = bus(&environment).await;
    for config in [records_stream_config(), dead_letter_stream_config()] {
        nats.ensure_stream(config)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
    let publisher = Publisher::new(nats.jetstream().clone()).with_namespace(&environment.id);
    let region = Region::generate(21, 30);
    let updates: Vec<_> = region.updates().collect();
    let count = updates.len() as u64;
    let report = publisher.publish_all(updates).await;
    assert_eq!(report.stored, count, "{:?}", report.failures.first());
    assert_eq!(messages(&nats, RECORDS_STREAM).await, count);

    let acknowledgement = nats
        .jetstream()
        .publish(nats.subject(DEAD_LETTER_SUBJECT), "rejected".into())
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(acknowledgement.stream, nats.stream_name(DEAD_LETTER_STREAM));
    assert_eq!(messages(&nats, RECORDS_STREAM).await, count);
    assert_eq!(messages(&nats, DEAD_LETTER_STREAM).await, 1);

    // Publishing the region again stores nothing new.
    let again = publisher.publish_all(region.updates()).await;
    assert_eq!(again.duplicates, count);
    assert_eq!(messages(&nats, RECORDS_STREAM).await, count);
    crate::remove_streams(&environment.id).await;
}

#[tokio::test]
async fn ensuring_streams_twice_is_harmless() {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let client = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let publisher = Publisher::new(jetstream::new(client)).with_namespace(&environment.id);
    for _ in 0..2 {
        publisher
            .ensure_streams()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
    crate::remove_streams(&environment.id).await;
}
