//! Seeding a running platform with the demo region.

use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use mcr_connector::synthetic::{Organisation, Person, Region};
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{Address, Category, HumanName, PersonReference};
use mcr_proto::consent::v1::consent_client::ConsentClient;
use mcr_proto::consent::v1::record_restriction_request::Target;
use mcr_proto::consent::v1::*;
use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_proto::identity::v1::*;
use mcr_proto::patient_index::v1::SearchPersonsRequest;
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::patient_index::v1::search_persons_request::Query;
use mcr_proto::timestamps::timestamp;
use tonic::Code;
use tonic::transport::Channel;

use super::SeedArgs;
use super::plan::{self, Facts};
use crate::Context;
use crate::error::CliError;
use crate::services::{Service, request};

pub async fn seed(context: &Context, arguments: SeedArgs) -> Result<(), CliError> {
    let region = Region::generate(arguments.seed, arguments.persons);
    let practice = plan::demo_practice(&region);
    let cast = plan::cast(&region, practice.code).ok_or_else(|| {
        CliError::Usage(
            "the region is too small for the walkthrough; give --persons 200 or more".to_owned(),
        )
    })?;
    let mut identity = IdentityClient::new(context.endpoints.channel(Service::Identity).await?);
    let admin = sign_in(
        &mut identity,
        &arguments.admin_username,
        &arguments.admin_password,
    )
    .await?;
    eprintln!("organisations and professionals ...");
    for organisation in region.organisations() {
        create_organisation(&mut identity, &admin, organisation).await?;
    }
    for professional in plan::professionals(&region) {
        create_professional(
            &mut identity,
            &admin,
            &professional,
            &arguments.demo_password,
        )
        .await?;
    }

    publish_region(context, &region, arguments.no_progress).await?;

    let privacy = sign_in(&mut identity, "demo.privacy", &arguments.demo_password).await?;
    let gp = sign_in(&mut identity, "demo.gp", &arguments.demo_password).await?;
    let consultant = sign_in(&mut identity, "demo.consultant", &arguments.demo_password).await?;
    let last = region
        .persons()
        .last()
        .ok_or_else(|| CliError::Usage("--persons must be at least 1".to_owned()))?;
    wait_until_registered(
        context,
        &privacy,
        &last,
        Duration::from_secs(arguments.ingest_timeout),
    )
    .await?;

    let mut consent = ConsentClient::new(context.endpoints.channel(Service::Consent).await?);
    let bar = progress(region.len() as u64, "consent facts", arguments.no_progress);
    let mut recorded = 0_u64;
    for person in region.persons() {
        bar.inc(1);
        let facts = plan::facts(&person, practice.code, cast.patient.index);
        if facts == Facts::default() {
            continue;
        }
        let tokens = Tokens {
            privacy: &privacy,
            gp: &gp,
            consultant: &consultant,
        };
        recorded += record_facts(&mut consent, &tokens, &person, facts, practice).await?;
    }
    bar.finish_and_clear();
    eprintln!("consent facts recorded: {recorded} (facts already present were left alone)");
    crate::say!(
        "\n{}",
        plan::walkthrough(&cast, practice, &arguments.demo_password)
    );
    Ok(())
}

fn progress(length: u64, label: &'static str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label);
    bar
}

async fn sign_in(
    identity: &mut IdentityClient<Channel>,
    username: &str,
    password: &str,
) -> Result<String, CliError> {
    let answer = identity
        .authenticate(request(
            AuthenticateRequest {
                username: username.to_owned(),
                password: password.to_owned(),
                role_profile_id: String::new(),
            },
            None,
        )?)
        .await
        .map_err(|status| CliError::rpc(format!("signing in as {username}"), status))?
        .into_inner();
    answer
        .tokens
        .map(|tokens| tokens.access_token)
        .ok_or_else(|| {
            CliError::Reported(format!(
                "{username} has several role profiles; the demo expects one"
            ))
        })
}

async fn create_organisation(
    identity: &mut IdentityClient<Channel>,
    admin: &str,
    organisation: &Organisation,
) -> Result<(), CliError> {
    let created = identity
        .create_organisation(request(
            CreateOrganisationRequest {
                organisation_code: organisation.code.to_owned(),
                name: organisation.name.to_owned(),
                organisation_type: organisation.organisation_type as i32,
                data_protection_contact: Some(DataProtectionContact {
                    name: "Data Protection Officer".to_owned(),
                    // A plausible local address: the synthetic organisations
                    // carry a county only.
                    postal_address: Some(Address {
                        lines: vec![organisation.name.to_owned()],
                        city: if organisation.county == "Hertfordshire" {
                            "Welwyn Garden City"
                        } else {
                            "Harlow"
                        }
                        .to_owned(),
                        district: organisation.county.to_owned(),
                        postcode: if organisation.county == "Hertfordshire" {
                            "AL7 1AA"
                        } else {
                            "CM20 1QX"
                        }
                        .to_owned(),
                        country: "GB".to_owned(),
                    }),
                    phone: String::new(),
                    email: format!(
                        "dpo.{}@example.nhs.uk",
                        organisation.code.to_ascii_lowercase()
                    ),
                    web_url: String::new(),
                }),
            },
            Some(admin),
        )?)
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::AlreadyExists => Ok(()),
        Err(status) => Err(CliError::rpc(
            format!("creating organisation {}", organisation.code),
            status,
        )),
    }
}

async fn create_professional(
    identity: &mut IdentityClient<Channel>,
    admin: &str,
    professional: &plan::Professional,
    password: &str,
) -> Result<(), CliError> {
    let created = identity
        .create_user(request(
            CreateUserRequest {
                username: professional.username.to_owned(),
                name: Some(HumanName {
                    prefix: String::new(),
                    given: vec![professional.given.to_owned()],
                    family: professional.family.to_owned(),
                    suffix: String::new(),
                }),
                email: String::new(),
                password: password.to_owned(),
                registrations: Vec::new(),
                role_profiles: vec![RoleProfileSpec {
                    organisation_code: professional.organisation_code.to_owned(),
                    role: professional.role as i32,
                    role_code: String::new(),
                    job_title: professional.job_title.to_owned(),
                }],
                external_subjects: Vec::new(),
            },
            Some(admin),
        )?)
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::AlreadyExists => Ok(()),
        Err(status) => Err(CliError::rpc(
            format!("creating user {}", professional.username),
            status,
        )),
    }
}

/// Every update of the region through the connector; a re-run's updates
/// are JetStream duplicates (same message ids) and change nothing.
async fn publish_region(
    context: &Context,
    region: &Region,
    no_progress: bool,
) -> Result<(), CliError> {
    let publisher = crate::commands::publish::connect(context).await?;
    publisher.ensure_streams().await.map_err(|error| {
        CliError::Publish(format!("could not create the records streams: {error}"))
    })?;
    let bar = progress(region.len() as u64, "persons", no_progress);
    let started = Instant::now();
    let (mut stored, mut duplicates, mut failed) = (0_u64, 0_u64, 0_usize);
    let persons: Vec<Person> = region.persons().collect();
    for chunk in persons.chunks(250) {
        let now: prost_types::Timestamp = SystemTime::now().into();
        let updates: Vec<_> = chunk
            .iter()
            .flat_map(|person| region.updates_of(person))
            .map(|mut update| {
                update.source_time = Some(now);
                update
            })
            .collect();
        let report = publisher.publish_all(updates).await;
        stored += report.stored;
        duplicates += report.duplicates;
        failed += report.failures.len();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    eprintln!(
        "published {} persons' histories: {stored} updates stored, {duplicates} already there, {failed} failed, in {:.1} s",
        region.len(),
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        return Err(CliError::Publish(format!(
            "{failed} updates were not published; is NATS healthy?"
        )));
    }
    Ok(())
}

async fn wait_until_registered(
    context: &Context,
    token: &str,
    person: &Person,
    limit: Duration,
) -> Result<(), CliError> {
    let mut index =
        PatientIndexClient::new(context.endpoints.channel(Service::PatientIndex).await?);
    let deadline = Instant::now() + limit;
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("waiting for the aggregator to take in the region ...");
    loop {
        spinner.tick();
        let found = index
            .search_persons(request(
                SearchPersonsRequest {
                    query: Some(Query::NhsNumber(person.nhs_number.clone())),
                    ..SearchPersonsRequest::default()
                },
                Some(token),
            )?)
            .await
            .map(|answer| !answer.into_inner().candidates.is_empty())
            .unwrap_or(false);
        if found {
            spinner.finish_and_clear();
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CliError::Reported(format!(
                "the aggregator had not registered every person after {} s; see its log, then run the seed again",
                limit.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Tokens<'a> {
    privacy: &'a str,
    gp: &'a str,
    consultant: &'a str,
}

/// Records what `facts` asks that the summary does not show yet; returns
/// how many facts were recorded.
async fn record_facts(
    consent: &mut ConsentClient<Channel>,
    tokens: &Tokens<'_>,
    person: &Person,
    facts: Facts,
    practice: &Organisation,
) -> Result<u64, CliError> {
    let reference = PersonReference {
        reference: Some(Reference::NhsNumber(person.nhs_number.clone())),
    };
    // Ingest is batched and concurrent, so a person may be registered a
    // little after the last one: give each up to a minute.
    let mut attempts = 0;
    let summary = loop {
        let answer = consent
            .get_consent_summary(request(
                GetConsentSummaryRequest {
                    person: Some(reference.clone()),
                    ..GetConsentSummaryRequest::default()
                },
                Some(tokens.privacy),
            )?)
            .await;
        match answer {
            Ok(summary) => break summary.into_inner(),
            Err(status) if status.code() == Code::NotFound && attempts < 120 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(status) => {
                return Err(CliError::rpc(
                    format!("reading the consent of demo person {}", person.index),
                    status,
                ));
            }
        }
    };
    let now = time::OffsetDateTime::now_utc();
    let mut recorded = 0;
    let failed = |status| {
        CliError::rpc(
            format!("recording consent of demo person {}", person.index),
            status,
        )
    };
    if facts.opted_out
        && summary
            .opt_out
            .as_ref()
            .is_none_or(|opt_out| opt_out.withdrawn_at.is_some())
    {
        consent
            .record_opt_out(request(
                RecordOptOutRequest {
                    person: Some(reference.clone()),
                    recorded_at_organisation_code: person.practice.code.to_owned(),
                    note: "demo region".to_owned(),
                },
                Some(tokens.gp),
            )?)
            .await
            .map_err(failed)?;
        recorded += 1;
    }
    let hospital = "RQW";
    for (wanted, organisation, token) in [
        (facts.gp_permission, practice.code, tokens.gp),
        (facts.hospital_permission, hospital, tokens.consultant),
    ] {
        let present = summary
            .permissions
            .iter()
            .any(|permission| permission.organisation_code == organisation);
        if !wanted || present {
            continue;
        }
        consent
            .record_permission_to_view(request(
                RecordPermissionToViewRequest {
                    person: Some(reference.clone()),
                    organisation_code: organisation.to_owned(),
                    basis: PermissionBasis::PersonConsented as i32,
                    expires_at: Some(timestamp(now + time::Duration::days(30))),
                    note: "demo region".to_owned(),
                    ..RecordPermissionToViewRequest::default()
                },
                Some(token),
            )?)
            .await
            .map_err(failed)?;
        recorded += 1;
    }
    if facts.restricted && summary.restrictions.is_empty() {
        consent
            .record_restriction(request(
                RecordRestrictionRequest {
                    person: Some(reference.clone()),
                    target: Some(Target::Category(Category::MentalHealth as i32)),
                    viewers: Some(ViewerScope::default()),
                    expires_at: None,
                    note: "demo region: the person asked for mental health to be withheld"
                        .to_owned(),
                },
                Some(tokens.gp),
            )?)
            .await
            .map_err(failed)?;
        recorded += 1;
    }
    Ok(recorded)
}
