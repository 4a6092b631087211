//! Registration and search: the domain's matcher over the store's candidates.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcr_proto::patient_index::v1 as proto;
use prost::Message;
use sqlx::PgPool;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::domain::{
    LocalIdentifier, MatchModel, MatchOutcome, MatchProfile, NhsNumber, PersonDemographics,
    RegistrationChoice, SearchQuery, blocking_keys, candidate_keys, choose_registration,
};
use crate::error::IndexError;
use crate::store::{self, PersonRow, Registration};

/// Most candidates scored for one registration or search; blocking keeps the
/// real number far lower (a handful per record on FEBRL).
pub(crate) const MAX_CANDIDATES: i64 = 1_000;

/// What a registration did.
#[derive(Debug, Clone)]
pub struct Registered {
    pub person_id: Uuid,
    pub outcome: proto::RegisterOutcome,
    /// Scored candidates that explain the decision (person not filled in).
    pub candidates: Vec<(Uuid, MatchOutcome)>,
    pub review_item_id: Option<Uuid>,
}

/// The index's matching core.
#[derive(Debug, Clone)]
pub struct Registry {
    pub pool: PgPool,
    pub model: Arc<MatchModel>,
    /// Serialised registrations in flight at once. Each holds one pooled
    /// connection for its lock and needs another for its queries, so at most
    /// half the pool may hold locks, or the pool could run dry with every
    /// holder waiting for a second connection.
    pub serialised: Arc<tokio::sync::Semaphore>,
}

/// Today's date in UTC, the bound of "not in the future".
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

pub(crate) fn stored_profile(row: &PersonRow) -> Result<MatchProfile, IndexError> {
    let demographics = PersonDemographics::from_proto(&row.demographics()?, today())
        .map_err(|error| IndexError::Corrupt(format!("person {} demographics: {error}", row.id)))?;
    Ok(MatchProfile::from(&demographics))
}

pub(crate) fn key_strings(keys: &[crate::domain::BlockingKey]) -> Vec<String> {
    keys.iter().map(|key| key.as_str().to_owned()).collect()
}

/// The key that serialises registrations which could be the same person:
/// the date of birth, or without one the NHS Number.
pub(crate) fn lock_key(demographics: &PersonDemographics) -> Option<String> {
    demographics
        .birth_date
        .map(|date| format!("dob:{date}"))
        .or_else(|| {
            demographics
                .nhs_number
                .as_ref()
                .map(|number| format!("nhs:{}", number.as_str()))
        })
}

impl Registered {
    pub(crate) fn without_candidates(person_id: Uuid, outcome: proto::RegisterOutcome) -> Self {
        Self {
            person_id,
            outcome,
            candidates: Vec::new(),
            review_item_id: None,
        }
    }
}

impl Registry {
    /// Registers `identifier` with `demographics`: idempotent per identifier.
    ///
    /// Registrations that could be the same person (same date of birth, or
    /// same NHS Number without one) run one at a time: two providers first
    /// registering one person at the same moment would otherwise each see
    /// no match and create two persons. The lock is transaction-scoped, so
    /// a cancelled call (a caller's deadline) releases it with the rollback.
    pub async fn register(
        &self,
        identifier: &LocalIdentifier,
        demographics: &PersonDemographics,
    ) -> Result<Registered, IndexError> {
        let Some(lock_key) = lock_key(demographics) else {
            return self.register_unserialised(identifier, demographics).await;
        };
        let _turn = self.serialised.acquire().await.map_err(|_| {
            IndexError::FailedPrecondition("the index is shutting down; retry".to_owned())
        })?;
        let mut lock = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(&lock_key)
            .execute(&mut *lock)
            .await?;
        let registered = self.register_unserialised(identifier, demographics).await;
        lock.rollback().await?;
        registered
    }

    async fn register_unserialised(
        &self,
        identifier: &LocalIdentifier,
        demographics: &PersonDemographics,
    ) -> Result<Registered, IndexError> {
        let normalised = demographics.to_proto();
        let profile = MatchProfile::from(demographics);
        let keys = key_strings(&blocking_keys(&profile));
        let mut registration = Registration {
            identifier,
            demographics: &normalised,
            nhs_number: demographics.nhs_number.as_ref().map(NhsNumber::as_str),
            nhs_verified: demographics.has_verified_nhs_number(),
            sensitive: demographics.sensitive,
            blocking_keys: &keys,
            link_method: proto::LinkMethod::Created,
            match_weight: 0.0,
        };
        // A concurrent registration of the same identifier makes an insert
        // find it taken; the next round then sees it as already linked.
        for _ in 0..3 {
            if let Some(existing) = store::person_of_identifier(&self.pool, identifier).await? {
                store::refresh_registration(&self.pool, existing.person_id, &registration).await?;
                return Ok(Registered::without_candidates(
                    existing.person_id,
                    proto::RegisterOutcome::AlreadyLinked,
                ));
            }
            if let (true, Some(number)) = (registration.nhs_verified, registration.nhs_number)
                && let Some(holder) = store::active_persons_with_nhs_number(&self.pool, number)
                    .await?
                    .first()
            {
                registration.link_method = proto::LinkMethod::NhsNumber;
                if store::link_to_person(&self.pool, holder.id, &registration).await? {
                    return Ok(Registered::without_candidates(
                        holder.id,
                        proto::RegisterOutcome::LinkedByNhsNumber,
                    ));
                }
                continue;
            }
            let scored = self
                .score_candidates(&profile, &key_strings(&candidate_keys(&profile)))
                .await?;
            match choose_registration(scored) {
                RegistrationChoice::Link { person, outcome } => {
                    registration.link_method = proto::LinkMethod::DemographicMatch;
                    registration.match_weight = outcome.weight;
                    if store::link_to_person(&self.pool, person, &registration).await? {
                        return Ok(Registered {
                            person_id: person,
                            outcome: proto::RegisterOutcome::LinkedByDemographicMatch,
                            candidates: vec![(person, outcome)],
                            review_item_id: None,
                        });
                    }
                }
                RegistrationChoice::CreateAndReview { candidates } => {
                    let stored = encode_candidates(&candidates);
                    if let Some((person_id, review_item_id)) =
                        store::create_person(&self.pool, &registration, Some(stored)).await?
                    {
                        return Ok(Registered {
                            person_id,
                            outcome: proto::RegisterOutcome::CreatedAndQueuedForReview,
                            candidates,
                            review_item_id,
                        });
                    }
                }
                RegistrationChoice::Create => {
                    if let Some((person_id, _)) =
                        store::create_person(&self.pool, &registration, None).await?
                    {
                        return Ok(Registered::without_candidates(
                            person_id,
                            proto::RegisterOutcome::Created,
                        ));
                    }
                }
            }
        }
        Err(IndexError::FailedPrecondition(format!(
            "identifier {}|{} is being registered concurrently; retry",
            identifier.organisation_code, identifier.system
        )))
    }

    async fn score_candidates(
        &self,
        profile: &MatchProfile,
        keys: &[String],
    ) -> Result<Vec<(Uuid, MatchOutcome)>, IndexError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = store::candidates(&self.pool, keys, MAX_CANDIDATES).await?;
        rows.iter()
            .map(|row| Ok((row.id, self.model.score(profile, &stored_profile(row)?))))
            .collect()
    }

    /// Ranked candidates for a demographic query, best first, at or above `minimum`.
    pub async fn search(
        &self,
        query: &SearchQuery,
        minimum: crate::domain::MatchGrade,
    ) -> Result<Vec<(Uuid, MatchOutcome)>, IndexError> {
        let profile = MatchProfile::from(query);
        let keys = key_strings(&candidate_keys(&profile));
        if keys.is_empty() {
            return Err(IndexError::invalid(
                "demographics",
                "give at least one of family_name, birth_date or postcode",
            ));
        }
        let mut scored: Vec<(Uuid, MatchOutcome)> = self
            .score_candidates(&profile, &keys)
            .await?
            .into_iter()
            .filter(|(_, outcome)| outcome.grade.is_some_and(|grade| grade.meets(minimum)))
            .collect();
        scored.sort_by(|left, right| {
            right
                .1
                .weight
                .total_cmp(&left.1.weight)
                .then(left.0.cmp(&right.0))
        });
        Ok(scored)
    }
}

/// Review candidates as stored: person id and the prost-encoded outcome.
pub(crate) fn encode_candidates(candidates: &[(Uuid, MatchOutcome)]) -> serde_json::Value {
    serde_json::Value::Array(
        candidates
            .iter()
            .map(|(person, outcome)| {
                serde_json::json!({
                    "person_id": person.to_string(),
                    "candidate": STANDARD.encode(outcome.to_proto_candidate().encode_to_vec()),
                })
            })
            .collect(),
    )
}

/// The stored review candidates back as (person id, candidate without person).
pub fn decode_candidates(
    stored: &serde_json::Value,
) -> Result<Vec<(Uuid, proto::MatchCandidate)>, IndexError> {
    let corrupt = || IndexError::Corrupt("a review item's candidates are unreadable".to_owned());
    stored
        .as_array()
        .ok_or_else(corrupt)?
        .iter()
        .map(|entry| {
            let person = entry["person_id"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok())
                .ok_or_else(corrupt)?;
            let bytes = entry["candidate"]
                .as_str()
                .and_then(|text| STANDARD.decode(text).ok())
                .ok_or_else(corrupt)?;
            let candidate =
                proto::MatchCandidate::decode(bytes.as_slice()).map_err(|_| corrupt())?;
            Ok((person, candidate))
        })
        .collect()
}
