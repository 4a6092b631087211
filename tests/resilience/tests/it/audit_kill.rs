//! kill -9 of audit while events stream in: after a restart every event
//! published is stored exactly once and the hash chain verifies end to end.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mcr_audit::AuditService;
use mcr_audit::domain::chain::{GENESIS, StoredLink, Verifier};
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome};
use mcr_proto::common::v1::{Actor, ActorKind, Role};
use mcr_resilience::Stack;
use mcr_runtime::nats::NatsBus;
use mcr_runtime::settings::NatsSettings;
use mcr_testkit::binary::ServiceProcess;

const EVENTS: usize = 4_000;

/// Small batches so the kill lands mid-stream; a short ack wait so what was
/// delivered but not acked comes back quickly.
const SETTINGS: &[(&str, &str)] = &[
    ("MCR_AUDIT__BATCH_SIZE", "100"),
    ("MCR_AUDIT__ACK_WAIT_MS", "2000"),
];

fn view_event(person: &str) -> AuditEvent {
    AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        source_service: "record-aggregator".to_owned(),
        actor: Some(Actor {
            user_id: "nurse-1".to_owned(),
            role_profile_id: uuid::Uuid::now_v7().to_string(),
            role: Role::Nurse as i32,
            role_code: "R8001".to_owned(),
            organisation_code: "RQW".to_owned(),
            session_id: uuid::Uuid::now_v7().to_string(),
            kind: ActorKind::User as i32,
            display_name: "Nurse Jones".to_owned(),
        }),
        action: AuditAction::ViewRecord as i32,
        person_id: person.to_owned(),
        purpose: 1,
        purpose_of_use_code: "TREAT".to_owned(),
        outcome: AuditOutcome::Permitted as i32,
        categories: vec![2, 3],
        entry_count: 4,
        description: "viewed care record".to_owned(),
        ..Default::default()
    }
}

/// Record views stored (what identity and audit record on the side is left out).
async fn stored_views(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = $1")
        .bind(AuditAction::ViewRecord as i32)
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_audit_mid_stream_loses_nothing_duplicates_nothing_and_the_chain_verifies() {
    let stack = Stack::start().await;
    let mut first: ServiceProcess = stack.audit_process(crate::AUDIT_BINARY, SETTINGS);
    let bus = match NatsBus::connect(
        &NatsSettings {
            url: stack.servers.nats.url(),
            namespace: stack.environment.id.clone(),
            connect_timeout_ms: 2_000,
        },
        "resilience-test",
    )
    .await
    {
        Ok(bus) => bus,
        Err(error) => panic!("{error}"),
    };
    let publisher = mcr_audit_client::AuditPublisher::new(bus);
    let person = uuid::Uuid::new_v4().to_string();
    let events: Vec<AuditEvent> = (0..EVENTS).map(|_| view_event(&person)).collect();
    let published: HashSet<String> = events.iter().map(|event| event.event_id.clone()).collect();
    let publishing = tokio::spawn(async move {
        let sends = events.into_iter().map(move |event| {
            let publisher = publisher.clone();
            async move { publisher.publish(&event).await.is_err() }
        });
        let failed: Vec<bool> = futures::stream::iter(sends)
            .buffer_unordered(64)
            .collect()
            .await;
        failed.into_iter().filter(|failed| *failed).count()
    });

    let pool = stack.database::<AuditService>().await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while stored_views(&pool).await < 300 {
        assert!(
            Instant::now() < deadline,
            "audit stored too little to kill it mid-stream; output:\n{}",
            first.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Err(problem) = first.kill_hard().await {
        panic!("{problem}");
    }
    drop(first);
    let at_kill = stored_views(&pool).await;
    assert!(
        at_kill < EVENTS as i64,
        "the kill came too late to be mid-stream"
    );

    let mut second = stack.audit_process(crate::AUDIT_BINARY, SETTINGS);
    match publishing.await {
        Ok(0) => {}
        Ok(failed) => panic!("{failed} audit events were not acknowledged"),
        Err(panic) => panic!("the publisher panicked: {panic}"),
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let stored = stored_views(&pool).await;
        assert!(
            stored <= EVENTS as i64,
            "{stored} views stored, {EVENTS} published"
        );
        if stored == EVENTS as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {stored} of {EVENTS} events stored after the restart; output:\n{}",
            second.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let ids: Vec<String> =
        sqlx::query_scalar("SELECT event_id::text FROM audit_events WHERE action = $1")
            .bind(AuditAction::ViewRecord as i32)
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    let stored: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(stored.len(), ids.len(), "an event is stored twice");
    assert_eq!(
        stored, published,
        "the stored events are not those published"
    );

    let mut verifier = Verifier::starting_at(1, GENESIS);
    let mut rows = sqlx::query_as::<_, (i64, Vec<u8>, Vec<u8>, Vec<u8>)>(
        "SELECT sequence, canonical, previous_hash, hash FROM audit_events ORDER BY sequence",
    )
    .fetch(&pool);
    while let Some(row) = rows.next().await {
        let (sequence, canonical, previous_hash, hash) =
            row.unwrap_or_else(|error| panic!("{error}"));
        let checked = verifier.check(StoredLink {
            sequence: u64::try_from(sequence).unwrap_or(0),
            canonical: &canonical,
            previous_hash: &previous_hash,
            hash: &hash,
            columns_match: true,
        });
        assert_eq!(checked, Ok(()), "the chain breaks at sequence {sequence}");
    }
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(sequence), 0) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap_or(-1);
    assert_eq!(verifier.verified(), u64::try_from(head).unwrap_or(0));
    assert!(verifier.verified() >= EVENTS as u64);

    match second.terminate(Duration::from_secs(10)).await {
        Ok(status) => assert!(status.success(), "{status}"),
        Err(problem) => panic!("{problem}; output:\n{}", second.output()),
    }
}
