//! `patient-index`: bulk registration throughput (RegisterPersons), single
//! RegisterPerson, demographic search and NHS Number lookup latency over N
//! synthetic persons (default 1,000,000).

use std::sync::Arc;
use std::time::Instant;

use mcr_proto::common::v1::{Address, HumanName};
use mcr_proto::patient_index::v1::{
    DemographicQuery, Demographics, MatchGrade, NhsNumberVerificationStatus, SearchPersonsRequest,
    Sex, search_persons_request::Query,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::index_client;
use crate::stats::{Latencies, round3};

const GIVEN: &[&str] = &[
    "Oliver",
    "George",
    "Harry",
    "Noah",
    "Jack",
    "Leo",
    "Arthur",
    "Muhammad",
    "Oscar",
    "Charlie",
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Ivy",
    "Freya",
    "Lily",
    "Florence",
    "Mia",
    "Willow",
    "Grace",
    "Sophie",
    "Ella",
    "Evie",
    "Aisha",
    "Priya",
    "Chen",
    "Tomasz",
    "Agnieszka",
    "Kwame",
    "Ngozi",
    "Sean",
    "Niamh",
    "Fatima",
    "Yusuf",
    "Zara",
    "Hannah",
    "James",
    "William",
    "Thomas",
    "Emily",
    "Jessica",
    "Daniel",
    "Samuel",
    "Joseph",
    "Lucy",
    "Chloe",
    "Ruby",
    "Alfie",
];
const FAMILY_STEMS: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Patel", "Khan", "Ahmed", "Nowak", "Okafor", "Mensah", "Murphy", "Kelly",
    "Singh", "Ali", "Hughes", "Edwards", "Hill", "Moore", "Lewis",
];
const FAMILY_SUFFIXES: &[&str] = &[
    "", "son", "ley", "ton", "field", "wood", "ford", "er", "man", "worth", "by", "ham",
];
/// Letters a UK inward code may end with (never C, I, K, M, O or V).
const INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
const AREAS: &[&str] = &[
    "CM", "SG", "AL", "EN", "WD", "HP", "LU", "HA", "N", "E", "RM", "IG",
];

/// A valid NHS Number: nine digits and their Modulus 11 check digit.
fn nhs_number(rng: &mut StdRng) -> String {
    loop {
        let digits: Vec<u32> = (0..9)
            .map(|index| {
                if index == 0 {
                    rng.gen_range(4..=9)
                } else {
                    rng.gen_range(0..=9)
                }
            })
            .collect();
        let sum: u32 = digits
            .iter()
            .zip((2..=10).rev())
            .map(|(digit, weight)| digit * weight)
            .sum();
        let check = (11 - sum % 11) % 11;
        if check != 10 {
            return digits
                .iter()
                .chain(std::iter::once(&check))
                .map(u32::to_string)
                .collect();
        }
    }
}

fn person(rng: &mut StdRng) -> Demographics {
    let family = format!(
        "{}{}",
        FAMILY_STEMS[rng.gen_range(0..FAMILY_STEMS.len())],
        FAMILY_SUFFIXES[rng.gen_range(0..FAMILY_SUFFIXES.len())]
    );
    let postcode = format!(
        "{}{} {}{}{}",
        AREAS[rng.gen_range(0..AREAS.len())],
        rng.gen_range(1..=20),
        rng.gen_range(1..=9),
        char::from(INWARD_LETTERS[rng.gen_range(0..INWARD_LETTERS.len())]),
        char::from(INWARD_LETTERS[rng.gen_range(0..INWARD_LETTERS.len())]),
    );
    let with_nhs_number = rng.gen_bool(0.8);
    Demographics {
        nhs_number: if with_nhs_number {
            nhs_number(rng)
        } else {
            String::new()
        },
        nhs_number_verification_status: if with_nhs_number {
            NhsNumberVerificationStatus::PresentAndVerified as i32
        } else {
            0
        },
        name: Some(HumanName {
            prefix: String::new(),
            given: vec![GIVEN[rng.gen_range(0..GIVEN.len())].to_owned()],
            family,
            suffix: String::new(),
        }),
        birth_date: format!(
            "{}-{:02}-{:02}",
            rng.gen_range(1930..2024),
            rng.gen_range(1..=12),
            rng.gen_range(1..=28)
        ),
        sex: if rng.gen_bool(0.5) {
            Sex::Female
        } else {
            Sex::Male
        } as i32,
        address: Some(Address {
            lines: vec![format!("{} High Street", rng.gen_range(1..400))],
            city: "Harlow".to_owned(),
            district: String::new(),
            postcode,
            country: "GB".to_owned(),
        }),
        ..Demographics::default()
    }
}

/// Concurrent bulk loaders.
const LOADERS: u64 = 4;

/// A person born in a year of `loader`'s share.
fn person_of_share(rng: &mut StdRng, loader: u64) -> Demographics {
    loop {
        let candidate = person(rng);
        let year: u64 = candidate.birth_date[..4].parse().unwrap_or_default();
        if year % LOADERS == loader {
            return candidate;
        }
    }
}

/// Runs the benchmark and returns the JSON figures.
pub async fn run(quick: bool, persons: Option<u64>) -> anyhow::Result<serde_json::Value> {
    let persons = persons.unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let index = Arc::new(index_client::start().await);
    // A provider's list loaded through RegisterPersons: a few loaders at
    // once, each sending full batches of its own share of birth years
    // (registrations lock their date of birth, so loaders sharing dates
    // would mostly wait for each other).
    let batch_size: u64 = 500;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let statistics = {
        let index = Arc::clone(&index);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                if let Err(error) = index.analyze().await {
                    eprintln!("analyze failed: {error}");
                }
            }
        })
    };
    for loader in 0..LOADERS {
        let index = Arc::clone(&index);
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(loader);
            let mut first = loader * batch_size;
            while first < persons {
                let batch = (first..(first + batch_size).min(persons))
                    .map(|number| (format!("P{number}"), person_of_share(&mut rng, loader)))
                    .collect();
                let results = index.register_batch("BENCH", batch).await?;
                anyhow::ensure!(!results.is_empty(), "a batch registered nobody");
                first += LOADERS * batch_size;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    statistics.abort();
    let register_seconds = started.elapsed().as_secs_f64();
    index.vacuum().await?;
    let register_per_s = persons as f64 / register_seconds;

    // Queries for persons that exist: replay the generators.
    let samples = if quick { 1_000 } else { 2_000 };
    let mut rng = StdRng::seed_from_u64(0);
    let known: Vec<Demographics> = (0..samples).map(|_| person_of_share(&mut rng, 0)).collect();
    let mut search = Latencies::default();
    let mut nhs_lookup = Latencies::default();
    let mut client = index.client.clone();
    for demographics in &known {
        let name = demographics.name.clone().unwrap_or_default();
        let query = SearchPersonsRequest {
            query: Some(Query::Demographics(DemographicQuery {
                family_name: name.family.clone(),
                given_name: name.given.first().cloned().unwrap_or_default(),
                birth_date: demographics.birth_date.clone(),
                postcode: demographics
                    .address
                    .as_ref()
                    .map(|address| address.postcode.clone())
                    .unwrap_or_default(),
                country: String::new(),
                sex: 0,
            })),
            minimum_grade: MatchGrade::Probable as i32,
            page: None,
        };
        search.record(timed_search(&mut client, &index, query, "a registered person").await?);
        if !demographics.nhs_number.is_empty() {
            let query = SearchPersonsRequest {
                query: Some(Query::NhsNumber(demographics.nhs_number.clone())),
                minimum_grade: 0,
                page: None,
            };
            nhs_lookup
                .record(timed_search(&mut client, &index, query, "a registered NHS Number").await?);
        }
    }
    // One provider registering newcomers one at a time, as connectors do.
    let mut single = Latencies::default();
    let mut rng = StdRng::seed_from_u64(u64::MAX);
    for number in 0..samples {
        let begun = Instant::now();
        index
            .register("BENCH", &format!("S{number}"), person(&mut rng))
            .await?;
        single.record(begun.elapsed());
    }
    println!(
        "patient-index: {persons} synthetic persons loaded through RegisterPersons ({LOADERS} loaders, batches of {batch_size})"
    );
    println!("  bulk registration: {register_per_s:.0} persons/s ({register_seconds:.0} s)");
    println!(
        "  single RegisterPerson: {} calls, p50 {:.2} ms, p99 {:.2} ms",
        single.count(),
        single.quantile_ms(0.5),
        single.quantile_ms(0.99)
    );
    println!(
        "  demographic search: {} queries, p50 {:.2} ms, p99 {:.2} ms",
        search.count(),
        search.quantile_ms(0.5),
        search.quantile_ms(0.99)
    );
    println!(
        "  NHS Number lookup: {} queries, p99 {:.2} ms",
        nhs_lookup.count(),
        nhs_lookup.quantile_ms(0.99)
    );
    Ok(json!({
        "bench": "patient-index",
        "persons": persons,
        "register_per_s": register_per_s.round(),
        "register_p50_ms": round3(single.quantile_ms(0.5)),
        "register_p99_ms": round3(single.quantile_ms(0.99)),
        "search_p50_ms": round3(search.quantile_ms(0.5)),
        "search_p99_ms": round3(search.quantile_ms(0.99)),
        "nhs_lookup_p99_ms": round3(nhs_lookup.quantile_ms(0.99)),
    }))
}

/// One SearchPersons round trip; it must find what it looks for.
async fn timed_search(
    client: &mut mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient<
        tonic::transport::Channel,
    >,
    index: &index_client::IndexUnderTest,
    query: SearchPersonsRequest,
    looking_for: &str,
) -> anyhow::Result<std::time::Duration> {
    let begun = Instant::now();
    let found = client
        .search_persons(index.authorised(query)?)
        .await?
        .into_inner();
    let elapsed = begun.elapsed();
    anyhow::ensure!(
        !found.candidates.is_empty(),
        "{looking_for} was not found by search"
    );
    Ok(elapsed)
}
