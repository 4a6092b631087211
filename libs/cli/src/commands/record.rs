//! `mcr record show`: a person's care record as a timeline, JSON or FHIR.

use clap::{Args, Subcommand, ValueEnum};
use mcr_proto::common::v1::{PageRequest, Purpose};
use mcr_proto::records::v1::record_aggregator_client::RecordAggregatorClient;
use mcr_proto::records::v1::{GetCareRecordBundleRequest, GetCareRecordRequest};

use crate::Context;
use crate::error::CliError;
use crate::person_arg::{describe, parse_person};
use crate::render::labels::{category_label, parse_category};
use crate::render::timeline;
use crate::services::{Service, request};

/// Care record commands.
#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Show a person's record: a timeline grouped by day, oldest first.
    Show(ShowArgs),
}

/// Why the record is read.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    /// Direct care (needs a care relationship and permission).
    DirectCare,
    /// Emergency treatment (needs a break-glass grant: `mcr consent break-glass`).
    Emergency,
}

/// What to show.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The person: platform id, NHS Number or ORG:SYSTEM:VALUE.
    pub person: String,
    /// Why you are looking.
    #[arg(long, value_enum, default_value = "direct-care")]
    pub purpose: PurposeArg,
    /// Only these categories (repeatable), e.g. --category medications.
    #[arg(long)]
    pub category: Vec<String>,
    /// Entries per page (1-500).
    #[arg(long, default_value_t = 200)]
    pub page_size: u32,
    /// The page after a previous one.
    #[arg(long, default_value = "")]
    pub page_token: String,
    /// Print the view as JSON (with each entry's FHIR resource).
    #[arg(long, conflicts_with = "fhir")]
    pub json: bool,
    /// Print the view as a FHIR R4 Bundle.
    #[arg(long)]
    pub fhir: bool,
}

/// Runs a record command.
pub async fn run(context: &Context, command: RecordCommand) -> Result<(), CliError> {
    match command {
        RecordCommand::Show(arguments) => show(context, arguments).await,
    }
}

async fn show(context: &Context, arguments: ShowArgs) -> Result<(), CliError> {
    let person = parse_person(&arguments.person)?;
    let categories = arguments
        .category
        .iter()
        .map(|text| {
            parse_category(text)
                .map(|category| category as i32)
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "--category {text:?} is not a category; use one of: {}",
                        (1..=10).map(category_label).collect::<Vec<_>>().join(", ")
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let purpose = match arguments.purpose {
        PurposeArg::DirectCare => Purpose::DirectCare,
        PurposeArg::Emergency => Purpose::Emergency,
    } as i32;
    let page = Some(PageRequest {
        page_size: arguments.page_size,
        page_token: arguments.page_token.clone(),
    });
    let signed_in = context.signed_in().await?;
    let token = Some(signed_in.access_token.as_str());
    let mut client =
        RecordAggregatorClient::new(context.endpoints.channel(Service::RecordAggregator).await?);
    let action = format!("reading the care record of {}", describe(&person));
    if arguments.fhir {
        let bundle = client
            .get_care_record_bundle(request(
                GetCareRecordBundleRequest {
                    person: Some(person),
                    purpose,
                    categories,
                    page,
                    ..GetCareRecordBundleRequest::default()
                },
                token,
            )?)
            .await
            .map_err(|status| CliError::rpc(action, status))?
            .into_inner();
        crate::say!("{}", bundle.bundle_json);
        return Ok(());
    }
    let view = client
        .get_care_record(request(
            GetCareRecordRequest {
                person: Some(person),
                purpose,
                categories,
                include_resources: arguments.json,
                page,
                ..GetCareRecordRequest::default()
            },
            token,
        )?)
        .await
        .map_err(|status| CliError::rpc(action, status))?
        .into_inner();
    if arguments.json {
        crate::commands::print_json(&crate::render::json::care_record(&view));
    } else {
        crate::say_raw!("{}", timeline::render(&view));
    }
    Ok(())
}
