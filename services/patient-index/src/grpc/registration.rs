//! RegisterPerson and RegisterPersons: who may register what, the checks
//! every registration passes, and the responses with their candidates.

use std::collections::HashMap;

use mcr_auth::{Principal, PrincipalKind, scopes};
use mcr_proto::patient_index::v1::*;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Answer, PatientIndexApi, caller_with, reader};
use crate::bulk::MAX_REGISTRATIONS;
use crate::domain::{DomainError, LocalIdentifier, PersonDemographics};
use crate::error::IndexError;
use crate::registry::{Registered, today};

/// A user may register only their own organisation's identifiers; a
/// service (the aggregator, registering for connectors) any organisation's.
fn may_register(
    caller: &Principal,
    identifier: &LocalIdentifier,
    item: &str,
) -> Result<(), Status> {
    if caller.kind == PrincipalKind::User
        && caller.organisation_code != identifier.organisation_code
    {
        return Err(Status::permission_denied(format!(
            "{item}you act for {}: a user may register only their own organisation's identifiers, not {}'s",
            caller.organisation_code, identifier.organisation_code
        )));
    }
    Ok(())
}

/// A registration's identifier and demographics, checked.
fn checked_registration(
    request: &RegisterPersonRequest,
) -> Result<(LocalIdentifier, PersonDemographics), DomainError> {
    let identifier =
        LocalIdentifier::from_proto("local_identifier", request.local_identifier.as_ref())?;
    let demographics = request
        .demographics
        .as_ref()
        .ok_or_else(|| DomainError::invalid("demographics", "is required"))?;
    Ok((
        identifier,
        PersonDemographics::from_proto(demographics, today())?,
    ))
}

impl PatientIndexApi {
    pub(super) async fn register_one(
        &self,
        request: Request<RegisterPersonRequest>,
    ) -> Answer<RegisterPersonResponse> {
        let caller = caller_with(&request, scopes::INDEX_WRITE)?;
        let (identifier, demographics) =
            checked_registration(request.get_ref()).map_err(IndexError::from)?;
        may_register(&caller, &identifier, "")?;
        let registered = self.registry.register(&identifier, &demographics).await?;
        tracing::info!(person_id = %registered.person_id, outcome = ?registered.outcome, "registered local identifier");
        let mut responses = self
            .registration_responses(vec![registered], &caller)
            .await?;
        Ok(Response::new(responses.remove(0)))
    }

    pub(super) async fn register_batch(
        &self,
        request: Request<RegisterPersonsRequest>,
    ) -> Answer<RegisterPersonsResponse> {
        let caller = caller_with(&request, scopes::INDEX_WRITE)?;
        let wanted = &request.get_ref().registrations;
        if wanted.is_empty() || wanted.len() > MAX_REGISTRATIONS {
            return Err(IndexError::invalid(
                "registrations",
                format!("give 1-{MAX_REGISTRATIONS} registrations"),
            )
            .into());
        }
        let mut items = Vec::with_capacity(wanted.len());
        let mut first_of: HashMap<LocalIdentifier, usize> = HashMap::new();
        for (index, registration) in wanted.iter().enumerate() {
            let (identifier, demographics) =
                checked_registration(registration).map_err(|error| {
                    IndexError::invalid("registrations", format!("item {index}: {error}"))
                })?;
            may_register(&caller, &identifier, &format!("item {index}: "))?;
            if let Some(first) = first_of.insert(identifier.clone(), index) {
                return Err(IndexError::invalid(
                    "registrations",
                    format!("item {index} repeats the local_identifier of item {first}"),
                )
                .into());
            }
            items.push((identifier, demographics));
        }
        let registered = self.registry.register_many(&items).await?;
        tracing::info!(
            registrations = registered.len(),
            "registered a batch of local identifiers"
        );
        Ok(Response::new(RegisterPersonsResponse {
            results: self.registration_responses(registered, &caller).await?,
        }))
    }

    /// The responses to registrations, each candidate's person filled in
    /// (one lookup for all of them).
    async fn registration_responses(
        &self,
        registered: Vec<Registered>,
        caller: &Principal,
    ) -> Result<Vec<RegisterPersonResponse>, IndexError> {
        let candidates: Vec<(Uuid, MatchCandidate)> = registered
            .iter()
            .flat_map(|registration| &registration.candidates)
            .map(|(person, outcome)| (*person, outcome.to_proto_candidate()))
            .collect();
        let mut filled = self
            .candidates_with_persons(candidates, Vec::new(), reader(caller))
            .await?
            .into_iter();
        Ok(registered
            .into_iter()
            .map(|registration| RegisterPersonResponse {
                person_id: registration.person_id.to_string(),
                outcome: registration.outcome as i32,
                candidates: filled
                    .by_ref()
                    .take(registration.candidates.len())
                    .collect(),
                review_item_id: registration
                    .review_item_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            })
            .collect())
    }
}
