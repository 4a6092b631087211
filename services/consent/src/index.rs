//! Resolving person references through patient-index, as this service
//! (client-credentials token with `index:read`).

use std::time::Duration;

use mcr_auth::ServiceTokens;
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{LocalIdentifier, PersonReference};
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::patient_index::v1::{GetPersonRequest, ResolveLocalIdentifiersRequest};
use mcr_runtime::tls::ClientTlsSettings;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::validate;
use crate::error::ConsentError;

/// patient-index, reached with this service's token.
#[derive(Debug, Clone)]
pub struct PersonDirectory {
    client: PatientIndexClient<Channel>,
    /// `None` when no service credentials are configured: references other
    /// than a person id, and every change, are then UNAVAILABLE.
    tokens: Option<ServiceTokens>,
}

impl PersonDirectory {
    /// A directory on `patient_index_url` (connected lazily, over TLS when
    /// it is `https://`).
    pub fn new(
        patient_index_url: &str,
        tls: &ClientTlsSettings,
        tokens: Option<ServiceTokens>,
    ) -> Result<Self, String> {
        let channel =
            mcr_runtime::tls::endpoint("consent.patient_index_url", patient_index_url, tls)
                .map_err(|error| error.to_string())?
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(5))
                .connect_lazy();
        Ok(Self {
            client: PatientIndexClient::new(channel),
            tokens,
        })
    }

    /// The person a reference names, without calling patient-index for a
    /// person id (Decide's fast path: an unknown id simply has no facts).
    pub async fn resolve(
        &self,
        field: &str,
        reference: Option<&PersonReference>,
    ) -> Result<Uuid, ConsentError> {
        match reference.and_then(|reference| reference.reference.as_ref()) {
            Some(Reference::PersonId(id)) => Ok(validate::uuid(&format!("{field}.person_id"), id)?),
            Some(_) => self.require_existing(field, reference).await,
            None => Err(ConsentError::invalid(
                field,
                "is required: give person_id, nhs_number or local_identifier",
            )),
        }
    }

    /// The (surviving) person a reference names; NOT_FOUND when none.
    #[tracing::instrument(name = "patient_index.get_person", skip_all)]
    pub async fn require_existing(
        &self,
        field: &str,
        reference: Option<&PersonReference>,
    ) -> Result<Uuid, ConsentError> {
        let Some(reference) = reference.filter(|reference| reference.reference.is_some()) else {
            return Err(ConsentError::invalid(
                field,
                "is required: give person_id, nhs_number or local_identifier",
            ));
        };
        if let Some(Reference::PersonId(id)) = &reference.reference {
            validate::uuid(&format!("{field}.person_id"), id)?;
        }
        let request = self
            .authorised(GetPersonRequest {
                person: Some(reference.clone()),
                include_history: false,
            })
            .await?;
        let response = self
            .client
            .clone()
            .get_person(request)
            .await
            .map_err(|status| index_error(field, &status))?;
        let person = response
            .into_inner()
            .person
            .ok_or_else(|| ConsentError::Corrupt("patient-index returned no person".to_owned()))?;
        Uuid::parse_str(&person.person_id).map_err(|_| {
            ConsentError::Corrupt("patient-index returned a malformed person id".to_owned())
        })
    }

    /// The persons of many local identifiers in one call (patient-index's
    /// ResolveLocalIdentifiers, at most 1,000), in order: `None` where an
    /// identifier is not registered. An invalid identifier fails the call
    /// with INVALID_ARGUMENT.
    #[tracing::instrument(name = "patient_index.resolve_local_identifiers", skip_all, fields(identifiers = identifiers.len()))]
    pub async fn resolve_local_identifiers(
        &self,
        identifiers: &[LocalIdentifier],
    ) -> Result<Vec<Option<Uuid>>, ConsentError> {
        let request = self
            .authorised(ResolveLocalIdentifiersRequest {
                local_identifiers: identifiers.to_vec(),
            })
            .await?;
        let results = self
            .client
            .clone()
            .resolve_local_identifiers(request)
            .await
            .map_err(|status| index_error("person.local_identifier", &status))?
            .into_inner()
            .results;
        if results.len() != identifiers.len() {
            return Err(ConsentError::Corrupt(format!(
                "patient-index resolved {} of {} identifiers",
                results.len(),
                identifiers.len()
            )));
        }
        results
            .into_iter()
            .map(|result| {
                if result.person_id.is_empty() {
                    return Ok(None);
                }
                Uuid::parse_str(&result.person_id).map(Some).map_err(|_| {
                    ConsentError::Corrupt("patient-index returned a malformed person id".to_owned())
                })
            })
            .collect()
    }

    /// `message` as a request carrying this service's token.
    async fn authorised<T>(&self, message: T) -> Result<tonic::Request<T>, ConsentError> {
        let tokens = self.tokens.as_ref().ok_or_else(|| {
            ConsentError::Dependency(
                "consent has no service credentials (auth.client_id) to reach patient-index"
                    .to_owned(),
            )
        })?;
        tokens
            .request(message)
            .await
            .map_err(|status| ConsentError::Dependency(format!("identity: {}", status.message())))
    }
}

/// A patient-index error as this service reports it about `field`.
fn index_error(field: &str, status: &tonic::Status) -> ConsentError {
    match status.code() {
        tonic::Code::NotFound => {
            ConsentError::NotFound(format!("{field}: no person matches this reference"))
        }
        tonic::Code::InvalidArgument => ConsentError::invalid(
            field,
            status.message().trim_start_matches("person.").to_owned(),
        ),
        tonic::Code::FailedPrecondition => {
            ConsentError::FailedPrecondition(format!("{field}: {}", status.message()))
        }
        _ => {
            tracing::error!(code = ?status.code(), message = status.message(), "patient-index call failed");
            ConsentError::Dependency("patient-index is unavailable; retry shortly".to_owned())
        }
    }
}
