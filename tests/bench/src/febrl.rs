//! `febrl`: linkage accuracy on FEBRL 4 through the real RegisterPerson path.
//! Every record of A is registered as one organisation's identifier, then
//! every record of B as another's, one at a time as connectors would,
//! demographics only (country AU, no NHS Number). A B record counts as linked
//! when the index attached it to the person of its true A partner.

use std::collections::HashMap;
use std::time::Instant;

use mcr_proto::common::v1::{Address, HumanName};
use mcr_proto::patient_index::v1::{Demographics, RegisterOutcome};
use serde_json::json;

use crate::index_client;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/febrl");

struct FebrlRecord {
    id: String,
    demographics: Demographics,
}

fn load(file: &str) -> anyhow::Result<Vec<FebrlRecord>> {
    let text = std::fs::read_to_string(format!("{DATA}/{file}"))
        .map_err(|error| anyhow::anyhow!("cannot read {DATA}/{file}: {error}"))?;
    let mut records = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [
            id,
            given,
            family,
            number,
            address_1,
            address_2,
            suburb,
            postcode,
            state,
            birth,
            _,
        ] = fields[..]
        else {
            anyhow::bail!("unexpected FEBRL line: {line}");
        };
        let street = [number, address_1]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let lines: Vec<String> = [street.as_str(), address_2]
            .iter()
            .filter(|part| !part.is_empty())
            .map(|part| (*part).to_owned())
            .collect();
        // FEBRL corrupts some dates into impossible ones; a provider's system would not hold those.
        let birth_date = (birth.len() == 8)
            .then(|| format!("{}-{}-{}", &birth[..4], &birth[4..6], &birth[6..]))
            .filter(|date| {
                time::Date::parse(
                    date,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .is_ok()
            })
            .unwrap_or_default();
        records.push(FebrlRecord {
            id: id.to_owned(),
            demographics: Demographics {
                name: Some(HumanName {
                    prefix: String::new(),
                    given: if given.is_empty() {
                        vec![]
                    } else {
                        vec![given.to_owned()]
                    },
                    family: family.to_owned(),
                    suffix: String::new(),
                }),
                birth_date,
                address: (!lines.is_empty() || !postcode.is_empty()).then(|| Address {
                    lines,
                    city: suburb.to_owned(),
                    district: state.to_owned(),
                    postcode: postcode.to_owned(),
                    country: "AU".to_owned(),
                }),
                ..Demographics::default()
            },
        });
    }
    Ok(records)
}

/// "rec-12-dup-0" and "rec-12-org" share "12".
fn record_number(id: &str) -> &str {
    id.split('-').nth(1).unwrap_or_default()
}

/// Runs the benchmark and returns the JSON figures.
pub async fn run(quick: bool) -> anyhow::Result<serde_json::Value> {
    let limit = if quick { 2_000 } else { 5_000 };
    let originals: Vec<FebrlRecord> = load("dataset4a.csv")?.into_iter().take(limit).collect();
    let wanted: std::collections::HashSet<&str> = originals
        .iter()
        .map(|record| record_number(&record.id))
        .collect();
    let duplicates: Vec<FebrlRecord> = load("dataset4b.csv")?
        .into_iter()
        .filter(|record| wanted.contains(record_number(&record.id)))
        .collect();
    let index = index_client::start().await;
    let started = Instant::now();
    let mut person_of_original = HashMap::new();
    for record in &originals {
        let registered = index
            .register("FEBRLA", &record.id, record.demographics.clone())
            .await?;
        person_of_original.insert(record_number(&record.id).to_owned(), registered.person_id);
    }
    let (mut true_links, mut false_links, mut reviews) = (0_u32, 0_u32, 0_u32);
    for record in &duplicates {
        let registered = index
            .register("FEBRLB", &record.id, record.demographics.clone())
            .await?;
        let partner = person_of_original.get(record_number(&record.id));
        let linked = registered.outcome == RegisterOutcome::LinkedByDemographicMatch as i32
            || registered.outcome == RegisterOutcome::LinkedByNhsNumber as i32;
        if registered.outcome == RegisterOutcome::CreatedAndQueuedForReview as i32 {
            reviews += 1;
        }
        if linked {
            if partner == Some(&registered.person_id) {
                true_links += 1;
            } else {
                false_links += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    index.service.stop().await?;

    let pairs = duplicates.len() as f64;
    let precision = if true_links + false_links == 0 {
        0.0
    } else {
        f64::from(true_links) / f64::from(true_links + false_links)
    };
    let recall = f64::from(true_links) / pairs;
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    println!(
        "febrl: FEBRL 4, {} originals then {} duplicates through RegisterPerson, one at a time",
        originals.len(),
        duplicates.len()
    );
    println!(
        "  {true_links} correct links, {false_links} wrong links, {reviews} queued for review ({:.1} s)",
        elapsed.as_secs_f64()
    );
    println!("  precision {precision:.4}, recall {recall:.4}, F1 {f1:.4}");
    Ok(json!({
        "bench": "febrl",
        "precision": (precision * 10_000.0).round() / 10_000.0,
        "recall": (recall * 10_000.0).round() / 10_000.0,
        "f1": (f1 * 10_000.0).round() / 10_000.0,
        "review_queue": reviews,
    }))
}
