//! Generates a synthetic region and publishes it through the connector
//! library, printing progress, counts and throughput.
//!
//! ```text
//! mcr-synth --persons 10000 --seed 7
//! mcr-synth --persons 1000 --dry-run          # generate and validate only
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use mcr_connector::connection::NatsConnection;
use mcr_connector::publisher::{BatchReport, Publisher};
use mcr_connector::synthetic::Region;
use mcr_connector::validate::{category_token, validate_update};
use mcr_proto::common::v1::Category;
use mcr_proto::records::v1::RecordUpdate;

/// Generates a synthetic region and publishes its record updates.
#[derive(Debug, Parser)]
#[command(version)]
struct Arguments {
    /// People in the region.
    #[arg(long, default_value_t = 1_000)]
    persons: usize,
    /// Seed: the same seed and size give the same region.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    nats: NatsConnection,
    /// Subject and stream namespace (tests and shared development servers).
    #[arg(long, env = "MCR_NATS__NAMESPACE", default_value = "")]
    namespace: String,
    /// Acks awaited at once.
    #[arg(long, default_value_t = 1_024)]
    max_in_flight: usize,
    /// Updates generated and published per batch (one progress line each).
    #[arg(long, default_value_t = 20_000)]
    batch: usize,
    /// Do not create the records streams when missing.
    #[arg(long)]
    no_ensure_streams: bool,
    /// Generate and validate only; publish nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Default)]
struct Totals {
    generated: u64,
    stored: u64,
    duplicates: u64,
    failed: u64,
    by_category: BTreeMap<String, u64>,
    by_organisation: BTreeMap<String, u64>,
}

impl Totals {
    fn count(&mut self, update: &RecordUpdate) {
        self.generated += 1;
        let category = Category::try_from(update.category).unwrap_or_default();
        *self
            .by_category
            .entry(category_token(category))
            .or_default() += 1;
        *self
            .by_organisation
            .entry(update.source_organisation_code.clone())
            .or_default() += 1;
    }

    fn add(&mut self, report: BatchReport) {
        self.stored += report.stored;
        self.duplicates += report.duplicates;
        self.failed += report.failures.len() as u64;
        for (message_id, error) in report.failures.iter().take(5) {
            eprintln!("{message_id} was not published: {error}");
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Arguments::parse()).await {
        Ok(totals) if totals.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(arguments: Arguments) -> anyhow::Result<Totals> {
    let region = Region::generate(arguments.seed, arguments.persons);
    let publisher = if arguments.dry_run {
        None
    } else {
        Some(connect(&arguments).await?)
    };
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut totals = Totals::default();
    let mut updates = region.updates().peekable();
    while updates.peek().is_some() {
        let mut batch: Vec<RecordUpdate> = updates.by_ref().take(arguments.batch.max(1)).collect();
        let now: prost_types::Timestamp = SystemTime::now().into();
        for update in &mut batch {
            totals.count(update);
            update.source_time = Some(now);
        }
        match &publisher {
            Some(publisher) => totals.add(publisher.publish_all(batch).await),
            None => {
                for update in &batch {
                    if let Err(rejection) = validate_update(update) {
                        eprintln!("{} is invalid: {rejection}", update.message_id);
                        totals.failed += 1;
                    }
                }
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let rate = rate(totals.generated, started.elapsed());
            if arguments.dry_run {
                eprintln!(
                    "{} updates generated and validated, {rate:.0} updates/s",
                    totals.generated
                );
            } else {
                eprintln!(
                    "{} updates, {} stored, {} already stored, {} failed, {rate:.0} updates/s",
                    totals.generated, totals.stored, totals.duplicates, totals.failed
                );
            }
        }
    }
    let elapsed = started.elapsed();
    report(&arguments, &totals, elapsed);
    Ok(totals)
}

async fn connect(arguments: &Arguments) -> anyhow::Result<Publisher> {
    let client = arguments
        .nats
        .connect("mcr-synth")
        .await
        .map_err(anyhow::Error::msg)?;
    let publisher = Publisher::new(async_nats::jetstream::new(client))
        .with_namespace(&arguments.namespace)
        .with_max_in_flight(arguments.max_in_flight);
    if !arguments.no_ensure_streams {
        publisher.ensure_streams().await?;
    }
    Ok(publisher)
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn report(arguments: &Arguments, totals: &Totals, elapsed: Duration) {
    let verb = if arguments.dry_run {
        "generated and validated"
    } else {
        "published"
    };
    println!(
        "{verb} {} updates for {} people (seed {}) in {:.2} s: {:.0} updates/s",
        totals.generated,
        arguments.persons,
        arguments.seed,
        elapsed.as_secs_f64(),
        rate(totals.generated, elapsed)
    );
    if !arguments.dry_run {
        println!(
            "stored {}, already stored {}, failed {}",
            totals.stored, totals.duplicates, totals.failed
        );
    }
    println!("by category:");
    for (category, count) in &totals.by_category {
        println!("  {category:<18} {count}");
    }
    println!("by organisation:");
    for (organisation, count) in &totals.by_organisation {
        println!("  {organisation:<10} {count}");
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Arguments;

    #[test]
    fn the_arguments_are_well_formed() {
        Arguments::command().debug_assert();
    }
}
