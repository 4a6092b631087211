//! `mcr publish`: FHIR R4 resources or Bundles from files, published as one
//! organisation's connector (the same conversion as `mcr-connector`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use mcr_connector::fhir_input::{InputOptions, updates_from_json};
use mcr_connector::publisher::Publisher;
use mcr_connector::validate::is_organisation_code;

use crate::Context;
use crate::error::CliError;
use crate::render::labels::parse_category;

/// What to publish, for whom.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// ODS-style code of the organisation the records come from, e.g. RQW.
    #[arg(long)]
    pub org: String,
    /// The source system, e.g. PAS or EMIS.
    #[arg(long)]
    pub system: String,
    /// The person's local identifier as SYSTEM|VALUE, or VALUE (system = --system).
    #[arg(long)]
    pub patient_id: String,
    /// The person's NHS Number, sent with the demographics.
    #[arg(long)]
    pub nhs_number: Option<String>,
    /// Category of every resource; inferred from the resource type where only one fits.
    #[arg(long)]
    pub category: Option<String>,
    /// Entry version; by default the time of publishing in milliseconds.
    #[arg(long)]
    pub entry_version: Option<u64>,
    /// Create the records streams when missing.
    #[arg(long)]
    pub ensure_streams: bool,
    /// Check and print, publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Files of FHIR JSON.
    #[arg(required = true)]
    pub files: Vec<String>,
}

/// Checks every file, then publishes every update.
pub async fn run(context: &Context, arguments: PublishArgs) -> Result<(), CliError> {
    if !is_organisation_code(&arguments.org.to_ascii_uppercase()) {
        return Err(CliError::Usage(
            "--org must be an ODS-style code of 3-12 letters and digits, e.g. RQW".to_owned(),
        ));
    }
    let category = match &arguments.category {
        None => None,
        Some(text) => Some(parse_category(text).ok_or_else(|| {
            CliError::Usage(format!(
                "--category {text:?} is not a category, e.g. test-results"
            ))
        })?),
    };
    let (patient_system, patient_value) = match arguments.patient_id.split_once('|') {
        Some((system, value)) => (system.to_owned(), value.to_owned()),
        None => (arguments.system.clone(), arguments.patient_id.clone()),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let options = InputOptions {
        organisation_code: arguments.org.to_ascii_uppercase(),
        source_system: arguments.system.clone(),
        patient_system,
        patient_value,
        category,
        nhs_number: arguments.nhs_number.clone(),
        version: arguments
            .entry_version
            .unwrap_or_else(|| u64::try_from(now.as_millis()).unwrap_or(u64::MAX)),
        entry_id: None,
        default_effective_time: SystemTime::now().into(),
    };
    let mut updates = Vec::new();
    let mut problems = Vec::new();
    for file in &arguments.files {
        let text = std::fs::read_to_string(file)
            .map_err(|error| CliError::Local(format!("could not read {file}: {error}")))?;
        match updates_from_json(&text, &options) {
            Ok(found) => updates.extend(found.into_iter().map(|update| (file.clone(), update))),
            Err(error) => problems.push(format!("{file}: {error}")),
        }
    }
    if !problems.is_empty() {
        return Err(CliError::Usage(format!(
            "nothing was published:\n  {}",
            problems.join("\n  ")
        )));
    }
    if arguments.dry_run {
        for (file, update) in &updates {
            crate::say!(
                "{file}: valid {} ({})",
                update.message_id,
                update.resource_type
            );
        }
        return Ok(());
    }
    let publisher = connect(context).await?;
    if arguments.ensure_streams {
        publisher.ensure_streams().await.map_err(|error| {
            CliError::Publish(format!("could not create the records streams: {error}"))
        })?;
    }
    let mut failed = 0;
    for (file, update) in &updates {
        match publisher.publish(update).await {
            Ok(ack) if ack.duplicate => {
                crate::say!("{file}: {} was already stored", update.message_id)
            }
            Ok(_) => crate::say!(
                "{file}: published {} on {}",
                update.message_id,
                publisher.subject(update)
            ),
            Err(error) => {
                failed += 1;
                eprintln!("{file}: {} was not published: {error}", update.message_id);
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Publish(format!(
            "{failed} of {} updates were not published",
            updates.len()
        )));
    }
    Ok(())
}

/// A publisher on the NATS server of the global flags.
pub async fn connect(context: &Context) -> Result<Publisher, CliError> {
    let client = context.global.nats.connect("mcr").await.map_err(|error| {
        CliError::Publish(format!(
            "{error}.\n  hint: start it with ./scripts/dev-stack, or give --nats-url (and --nats-ca, --nats-user/--nats-password, --nats-token or --nats-credentials when it asks for them)"
        ))
    })?;
    let publisher = Publisher::new(async_nats::jetstream::new(client));
    Ok(if context.global.namespace.is_empty() {
        publisher
    } else {
        publisher.with_namespace(&context.global.namespace)
    })
}
