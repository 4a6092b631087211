//! Every My Care Record benchmark, one command:
//! `cargo run --release -p mcr-bench -- <name> [--quick]`.
//!
//! Each prints a readable summary and, as its last line, one JSON object of
//! figures. Benchmarks run against the real local PostgreSQL, NATS and Redis,
//! each in its own database, namespace and key prefix.
#![forbid(unsafe_code)]

mod audit;
mod baseline;
mod consent;
mod febrl;
mod identity;
mod index_client;
mod ingest;
mod load;
mod patient_index;
mod stats;
mod view;

use std::process::ExitCode;

use clap::{Parser, ValueEnum};

#[derive(Debug, Parser)]
#[command(about = "My Care Record benchmarks; the last line printed is the figures as JSON")]
struct Arguments {
    /// Which benchmark to run.
    name: Benchmark,
    /// A shorter run (under five minutes), for CI and quick checks.
    #[arg(long)]
    quick: bool,
    /// How many persons `patient-index` registers or `consent` loads (default
    /// 1,000,000; 100,000 with --quick), or whose records `ingest` publishes
    /// (default 6,000, about 40,000 timed updates; 1,500 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    persons: Option<u64>,
    /// How long `load` drives traffic, in seconds (default 60; 20 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Benchmark {
    /// Record updates per second from publish to committed; freshness.
    Ingest,
    /// GetCareRecord of a 200-entry record, cached and uncached; views/s.
    View,
    /// Round trip of a trivial unary RPC over loopback: what this machine does at all.
    Baseline,
    /// Token verification per second on one core; Authenticate latency.
    Identity,
    /// Linkage precision, recall and F1 on FEBRL 4 through RegisterPerson.
    Febrl,
    /// Registration throughput and search latency over many synthetic persons.
    PatientIndex,
    /// Decide latency and throughput over many persons holding consent facts.
    Consent,
    /// Audit appends per second with the hash chain; QueryEvents p99 over a
    /// large store; VerifyChain per second.
    Audit,
    /// Mixed traffic (80% views, 15% searches, 5% consent changes) while
    /// ingest runs at 5,000 updates/s: throughput, p50/p99/p999, errors.
    Load,
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let figures = match arguments.name {
        Benchmark::Baseline => baseline::run(arguments.quick).await,
        Benchmark::Identity => identity::run(arguments.quick).await,
        Benchmark::Audit => audit::run(arguments.quick).await,
        Benchmark::Febrl => febrl::run(arguments.quick).await,
        Benchmark::PatientIndex => patient_index::run(arguments.quick, arguments.persons).await,
        Benchmark::Consent => consent::run(arguments.quick, arguments.persons).await,
        Benchmark::Ingest => ingest::run(arguments.quick, arguments.persons).await,
        Benchmark::View => view::run(arguments.quick).await,
        Benchmark::Load => load::run(arguments.quick, arguments.seconds).await,
    };
    match figures {
        Ok(figures) => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("benchmark failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}
