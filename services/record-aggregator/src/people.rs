//! Which person an update is about: the aggregator's own links first (one
//! query per batch), then patient-index in batches, then a registration of
//! each identifier seen for the first time, with the demographics it carried.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use mcr_auth::ServiceTokens;
use mcr_proto::common::v1::LocalIdentifier;
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::patient_index::v1::{
    Demographics, RegisterPersonRequest, RegisterPersonsRequest, ResolveLocalIdentifiersRequest,
};
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::error::AggregatorError;
use crate::store::{self, PatientKey};

/// Most identifiers patient-index resolves in one call.
const RESOLVE_BATCH: usize = 1000;
/// Registrations in flight at once when a batch is registered one by one.
const CONCURRENT_REGISTRATIONS: usize = 16;
/// Most first sights registered in one RegisterPersons call (the index's limit).
const REGISTER_BATCH: usize = 1000;

/// What became of one identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It belongs to this person.
    Person(Uuid),
    /// Patient-index refused to register it (the message says why); the
    /// updates about it are dead-lettered.
    Rejected(String),
    /// Not registered, and this batch carries no demographics to register
    /// it with: its updates arrived before the one that registers the
    /// person (delivery order is not publish order, and another batch may
    /// be registering it right now). They are redelivered to wait for it.
    Pending,
}

/// The outcome for a batch: each identifier's resolution, and the links
/// learnt from patient-index, to be stored in the batch's transaction.
#[derive(Debug, Default)]
pub struct Resolved {
    pub resolutions: HashMap<PatientKey, Resolution>,
    pub new_links: Vec<(PatientKey, Uuid)>,
}

/// Resolves identifiers through the aggregator's links and patient-index.
#[derive(Debug, Clone)]
pub struct People {
    pub pool: PgPool,
    pub index: PatientIndexClient<Channel>,
    pub tokens: ServiceTokens,
}

impl People {
    /// Resolves every identifier of `wanted` (with the demographics its
    /// updates carried). Fails only for transient reasons (index or database
    /// unavailable): the batch is then retried, never dropped.
    #[tracing::instrument(name = "resolve_people", skip_all, fields(identifiers = wanted.len()))]
    pub async fn resolve(
        &self,
        wanted: &HashMap<PatientKey, Option<Demographics>>,
    ) -> Result<Resolved, AggregatorError> {
        let keys: Vec<PatientKey> = wanted.keys().cloned().collect();
        let known = store::known_people(&self.pool, &keys).await?;
        let mut resolved = Resolved::default();
        let mut unknown = Vec::new();
        for key in keys {
            match known.get(&key) {
                Some(person) => {
                    resolved
                        .resolutions
                        .insert(key, Resolution::Person(*person));
                }
                None => unknown.push(key),
            }
        }
        let mut unregistered = Vec::new();
        for chunk in unknown.chunks(RESOLVE_BATCH) {
            let found = self.resolve_in_index(chunk).await?;
            for key in chunk {
                match found.get(key) {
                    Some(person) => {
                        resolved.new_links.push((key.clone(), *person));
                        resolved
                            .resolutions
                            .insert(key.clone(), Resolution::Person(*person));
                    }
                    None => unregistered.push(key.clone()),
                }
            }
        }
        let registering: Vec<_> = unregistered
            .into_iter()
            .filter_map(|key| match wanted.get(&key).cloned().flatten() {
                Some(demographics) => Some((key, demographics)),
                None => {
                    resolved.resolutions.insert(key, Resolution::Pending);
                    None
                }
            })
            .collect();
        let mut registrations = Vec::with_capacity(registering.len());
        for chunk in registering.chunks(REGISTER_BATCH) {
            registrations.extend(self.register_all(chunk).await?);
        }
        for (key, resolution) in registrations {
            if let Resolution::Person(person) = resolution {
                resolved.new_links.push((key.clone(), person));
            }
            resolved.resolutions.insert(key, resolution);
        }
        Ok(resolved)
    }

    async fn resolve_in_index(
        &self,
        keys: &[PatientKey],
    ) -> Result<HashMap<PatientKey, Uuid>, AggregatorError> {
        let request = self
            .tokens
            .request(ResolveLocalIdentifiersRequest {
                local_identifiers: keys.iter().map(local_identifier).collect(),
            })
            .await?;
        let response = self
            .index
            .clone()
            .resolve_local_identifiers(request)
            .await
            .map_err(|status| AggregatorError::dependency("patient-index", status))?
            .into_inner();
        Ok(response
            .results
            .into_iter()
            .filter_map(|result| {
                let identifier = result.local_identifier?;
                let person = Uuid::parse_str(&result.person_id).ok()?;
                Some((PatientKey::from(identifier), person))
            })
            .collect())
    }

    /// Registers first sights in one RegisterPersons call. The index refuses
    /// a whole batch for one invalid registration, so then each is
    /// registered alone to find which (that one is dead-lettered, the
    /// others go on).
    async fn register_all(
        &self,
        registering: &[(PatientKey, Demographics)],
    ) -> Result<Vec<(PatientKey, Resolution)>, AggregatorError> {
        let request = self
            .tokens
            .request(RegisterPersonsRequest {
                registrations: registering
                    .iter()
                    .map(|(key, demographics)| RegisterPersonRequest {
                        local_identifier: Some(local_identifier(key)),
                        demographics: Some(demographics.clone()),
                    })
                    .collect(),
            })
            .await?;
        match self.index.clone().register_persons(request).await {
            Ok(response) => registering
                .iter()
                .zip(response.into_inner().results)
                .map(|((key, _), result)| {
                    Ok((
                        key.clone(),
                        Resolution::Person(person_id(&result.person_id)?),
                    ))
                })
                .collect(),
            // An index older than RegisterPersons answers UNIMPLEMENTED:
            // one by one still works during a rolling upgrade.
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::InvalidArgument | tonic::Code::Unimplemented
                ) =>
            {
                futures::stream::iter(registering.iter().cloned())
                    .map(|(key, demographics)| async move {
                        let resolution = self.register(&key, Some(demographics)).await?;
                        Ok::<_, AggregatorError>((key, resolution))
                    })
                    .buffer_unordered(CONCURRENT_REGISTRATIONS)
                    .try_collect()
                    .await
            }
            Err(status) => Err(AggregatorError::dependency("patient-index", status)),
        }
    }

    async fn register(
        &self,
        key: &PatientKey,
        demographics: Option<Demographics>,
    ) -> Result<Resolution, AggregatorError> {
        let request = self
            .tokens
            .request(RegisterPersonRequest {
                local_identifier: Some(local_identifier(key)),
                demographics,
            })
            .await?;
        match self.index.clone().register_person(request).await {
            Ok(response) => Ok(Resolution::Person(person_id(
                &response.into_inner().person_id,
            )?)),
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                Ok(Resolution::Rejected(format!(
                    "patient-index refused the person: {}",
                    status.message()
                )))
            }
            Err(status) => Err(AggregatorError::dependency("patient-index", status)),
        }
    }
}

fn person_id(text: &str) -> Result<Uuid, AggregatorError> {
    Uuid::parse_str(text).map_err(|_| {
        AggregatorError::Internal(format!(
            "patient-index returned a malformed person id {text:?}"
        ))
    })
}

/// The proto form of `key`.
pub fn local_identifier(key: &PatientKey) -> LocalIdentifier {
    LocalIdentifier {
        organisation_code: key.organisation_code.clone(),
        system: key.system.clone(),
        value: key.value.clone(),
    }
}
