//! `view`: GetCareRecord for a person with 200 entries, as a client sees it
//! over loopback — token check, consent Decide, the durable audit publish
//! and the view — from the Redis cache and uncached (the view version
//! bumped before each read, as an update would), and cached views/s with
//! many clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcr_connector::builder::RecordUpdateBuilder;
use mcr_proto::common::v1::{Category, PageRequest, PersonReference, Purpose, Role};
use mcr_proto::records::v1::GetCareRecordRequest;
use mcr_proto::records::v1::record_aggregator_client::RecordAggregatorClient;
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::{Platform, local_person};
use serde_json::json;
use tonic::transport::Channel;

use crate::ingest::aggregator_database;
use crate::stats::{Latencies, round3};

const ENTRIES: usize = 200;
const CLIENTS: usize = 32;

pub async fn run(quick: bool) -> anyhow::Result<serde_json::Value> {
    let (cached_reads, uncached_reads, throughput_seconds) = if quick {
        (1_000, 200, 5)
    } else {
        (5_000, 1_000, 20)
    };
    println!("view: starting the platform in-process…");
    let platform = Platform::start().await;
    let updates: Vec<_> = (0..ENTRIES)
        .map(|index| {
            RecordUpdateBuilder::upsert("RQW", "EPR", Category::TestResults)
                .patient("EPR", "BENCH-1")
                .entry(&format!("obs-{index}"), 1)
                .effective_time(prost_types::Timestamp {
                    seconds: 1_735_689_600 + index as i64 * 3_600,
                    nanos: 0,
                })
                .resource(&json!({
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": format!("{}-1", 1000 + index), "display": "Haemoglobin"}]},
                    "valueQuantity": {"value": 120 + index % 40, "unit": "g/L"}
                }))
                .display_summary(&format!("Haemoglobin {} g/L", 120 + index % 40))
                .demographics(mcr_proto::patient_index::v1::Demographics {
                    nhs_number: "9434765919".to_owned(),
                    birth_date: "1970-01-01".to_owned(),
                    name: Some(mcr_proto::common::v1::HumanName {
                        family: "Bench".to_owned(),
                        given: vec!["Viewer".to_owned()],
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .build()
        })
        .collect::<Result<_, _>>()?;
    let report = platform.publisher().publish_all(updates).await;
    anyhow::ensure!(report.failures.is_empty(), "publishing failed");
    platform.wait_for_ingest(Duration::from_secs(60)).await;
    let clinician = platform
        .professional("bench.viewer", "RQW", Role::ClinicalPractitioner)
        .await;
    let person = local_person("RQW", "EPR", "BENCH-1");
    platform.allow(&person, "RQW", &clinician).await;
    let client = platform.records().await;
    let view = read(&client, &clinician, &person).await?;
    anyhow::ensure!(
        view == ENTRIES,
        "the view shows {view} entries, not {ENTRIES}"
    );

    let mut cached = Latencies::default();
    for _ in 0..cached_reads {
        let started = Instant::now();
        read(&client, &clinician, &person).await?;
        cached.record(started.elapsed());
    }
    println!(
        "view: cached p50 {:.2} ms, p99 {:.2} ms ({cached_reads} reads, one client)",
        cached.quantile_ms(0.5),
        cached.quantile_ms(0.99)
    );

    let pool = aggregator_database(&platform).await?;
    let mut uncached = Latencies::default();
    for _ in 0..uncached_reads {
        sqlx::query("UPDATE person_views SET view_version = view_version + 1")
            .execute(&pool)
            .await?;
        let started = Instant::now();
        read(&client, &clinician, &person).await?;
        uncached.record(started.elapsed());
    }
    println!(
        "view: uncached p50 {:.2} ms, p99 {:.2} ms ({uncached_reads} reads after a version bump)",
        uncached.quantile_ms(0.5),
        uncached.quantile_ms(0.99)
    );

    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(throughput_seconds);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, token, person, done) = (
                client.clone(),
                clinician.clone(),
                person.clone(),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    read(&client, &token, &person).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    let started = Instant::now();
    for worker in workers {
        worker.await??;
    }
    let views_per_s = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("view: {views_per_s:.0} cached views/s with {CLIENTS} clients");
    Ok(json!({
        "bench": "view",
        "entries": ENTRIES,
        "cached_p50_ms": round3(cached.quantile_ms(0.5)),
        "cached_p99_ms": round3(cached.quantile_ms(0.99)),
        "uncached_p99_ms": round3(uncached.quantile_ms(0.99)),
        "views_per_s": round3(views_per_s),
    }))
}

/// One full view (every entry on one page); returns how many entries it showed.
async fn read(
    client: &RecordAggregatorClient<Channel>,
    token: &str,
    person: &PersonReference,
) -> anyhow::Result<usize> {
    let response = client
        .clone()
        .get_care_record(with_token(
            GetCareRecordRequest {
                person: Some(person.clone()),
                purpose: Purpose::DirectCare as i32,
                page: Some(PageRequest {
                    page_size: ENTRIES as u32,
                    page_token: String::new(),
                }),
                ..Default::default()
            },
            token,
        ))
        .await?;
    Ok(response.into_inner().entries.len())
}
