//! `mcr consent …`: record and read a person's consent facts.

use clap::{Args, Subcommand, ValueEnum};
use mcr_proto::common::v1::PersonReference;
use mcr_proto::consent::v1::consent_client::ConsentClient;
use mcr_proto::consent::v1::record_restriction_request::Target;
use mcr_proto::consent::v1::*;
use mcr_proto::timestamps::timestamp;
use time::OffsetDateTime;
use tonic::transport::Channel;

use crate::Context;
use crate::error::CliError;
use crate::person_arg::{describe, parse_person};
use crate::render::labels::{category_label, parse_category, parse_role};
use crate::render::timeline::human_time;
use crate::services::{Service, request};

/// Consent commands.
#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Record that the person opts out of the shared record (nobody may see it).
    OptOut(PersonNote),
    /// Withdraw the person's opt-out (they opt back in).
    WithdrawOptOut(PersonNote),
    /// Record the person's permission for your organisation to view their record.
    Permission(PermissionArgs),
    /// Self-declare a care relationship of your organisation (goes to review).
    Relationship(RelationshipArgs),
    /// Record the person's request to withhold a category, an organisation's
    /// entries or single entries.
    Restriction(RestrictionArgs),
    /// Emergency access without permission: then `mcr record show --purpose emergency`.
    BreakGlass(BreakGlassArgs),
    /// Everything recorded about the person's consent.
    Summary(SummaryArgs),
}

/// A person and an optional note.
#[derive(Debug, Args)]
pub struct PersonNote {
    /// The person: platform id, NHS Number or ORG:SYSTEM:VALUE.
    pub person: String,
    /// A note kept with the fact.
    #[arg(long, default_value = "")]
    pub note: String,
}

/// Permission to view.
#[derive(Debug, Args)]
pub struct PermissionArgs {
    /// The person.
    pub person: String,
    /// Days the permission lasts.
    #[arg(long, default_value_t = 1)]
    pub days: i64,
    /// Only these categories (repeatable); all when none.
    #[arg(long)]
    pub category: Vec<String>,
    /// Only this professional of your organisation (user id).
    #[arg(long, default_value = "")]
    pub user_id: String,
    /// A note kept with the fact.
    #[arg(long, default_value = "")]
    pub note: String,
}

/// A self-declared care relationship.
#[derive(Debug, Args)]
pub struct RelationshipArgs {
    /// The person.
    pub person: String,
    /// Why your organisation is caring for the person (reviewed later).
    #[arg(long)]
    pub reason: String,
    /// Days it lasts.
    #[arg(long, default_value_t = 1)]
    pub days: i64,
}

/// A restriction.
#[derive(Debug, Args)]
pub struct RestrictionArgs {
    /// The person.
    pub person: String,
    /// Withhold this category.
    #[arg(long, conflicts_with_all = ["organisation", "entry"])]
    pub category: Option<String>,
    /// Withhold this organisation's entries.
    #[arg(long, conflicts_with = "entry")]
    pub organisation: Option<String>,
    /// Withhold these entries (repeatable; ids from `record show --json`).
    #[arg(long)]
    pub entry: Vec<String>,
    /// Only from viewers of these organisations (repeatable); everyone when none.
    #[arg(long)]
    pub viewer_organisation: Vec<String>,
    /// Only from viewers in these roles (repeatable), e.g. nurse.
    #[arg(long)]
    pub viewer_role: Vec<String>,
    /// A note kept with the fact.
    #[arg(long, default_value = "")]
    pub note: String,
}

/// Why glass is broken.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BreakGlassReasonArg {
    PatientUnableToCommunicate,
    LacksCapacity,
    LifeThreateningEmergency,
    Safeguarding,
    Other,
}

/// Break-glass.
#[derive(Debug, Args)]
pub struct BreakGlassArgs {
    /// The person.
    pub person: String,
    /// The reason.
    #[arg(long, value_enum)]
    pub reason: BreakGlassReasonArg,
    /// Why, in 10-1000 characters (reviewed by a privacy officer).
    #[arg(long)]
    pub justification: String,
    /// Minutes the grant lasts (0: the platform's default).
    #[arg(long, default_value_t = 0)]
    pub minutes: u32,
}

/// Summary.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// The person.
    pub person: String,
    /// Include withdrawn and expired facts.
    #[arg(long)]
    pub history: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a consent command.
pub async fn run(context: &Context, command: ConsentCommand) -> Result<(), CliError> {
    let signed_in = context.signed_in().await?;
    let token = signed_in.access_token.clone();
    let mut client = ConsentClient::new(context.endpoints.channel(Service::Consent).await?);
    let now = OffsetDateTime::now_utc();
    match command {
        ConsentCommand::OptOut(arguments) => {
            let person = parse_person(&arguments.person)?;
            let answer = client
                .record_opt_out(request(
                    RecordOptOutRequest {
                        person: Some(person.clone()),
                        recorded_at_organisation_code: signed_in.organisation_code.clone(),
                        note: arguments.note,
                    },
                    Some(&token),
                )?)
                .await
                .map_err(|status| {
                    CliError::rpc(
                        format!("recording the opt-out of {}", describe(&person)),
                        status,
                    )
                })?
                .into_inner();
            if answer.already_in_force {
                crate::say!("An opt-out was already in force for {}.", describe(&person));
            } else {
                crate::say!(
                    "Opt-out recorded for {}: nobody can see their shared record now.",
                    describe(&person)
                );
            }
        }
        ConsentCommand::WithdrawOptOut(arguments) => {
            let person = parse_person(&arguments.person)?;
            client
                .withdraw_opt_out(request(
                    WithdrawOptOutRequest {
                        person: Some(person.clone()),
                        note: arguments.note,
                    },
                    Some(&token),
                )?)
                .await
                .map_err(|status| {
                    CliError::rpc(
                        format!("withdrawing the opt-out of {}", describe(&person)),
                        status,
                    )
                })?;
            crate::say!("Opt-out withdrawn for {}.", describe(&person));
        }
        ConsentCommand::Permission(arguments) => {
            let person = parse_person(&arguments.person)?;
            let categories = categories(&arguments.category)?;
            let answer = client
                .record_permission_to_view(request(
                    RecordPermissionToViewRequest {
                        person: Some(person.clone()),
                        organisation_code: signed_in.organisation_code.clone(),
                        user_id: arguments.user_id,
                        basis: PermissionBasis::PersonConsented as i32,
                        categories,
                        expires_at: Some(timestamp(now + time::Duration::days(arguments.days))),
                        note: arguments.note,
                        ..RecordPermissionToViewRequest::default()
                    },
                    Some(&token),
                )?)
                .await
                .map_err(|status| {
                    CliError::rpc(
                        format!("recording permission to view {}", describe(&person)),
                        status,
                    )
                })?
                .into_inner();
            let permission = answer.permission.unwrap_or_default();
            crate::say!(
                "Permission recorded for {} to view {} until {} (permission {}).",
                signed_in.organisation_code,
                describe(&person),
                human_time(permission.expires_at.as_ref()),
                permission.permission_id
            );
        }
        ConsentCommand::Relationship(arguments) => {
            let person = parse_person(&arguments.person)?;
            let answer = client
                .record_care_relationship(request(
                    RecordCareRelationshipRequest {
                        person: Some(person.clone()),
                        organisation_code: signed_in.organisation_code.clone(),
                        relationship_type: CareRelationshipType::SelfDeclared as i32,
                        start_time: Some(timestamp(now)),
                        end_time: Some(timestamp(now + time::Duration::days(arguments.days))),
                        source_system: "mcr-cli".to_owned(),
                        source_reference: format!("self-declared-{}", now.unix_timestamp()),
                        reason: arguments.reason,
                        ..RecordCareRelationshipRequest::default()
                    },
                    Some(&token),
                )?)
                .await
                .map_err(|status| {
                    CliError::rpc(
                        format!("recording a care relationship with {}", describe(&person)),
                        status,
                    )
                })?
                .into_inner();
            let relationship = answer.care_relationship.unwrap_or_default();
            crate::say!(
                "Care relationship of {} with {} recorded ({}); it is queued for review.",
                signed_in.organisation_code,
                describe(&person),
                relationship.care_relationship_id
            );
        }
        ConsentCommand::Restriction(arguments) => {
            restriction(&mut client, &token, arguments).await?
        }
        ConsentCommand::BreakGlass(arguments) => {
            let person = parse_person(&arguments.person)?;
            let reason = match arguments.reason {
                BreakGlassReasonArg::PatientUnableToCommunicate => {
                    BreakGlassReason::PatientUnableToCommunicate
                }
                BreakGlassReasonArg::LacksCapacity => BreakGlassReason::LacksCapacity,
                BreakGlassReasonArg::LifeThreateningEmergency => {
                    BreakGlassReason::LifeThreateningEmergency
                }
                BreakGlassReasonArg::Safeguarding => BreakGlassReason::Safeguarding,
                BreakGlassReasonArg::Other => BreakGlassReason::Other,
            };
            let answer = client
                .break_glass(request(
                    BreakGlassRequest {
                        person: Some(person.clone()),
                        reason_code: reason as i32,
                        justification: arguments.justification,
                        duration_minutes: arguments.minutes,
                    },
                    Some(&token),
                )?)
                .await
                .map_err(|status| {
                    CliError::rpc(format!("breaking glass for {}", describe(&person)), status)
                })?
                .into_inner();
            let grant = answer.grant.unwrap_or_default();
            crate::say!("!! {}", answer.banner_text);
            crate::say!(
                "Emergency access granted until {}; a privacy officer will review it. Now: mcr record show {} --purpose emergency",
                human_time(grant.expires_at.as_ref()),
                arguments.person
            );
        }
        ConsentCommand::Summary(arguments) => summary(&mut client, &token, arguments).await?,
    }
    Ok(())
}

fn categories(texts: &[String]) -> Result<Vec<i32>, CliError> {
    texts
        .iter()
        .map(|text| {
            parse_category(text)
                .map(|category| category as i32)
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "{text:?} is not a category, e.g. medications or mental-health"
                    ))
                })
        })
        .collect()
}

async fn restriction(
    client: &mut ConsentClient<Channel>,
    token: &str,
    arguments: RestrictionArgs,
) -> Result<(), CliError> {
    let person: PersonReference = parse_person(&arguments.person)?;
    let target = if let Some(category) = &arguments.category {
        Target::Category(categories(std::slice::from_ref(category))?[0])
    } else if let Some(organisation) = &arguments.organisation {
        Target::SourceOrganisationCode(organisation.to_ascii_uppercase())
    } else if !arguments.entry.is_empty() {
        Target::Entries(EntrySelection {
            entry_ids: arguments.entry.clone(),
        })
    } else {
        return Err(CliError::Usage(
            "say what to withhold: --category, --organisation or --entry".to_owned(),
        ));
    };
    let roles = arguments
        .viewer_role
        .iter()
        .map(|text| {
            parse_role(text).map(|role| role as i32).ok_or_else(|| {
                CliError::Usage(format!(
                    "{text:?} is not a role, e.g. nurse or social-worker"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let answer = client
        .record_restriction(request(
            RecordRestrictionRequest {
                person: Some(person.clone()),
                target: Some(target),
                viewers: Some(ViewerScope {
                    organisation_codes: arguments.viewer_organisation.clone(),
                    roles,
                    user_ids: Vec::new(),
                }),
                expires_at: None,
                note: arguments.note,
            },
            Some(token),
        )?)
        .await
        .map_err(|status| {
            CliError::rpc(
                format!("recording a restriction for {}", describe(&person)),
                status,
            )
        })?
        .into_inner();
    crate::say!(
        "Restriction recorded for {} ({}).",
        describe(&person),
        answer.restriction.unwrap_or_default().restriction_id
    );
    Ok(())
}

async fn summary(
    client: &mut ConsentClient<Channel>,
    token: &str,
    arguments: SummaryArgs,
) -> Result<(), CliError> {
    let person = parse_person(&arguments.person)?;
    let answer = client
        .get_consent_summary(request(
            GetConsentSummaryRequest {
                person: Some(person.clone()),
                include_history: arguments.history,
                include_fhir: arguments.json,
            },
            Some(token),
        )?)
        .await
        .map_err(|status| {
            CliError::rpc(
                format!("reading the consent of {}", describe(&person)),
                status,
            )
        })?
        .into_inner();
    if arguments.json {
        let consents: Vec<serde_json::Value> = answer
            .fhir_consents_json
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        crate::commands::print_json(&serde_json::json!({
            "person_id": answer.person_id,
            "consent_version": answer.consent_version,
            "fhir_consents": consents,
        }));
        return Ok(());
    }
    crate::say!(
        "Consent of person {} (version {})",
        answer.person_id,
        answer.consent_version
    );
    match &answer.opt_out {
        Some(opt_out) if opt_out.withdrawn_at.is_none() => crate::say!(
            "  OPTED OUT since {}",
            human_time(opt_out.effective_from.as_ref())
        ),
        _ => crate::say!("  not opted out"),
    }
    for permission in &answer.permissions {
        crate::say!(
            "  permission: {} until {}",
            permission.organisation_code,
            human_time(permission.expires_at.as_ref())
        );
    }
    for relationship in &answer.care_relationships {
        let kind = CareRelationshipType::try_from(relationship.relationship_type)
            .unwrap_or_default()
            .as_str_name()
            .trim_start_matches("CARE_RELATIONSHIP_TYPE_")
            .to_ascii_lowercase();
        crate::say!(
            "  care relationship: {} ({kind}) since {}",
            relationship.organisation_code,
            human_time(relationship.start_time.as_ref())
        );
    }
    for restriction in &answer.restrictions {
        let what = match &restriction.target {
            Some(restriction::Target::Category(value)) => category_label(*value).to_owned(),
            Some(restriction::Target::SourceOrganisationCode(code)) => {
                format!("entries from {code}")
            }
            Some(restriction::Target::Entries(entries)) => {
                format!("{} entries", entries.entry_ids.len())
            }
            None => "?".to_owned(),
        };
        crate::say!("  restriction: {what} withheld");
    }
    for grant in &answer.break_glass_grants {
        crate::say!(
            "  break-glass by {} at {}",
            grant.actor.clone().unwrap_or_default().display_name,
            human_time(grant.granted_at.as_ref())
        );
    }
    Ok(())
}
