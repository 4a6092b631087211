//! The services the aggregator calls, each with this service's token and a
//! deadline: consent (Decide, care relationships), patient-index (who a
//! reference names, and the patient banner) and identity (organisation names).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use mcr_auth::ServiceTokens;
use mcr_proto::common::v1::{Actor, Category, PersonReference, Purpose};
use mcr_proto::consent::v1::care_relationship_outcome::Outcome;
use mcr_proto::consent::v1::consent_client::ConsentClient;
use mcr_proto::consent::v1::{
    DecideRequest, DecideResponse, RecordCareRelationshipRequest, RecordCareRelationshipsRequest,
};
use mcr_proto::identity::v1::GetOrganisationRequest;
use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::patient_index::v1::{GetPersonRequest, Person};
use mcr_proto::records::v1::{CarriedCareRelationship, RecordUpdate};
use mcr_runtime::tls::ClientTlsSettings;
use tonic::transport::Channel;

use crate::error::AggregatorError;

/// A lazily connected channel to `url` (TLS when `https://`) whose calls
/// give up after `timeout`.
pub fn channel(
    setting: &str,
    url: &str,
    tls: &ClientTlsSettings,
    timeout: Duration,
) -> Result<Channel, String> {
    Ok(mcr_runtime::tls::endpoint(setting, url, tls)
        .map_err(|error| format!("invalid settings: {error}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_lazy())
}

/// Most care relationships consent takes in one RecordCareRelationships call.
pub const RELATIONSHIPS_PER_CALL: usize = 1000;

/// Consent, as the aggregator uses it.
#[derive(Debug, Clone)]
pub struct Consent {
    pub client: ConsentClient<Channel>,
    pub tokens: ServiceTokens,
}

impl Consent {
    /// May `actor` see `person` now, which categories, and why.
    #[tracing::instrument(name = "consent.decide", skip_all, fields(rpc.system = "grpc", rpc.service = "mcr.consent.v1.Consent"))]
    pub async fn decide(
        &self,
        actor: Actor,
        person: PersonReference,
        purpose: Purpose,
        categories: &[Category],
    ) -> Result<DecideResponse, AggregatorError> {
        let request = self
            .tokens
            .request(DecideRequest {
                actor: Some(actor),
                person: Some(person),
                purpose: purpose as i32,
                requested_categories: categories.iter().map(|category| *category as i32).collect(),
            })
            .await?;
        self.client
            .clone()
            .decide(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| AggregatorError::dependency("consent", status))
    }

    /// Records the care relationships that committed updates carry (each
    /// for the update's organisation), in calls of at most
    /// [`RELATIONSHIPS_PER_CALL`] (consent's limit). Returns, per item, why
    /// consent refused it (`None` when recorded): a refused relationship
    /// will never be taken, so retrying cannot help, and its entry is
    /// committed anyway. An error means nothing was recorded: retry it all.
    #[tracing::instrument(name = "consent.record_care_relationships", skip_all, fields(rpc.system = "grpc", rpc.service = "mcr.consent.v1.Consent", items = carried.len()))]
    pub async fn record_care_relationships(
        &self,
        carried: &[(&RecordUpdate, &CarriedCareRelationship)],
    ) -> Result<Vec<Option<String>>, AggregatorError> {
        let mut refusals = Vec::with_capacity(carried.len());
        for chunk in carried.chunks(RELATIONSHIPS_PER_CALL) {
            refusals.extend(self.record_chunk(chunk).await?);
        }
        Ok(refusals)
    }

    async fn record_chunk(
        &self,
        carried: &[(&RecordUpdate, &CarriedCareRelationship)],
    ) -> Result<Vec<Option<String>>, AggregatorError> {
        let relationships = carried
            .iter()
            .map(|(update, relationship)| RecordCareRelationshipRequest {
                person: Some(PersonReference {
                    reference: Some(
                        mcr_proto::common::v1::person_reference::Reference::LocalIdentifier(
                            update.patient_identifier.clone().unwrap_or_default(),
                        ),
                    ),
                }),
                organisation_code: update.source_organisation_code.clone(),
                team_code: relationship.team_code.clone(),
                relationship_type: relationship.relationship_type,
                start_time: relationship.start_time,
                end_time: relationship.end_time,
                source_system: update.source_system.clone(),
                source_reference: relationship.source_reference.clone(),
                reason: String::new(),
            })
            .collect();
        let request = self
            .tokens
            .request(RecordCareRelationshipsRequest { relationships })
            .await?;
        let response = self
            .client
            .clone()
            .record_care_relationships(request)
            .await
            .map_err(|status| AggregatorError::dependency("consent", status))?
            .into_inner();
        if response.outcomes.len() != carried.len() {
            return Err(AggregatorError::Internal(format!(
                "consent answered {} outcomes for {} care relationships",
                response.outcomes.len(),
                carried.len()
            )));
        }
        Ok(response
            .outcomes
            .into_iter()
            .map(|outcome| match outcome.outcome {
                Some(Outcome::Refused(reason)) => Some(reason),
                Some(Outcome::Recorded(_)) => None,
                None => Some("consent gave no outcome".to_owned()),
            })
            .collect())
    }
}

/// Patient-index: who a reference names, and the patient banner.
#[derive(Debug, Clone)]
pub struct Index {
    pub client: PatientIndexClient<Channel>,
    pub tokens: ServiceTokens,
}

impl Index {
    /// The (surviving) person `reference` names — by id, NHS Number or a
    /// local identifier — with full demographics (the aggregator withholds
    /// them). A reference that names nobody is a NOT_FOUND dependency error.
    #[tracing::instrument(name = "patient_index.get_person", skip_all, fields(rpc.system = "grpc", rpc.service = "mcr.patient_index.v1.PatientIndex"))]
    pub async fn person(&self, reference: &PersonReference) -> Result<Person, AggregatorError> {
        let request = self
            .tokens
            .request(GetPersonRequest {
                person: Some(reference.clone()),
                include_history: false,
            })
            .await?;
        self.client
            .clone()
            .get_person(request)
            .await
            .map_err(|status| AggregatorError::dependency("patient-index", status))?
            .into_inner()
            .person
            .ok_or_else(|| AggregatorError::Internal("patient-index returned no person".to_owned()))
    }
}

/// How long an organisation's name is reused before asking identity again.
const NAME_TTL: Duration = Duration::from_secs(600);

/// Organisation names from identity, remembered for a few minutes (names
/// change rarely; a stale name is cosmetic, never a leak).
#[derive(Debug, Clone)]
pub struct OrganisationNames {
    pub client: IdentityClient<Channel>,
    pub tokens: ServiceTokens,
    pub known: Arc<RwLock<HashMap<String, (String, Instant)>>>,
}

impl OrganisationNames {
    /// The name of `code`; the code itself when identity cannot say.
    pub async fn name(&self, code: &str) -> String {
        if let Ok(known) = self.known.read()
            && let Some((name, at)) = known.get(code)
            && at.elapsed() < NAME_TTL
        {
            return name.clone();
        }
        let Ok(request) = self
            .tokens
            .request(GetOrganisationRequest {
                organisation_code: code.to_owned(),
            })
            .await
        else {
            return code.to_owned();
        };
        match self.client.clone().get_organisation(request).await {
            Ok(response) => {
                let name = response
                    .into_inner()
                    .organisation
                    .map_or_else(|| code.to_owned(), |organisation| organisation.name);
                if let Ok(mut known) = self.known.write() {
                    known.insert(code.to_owned(), (name.clone(), Instant::now()));
                }
                name
            }
            Err(status) => {
                tracing::debug!(
                    code,
                    message = status.message(),
                    "organisation name unavailable"
                );
                code.to_owned()
            }
        }
    }
}
