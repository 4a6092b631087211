//! The example connector: publishes FHIR R4 resources or Bundles (one update
//! per entry) from files or standard input for one organisation.
//!
//! ```text
//! mcr-connector --org RQW --system PAS --patient-id 'PAS|H123456' \
//!     --nhs-number 9434765919 observation.json bundle.json
//! cat letter.json | mcr-connector --org RQW --system PAS --patient-id 'PAS|H123456' --category correspondence
//! ```
#![forbid(unsafe_code)]

use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use mcr_connector::connection::NatsConnection;
use mcr_connector::fhir_input::{InputOptions, delete_update, updates_from_json};
use mcr_connector::publisher::Publisher;
use mcr_connector::validate::{category_from_token, category_token, is_organisation_code};
use mcr_proto::common::v1::Category;
use mcr_proto::records::v1::RecordUpdate;

/// Publishes FHIR R4 resources or Bundles to My Care Record for one organisation.
#[derive(Debug, Parser)]
#[command(version)]
struct Arguments {
    /// ODS-style code of the organisation the records come from, e.g. RQW.
    #[arg(long)]
    org: String,
    /// The source system, e.g. PAS or EMIS.
    #[arg(long)]
    system: String,
    /// The person's local identifier as SYSTEM|VALUE (FHIR token style), or
    /// VALUE alone to use --system as its system.
    #[arg(long)]
    patient_id: String,
    /// The person's NHS Number, sent with the demographics.
    #[arg(long)]
    nhs_number: Option<String>,
    /// Category of every resource (e.g. test_results); inferred from each
    /// resource type when only one category accepts it.
    #[arg(long)]
    category: Option<String>,
    /// Entry id for a single resource without an "id".
    #[arg(long)]
    entry_id: Option<String>,
    /// Entry version; by default the time of publishing in milliseconds,
    /// which increases with every run.
    #[arg(long)]
    entry_version: Option<u64>,
    #[command(flatten)]
    nats: NatsConnection,
    /// Subject and stream namespace (tests and shared development servers).
    #[arg(long, env = "MCR_NATS__NAMESPACE", default_value = "")]
    namespace: String,
    /// Create the records streams when missing (needs the permission to).
    #[arg(long)]
    ensure_streams: bool,
    /// Delete the organisation's entry TYPE/ID (repeatable), e.g.
    /// Observation/o1; needs --category where the type fits several.
    #[arg(long, value_name = "TYPE/ID")]
    delete: Vec<String>,
    /// Check and print what would be published, without publishing.
    #[arg(long)]
    dry_run: bool,
    /// Files of FHIR JSON; none or "-" reads standard input.
    files: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match run(arguments).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Publishes every input; `Ok(false)` when some update was not published.
async fn run(arguments: Arguments) -> anyhow::Result<bool> {
    let options = input_options(&arguments)?;
    let mut updates: Vec<(String, RecordUpdate)> = Vec::new();
    let mut all_valid = true;
    for target in &arguments.delete {
        let outcome = match target.split_once('/') {
            Some((resource_type, entry_id)) => {
                delete_update(resource_type, entry_id, &options, "--delete")
            }
            None => {
                eprintln!("--delete {target:?} must be TYPE/ID, e.g. Observation/o1");
                all_valid = false;
                continue;
            }
        };
        match outcome {
            Ok(update) => updates.push(("--delete".to_owned(), update)),
            Err(error) => {
                eprintln!("{error}");
                all_valid = false;
            }
        }
    }
    let inputs = if arguments.delete.is_empty() || !arguments.files.is_empty() {
        read_inputs(&arguments.files)?
    } else {
        Vec::new()
    };
    for (name, text) in inputs {
        match updates_from_json(&text, &options) {
            Ok(found) => updates.extend(found.into_iter().map(|update| (name.clone(), update))),
            Err(error) => {
                eprintln!("{name}: {error}");
                all_valid = false;
            }
        }
    }
    if arguments.dry_run {
        for (name, update) in &updates {
            println!("{name}: valid {} ({})", update.message_id, describe(update));
        }
        return Ok(all_valid);
    }
    let publisher = connect(&arguments).await?;
    if arguments.ensure_streams {
        publisher.ensure_streams().await?;
    }
    let mut all_published = all_valid;
    for (name, update) in &updates {
        match publisher.publish(update).await {
            Ok(ack) => {
                let stored = if ack.duplicate {
                    "already stored".to_owned()
                } else {
                    format!("stream {} sequence {}", ack.stream, ack.sequence)
                };
                println!(
                    "{name}: published {} ({}) on {}: {stored}",
                    update.message_id,
                    describe(update),
                    publisher.subject(update)
                );
            }
            Err(error) => {
                eprintln!("{name}: {} was not published: {error}", update.message_id);
                all_published = false;
            }
        }
    }
    Ok(all_published)
}

fn input_options(arguments: &Arguments) -> anyhow::Result<InputOptions> {
    if !is_organisation_code(&arguments.org) {
        bail!("--org must be an ODS-style code of 3-12 letters and digits");
    }
    let category = match &arguments.category {
        None => None,
        Some(token) => Some(
            category_from_token(&token.to_ascii_lowercase()).with_context(|| {
                let known: Vec<String> = (1..=10)
                    .filter_map(|value| Category::try_from(value).ok())
                    .map(category_token)
                    .collect();
                format!("--category must be one of {}", known.join(", "))
            })?,
        ),
    };
    let (patient_system, patient_value) = match arguments.patient_id.split_once('|') {
        Some((system, value)) => (system.to_owned(), value.to_owned()),
        None => (arguments.system.clone(), arguments.patient_id.clone()),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Ok(InputOptions {
        organisation_code: arguments.org.to_ascii_uppercase(),
        source_system: arguments.system.clone(),
        patient_system,
        patient_value,
        category,
        nhs_number: arguments.nhs_number.clone(),
        version: arguments
            .entry_version
            .unwrap_or_else(|| u64::try_from(now.as_millis()).unwrap_or(u64::MAX)),
        entry_id: arguments.entry_id.clone(),
        default_effective_time: SystemTime::now().into(),
    })
}

fn read_inputs(files: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let names: Vec<&str> = if files.is_empty() {
        vec!["-"]
    } else {
        files.iter().map(String::as_str).collect()
    };
    names
        .into_iter()
        .map(|name| {
            let text = if name == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("standard input could not be read")?;
                text
            } else {
                std::fs::read_to_string(name)
                    .with_context(|| format!("{name} could not be read"))?
            };
            let label = if name == "-" { "stdin" } else { name };
            Ok((label.to_owned(), text))
        })
        .collect()
}

async fn connect(arguments: &Arguments) -> anyhow::Result<Publisher> {
    let client = arguments
        .nats
        .connect("mcr-connector")
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(Publisher::new(async_nats::jetstream::new(client)).with_namespace(&arguments.namespace))
}

fn describe(update: &RecordUpdate) -> String {
    let category = Category::try_from(update.category).unwrap_or_default();
    format!("{}, {}", update.resource_type, category_token(category))
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
