//! `mcr audit report` (a person's subject access report) and `mcr audit verify`.

use clap::{Args, Subcommand};
use mcr_proto::audit::v1::audit_client::AuditClient;
use mcr_proto::audit::v1::{GetSubjectAccessReportRequest, VerifyChainRequest};
use mcr_proto::common::v1::PageRequest;
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::patient_index::v1::search_persons_request::Query;
use mcr_proto::patient_index::v1::{ResolveLocalIdentifierRequest, SearchPersonsRequest};

use crate::Context;
use crate::error::CliError;
use crate::person_arg::{describe, parse_person};
use crate::render::json::{category, time};
use crate::services::{Service, request};

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Who accessed a person's record, when and why (subject access report).
    Report(ReportArgs),
    /// Verify the audit log's hash chain.
    Verify,
}

/// A report.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The person: platform id, NHS Number or ORG:SYSTEM:VALUE.
    pub person: String,
    /// Leave out refused attempts (they are shown by default).
    #[arg(long)]
    pub permitted_only: bool,
    /// Accesses to show.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs an audit command.
pub async fn run(context: &Context, command: AuditCommand) -> Result<(), CliError> {
    let signed_in = context.signed_in().await?;
    let token = signed_in.access_token.as_str();
    let mut client = AuditClient::new(context.endpoints.channel(Service::Audit).await?);
    match command {
        AuditCommand::Report(arguments) => {
            let person_id = person_id(context, &arguments.person, token).await?;
            let report = client
                .get_subject_access_report(request(
                    GetSubjectAccessReportRequest {
                        person_id: person_id.clone(),
                        include_denied: !arguments.permitted_only,
                        page: Some(PageRequest {
                            page_size: arguments.limit,
                            page_token: String::new(),
                        }),
                        ..GetSubjectAccessReportRequest::default()
                    },
                    Some(token),
                )?)
                .await
                .map_err(|status| {
                    CliError::rpc(
                        format!("reading the access report of person {person_id}"),
                        status,
                    )
                })?
                .into_inner();
            if arguments.json {
                let entries: Vec<serde_json::Value> = report
                    .entries
                    .iter()
                    .map(|entry| serde_json::json!({
                        "event_id": entry.event_id,
                        "accessed_at": time(entry.accessed_at.as_ref()),
                        "organisation_code": entry.organisation_code,
                        "organisation_name": entry.organisation_name,
                        "role": entry.role_description,
                        "professional_name": entry.professional_name,
                        "action": entry.action_description,
                        "outcome": mcr_proto::audit::v1::AuditOutcome::try_from(entry.outcome).unwrap_or_default().as_str_name(),
                        "categories": entry.categories.iter().map(|value| category(*value)).collect::<Vec<_>>(),
                        "break_glass": entry.break_glass,
                    }))
                    .collect();
                crate::commands::print_json(&serde_json::json!({
                    "person_id": report.person_id,
                    "entries": entries,
                }));
            } else {
                crate::say_raw!("{}", report.report_text);
                if !report.report_text.ends_with('\n') {
                    crate::say!();
                }
            }
        }
        AuditCommand::Verify => {
            let answer = client
                .verify_chain(request(VerifyChainRequest::default(), Some(token))?)
                .await
                .map_err(|status| CliError::rpc("verifying the audit chain", status))?
                .into_inner();
            if answer.ok {
                crate::say!(
                    "The audit chain verifies: {} events ({}-{}), {} checkpoints.",
                    answer.events_verified,
                    answer.verified_from,
                    answer.verified_to,
                    answer.checkpoints_verified
                );
            } else {
                return Err(CliError::Reported(format!(
                    "the audit chain is broken at sequence {}: {}",
                    answer.first_broken_sequence, answer.detail
                )));
            }
        }
    }
    Ok(())
}

/// The platform id of a person argument, resolved through patient-index
/// when it is an NHS Number or a local identifier.
pub async fn person_id(context: &Context, text: &str, token: &str) -> Result<String, CliError> {
    let person = parse_person(text)?;
    let action = format!("finding {}", describe(&person));
    match person.reference {
        Some(Reference::PersonId(id)) => Ok(id),
        Some(Reference::NhsNumber(number)) => {
            let mut index =
                PatientIndexClient::new(context.endpoints.channel(Service::PatientIndex).await?);
            let found = index
                .search_persons(request(
                    SearchPersonsRequest {
                        query: Some(Query::NhsNumber(number)),
                        ..SearchPersonsRequest::default()
                    },
                    Some(token),
                )?)
                .await
                .map_err(|status| CliError::rpc(action.clone(), status))?
                .into_inner();
            found
                .candidates
                .into_iter()
                .find_map(|candidate| candidate.person.map(|person| person.person_id))
                .ok_or_else(|| {
                    CliError::rpc(
                        action,
                        tonic::Status::not_found("no person has this NHS Number"),
                    )
                })
        }
        Some(Reference::LocalIdentifier(local)) => {
            let mut index =
                PatientIndexClient::new(context.endpoints.channel(Service::PatientIndex).await?);
            let found = index
                .resolve_local_identifier(request(
                    ResolveLocalIdentifierRequest {
                        local_identifier: Some(local),
                    },
                    Some(token),
                )?)
                .await
                .map_err(|status| CliError::rpc(action, status))?
                .into_inner();
            Ok(found.person_id)
        }
        None => Err(CliError::Usage("give a person".to_owned())),
    }
}
