//! Bulk registration: a batch is decided in request order exactly as if its
//! registrations arrived one at a time, but it is read and written
//! set-based in one transaction, so a load costs a handful of statements
//! and one commit per batch instead of several statements and a commit per
//! person.

use std::collections::HashMap;

use mcr_proto::patient_index::v1 as proto;
use prost::Message;
use uuid::Uuid;

use crate::domain::{
    LocalIdentifier, MatchProfile, NhsNumber, PersonDemographics, RegistrationChoice,
    blocking_keys, candidate_keys, choose_registration,
};
use crate::error::IndexError;
use crate::registry::{
    MAX_CANDIDATES, Registered, Registry, encode_candidates, key_strings, lock_key, stored_profile,
};
use crate::store::bulk::{BatchWrites, NewHistory, NewLink, NewPerson, NewReview};
use crate::store::{self, Registration};

/// Most registrations in one bulk call.
pub const MAX_REGISTRATIONS: usize = 1_000;

/// One registration of a batch, with what matching needs worked out once.
struct Prepared<'a> {
    identifier: &'a LocalIdentifier,
    demographics: &'a PersonDemographics,
    normalised: proto::Demographics,
    encoded: Vec<u8>,
    profile: MatchProfile,
    keys: Vec<String>,
    candidate_keys: Vec<String>,
}

impl<'a> Prepared<'a> {
    fn new(identifier: &'a LocalIdentifier, demographics: &'a PersonDemographics) -> Self {
        let normalised = demographics.to_proto();
        let profile = MatchProfile::from(demographics);
        Self {
            identifier,
            demographics,
            encoded: normalised.encode_to_vec(),
            normalised,
            keys: key_strings(&blocking_keys(&profile)),
            candidate_keys: key_strings(&candidate_keys(&profile)),
            profile,
        }
    }

    fn verified_nhs_number(&self) -> Option<&str> {
        self.demographics
            .nhs_number
            .as_ref()
            .filter(|_| self.demographics.has_verified_nhs_number())
            .map(NhsNumber::as_str)
    }
}

/// The persons a batch may link to: those the store holds under the
/// batch's keys, and those the batch itself creates or gives new keys.
#[derive(Default)]
struct CandidatePool {
    profiles: HashMap<Uuid, MatchProfile>,
    by_key: HashMap<String, Vec<Uuid>>,
}

impl CandidatePool {
    fn add(&mut self, person: Uuid, profile: Option<MatchProfile>, keys: &[String]) {
        if let Some(profile) = profile {
            self.profiles.insert(person, profile);
        }
        for key in keys {
            let persons = self.by_key.entry(key.clone()).or_default();
            if !persons.contains(&person) {
                persons.push(person);
            }
        }
    }

    /// Distinct persons under any of `keys`, at most [`MAX_CANDIDATES`], as
    /// a single registration's candidate query would find them.
    fn candidates(&self, keys: &[String]) -> Vec<(Uuid, &MatchProfile)> {
        let mut found: Vec<(Uuid, &MatchProfile)> = Vec::new();
        for person in keys.iter().filter_map(|key| self.by_key.get(key)).flatten() {
            if found.len() as i64 >= MAX_CANDIDATES {
                break;
            }
            if let Some(profile) = self.profiles.get(person)
                && !found.iter().any(|(seen, _)| seen == person)
            {
                found.push((*person, profile));
            }
        }
        found
    }
}

impl Registry {
    /// Registers every `(identifier, demographics)` of a batch (distinct
    /// identifiers) in request order; all of it commits or none does.
    ///
    /// The registration locks of the whole batch are taken first, in one
    /// order, so concurrent batches and single registrations of the same
    /// dates of birth or NHS Numbers wait for each other instead of
    /// creating the same person twice.
    #[tracing::instrument(name = "index.register_many", skip_all, fields(registrations = items.len()))]
    pub async fn register_many(
        &self,
        items: &[(LocalIdentifier, PersonDemographics)],
    ) -> Result<Vec<Registered>, IndexError> {
        let prepared: Vec<Prepared> = items
            .iter()
            .map(|(identifier, demographics)| Prepared::new(identifier, demographics))
            .collect();
        let mut lock_keys: Vec<String> = items
            .iter()
            .filter_map(|(_, demographics)| lock_key(demographics))
            .collect();
        lock_keys.sort_unstable();
        lock_keys.dedup();
        let mut wanted_keys: Vec<String> = prepared
            .iter()
            .flat_map(|item| item.candidate_keys.iter().cloned())
            .collect();
        wanted_keys.sort_unstable();
        wanted_keys.dedup();
        let numbers: Vec<String> = prepared
            .iter()
            .filter_map(|item| item.verified_nhs_number().map(str::to_owned))
            .collect();
        let identifiers: Vec<LocalIdentifier> = items
            .iter()
            .map(|(identifier, _)| identifier.clone())
            .collect();

        let _turn = self.serialised.acquire().await.map_err(|_| {
            IndexError::FailedPrecondition("the index is shutting down; retry".to_owned())
        })?;
        let mut transaction = self.pool.begin().await?;
        store::bulk::lock_registration_keys(&mut transaction, &lock_keys).await?;
        let linked: HashMap<LocalIdentifier, Uuid> =
            store::persons_of_identifiers(&mut *transaction, &identifiers)
                .await?
                .into_iter()
                .map(|(organisation_code, system, value, person, _)| {
                    let identifier = LocalIdentifier {
                        organisation_code,
                        system,
                        value,
                    };
                    (identifier, person)
                })
                .collect();
        let mut holders = store::bulk::nhs_number_holders(&mut transaction, &numbers).await?;
        let mut pool = CandidatePool::default();
        for keyed in store::bulk::keyed_candidates(&mut transaction, &wanted_keys).await? {
            let profile = stored_profile(&keyed.person)?;
            pool.add(keyed.person.id, Some(profile), &keyed.keys);
        }

        let mut writes = BatchWrites::default();
        let mut results = Vec::with_capacity(prepared.len());
        for item in &prepared {
            if let Some(&person_id) = linked.get(item.identifier) {
                // A savepoint inside the batch's transaction.
                store::refresh_registration(&mut *transaction, person_id, &registration(item))
                    .await?;
                results.push(Registered::without_candidates(
                    person_id,
                    proto::RegisterOutcome::AlreadyLinked,
                ));
                continue;
            }
            if let Some(&holder) = item
                .verified_nhs_number()
                .and_then(|number| holders.get(number))
            {
                link(&mut writes, item, holder, proto::LinkMethod::NhsNumber, 0.0);
                pool.add(holder, None, &item.keys);
                results.push(Registered::without_candidates(
                    holder,
                    proto::RegisterOutcome::LinkedByNhsNumber,
                ));
                continue;
            }
            let scored: Vec<_> = pool
                .candidates(&item.candidate_keys)
                .into_iter()
                .map(|(person, profile)| (person, self.model.score(&item.profile, profile)))
                .collect();
            let registered = match choose_registration(scored) {
                RegistrationChoice::Link { person, outcome } => {
                    link(
                        &mut writes,
                        item,
                        person,
                        proto::LinkMethod::DemographicMatch,
                        outcome.weight,
                    );
                    pool.add(person, None, &item.keys);
                    Registered {
                        person_id: person,
                        outcome: proto::RegisterOutcome::LinkedByDemographicMatch,
                        candidates: vec![(person, outcome)],
                        review_item_id: None,
                    }
                }
                RegistrationChoice::CreateAndReview { candidates } => {
                    let person_id = create(&mut writes, item);
                    let review_id = Uuid::now_v7();
                    writes.reviews.push(NewReview {
                        id: review_id,
                        person_id,
                        identifier: item.identifier.clone(),
                        candidates: encode_candidates(&candidates),
                    });
                    writes.history.push(NewHistory {
                        person_id,
                        kind: proto::PersonEventKind::QueuedForReview,
                        identifier: None,
                    });
                    Registered {
                        person_id,
                        outcome: proto::RegisterOutcome::CreatedAndQueuedForReview,
                        candidates,
                        review_item_id: Some(review_id),
                    }
                }
                RegistrationChoice::Create => Registered::without_candidates(
                    create(&mut writes, item),
                    proto::RegisterOutcome::Created,
                ),
            };
            if registered.outcome != proto::RegisterOutcome::LinkedByDemographicMatch {
                pool.add(registered.person_id, Some(item.profile.clone()), &item.keys);
                if let Some(number) = item.verified_nhs_number() {
                    holders
                        .entry(number.to_owned())
                        .or_insert(registered.person_id);
                }
            }
            results.push(registered);
        }
        if !store::bulk::write_batch(&mut transaction, &writes).await? {
            // Dropping the transaction rolls the whole batch back.
            return Err(IndexError::FailedPrecondition(
                "an identifier of the batch was registered concurrently; retry the batch"
                    .to_owned(),
            ));
        }
        transaction.commit().await?;
        Ok(results)
    }
}

fn registration<'a>(item: &'a Prepared<'a>) -> Registration<'a> {
    Registration {
        identifier: item.identifier,
        demographics: &item.normalised,
        nhs_number: item.demographics.nhs_number.as_ref().map(NhsNumber::as_str),
        nhs_verified: item.demographics.has_verified_nhs_number(),
        sensitive: item.demographics.sensitive,
        blocking_keys: &item.keys,
        link_method: proto::LinkMethod::Created,
        match_weight: 0.0,
    }
}

/// Queues a new person for `item`; returns its id.
fn create(writes: &mut BatchWrites, item: &Prepared) -> Uuid {
    let person_id = Uuid::now_v7();
    writes.persons.push(NewPerson {
        id: person_id,
        demographics: item.encoded.clone(),
        nhs_number: item
            .demographics
            .nhs_number
            .as_ref()
            .map(|number| number.as_str().to_owned()),
        nhs_verified: item.demographics.has_verified_nhs_number(),
        sensitive: item.demographics.sensitive,
    });
    let link = NewLink {
        identifier: item.identifier.clone(),
        person_id,
        method: proto::LinkMethod::Created,
        match_weight: 0.0,
        demographics: item.encoded.clone(),
    };
    queue_link(writes, item, link, proto::PersonEventKind::Created);
    person_id
}

/// Queues the link of `item`'s identifier to an existing person.
fn link(
    writes: &mut BatchWrites,
    item: &Prepared,
    person_id: Uuid,
    method: proto::LinkMethod,
    match_weight: f64,
) {
    let link = NewLink {
        identifier: item.identifier.clone(),
        person_id,
        method,
        match_weight,
        demographics: item.encoded.clone(),
    };
    queue_link(writes, item, link, proto::PersonEventKind::IdentifierLinked);
}

/// Queues `link` with `item`'s blocking keys for its person and the
/// history entry `kind`.
fn queue_link(
    writes: &mut BatchWrites,
    item: &Prepared,
    link: NewLink,
    kind: proto::PersonEventKind,
) {
    let person_id = link.person_id;
    writes.links.push(link);
    writes
        .keys
        .extend(item.keys.iter().map(|key| (key.clone(), person_id)));
    writes.history.push(NewHistory {
        person_id,
        kind,
        identifier: Some(item.identifier.clone()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(family: &str) -> MatchProfile {
        let demographics = proto::Demographics {
            name: Some(mcr_proto::common::v1::HumanName {
                family: family.to_owned(),
                given: vec!["Ann".to_owned()],
                ..Default::default()
            }),
            birth_date: "1980-01-02".to_owned(),
            ..Default::default()
        };
        let checked = PersonDemographics::from_proto(&demographics, crate::registry::today())
            .expect("valid demographics");
        MatchProfile::from(&checked)
    }

    #[test]
    fn a_pool_finds_each_person_once_under_any_of_its_keys() {
        let mut pool = CandidatePool::default();
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        pool.add(first, Some(profile("Smith")), &["a".into(), "b".into()]);
        pool.add(second, Some(profile("Jones")), &["b".into()]);
        let found: Vec<Uuid> = pool
            .candidates(&["a".into(), "b".into(), "c".into()])
            .into_iter()
            .map(|(person, _)| person)
            .collect();
        assert_eq!(found, vec![first, second]);
        assert!(pool.candidates(&["c".into()]).is_empty());
    }

    #[test]
    fn a_person_given_new_keys_keeps_its_own_profile() {
        let mut pool = CandidatePool::default();
        let person = Uuid::now_v7();
        pool.add(person, Some(profile("Smith")), &["a".into()]);
        pool.add(person, None, &["z".into()]);
        let found = pool.candidates(&["z".into()]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, &profile("Smith"));
    }
}
