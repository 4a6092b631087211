//! kill -9 of the record aggregator while 100,000 updates stream in, then a
//! restart: every update is committed exactly once, with its content, and
//! nothing is left pending or unacked in the stream.

use std::time::{Duration, Instant};

use mcr_record_aggregator::RecordAggregatorService;
use mcr_resilience::{Stack, update};
use mcr_runtime::McrService;
use mcr_testkit::binary::ServiceProcess;
use mcr_testkit::grpc;

/// 20 persons × 5,000 entries: few persons keep patient-index out of the
/// way, so the time goes on the ingest path under test.
const PERSONS: u32 = 20;
const ENTRIES: u32 = 5_000;
const UPDATES: i64 = (PERSONS * ENTRIES) as i64;

/// A short ack wait so what was delivered to the killed process but not
/// acked comes back quickly.
const SETTINGS: &[(&str, &str)] = &[
    ("MCR_RECORDS__INGEST__ACK_WAIT_MS", "3000"),
    ("MCR_RECORDS__INGEST__BATCH_LINGER_MS", "10"),
];

async fn serving(process: &ServiceProcess) {
    let channel = grpc::connect(&process.grpc_endpoint()).await;
    if let Err(last) = grpc::wait_for_health(
        channel,
        RecordAggregatorService::SPEC.grpc_service_name,
        true,
        Duration::from_secs(60),
    )
    .await
    {
        panic!(
            "the aggregator never reported SERVING (last {last}); output:\n{}",
            process.output()
        );
    }
}

async fn stored(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM entries")
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_aggregator_mid_ingest_commits_every_update_exactly_once() {
    let stack = Stack::start().await;
    let mut first = stack.aggregator_process(crate::AGGREGATOR_BINARY, SETTINGS);
    serving(&first).await;

    let updates: Vec<_> = (0..ENTRIES)
        .flat_map(|entry| (0..PERSONS).map(move |number| update(number, entry, 1)))
        .collect();
    let publisher = stack.publisher().with_max_in_flight(2_048);
    let publishing = tokio::spawn(async move { publisher.publish_all(updates).await });

    let pool = stack.database::<RecordAggregatorService>().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored(&pool).await < 5_000 {
        assert!(
            Instant::now() < deadline,
            "the aggregator committed too little to kill it mid-stream; output:\n{}",
            first.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Err(problem) = first.kill_hard().await {
        panic!("{problem}");
    }
    drop(first);
    let at_kill = stored(&pool).await;
    assert!(
        at_kill < UPDATES,
        "the kill came too late to be mid-stream ({at_kill} committed)"
    );

    let mut second = stack.aggregator_process(crate::AGGREGATOR_BINARY, SETTINGS);
    serving(&second).await;
    let report = match publishing.await {
        Ok(report) => report,
        Err(panic) => panic!("the publisher panicked: {panic}"),
    };
    assert!(
        report.failures.is_empty(),
        "{} updates were not acknowledged, e.g. {:?}",
        report.failures.len(),
        report.failures.first()
    );
    assert_eq!(report.acknowledged(), UPDATES as u64);
    stack.wait_for_ingest(Duration::from_secs(240)).await;

    // Count: one row per update, every person complete.
    assert_eq!(stored(&pool).await, UPDATES);
    let incomplete: Vec<(String, i64)> = sqlx::query_as(
        "SELECT patient_value, count(*) FROM entries GROUP BY patient_value HAVING count(*) <> $1",
    )
    .bind(i64::from(ENTRIES))
    .fetch_all(&pool)
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert!(
        incomplete.is_empty(),
        "persons with missing or extra entries: {incomplete:?}"
    );
    let persons: i64 = sqlx::query_scalar("SELECT count(DISTINCT patient_value) FROM entries")
        .fetch_one(&pool)
        .await
        .unwrap_or(-1);
    assert_eq!(persons, i64::from(PERSONS));
    // Content: each row is exactly the update published for its key
    // (mcr_resilience::summary, spelt in SQL), at version 1, not deleted.
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM entries e,
                LATERAL (SELECT substr(e.patient_value, 5)::int AS p,
                                split_part(e.local_entry_id, '-obs-', 2)::int AS n) k
          WHERE e.version <> 1 OR e.deleted
             OR e.local_entry_id <> format('p%s-obs-%s', k.p, k.n)
             OR e.display_summary <> format('Haemoglobin %s g/L (p%s e%s v1)', 100 + k.n % 60, k.p, k.n)
             OR e.fhir_resource::jsonb -> 'valueQuantity' ->> 'value' <> (100 + k.n % 60)::text",
    )
    .fetch_one(&pool)
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(wrong, 0, "rows whose content is not what was published");

    // Nothing pending or unacked; the stream holds each update once and
    // nothing was dead-lettered.
    assert_eq!(stack.ingest_settled().await, Some((0, 0)));
    let jetstream = stack.jetstream();
    let mut records = jetstream
        .get_stream(format!("{}_MCR_RECORDS", stack.environment.id))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let info = records
        .info()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(info.state.messages, UPDATES as u64);
    let mut letters = jetstream
        .get_stream(format!("{}_MCR_RECORDS_DEADLETTER", stack.environment.id))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let letters = letters
        .info()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(letters.state.messages, 0, "updates were dead-lettered");

    match second.terminate(Duration::from_secs(10)).await {
        Ok(status) => assert!(status.success(), "{status}"),
        Err(problem) => panic!("{problem}; output:\n{}", second.output()),
    }
}
