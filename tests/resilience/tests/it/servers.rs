//! The owned servers themselves: a restart keeps the port and the data
//! (JetStream messages, PostgreSQL tables), so fault tests can rely on it.

use std::time::Duration;

use mcr_testkit::servers::{OwnedNats, OwnedPostgres, OwnedRedis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_port_and_data_and_redis_answers_again() {
    let (mut nats, mut redis, mut postgres) = tokio::join!(
        OwnedNats::start(),
        OwnedRedis::start(),
        OwnedPostgres::start()
    );

    let client = async_nats::connect(nats.url())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let jetstream = async_nats::jetstream::new(client.clone());
    let stream_config = async_nats::jetstream::stream::Config {
        name: "KEPT".to_owned(),
        subjects: vec!["kept.>".to_owned()],
        ..Default::default()
    };
    if let Err(error) = jetstream.get_or_create_stream(stream_config).await {
        panic!("{error}");
    }
    let acked = match jetstream.publish("kept.one", "payload".into()).await {
        Ok(pending) => pending.await,
        Err(error) => panic!("{error}"),
    };
    assert!(acked.is_ok(), "{acked:?}");
    // JetStream syncs its file store in the background; a kill -9 right
    // after the ack may lose it, which is not what this test is about.
    tokio::time::sleep(Duration::from_millis(200)).await;
    nats.stop().await;
    let port = nats.port();
    nats.restart().await;
    nats.kill9().await;
    nats.restart().await;
    assert_eq!(nats.port(), port);
    let client = async_nats::connect(nats.url())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("KEPT")
        .await
        .unwrap_or_else(|error| panic!("the stream did not survive: {error}"));
    let info = stream
        .info()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(info.state.messages, 1, "the message did not survive");

    let url = postgres.url("postgres");
    let pool = sqlx::PgPool::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("the mcr role cannot log in: {error}"));
    sqlx::query("CREATE DATABASE kept")
        .execute(&pool)
        .await
        .unwrap_or_else(|error| panic!("the mcr role cannot create databases: {error}"));
    pool.close().await;
    postgres.crash().await;
    postgres.restart().await;
    let kept = sqlx::PgPool::connect(&postgres.url("kept")).await;
    assert!(kept.is_ok(), "the database did not survive: {kept:?}");

    assert!(matches!(redis.command("SET k v").await, Ok(reply) if reply.starts_with("+OK")));
    redis.stop().await;
    assert!(
        redis.command("PING").await.is_err(),
        "a stopped Redis answered"
    );
    redis.restart().await;
    assert!(matches!(redis.command("PING").await, Ok(reply) if reply.starts_with("+PONG")));
}
