//! kill -9 of the real binary while events stream in: after a restart every
//! event is stored exactly once and the chain verifies.

use std::time::Duration;

use futures::StreamExt;
use mcr_audit::AuditService;
use mcr_audit::domain::chain::{GENESIS, StoredLink, Verifier};
use mcr_runtime::McrService;
use mcr_testkit::TestEnvironment;
use mcr_testkit::binary::ServiceProcess;

use crate::binary::BINARY;
use crate::support::{bus, database, person, stored_count, views, wait_for_count};

const EVENTS: usize = 3_000;

fn start(environment: &TestEnvironment) -> ServiceProcess {
    ServiceProcess::start(
        BINARY,
        &AuditService::SPEC,
        environment,
        // Small batches so the kill lands mid-stream; a short ack wait so
        // what was delivered but not acked comes back quickly.
        &[
            ("MCR_AUDIT__BATCH_SIZE", "100"),
            ("MCR_AUDIT__ACK_WAIT_MS", "2000"),
        ],
    )
}

#[tokio::test]
async fn kill_9_mid_stream_loses_nothing_and_duplicates_nothing() {
    let environment = TestEnvironment::new().await;
    let mut first = start(&environment);
    let publisher = mcr_audit_client::AuditPublisher::new(bus(&environment).await);
    let events = views(EVENTS, &person());
    let publishing = tokio::spawn(async move {
        for event in &events {
            if let Err(error) = publisher.publish(event).await {
                panic!("publishing failed: {error}");
            }
        }
    });
    // The database appears once the service has created it.
    let mut stored = 0;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let name = environment.database_name(&AuditService::SPEC);
        let Ok(pool) =
            sqlx::PgPool::connect(&format!("postgres://mcr:mcr@127.0.0.1:5432/{name}")).await
        else {
            continue;
        };
        stored = stored_count(&pool).await;
        pool.close().await;
        if stored > 200 {
            break;
        }
    }
    assert!(
        stored > 200,
        "the service stored nothing; output:\n{}",
        first.output()
    );
    if let Err(problem) = first.kill_hard().await {
        panic!("{problem}");
    }
    drop(first);
    let at_kill = stored_count(&database(&environment).await).await;
    assert!(
        at_kill < EVENTS as i64,
        "the kill came too late to be mid-stream"
    );

    let mut second = start(&environment);
    if let Err(panic) = publishing.await {
        panic!("publisher: {panic}");
    }
    let pool = database(&environment).await;
    wait_for_count(&pool, EVENTS as i64, Duration::from_secs(90)).await;

    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT event_id) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap_or(-1);
    assert_eq!(distinct, EVENTS as i64);
    let mut verifier = Verifier::starting_at(1, GENESIS);
    let mut rows = sqlx::query_as::<_, (i64, Vec<u8>, Vec<u8>, Vec<u8>)>(
        "SELECT sequence, canonical, previous_hash, hash FROM audit_events ORDER BY sequence",
    )
    .fetch(&pool);
    while let Some(row) = rows.next().await {
        let (sequence, canonical, previous_hash, hash) = match row {
            Ok(row) => row,
            Err(error) => panic!("{error}"),
        };
        let checked = verifier.check(StoredLink {
            sequence: u64::try_from(sequence).unwrap_or(0),
            canonical: &canonical,
            previous_hash: &previous_hash,
            hash: &hash,
            columns_match: true,
        });
        assert_eq!(checked, Ok(()));
    }
    assert_eq!(verifier.verified(), EVENTS as u64);
    match second.terminate(Duration::from_secs(10)).await {
        Ok(status) => assert!(status.success(), "{status}"),
        Err(problem) => panic!("{problem}; output:\n{}", second.output()),
    }
}
