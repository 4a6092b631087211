//! The runtime's connection helpers against the real PostgreSQL and NATS.

// A panic is how a test reports a failure.
#![allow(clippy::unwrap_used)]

mod certificates;
mod nats_tls;
mod postgres_tls;
mod redis_tls;
mod tls;

use std::time::Duration;

use async_nats::jetstream::{consumer, stream};
use futures::StreamExt;
use mcr_runtime::nats::NatsBus;
use mcr_runtime::settings::{DatabaseSettings, NatsSettings};

fn fresh_namespace() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn bus(namespace: &str) -> NatsBus {
    NatsBus::connect(
        &NatsSettings {
            url: "nats://127.0.0.1:4222".to_owned(),
            namespace: namespace.to_owned(),
            connect_timeout_ms: 2000,
        },
        "runtime-test",
    )
    .await
    .expect("a valid url")
}

#[tokio::test]
async fn streams_and_durable_consumers_are_ensured_within_the_namespace() {
    let namespace = fresh_namespace();
    let nats = bus(&namespace).await;
    let config = || stream::Config {
        name: "MCR_EXAMPLE".to_owned(),
        subjects: vec!["mcr.example.v1.>".to_owned()],
        ..Default::default()
    };
    let created = nats
        .ensure_stream(config())
        .await
        .expect("creating the stream");
    assert_eq!(
        created.cached_info().config.name,
        format!("{namespace}_MCR_EXAMPLE")
    );
    // Ensuring again is harmless.
    let mut again = nats.ensure_stream(config()).await.expect("ensuring again");
    assert_eq!(
        again.info().await.expect("info").config.subjects,
        vec![format!("{namespace}.mcr.example.v1.>")]
    );

    nats.jetstream()
        .publish(nats.subject("mcr.example.v1.one"), "hello".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let consumer = nats
        .ensure_pull_consumer(
            &again,
            consumer::pull::Config {
                durable_name: Some("example-reader".to_owned()),
                filter_subject: "mcr.example.v1.>".to_owned(),
                ..Default::default()
            },
        )
        .await
        .expect("creating the consumer");
    let mut messages = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .expect("fetch");
    let message = messages
        .next()
        .await
        .expect("one message")
        .expect("a message");
    assert_eq!(
        message.subject.as_str(),
        format!("{namespace}.mcr.example.v1.one")
    );
    assert_eq!(message.payload.as_ref(), b"hello");
    message.ack().await.expect("ack");

    // Another namespace sees nothing of this one.
    let other = bus(&fresh_namespace()).await;
    assert!(
        other
            .jetstream()
            .get_stream(format!("{namespace}_MCR_EXAMPLE"))
            .await
            .is_ok(),
        "streams are global"
    );
    assert_ne!(
        other.subject("mcr.example.v1.one"),
        nats.subject("mcr.example.v1.one")
    );
}

#[tokio::test]
async fn the_service_database_is_created_when_missing_and_a_bad_name_is_refused() {
    let settings = DatabaseSettings {
        host: "127.0.0.1".to_owned(),
        port: 5432,
        username: "mcr".to_owned(),
        password: secrecy::SecretString::from("mcr"),
        name: format!("mcr_test_{}_runtime", fresh_namespace()),
        max_connections: 2,
        connect_timeout_ms: 3000,
        require_tls: false,
        tls: Default::default(),
    };
    let pool = mcr_runtime::postgres::lazy_pool(&settings);
    assert!(
        mcr_runtime::postgres::ping(&pool).await.is_err(),
        "the database does not exist yet"
    );
    mcr_runtime::postgres::prepare_database(&settings, &pool, None)
        .await
        .expect("creating the database");
    mcr_runtime::postgres::ping(&pool)
        .await
        .expect("the database answers");
    // A second replica preparing the same database is fine.
    mcr_runtime::postgres::prepare_database(&settings, &pool, None)
        .await
        .expect("idempotent");

    let bad = DatabaseSettings {
        name: "robert'); DROP TABLE".to_owned(),
        ..settings
    };
    let error = mcr_runtime::postgres::prepare_database(&bad, &pool, None)
        .await
        .expect_err("not an identifier");
    assert!(error.to_string().contains("lowercase letters"), "{error}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_named_in_the_error() {
    let settings = DatabaseSettings {
        host: "127.0.0.1".to_owned(),
        port: 1,
        username: "mcr".to_owned(),
        password: secrecy::SecretString::from("mcr"),
        name: "mcr_unreachable".to_owned(),
        max_connections: 1,
        connect_timeout_ms: 500,
        require_tls: false,
        tls: Default::default(),
    };
    let pool = mcr_runtime::postgres::lazy_pool(&settings);
    let error = mcr_runtime::postgres::prepare_database(&settings, &pool, None)
        .await
        .expect_err("nothing listens on port 1");
    let message = error.to_string();
    assert!(
        message.contains("127.0.0.1:1") && message.contains("mcr"),
        "{message}"
    );
}
