//! `load`: mixed clinical traffic while ingest runs, for a fixed time.
//!
//! The whole platform runs in this process (identity, patient-index,
//! consent, the aggregator and audit) on the local PostgreSQL, NATS and
//! Redis. Seeded first (not timed): `VIEWED` persons with `ENTRIES` entries
//! each, each allowed to one clinician, and `INGESTED` other persons whose
//! records ingest then grows. Then, for `--seconds`, `CLIENTS` clients each
//! loop over a random mix — 80% GetCareRecord (every entry on one page),
//! 15% SearchPersons (family name and date of birth), 5% consent changes
//! (RecordPermissionToView, which also invalidates that person's cached
//! view) — while a connector publishes new entries at `INGEST_RATE`/s.
//! Ingest throughput is what the aggregator committed in the window.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcr_connector::builder::RecordUpdateBuilder;
use mcr_proto::common::v1::{Category, HumanName, PageRequest, PersonReference, Purpose, Role};
use mcr_proto::consent::v1::{PermissionBasis, RecordPermissionToViewRequest};
use mcr_proto::patient_index::v1::{
    DemographicQuery, Demographics, SearchPersonsRequest, search_persons_request::Query,
};
use mcr_proto::records::v1::{GetCareRecordRequest, RecordUpdate};
use mcr_proto::timestamps::timestamp;
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::{Options, Platform, local_person};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::OffsetDateTime;

use crate::ingest::aggregator_database;
use crate::stats::{Latencies, round3};

const VIEWED: u32 = 50;
const ENTRIES: u32 = 200;
const INGESTED: u32 = 200;
const CLIENTS: usize = 32;
const INGEST_RATE: u64 = 5_000;
const ORGANISATION: &str = "RQW";

const SURNAMES: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Wright",
];
const GIVEN: &[&str] = &["Olivia", "George", "Amelia", "Noah", "Isla", "Leo", "Ava"];

#[derive(Debug, Clone, Copy)]
enum Rpc {
    View,
    Search,
    Consent,
}

const RPCS: [Rpc; 3] = [Rpc::View, Rpc::Search, Rpc::Consent];

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Self::View => "GetCareRecord",
            Self::Search => "SearchPersons",
            Self::Consent => "RecordPermissionToView",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One client's measurements: latencies and errors per RPC.
#[derive(Debug, Default)]
struct Tally {
    samples: [Vec<Duration>; 3],
    errors: [u64; 3],
    first_error: Option<String>,
}

pub async fn run(quick: bool, seconds: Option<u64>) -> anyhow::Result<serde_json::Value> {
    let seconds = seconds.unwrap_or(if quick { 20 } else { 60 });
    println!("load: starting the platform in-process (with audit)…");
    let platform = Platform::start_with(Options {
        with_audit: true,
        ..Options::default()
    })
    .await;
    let publisher = platform.publisher().with_max_in_flight(2_048);

    println!(
        "load: seeding {VIEWED} persons × {ENTRIES} entries and {INGESTED} persons for ingest…"
    );
    let mut seed: Vec<RecordUpdate> = Vec::new();
    for number in 0..VIEWED {
        for entry in 0..ENTRIES {
            seed.push(entry_update(number, entry)?);
        }
    }
    for number in VIEWED..VIEWED + INGESTED {
        seed.push(entry_update(number, 0)?);
    }
    let report = publisher.publish_all(seed).await;
    anyhow::ensure!(
        report.failures.is_empty(),
        "seeding failed: {:?}",
        report.failures.first()
    );
    platform.wait_for_ingest(Duration::from_secs(600)).await;
    let pool = aggregator_database(&platform).await?;
    let seeded: i64 = sqlx::query_scalar("SELECT count(*) FROM entries")
        .fetch_one(&pool)
        .await?;
    let expected = i64::from(VIEWED * ENTRIES + INGESTED);
    anyhow::ensure!(
        seeded == expected,
        "{seeded} of {expected} seeded entries were committed"
    );
    let clinician = platform
        .professional("load.clinician", ORGANISATION, Role::ClinicalPractitioner)
        .await;
    allow_all(&platform, &clinician).await;

    let records = platform.records().await;
    let index = platform.index_client().await;
    let consent = platform.consent_client().await;
    let stored_before: i64 = sqlx::query_scalar("SELECT count(*) FROM entries")
        .fetch_one(&pool)
        .await?;

    println!(
        "load: {CLIENTS} clients, 80% views / 15% searches / 5% consent changes, ingest at {INGEST_RATE}/s, {seconds} s…"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let ingesting = {
        let (publisher, stop) = (publisher.clone(), Arc::clone(&stop));
        tokio::spawn(async move { ingest(publisher, stop).await })
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (records, index, consent, token) = (
                records.clone(),
                index.clone(),
                consent.clone(),
                clinician.clone(),
            );
            tokio::spawn(async move {
                let mut random = StdRng::seed_from_u64(client as u64);
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let roll = random.gen_range(0..100);
                    let number = random.gen_range(0..VIEWED);
                    let rpc = match roll {
                        0..80 => Rpc::View,
                        80..95 => Rpc::Search,
                        _ => Rpc::Consent,
                    };
                    let begun = Instant::now();
                    let outcome = match rpc {
                        Rpc::View => records
                            .clone()
                            .get_care_record(with_token(view_request(number), &token))
                            .await
                            .map(|response| {
                                response.into_inner().entries.len() == ENTRIES as usize
                            }),
                        Rpc::Search => index
                            .clone()
                            .search_persons(with_token(search_request(number), &token))
                            .await
                            .map(|response| !response.into_inner().candidates.is_empty()),
                        Rpc::Consent => consent
                            .clone()
                            .record_permission_to_view(with_token(
                                permission_request(number),
                                &token,
                            ))
                            .await
                            .map(|_| true),
                    };
                    let elapsed = begun.elapsed();
                    match outcome {
                        Ok(true) => tally.samples[rpc.index()].push(elapsed),
                        Ok(false) => {
                            tally.errors[rpc.index()] += 1;
                            tally
                                .first_error
                                .get_or_insert_with(|| format!("{}: wrong answer", rpc.name()));
                        }
                        Err(status) => {
                            tally.errors[rpc.index()] += 1;
                            tally
                                .first_error
                                .get_or_insert_with(|| format!("{}: {status}", rpc.name()));
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut latencies: [Latencies; 3] = Default::default();
    let mut errors = [0u64; 3];
    let mut first_error = None;
    for client in clients {
        let tally = client.await?;
        for rpc in RPCS {
            let index = rpc.index();
            for sample in &tally.samples[index] {
                latencies[index].record(*sample);
            }
            errors[index] += tally.errors[index];
        }
        if first_error.is_none() {
            first_error = tally.first_error;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (published, publish_failures) = ingesting.await?;
    let stored_after: i64 = sqlx::query_scalar("SELECT count(*) FROM entries")
        .fetch_one(&pool)
        .await?;
    let ingest_per_s = (stored_after - stored_before) as f64 / elapsed;

    println!("load: over {elapsed:.1} s");
    for rpc in RPCS {
        let measured = &latencies[rpc.index()];
        println!(
            "load: {:<24} {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p999 {:>7.2} ms  errors {}",
            rpc.name(),
            measured.count() as f64 / elapsed,
            measured.quantile_ms(0.5),
            measured.quantile_ms(0.99),
            measured.quantile_ms(0.999),
            errors[rpc.index()],
        );
    }
    println!(
        "load: ingest {ingest_per_s:.0} updates/s committed ({published} published, {publish_failures} not acknowledged; target {INGEST_RATE}/s)"
    );
    if let Some(first) = &first_error {
        println!("load: first error: {first}");
    }
    let views = &latencies[Rpc::View.index()];
    let errors = errors.iter().sum::<u64>() + publish_failures;
    Ok(json!({
        "bench": "load",
        "seconds": round3(elapsed),
        "views_per_s": round3(views.count() as f64 / elapsed),
        "view_p99_ms": round3(views.quantile_ms(0.99)),
        "view_p999_ms": round3(views.quantile_ms(0.999)),
        "ingest_per_s": round3(ingest_per_s),
        "errors": errors,
    }))
}

/// Publishes new entries for the ingest persons at `INGEST_RATE`/s (in
/// 10 ms ticks) until `stop`; returns (published, not acknowledged).
async fn ingest(
    publisher: mcr_connector::publisher::Publisher,
    stop: Arc<AtomicBool>,
) -> (u64, u64) {
    let per_tick = INGEST_RATE / 100;
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut published, mut failed) = (0u64, 0u64);
    let mut next = 0u64;
    while !stop.load(Ordering::Relaxed) {
        interval.tick().await;
        let batch: Vec<RecordUpdate> = (0..per_tick)
            .filter_map(|_| {
                next += 1;
                let number = VIEWED + (next % u64::from(INGESTED)) as u32;
                let entry = 1 + (next / u64::from(INGESTED)) as u32;
                entry_update(number, entry).ok()
            })
            .collect();
        let report = publisher.publish_all(batch).await;
        published += report.acknowledged();
        failed += report.failures.len() as u64;
    }
    (published, failed)
}

/// An open care relationship of the organisation and the person's
/// permission to view, for every viewed person.
async fn allow_all(platform: &Platform, clinician: &str) {
    for number in 0..VIEWED {
        platform
            .allow(&person(number), ORGANISATION, clinician)
            .await;
    }
}

fn person(number: u32) -> PersonReference {
    local_person(ORGANISATION, "EPR", &format!("LOAD-{number}"))
}

fn birth_date(number: u32) -> String {
    let date = time::macros::date!(1940 - 01 - 01) + time::Duration::days(i64::from(number) * 97);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn entry_update(number: u32, entry: u32) -> anyhow::Result<RecordUpdate> {
    let value = 100 + entry % 60;
    Ok(
        RecordUpdateBuilder::upsert(ORGANISATION, "EPR", Category::TestResults)
            .patient("EPR", &format!("LOAD-{number}"))
            .entry(&format!("p{number}-obs-{entry}"), 1)
            .effective_time(prost_types::Timestamp {
                seconds: 1_735_689_600 + i64::from(entry) * 600,
                nanos: 0,
            })
            .resource(&json!({
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Haemoglobin"}]},
                "valueQuantity": {"value": value, "unit": "g/L"}
            }))
            .display_summary(&format!("Haemoglobin {value} g/L"))
            .demographics(Demographics {
                nhs_number: mcr_connector::nhs_number::from_stem(500_000_000 + number * 7)
                    .unwrap_or_default(),
                birth_date: birth_date(number),
                name: Some(HumanName {
                    family: SURNAMES[number as usize % SURNAMES.len()].to_owned(),
                    given: vec![GIVEN[number as usize % GIVEN.len()].to_owned()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .build()?,
    )
}

fn view_request(number: u32) -> GetCareRecordRequest {
    GetCareRecordRequest {
        person: Some(person(number)),
        purpose: Purpose::DirectCare as i32,
        page: Some(PageRequest {
            page_size: ENTRIES,
            page_token: String::new(),
        }),
        ..Default::default()
    }
}

fn search_request(number: u32) -> SearchPersonsRequest {
    SearchPersonsRequest {
        query: Some(Query::Demographics(DemographicQuery {
            family_name: SURNAMES[number as usize % SURNAMES.len()].to_owned(),
            birth_date: birth_date(number),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn permission_request(number: u32) -> RecordPermissionToViewRequest {
    let now = OffsetDateTime::now_utc();
    RecordPermissionToViewRequest {
        person: Some(person(number)),
        organisation_code: ORGANISATION.to_owned(),
        user_id: String::new(),
        basis: PermissionBasis::PersonConsented as i32,
        best_interests: None,
        episode_reference: String::new(),
        categories: Vec::new(),
        expires_at: Some(timestamp(now + time::Duration::days(1))),
        note: String::new(),
    }
}
