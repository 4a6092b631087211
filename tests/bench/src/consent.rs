//! `consent`: Decide latency and throughput with N persons holding consent
//! facts (default 1,000,000; 100,000 with --quick).
//!
//! The facts are bulk-loaded with SQL (`generate_series`) straight into
//! consent's own database after the service has migrated it, and then each
//! person's Decide snapshot is built with the service's own SQL function
//! (`consent_decision_facts`) — loading a million persons through the RPCs
//! would measure patient-index and the outbox, not Decide. Each person gets
//! a care relationship and a permission to view for one of 20
//! organisations; every 10th a MENTAL_HEALTH restriction, every 50th an
//! opt-out. Fact bodies are left empty: Decide reads only the snapshot.
//! Decide is then called over gRPC, as the record-aggregator calls it
//! (service token with consent:decide and the viewer as actor), on a mix of
//! persons: 80% with a relationship to the viewer's organisation, 10% of
//! another organisation, 10% unknown ids.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{Actor, ActorKind, PersonReference, Purpose, Role};
use mcr_proto::consent::v1::consent_client::ConsentClient;
use mcr_proto::consent::v1::{DecideRequest, Decision};
use mcr_runtime::McrService;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tonic::transport::Channel;

use crate::stats::{Latencies, round3};

const ORGANISATIONS: i64 = 20;

const LOAD_SQL: &str = "
INSERT INTO care_relationship (id, person_id, organisation_code, source_system, source_reference,
    start_time, end_time, body)
  SELECT md5('relationship-' || i)::uuid, md5('person-' || i)::uuid, 'BENCH' || (i % 20), 'PAS',
         'ADM-' || i, now() - interval '30 days', NULL, ''::bytea
  FROM generate_series(1, $1) AS i;
INSERT INTO permission (id, person_id, organisation_code, user_id, best_interests, categories,
    valid_from, expires_at, body)
  SELECT md5('permission-' || i)::uuid, md5('person-' || i)::uuid, 'BENCH' || (i % 20), '', false,
         '{}', now() - interval '1 day', now() + interval '30 days', ''::bytea
  FROM generate_series(1, $1) AS i;
INSERT INTO restriction (id, person_id, category, source_organisation_code, entry_ids,
    viewer_organisation_codes, viewer_roles, viewer_user_ids, expires_at, body)
  SELECT md5('restriction-' || i)::uuid, md5('person-' || i)::uuid, 9, '', '{}', '{}', '{}', '{}',
         NULL, ''::bytea
  FROM generate_series(10, $1, 10) AS i;
INSERT INTO opt_out (id, person_id, effective_from, body)
  SELECT md5('opt-out-' || i)::uuid, md5('person-' || i)::uuid, now() - interval '3 days', ''::bytea
  FROM generate_series(50, $1, 50) AS i;
";

/// After the facts (and fresh planner statistics): each person's row with
/// the snapshot Decide reads, built by the same SQL function the service
/// calls on every change (`consent_decision_facts_of`).
const PERSONS_SQL: &str = "
INSERT INTO consent_person (person_id, consent_version, updated_at, decision_facts)
  SELECT rebuilt.person_id, 3, now(), rebuilt.facts
  FROM consent_decision_facts_of(
         ARRAY(SELECT md5('person-' || i)::uuid FROM generate_series(1, $1) AS i)) AS rebuilt
";

struct Target {
    person_id: String,
    organisation_code: String,
}

fn request(target: &Target, token: &str) -> anyhow::Result<tonic::Request<DecideRequest>> {
    let mut request = tonic::Request::new(DecideRequest {
        actor: Some(Actor {
            user_id: "0190a5f0-0000-7000-8000-000000000001".to_owned(),
            role_profile_id: "0190a5f0-0000-7000-8000-000000000002".to_owned(),
            role: Role::Nurse as i32,
            organisation_code: target.organisation_code.clone(),
            kind: ActorKind::User as i32,
            ..Actor::default()
        }),
        person: Some(PersonReference {
            reference: Some(Reference::PersonId(target.person_id.clone())),
        }),
        purpose: Purpose::DirectCare as i32,
        requested_categories: vec![],
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// Runs the benchmark and returns the JSON figures.
pub async fn run(quick: bool, persons: Option<u64>) -> anyhow::Result<serde_json::Value> {
    let persons = persons.unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let environment = mcr_testkit::TestEnvironment::new().await;
    let identity = mcr_testkit_identity::start_in(
        environment.clone(),
        &[("MCR_IDENTITY__SERVICE_TOKEN_TTL_SECONDS", "7200")],
    )
    .await;
    let identity_url = identity.identity_url();
    let service = mcr_testkit::spawn_service::<mcr_consent::ConsentService>(
        &environment,
        &[
            ("MCR_AUTH__IDENTITY_URL", identity_url.as_str()),
            ("MCR_DATABASE__MAX_CONNECTIONS", "8"),
        ],
    )
    .await;
    let token = identity
        .service_token("bench-aggregator", "MCRAGG", &["consent:decide"])
        .await;

    let database_name = environment.database_name(&mcr_consent::ConsentService::SPEC);
    let database = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::postgres::PgConnectOptions::new()
                .host("127.0.0.1")
                .username("mcr")
                .password("mcr")
                .database(&database_name),
        )
        .await?;
    let load_started = Instant::now();
    let persons_bound = i64::try_from(persons)?;
    for statement in LOAD_SQL.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .bind(persons_bound)
            .execute(&database)
            .await?;
    }
    sqlx::raw_sql(
        "ANALYZE care_relationship; ANALYZE permission; ANALYZE restriction; ANALYZE opt_out",
    )
    .execute(&database)
    .await?;
    sqlx::query(PERSONS_SQL)
        .bind(persons_bound)
        .execute(&database)
        .await?;
    sqlx::raw_sql("ANALYZE consent_person")
        .execute(&database)
        .await?;
    let load_seconds = load_started.elapsed().as_secs_f64();

    // Targets: persons of the viewer's organisation, of another, unknown.
    let samples: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT person_id, organisation_code FROM care_relationship ORDER BY random() LIMIT 20000",
    )
    .fetch_all(&database)
    .await?;
    let mut rng = StdRng::seed_from_u64(5);
    let targets: Vec<Target> = samples
        .into_iter()
        .map(|(person_id, organisation_code)| {
            let roll: f64 = rng.r#gen();
            if roll < 0.8 {
                Target {
                    person_id: person_id.to_string(),
                    organisation_code,
                }
            } else if roll < 0.9 {
                let other = format!("BENCH{}", rng.gen_range(0..ORGANISATIONS));
                Target {
                    person_id: person_id.to_string(),
                    organisation_code: other,
                }
            } else {
                Target {
                    person_id: uuid::Uuid::new_v4().to_string(),
                    organisation_code,
                }
            }
        })
        .collect();
    let targets = Arc::new(targets);

    let endpoint = service.grpc_endpoint();
    let mut client = ConsentClient::new(mcr_testkit::grpc::connect(&endpoint).await);
    let mut permits = 0_usize;
    for target in targets.iter().take(1_000) {
        let response = client.decide(request(target, &token)?).await?.into_inner();
        if response.decision == Decision::Permit as i32 {
            permits += 1;
        }
    }
    anyhow::ensure!(
        permits > 500,
        "expected most warm-up decisions to permit, got {permits}/1000"
    );

    // Latency: one caller at a time (the time of one decision).
    let sequential_calls = if quick { 5_000 } else { 20_000 };
    let mut latencies = Latencies::default();
    for index in 0..sequential_calls {
        let target = &targets[index % targets.len()];
        let started = Instant::now();
        client.decide(request(target, &token)?).await?;
        latencies.record(started.elapsed());
    }

    // Throughput: many callers at once.
    let window = if quick {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    };
    let connections = 4;
    let in_flight_per_connection = 4;
    let deadline = Instant::now() + window;
    let mut workers = tokio::task::JoinSet::new();
    for connection in 0..connections {
        let channel: Channel = mcr_testkit::grpc::connect(&endpoint).await;
        for slot in 0..in_flight_per_connection {
            let mut worker_client = ConsentClient::new(channel.clone());
            let targets = Arc::clone(&targets);
            let token = token.clone();
            workers.spawn(async move {
                let mut index = connection * in_flight_per_connection + slot;
                let mut loaded = Vec::new();
                while Instant::now() < deadline {
                    let target = &targets[index % targets.len()];
                    let started = Instant::now();
                    worker_client.decide(request(target, &token)?).await?;
                    loaded.push(started.elapsed());
                    index += 7;
                }
                Ok::<Vec<Duration>, anyhow::Error>(loaded)
            });
        }
    }
    let started = Instant::now();
    let mut under_load = Latencies::default();
    while let Some(joined) = workers.join_next().await {
        for latency in joined?? {
            under_load.record(latency);
        }
    }
    let decide_per_s =
        under_load.count() as f64 / started.elapsed().as_secs_f64().max(window.as_secs_f64());
    let (within_2ms, served) = server_side_share_within_2ms();
    service.stop().await?;

    println!("consent: Decide over gRPC with {persons} persons holding consent facts");
    println!("  bulk load (SQL generate_series into consent's database): {load_seconds:.0} s");
    println!(
        "  sequential, one caller: {} decisions, p50 {:.3} ms, p99 {:.3} ms",
        latencies.count(),
        latencies.quantile_ms(0.5),
        latencies.quantile_ms(0.99)
    );
    println!(
        "  throughput: {connections} connections x {in_flight_per_connection} in flight for {window:?}: {decide_per_s:.0} decisions/s (p50 {:.2} ms, p99 {:.2} ms under that load)",
        under_load.quantile_ms(0.5),
        under_load.quantile_ms(0.99)
    );
    if served > 0 {
        println!(
            "  server-side (the service's own mcr_rpc_server_duration_seconds histogram): {within_2ms} of {served} Decides ({:.2}%) served within 2 ms",
            within_2ms as f64 * 100.0 / served as f64
        );
    }
    Ok(json!({
        "bench": "consent",
        "persons": persons,
        "decide_p50_ms": round3(latencies.quantile_ms(0.5)),
        "decide_p99_ms": round3(latencies.quantile_ms(0.99)),
        "decide_per_s": decide_per_s.round(),
    }))
}

/// From the in-process service's Prometheus histogram: how many Decide calls
/// were served within 2 ms, and how many in all (the buckets are too coarse
/// for a server-side p99, but 2 ms is one of their bounds).
fn server_side_share_within_2ms() -> (u64, u64) {
    let rendered = mcr_runtime::admin::metrics_handle().render();
    let value = |line: &str| {
        line.rsplit(' ')
            .next()
            .and_then(|number| number.parse::<f64>().ok())
            .map(|number| number as u64)
    };
    let decide_lines = rendered.lines().filter(|line| {
        line.starts_with("mcr_rpc_server_duration_seconds") && line.contains("Decide")
    });
    let mut within = 0;
    let mut total = 0;
    for line in decide_lines {
        if line.contains("le=\"0.002\"") {
            within = value(line).unwrap_or(0);
        } else if line.starts_with("mcr_rpc_server_duration_seconds_count") {
            total = value(line).unwrap_or(0);
        }
    }
    (within, total)
}
