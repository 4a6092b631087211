//! The NATS server restarted while a connector publishes and a clinician
//! reads: reads fail UNAVAILABLE (no data) while their audit event cannot
//! be written, connector, aggregator and audit reconnect by themselves,
//! every update JetStream acknowledged is committed, and every view that
//! returned data is on the audit trail.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcr_audit::AuditService;
use mcr_connector::publisher::RetryPolicy;
use mcr_proto::audit::v1::{AuditAction, AuditEvent};
use mcr_proto::common::v1::Role;
use mcr_record_aggregator::RecordAggregatorService;
use mcr_resilience::{Stack, local_entry, patient_value, person, update, view};
use mcr_testkit::grpc;
use prost::Message as _;

const READ_ENTRIES: u32 = 10;
const INGESTED: u32 = 3_000;
/// Longer than JetStream's 5 s publish-ack timeout, so reads started while
/// NATS is down fail before it is back.
const OUTAGE: Duration = Duration::from_secs(8);

/// One view attempt: when it started and ended, its decision id or error code.
struct Read {
    started: Instant,
    ended: Instant,
    outcome: Result<String, tonic::Code>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_loses_no_acked_update_and_serves_no_unaudited_view() {
    let mut stack = Stack::start().await;
    let aggregator = stack.spawn_aggregator(&[]).await;
    let audit = stack.spawn_audit().await;
    let report = stack
        .publisher()
        .publish_all((0..READ_ENTRIES).map(|entry| update(1, entry, 1)))
        .await;
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
    stack.wait_for_ingest(Duration::from_secs(30)).await;
    let token = stack
        .professional("nats.viewer", Role::ClinicalPractitioner)
        .await;
    stack.allow(&person(1), &token).await;
    let channel = aggregator.channel().await;
    assert!(view(channel.clone(), &token, &person(1)).await.is_ok());

    // A connector that keeps trying for about a minute, as a real one would.
    let publisher = stack.publisher().with_retry(RetryPolicy {
        max_attempts: 60,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    });
    let publishing = tokio::spawn(async move {
        let mut acknowledged = 0;
        let mut failures = Vec::new();
        for chunk in 0..INGESTED / 100 {
            let report = publisher
                .publish_all((chunk * 100..(chunk + 1) * 100).map(|entry| update(2, entry, 1)))
                .await;
            acknowledged += report.acknowledged();
            failures.extend(
                report
                    .failures
                    .into_iter()
                    .map(|(id, error)| format!("{id}: {error}")),
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (acknowledged, failures)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (channel, token, stop) = (channel.clone(), token.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut reads = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let outcome = view(channel.clone(), &token, &person(1))
                    .await
                    .map(|record| record.decision_id)
                    .map_err(|status| status.code());
                reads.push(Read {
                    started,
                    ended: Instant::now(),
                    outcome,
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            reads
        })
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    // A view may fail while the server is shutting down, before stop()
    // returns: "before the stop" means before it was asked to stop.
    let stopping_at = Instant::now();
    stack.servers.nats.stop().await;
    let stopped_at = Instant::now();
    tokio::time::sleep(OUTAGE).await;
    let restarting_at = Instant::now();
    stack.servers.nats.restart().await;

    // Reconnected by themselves: the aggregator and audit report SERVING
    // and a view started now is served.
    for (name, service) in [("record-aggregator", &aggregator), ("audit", &audit)] {
        if let Err(last) =
            grpc::wait_for_health(service.channel().await, "", true, Duration::from_secs(30)).await
        {
            panic!("{name} never reported SERVING after NATS came back (last {last})");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(status) = view(channel.clone(), &token, &person(1)).await {
        assert!(
            Instant::now() < deadline,
            "views did not recover after NATS came back: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader
        .await
        .unwrap_or_else(|panic| panic!("the reader panicked: {panic}"));
    let (acknowledged, failures) = publishing
        .await
        .unwrap_or_else(|panic| panic!("the publisher panicked: {panic}"));

    // Every view that ended while NATS was down failed UNAVAILABLE: no data
    // left without its audit event. (A view begun during the outage may be
    // served once NATS is back: its audit event was written first.)
    let during: Vec<&Read> = reads
        .iter()
        .filter(|read| read.ended > stopped_at && read.ended < restarting_at)
        .collect();
    let timeline: Vec<String> = reads
        .iter()
        .filter(|read| read.ended >= stopped_at)
        .map(|read| {
            format!(
                "{:?}+{:?}: {:?}",
                read.started.saturating_duration_since(stopped_at),
                read.ended - read.started,
                read.outcome.as_ref().map(|_| "served")
            )
        })
        .collect();
    assert!(
        !during.is_empty(),
        "no view ended while NATS was down (outage {:?}); reads from the stop on: {timeline:?}",
        restarting_at - stopped_at
    );
    for read in &during {
        assert_eq!(
            read.outcome.as_ref().err(),
            Some(&tonic::Code::Unavailable),
            "a view while audit could not be written"
        );
    }
    assert!(
        reads
            .iter()
            .filter(|read| read.ended < stopping_at)
            .all(|read| read.outcome.is_ok()),
        "views failed before NATS was stopped"
    );

    // The connector rode out the restart; every acknowledged update committed.
    assert!(
        failures.is_empty(),
        "{} updates not acknowledged, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(acknowledged, u64::from(INGESTED));
    stack.wait_for_ingest(Duration::from_secs(120)).await;
    let records = stack.database::<RecordAggregatorService>().await;
    let committed: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT local_entry_id) FROM entries WHERE patient_value = $1",
    )
    .bind(patient_value(2))
    .fetch_one(&records)
    .await
    .unwrap_or(-1);
    if committed != i64::from(INGESTED) {
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT local_entry_id FROM entries WHERE patient_value = $1")
                .bind(patient_value(2))
                .fetch_all(&records)
                .await
                .unwrap_or_default();
        let missing: Vec<String> = (0..INGESTED)
            .map(|entry| local_entry(2, entry))
            .filter(|entry| !stored.contains(entry))
            .collect();
        let jetstream = stack.jetstream();
        let mut counts = Vec::new();
        for name in ["MCR_RECORDS", "MCR_RECORDS_DEADLETTER"] {
            let name = format!("{}_{name}", stack.environment.id);
            let messages = match jetstream.get_stream(&name).await {
                Ok(mut stream) => stream.info().await.map(|info| info.state.messages).ok(),
                Err(_) => None,
            };
            counts.push((name, messages));
        }
        panic!(
            "{committed} of {INGESTED} acknowledged updates committed; missing {missing:?}; stream messages {counts:?}"
        );
    }

    // Every view that returned data is on the audit trail (by its decision id).
    let served: HashSet<String> = reads
        .iter()
        .filter_map(|read| read.outcome.clone().ok())
        .collect();
    assert!(!served.is_empty());
    let trail = stack.database::<AuditService>().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let canonical: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT canonical FROM audit_events WHERE action = $1")
                .bind(AuditAction::ViewRecord as i32)
                .fetch_all(&trail)
                .await
                .unwrap_or_default();
        let audited: HashSet<String> = canonical
            .iter()
            .filter_map(|bytes| AuditEvent::decode(bytes.as_slice()).ok())
            .map(|event| event.decision_id)
            .collect();
        let missing = served.difference(&audited).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} served views are not on the audit trail",
            served.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Err(error) = aggregator.stop().await {
        panic!("{error}");
    }
    if let Err(error) = audit.stop().await {
        panic!("{error}");
    }
}
