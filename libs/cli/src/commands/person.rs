//! `mcr person search`: by NHS Number or demographics.

use clap::{Args, Subcommand};
use mcr_proto::common::v1::PageRequest;
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::patient_index::v1::search_persons_request::Query;
use mcr_proto::patient_index::v1::{DemographicQuery, MatchGrade, SearchPersonsRequest};

use crate::Context;
use crate::error::CliError;
use crate::render::timeline::patient_line;
use crate::services::{Service, request};

/// Patient index commands.
#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Find persons by NHS Number, or by name, date of birth and postcode.
    Search(SearchArgs),
}

/// A search.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// NHS Number (exact lookup).
    #[arg(long, conflicts_with_all = ["family", "given", "birth_date", "postcode"])]
    pub nhs_number: Option<String>,
    /// Family name.
    #[arg(long)]
    pub family: Option<String>,
    /// Given name.
    #[arg(long)]
    pub given: Option<String>,
    /// Date of birth, YYYY-MM-DD.
    #[arg(long)]
    pub birth_date: Option<String>,
    /// Postcode.
    #[arg(long)]
    pub postcode: Option<String>,
    /// Candidates to show.
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a person command.
pub async fn run(context: &Context, command: PersonCommand) -> Result<(), CliError> {
    match command {
        PersonCommand::Search(arguments) => search(context, arguments).await,
    }
}

async fn search(context: &Context, arguments: SearchArgs) -> Result<(), CliError> {
    let query = match &arguments.nhs_number {
        Some(number) => Query::NhsNumber(number.clone()),
        None => {
            if arguments.family.is_none() && arguments.birth_date.is_none() {
                return Err(CliError::Usage(
                    "give --nhs-number, or demographics: at least --family or --birth-date (with --given and --postcode to narrow it)".to_owned(),
                ));
            }
            Query::Demographics(DemographicQuery {
                family_name: arguments.family.clone().unwrap_or_default(),
                given_name: arguments.given.clone().unwrap_or_default(),
                birth_date: arguments.birth_date.clone().unwrap_or_default(),
                postcode: arguments.postcode.clone().unwrap_or_default(),
                ..DemographicQuery::default()
            })
        }
    };
    let signed_in = context.signed_in().await?;
    let mut client =
        PatientIndexClient::new(context.endpoints.channel(Service::PatientIndex).await?);
    let found = client
        .search_persons(request(
            SearchPersonsRequest {
                query: Some(query),
                minimum_grade: MatchGrade::Unspecified as i32,
                page: Some(PageRequest {
                    page_size: arguments.limit,
                    page_token: String::new(),
                }),
            },
            Some(&signed_in.access_token),
        )?)
        .await
        .map_err(|status| CliError::rpc("searching the patient index", status))?
        .into_inner();
    if arguments.json {
        let candidates: Vec<serde_json::Value> = found
            .candidates
            .iter()
            .map(|candidate| {
                let person = candidate.person.clone().unwrap_or_default();
                let demographics = person.demographics.unwrap_or_default();
                let name = demographics.name.unwrap_or_default();
                serde_json::json!({
                    "person_id": person.person_id,
                    "nhs_number": demographics.nhs_number,
                    "given": name.given,
                    "family": name.family,
                    "birth_date": demographics.birth_date,
                    "grade": MatchGrade::try_from(candidate.grade).unwrap_or_default().as_str_name(),
                    "match_probability": candidate.match_probability,
                })
            })
            .collect();
        crate::commands::print_json(&serde_json::Value::Array(candidates));
        return Ok(());
    }
    if found.candidates.is_empty() {
        crate::say!("No person matches.");
        return Ok(());
    }
    for candidate in &found.candidates {
        let person = candidate.person.clone().unwrap_or_default();
        let grade = MatchGrade::try_from(candidate.grade)
            .unwrap_or_default()
            .as_str_name()
            .trim_start_matches("MATCH_GRADE_")
            .to_ascii_lowercase();
        crate::say!(
            "{}  {}  ({grade}, {:.0}%)",
            person.person_id,
            patient_line(&person.demographics.unwrap_or_default()),
            candidate.match_probability * 100.0
        );
    }
    Ok(())
}
