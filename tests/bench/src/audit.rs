//! `audit`: appends per second through the real consumer path (JetStream →
//! batch → hash chain → PostgreSQL → ack), QueryEvents-by-person latency
//! over a large store, and VerifyChain throughput.
//!
//! To reach a realistic store size quickly, the bulk of the events is loaded
//! straight into the events table with the chain computed here exactly as
//! the service computes it (multi-row `INSERT … SELECT FROM UNNEST`). The
//! append figure is measured separately: events are published while the
//! service is stopped, then the service is started and the time it takes to
//! store them all, chained after the bulk, is measured.

use std::time::{Duration, Instant};

use mcr_audit::AuditService;
use mcr_audit::domain::chain::{self, Head};
use mcr_audit::domain::event::{self, ValidEvent};
use mcr_audit_client::{AuditPublisher, subject_for};
use mcr_proto::audit::v1::audit_client::AuditClient;
use mcr_proto::audit::v1::{
    AuditAction, AuditEvent, AuditOutcome, QueryEventsRequest, VerifyChainRequest,
};
use mcr_proto::common::v1::{Actor, ActorKind, PageRequest, Role};
use mcr_runtime::McrService;
use mcr_runtime::nats::NatsBus;
use mcr_testkit::TestEnvironment;
use prost::Message;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::stats::{Latencies, round3};

/// Events share persons, actors and organisations the way a region's do.
const PERSONS: usize = 100_000;
const ACTORS: usize = 2_000;
const ORGANISATIONS: usize = 60;
const LOAD_BATCH: usize = 10_000;

struct Population {
    persons: Vec<String>,
    actors: Vec<String>,
}

impl Population {
    fn new() -> Self {
        Self {
            persons: (0..PERSONS).map(|_| Uuid::new_v4().to_string()).collect(),
            actors: (0..ACTORS).map(|_| Uuid::new_v4().to_string()).collect(),
        }
    }

    /// Event number `n`: deterministic spread over persons, actors and the last 30 days.
    fn event(&self, n: usize, now: OffsetDateTime) -> AuditEvent {
        let seconds_ago = (n.wrapping_mul(7_919) % (30 * 24 * 3_600)) as i64;
        let at = now - time::Duration::seconds(seconds_ago);
        let action = if n.is_multiple_of(10) {
            AuditAction::ViewEntry
        } else {
            AuditAction::ViewRecord
        };
        AuditEvent {
            event_id: Uuid::now_v7().to_string(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: at.unix_timestamp(),
                nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
            }),
            source_service: "record-aggregator".to_owned(),
            actor: Some(Actor {
                user_id: self.actors[n.wrapping_mul(31) % ACTORS].clone(),
                role: Role::Nurse as i32,
                role_code: "R8001".to_owned(),
                organisation_code: format!("ORG{:03}", n % ORGANISATIONS),
                kind: ActorKind::User as i32,
                display_name: "A. Nurse".to_owned(),
                ..Default::default()
            }),
            action: action as i32,
            person_id: self.persons[n.wrapping_mul(104_729) % PERSONS].clone(),
            purpose: 1,
            purpose_of_use_code: "TREAT".to_owned(),
            outcome: AuditOutcome::Permitted as i32,
            categories: vec![2, 3, 5],
            entry_count: 12,
            description: "viewed care record".to_owned(),
            ..Default::default()
        }
    }
}

/// Runs the benchmark and returns the JSON figures.
pub async fn run(quick: bool) -> anyhow::Result<serde_json::Value> {
    let bulk_events = if quick { 1_000_000 } else { 10_000_000 };
    let appended_events = if quick { 100_000 } else { 300_000 };
    let queries = if quick { 2_000 } else { 10_000 };

    let environment = TestEnvironment::new().await;
    let identity = mcr_testkit_identity::start_in(environment.clone(), &[]).await;
    let identity_url = identity.identity_url();
    let overrides = [
        ("MCR_AUTH__IDENTITY_URL", identity_url.as_str()),
        // VerifyChain over the whole store takes longer than the default deadline.
        ("MCR_GRPC__REQUEST_TIMEOUT_MS", "600000"),
        ("MCR_AUDIT__CHECKPOINT_INTERVAL_MS", "1000"),
    ];
    // Started once to create the schema, the stream and the durable consumer.
    let service = mcr_testkit::spawn_service::<AuditService>(&environment, &overrides).await;
    service.stop().await?;

    let database = database(&environment).await?;
    let population = Population::new();
    let started = Instant::now();
    let head = bulk_load(&database, &population, bulk_events).await?;
    let load_seconds = started.elapsed().as_secs_f64();
    sqlx::query("ANALYZE audit_events")
        .execute(&database)
        .await?;
    println!(
        "audit: bulk-loaded {bulk_events} chained events in {load_seconds:.1} s ({:.0}/s, direct INSERT)",
        bulk_events as f64 / load_seconds
    );

    // Appends through the real path: publish while stopped, then drain.
    let nats = bus(&environment).await?;
    publish_backlog(&nats, &population, bulk_events, appended_events).await?;
    let target = (head.sequence as usize + appended_events) as i64;
    let service = mcr_testkit::spawn_service::<AuditService>(&environment, &overrides).await;
    let append_per_s = measure_drain(&database, head.sequence as i64, target).await?;
    println!(
        "  append through JetStream → chain → PostgreSQL → ack: {appended_events} events at {append_per_s:.0}/s"
    );

    let token = identity
        .token_for("bench.privacy.officer", "RQW", Role::PrivacyOfficer)
        .await;
    let mut client = AuditClient::new(service.channel().await);
    let mut latencies = Latencies::default();
    for n in 0..queries {
        let person = &population.persons[(n * 7_877) % PERSONS];
        let started = Instant::now();
        let answer = client
            .query_events(mcr_testkit_identity::with_token(
                QueryEventsRequest {
                    person_id: person.clone(),
                    page: Some(PageRequest {
                        page_size: 50,
                        page_token: String::new(),
                    }),
                    ..Default::default()
                },
                &token,
            ))
            .await?;
        latencies.record(started.elapsed());
        anyhow::ensure!(
            !answer.into_inner().events.is_empty(),
            "person {person} has events but the query returned none"
        );
    }
    println!(
        "  QueryEvents by person ({} stored, page of 50, incl. auditing the query): p50 {:.2} ms, p99 {:.2} ms",
        target,
        latencies.quantile_ms(0.5),
        latencies.quantile_ms(0.99)
    );

    let started = Instant::now();
    let verified = client
        .verify_chain(mcr_testkit_identity::with_token(
            VerifyChainRequest::default(),
            &token,
        ))
        .await?
        .into_inner();
    let verify_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(verified.ok, "the chain did not verify: {}", verified.detail);
    let verify_per_s = verified.events_verified as f64 / verify_seconds;
    println!(
        "  VerifyChain: {} events and {} checkpoints in {verify_seconds:.1} s ({verify_per_s:.0}/s)",
        verified.events_verified, verified.checkpoints_verified
    );
    service.stop().await?;
    Ok(json!({
        "bench": "audit",
        "events": verified.events_verified,
        "append_per_s": append_per_s.round(),
        "query_p99_ms": round3(latencies.quantile_ms(0.99)),
        "verify_per_s": verify_per_s.round(),
    }))
}

async fn database(environment: &TestEnvironment) -> anyhow::Result<PgPool> {
    let name = environment.database_name(&AuditService::SPEC);
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&format!("postgres://mcr:mcr@127.0.0.1:5432/{name}"))
        .await?)
}

async fn bus(environment: &TestEnvironment) -> anyhow::Result<NatsBus> {
    let settings = mcr_runtime::settings::NatsSettings {
        url: "nats://127.0.0.1:4222".to_owned(),
        namespace: environment.id.clone(),
        connect_timeout_ms: 2_000,
    };
    Ok(NatsBus::connect(&settings, "mcr-bench-audit").await?)
}

/// Inserts `count` chained events, two batches in flight.
async fn bulk_load(
    database: &PgPool,
    population: &Population,
    count: usize,
) -> anyhow::Result<Head> {
    let now = OffsetDateTime::now_utc();
    // Identity's sign-ins are audited too: chain after what is stored already.
    let stored: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT sequence, hash FROM audit_events ORDER BY sequence DESC LIMIT 1")
            .fetch_optional(database)
            .await?;
    let mut head = match stored {
        Some((sequence, hash)) => Head {
            sequence: u64::try_from(sequence)?,
            hash: chain::as_hash(&hash)
                .ok_or_else(|| anyhow::anyhow!("a stored hash is not 32 bytes"))?,
        },
        None => Head::EMPTY,
    };
    let mut in_flight = tokio::task::JoinSet::new();
    for start in (0..count).step_by(LOAD_BATCH) {
        let events: Vec<ValidEvent> = (start..(start + LOAD_BATCH).min(count))
            .map(|n| event::accept(&population.event(n, now).encode_to_vec(), now))
            .collect::<Result<_, _>>()
            .map_err(|reason| anyhow::anyhow!("a generated event is invalid: {reason}"))?;
        let links = chain::extend(head, events.iter().map(|valid| valid.canonical.as_slice()));
        if let Some(last) = links.last() {
            head = Head {
                sequence: last.sequence,
                hash: last.hash,
            };
        }
        if in_flight.len() >= 2
            && let Some(joined) = in_flight.join_next().await
        {
            joined??;
        }
        let pool = database.clone();
        in_flight.spawn(async move { insert(&pool, &events, &links).await });
    }
    while let Some(joined) = in_flight.join_next().await {
        joined??;
    }
    Ok(head)
}

async fn insert(
    database: &PgPool,
    events: &[ValidEvent],
    links: &[chain::Link],
) -> anyhow::Result<()> {
    let sequences: Vec<i64> = links.iter().map(|link| link.sequence as i64).collect();
    let columns: Vec<&event::Columns> = events.iter().map(|valid| &valid.columns).collect();
    sqlx::query(
        "INSERT INTO audit_events (sequence, event_id, occurred_at, action, outcome, person_id,
             actor_user_id, organisation_code, canonical, previous_hash, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::timestamptz[], $4::integer[],
             $5::integer[], $6::uuid[], $7::text[], $8::text[], $9::bytea[], $10::bytea[], $11::bytea[])",
    )
    .bind(sequences)
    .bind(columns.iter().map(|c| c.event_id).collect::<Vec<_>>())
    .bind(columns.iter().map(|c| c.occurred_at).collect::<Vec<_>>())
    .bind(columns.iter().map(|c| c.action).collect::<Vec<_>>())
    .bind(columns.iter().map(|c| c.outcome).collect::<Vec<_>>())
    .bind(columns.iter().map(|c| c.person_id).collect::<Vec<_>>())
    .bind(columns.iter().map(|c| c.actor_user_id.as_str()).collect::<Vec<_>>())
    .bind(columns.iter().map(|c| c.organisation_code.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|valid| valid.canonical.as_slice()).collect::<Vec<_>>())
    .bind(links.iter().map(|link| link.previous_hash.as_slice()).collect::<Vec<_>>())
    .bind(links.iter().map(|link| link.hash.as_slice()).collect::<Vec<_>>())
    .execute(database)
    .await?;
    Ok(())
}

/// Publishes `count` events to the audit stream, acks awaited in windows so
/// publishing is not the bottleneck.
async fn publish_backlog(
    nats: &NatsBus,
    population: &Population,
    first: usize,
    count: usize,
) -> anyhow::Result<()> {
    // The publisher ensures the stream exactly as services do.
    let publisher = AuditPublisher::new(nats.clone());
    let now = OffsetDateTime::now_utc();
    publisher.publish(&population.event(first, now)).await?;
    let started = Instant::now();
    let mut acknowledgements = Vec::with_capacity(2_000);
    for n in (first + 1)..(first + count) {
        let event = population.event(n, now);
        let subject = subject_for(AuditAction::ViewRecord).unwrap_or_default();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.as_str());
        acknowledgements.push(
            nats.jetstream()
                .publish_with_headers(
                    nats.subject(&subject),
                    headers,
                    event.encode_to_vec().into(),
                )
                .await?,
        );
        if acknowledgements.len() == 2_000 {
            for acknowledgement in acknowledgements.drain(..) {
                acknowledgement.await?;
            }
        }
    }
    for acknowledgement in acknowledgements {
        acknowledgement.await?;
    }
    println!(
        "  published {count} events to JetStream in {:.1} s while audit was stopped",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Appends per second from the first event stored after `base` until `target`.
async fn measure_drain(database: &PgPool, base: i64, target: i64) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, i64)> = None;
    loop {
        let stored: i64 = sqlx::query_scalar("SELECT coalesce(max(sequence), 0) FROM audit_events")
            .fetch_one(database)
            .await?;
        let now = Instant::now();
        if first.is_none() && stored > base {
            first = Some((now, stored));
        }
        if stored >= target
            && let Some((started, at_start)) = first
        {
            let seconds = now.duration_since(started).as_secs_f64().max(0.001);
            return Ok((stored - at_start) as f64 / seconds);
        }
        anyhow::ensure!(
            now < deadline,
            "only {stored} of {target} events stored in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
