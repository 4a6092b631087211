//! The gRPC adapter: convert and validate, check the caller's scope, call the
//! registry or curation, map errors.

mod registration;

use mcr_auth::{Principal, PrincipalKind, principal, scopes};
use mcr_proto::common::v1::{PageResponse, person_reference::Reference};
use mcr_proto::patient_index::v1::patient_index_server::PatientIndex;
use mcr_proto::patient_index::v1::*;
use mcr_runtime::paging::{next_page_token, parse_page};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::convert::{self, Reader, timestamp};
use crate::curation::Curation;
use crate::domain::{self, DomainError, LocalIdentifier, NhsNumber, SearchQuery};
use crate::error::IndexError;
use crate::registry::{Registry, decode_candidates, today};
use crate::store::{self, curation};

/// Most items of one search page (the contract's limit).
const MAX_SEARCH_PAGE: u32 = 50;
/// How far a merged-away person's pointer chain is followed.
const MAX_MERGE_HOPS: usize = 16;

/// The `mcr.patient_index.v1.PatientIndex` handlers.
#[derive(Debug, Clone)]
pub struct PatientIndexApi {
    pub(crate) registry: Registry,
    pub(crate) curation: Curation,
}

type Answer<T> = Result<Response<T>, Status>;

fn caller_with(request: &Request<impl Sized>, scope: &str) -> Result<Principal, Status> {
    let caller = principal(request)?;
    caller.require_scope(scope)?;
    Ok(caller.clone())
}

fn reader(caller: &Principal) -> Reader {
    match caller.kind {
        PrincipalKind::User => Reader::Professional,
        PrincipalKind::Service => Reader::Service,
    }
}

fn uuid(field: &'static str, value: &str) -> Result<Uuid, IndexError> {
    Uuid::parse_str(value.trim()).map_err(|_| IndexError::invalid(field, "must be a UUID"))
}

fn reason(field: &'static str, value: &str, required: bool) -> Result<String, IndexError> {
    let trimmed = value.trim();
    if required && trimmed.is_empty() {
        return Err(IndexError::invalid(field, "is required"));
    }
    if trimmed.chars().count() > 500 {
        return Err(IndexError::invalid(field, "must be at most 500 characters"));
    }
    Ok(trimmed.to_owned())
}

impl PatientIndexApi {
    fn pool(&self) -> &sqlx::PgPool {
        &self.registry.pool
    }

    async fn person_message(
        &self,
        person_id: Uuid,
        include_history: bool,
        reader: Reader,
    ) -> Result<Person, IndexError> {
        self.person_message_with(person_id, Known::default(), include_history, reader)
            .await
    }

    /// [`Self::person_message`] reusing what the caller already read of the
    /// person; what is missing (and the history) is read concurrently.
    async fn person_message_with(
        &self,
        person_id: Uuid,
        known: Known,
        include_history: bool,
        reader: Reader,
    ) -> Result<Person, IndexError> {
        let row = async {
            match known.row {
                Some(row) => Ok(Some(row)),
                None => store::person(self.pool(), person_id).await,
            }
        };
        let identifiers = async {
            match known.identifiers {
                Some(identifiers) => Ok(identifiers),
                None => store::identifiers_of(self.pool(), person_id).await,
            }
        };
        let history = async {
            if include_history {
                store::history_of(self.pool(), person_id).await
            } else {
                Ok(Vec::new())
            }
        };
        let (row, identifiers, history) = tokio::try_join!(row, identifiers, history)?;
        let row =
            row.ok_or_else(|| IndexError::NotFound(format!("person {person_id} does not exist")))?;
        convert::person(&row, &identifiers, &history, reader)
    }

    /// Fills each candidate's person in: at most two queries whatever the
    /// number of candidates, one when the caller already holds the rows.
    async fn candidates_with_persons(
        &self,
        candidates: Vec<(Uuid, MatchCandidate)>,
        known_rows: Vec<store::PersonRow>,
        reader: Reader,
    ) -> Result<Vec<MatchCandidate>, IndexError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let person_ids: Vec<Uuid> = candidates.iter().map(|(person_id, _)| *person_id).collect();
        let missing: Vec<Uuid> = person_ids
            .iter()
            .filter(|person_id| !known_rows.iter().any(|row| row.id == **person_id))
            .copied()
            .collect();
        let mut rows = known_rows;
        if !missing.is_empty() {
            rows.extend(store::persons_by_ids(self.pool(), &missing).await?);
        }
        let identifiers = store::identifiers_of_many(self.pool(), &person_ids).await?;
        let mut filled = Vec::with_capacity(candidates.len());
        for (person_id, mut candidate) in candidates {
            let row = rows.iter().find(|row| row.id == person_id).ok_or_else(|| {
                IndexError::NotFound(format!("person {person_id} does not exist"))
            })?;
            let linked: Vec<_> = identifiers
                .iter()
                .filter(|identifier| identifier.person_id == person_id)
                .cloned()
                .collect();
            candidate.person = Some(convert::person(row, &linked, &[], reader)?);
            filled.push(candidate);
        }
        Ok(filled)
    }

    /// The person `reference` names — a merged-away person's survivor —
    /// whether a merge was followed, and what was read of them on the way.
    async fn resolve_reference(
        &self,
        reference: Option<&Reference>,
    ) -> Result<(Uuid, bool, Known), IndexError> {
        let start = match reference {
            Some(Reference::PersonId(id)) => uuid("person.person_id", id)?,
            Some(Reference::NhsNumber(number)) => {
                let number = NhsNumber::parse(number)
                    .map_err(|error| error.for_field("person.nhs_number"))?;
                let holders =
                    store::active_persons_with_nhs_number(self.pool(), number.as_str()).await?;
                return match holders.as_slice() {
                    [holder] => Ok((holder.id, false, Known::row(holder.clone()))),
                    [] => Err(IndexError::NotFound(
                        "no person holds this NHS Number".to_owned(),
                    )),
                    _ => Err(IndexError::FailedPrecondition(
                        "several persons hold this NHS Number; they await review or merge"
                            .to_owned(),
                    )),
                };
            }
            Some(Reference::LocalIdentifier(identifier)) => {
                let identifier =
                    LocalIdentifier::from_proto("person.local_identifier", Some(identifier))?;
                let (row, identifiers) = store::person_with_identifiers(
                    self.pool(),
                    store::PersonKey::LinkedTo(&identifier),
                )
                .await?
                .ok_or_else(|| {
                    IndexError::NotFound("this local identifier has not been registered".to_owned())
                })?;
                return Ok((row.id, false, Known::all(row, identifiers)));
            }
            None => {
                return Err(IndexError::invalid(
                    "person",
                    "give person_id, nhs_number or local_identifier",
                ));
            }
        };
        let mut current = start;
        for _ in 0..MAX_MERGE_HOPS {
            let (row, identifiers) =
                store::person_with_identifiers(self.pool(), store::PersonKey::Id(current))
                    .await?
                    .ok_or_else(|| {
                        IndexError::NotFound(format!("person {current} does not exist"))
                    })?;
            match row.merged_into {
                Some(survivor) if !row.is_active() => current = survivor,
                _ => return Ok((current, current != start, Known::all(row, identifiers))),
            }
        }
        Err(IndexError::Corrupt(format!(
            "merge chain from {start} is longer than {MAX_MERGE_HOPS}"
        )))
    }
}

/// What resolving a reference already read of the person, so that the
/// answer does not read it again.
#[derive(Debug, Default)]
struct Known {
    row: Option<store::PersonRow>,
    identifiers: Option<Vec<store::IdentifierRow>>,
}

impl Known {
    fn row(row: store::PersonRow) -> Self {
        Self {
            row: Some(row),
            identifiers: None,
        }
    }

    fn all(row: store::PersonRow, identifiers: Vec<store::IdentifierRow>) -> Self {
        Self {
            row: Some(row),
            identifiers: Some(identifiers),
        }
    }
}

#[tonic::async_trait]
impl PatientIndex for PatientIndexApi {
    async fn register_person(
        &self,
        request: Request<RegisterPersonRequest>,
    ) -> Answer<RegisterPersonResponse> {
        self.register_one(request).await
    }

    async fn register_persons(
        &self,
        request: Request<RegisterPersonsRequest>,
    ) -> Answer<RegisterPersonsResponse> {
        self.register_batch(request).await
    }

    async fn get_person(&self, request: Request<GetPersonRequest>) -> Answer<GetPersonResponse> {
        let caller = caller_with(&request, scopes::INDEX_READ)?;
        let body = request.get_ref();
        let reference = body
            .person
            .as_ref()
            .and_then(|person| person.reference.as_ref());
        let (person_id, resolved_through_merge, known) = self.resolve_reference(reference).await?;
        Ok(Response::new(GetPersonResponse {
            person: Some(
                self.person_message_with(person_id, known, body.include_history, reader(&caller))
                    .await?,
            ),
            resolved_through_merge,
        }))
    }

    async fn resolve_local_identifier(
        &self,
        request: Request<ResolveLocalIdentifierRequest>,
    ) -> Answer<ResolveLocalIdentifierResponse> {
        caller_with(&request, scopes::INDEX_READ)?;
        let identifier = LocalIdentifier::from_proto(
            "local_identifier",
            request.get_ref().local_identifier.as_ref(),
        )
        .map_err(IndexError::from)?;
        let link = store::person_of_identifier(self.pool(), &identifier)
            .await?
            .ok_or_else(|| {
                IndexError::NotFound("this local identifier has not been registered".to_owned())
            })?;
        let sensitive = store::person(self.pool(), link.person_id)
            .await?
            .is_some_and(|person| person.sensitive);
        Ok(Response::new(ResolveLocalIdentifierResponse {
            person_id: link.person_id.to_string(),
            sensitive,
        }))
    }

    async fn resolve_local_identifiers(
        &self,
        request: Request<ResolveLocalIdentifiersRequest>,
    ) -> Answer<ResolveLocalIdentifiersResponse> {
        caller_with(&request, scopes::INDEX_READ)?;
        let wanted = &request.get_ref().local_identifiers;
        if wanted.is_empty() || wanted.len() > 1000 {
            return Err(IndexError::invalid("local_identifiers", "give 1-1000 identifiers").into());
        }
        let identifiers = wanted
            .iter()
            .enumerate()
            .map(|(index, identifier)| {
                LocalIdentifier::from_proto("local_identifiers", Some(identifier)).map_err(
                    |error: DomainError| {
                        IndexError::invalid("local_identifiers", format!("item {index}: {error}"))
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let found = store::persons_of_identifiers(self.pool(), &identifiers).await?;
        let results = identifiers
            .iter()
            .map(|identifier| {
                let hit = found.iter().find(|(organisation, system, value, _, _)| {
                    *organisation == identifier.organisation_code
                        && *system == identifier.system
                        && *value == identifier.value
                });
                ResolvedIdentifier {
                    local_identifier: Some(identifier.to_proto()),
                    person_id: hit
                        .map(|(_, _, _, person, _)| person.to_string())
                        .unwrap_or_default(),
                    sensitive: hit.is_some_and(|(_, _, _, _, sensitive)| *sensitive),
                }
            })
            .collect();
        Ok(Response::new(ResolveLocalIdentifiersResponse { results }))
    }

    async fn search_persons(
        &self,
        request: Request<SearchPersonsRequest>,
    ) -> Answer<SearchPersonsResponse> {
        let caller = caller_with(&request, scopes::INDEX_READ)?;
        let body = request.get_ref();
        let page_request = body.page.clone().unwrap_or_default();
        if page_request.page_size > MAX_SEARCH_PAGE {
            return Err(IndexError::invalid(
                "page.page_size",
                format!("must be at most {MAX_SEARCH_PAGE}"),
            )
            .into());
        }
        let minimum = domain::MatchGrade::minimum_from_proto(body.minimum_grade);
        let (fingerprint, ranked, known_rows) = match &body.query {
            Some(search_persons_request::Query::NhsNumber(number)) => {
                let number = NhsNumber::parse(number)
                    .map_err(|error| IndexError::from(error.for_field("nhs_number")))?;
                let holders =
                    store::active_persons_with_nhs_number(self.pool(), number.as_str()).await?;
                let ranked: Vec<(Uuid, MatchCandidate)> = holders
                    .iter()
                    .map(|holder| {
                        (
                            holder.id,
                            MatchCandidate {
                                person: None,
                                match_weight: 0.0,
                                match_probability: 1.0,
                                grade: MatchGrade::Certain as i32,
                                contributions: vec![FieldContribution {
                                    field: MatchField::NhsNumber as i32,
                                    comparison_level: "exact".to_owned(),
                                    similarity: 1.0,
                                    weight: 0.0,
                                }],
                            },
                        )
                    })
                    .collect();
                (format!("nhs:{}", number.as_str()), ranked, holders)
            }
            Some(search_persons_request::Query::Demographics(query)) => {
                let checked = SearchQuery::from_proto(query, today())
                    .map_err(|error| IndexError::from(error.within("demographics")))?;
                let ranked = self.registry.search(&checked, minimum).await?;
                (
                    format!("{query:?}|{}", body.minimum_grade),
                    ranked
                        .into_iter()
                        .map(|(person, outcome)| (person, outcome.to_proto_candidate()))
                        .collect(),
                    Vec::new(),
                )
            }
            None => {
                return Err(IndexError::invalid("query", "give nhs_number or demographics").into());
            }
        };
        let page = parse_page(
            page_request.page_size.min(MAX_SEARCH_PAGE),
            &page_request.page_token,
            &fingerprint,
        )
        .map_err(IndexError::from)?;
        let offset: usize = match page.after.as_deref().map(str::parse) {
            None => 0,
            Some(Ok(offset)) => offset,
            Some(Err(_)) => {
                return Err(
                    IndexError::invalid("page.page_token", "is not valid for this query").into(),
                );
            }
        };
        let size = page.size.min(MAX_SEARCH_PAGE) as usize;
        let end = (offset + size).min(ranked.len());
        let next_page_token = if end < ranked.len() {
            next_page_token(&end.to_string(), &fingerprint)
        } else {
            String::new()
        };
        let this_page = ranked.into_iter().skip(offset).take(size).collect();
        Ok(Response::new(SearchPersonsResponse {
            candidates: self
                .candidates_with_persons(this_page, known_rows, reader(&caller))
                .await?,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn link_local_identifier(
        &self,
        request: Request<LinkLocalIdentifierRequest>,
    ) -> Answer<LinkLocalIdentifierResponse> {
        let caller = caller_with(&request, scopes::INDEX_WRITE)
            .or_else(|_| caller_with(&request, scopes::INDEX_ADMIN))?;
        let body = request.get_ref();
        let identifier =
            LocalIdentifier::from_proto("local_identifier", body.local_identifier.as_ref())
                .map_err(IndexError::from)?;
        let person_id = uuid("person_id", &body.person_id)?;
        let reason = reason("reason", &body.reason, body.relink)?;
        let review_item_id = if body.review_item_id.is_empty() {
            None
        } else {
            let review_item_id = uuid("review_item_id", &body.review_item_id)?;
            curation::require_open_review(self.pool(), review_item_id).await?;
            Some(review_item_id)
        };
        let previous = self
            .curation
            .link(
                &identifier,
                person_id,
                body.relink,
                caller.has_scope(scopes::INDEX_ADMIN),
                &caller.actor(),
                &reason,
            )
            .await?;
        if let Some(review_item_id) = review_item_id {
            curation::dismiss_review(self.pool(), review_item_id, "resolved by linking").await?;
        }
        Ok(Response::new(LinkLocalIdentifierResponse {
            person: Some(
                self.person_message(person_id, false, reader(&caller))
                    .await?,
            ),
            previous_person_id: previous
                .filter(|previous| *previous != person_id)
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }))
    }

    async fn merge_persons(
        &self,
        request: Request<MergePersonsRequest>,
    ) -> Answer<MergePersonsResponse> {
        let caller = caller_with(&request, scopes::INDEX_ADMIN)?;
        let body = request.get_ref();
        let surviving = uuid("surviving_person_id", &body.surviving_person_id)?;
        let merged = uuid("merged_person_id", &body.merged_person_id)?;
        if surviving == merged {
            return Err(IndexError::invalid(
                "merged_person_id",
                "must differ from surviving_person_id",
            )
            .into());
        }
        let reason = reason("reason", &body.reason, true)?;
        let review_item_id = if body.review_item_id.is_empty() {
            None
        } else {
            let review_item_id = uuid("review_item_id", &body.review_item_id)?;
            curation::require_open_review(self.pool(), review_item_id).await?;
            Some(review_item_id)
        };
        let merge = self
            .curation
            .merge(surviving, merged, &caller.actor(), &reason, review_item_id)
            .await?;
        Ok(Response::new(MergePersonsResponse {
            merge_id: merge.id.to_string(),
            surviving_person: Some(
                self.person_message(surviving, false, reader(&caller))
                    .await?,
            ),
            merged_at: Some(timestamp(merge.merged_at)),
        }))
    }

    async fn unmerge_person(
        &self,
        request: Request<UnmergePersonRequest>,
    ) -> Answer<UnmergePersonResponse> {
        let caller = caller_with(&request, scopes::INDEX_ADMIN)?;
        let body = request.get_ref();
        let reason = reason("reason", &body.reason, true)?;
        let merge = match &body.target {
            Some(unmerge_person_request::Target::MergeId(id)) => {
                curation::merge_by_id(self.pool(), uuid("merge_id", id)?).await?
            }
            Some(unmerge_person_request::Target::MergedPersonId(id)) => {
                curation::latest_merge_of(self.pool(), uuid("merged_person_id", id)?).await?
            }
            None => {
                return Err(
                    IndexError::invalid("target", "give merge_id or merged_person_id").into(),
                );
            }
        }
        .ok_or_else(|| IndexError::NotFound("no such merge".to_owned()))?;
        let unmerged_at = self
            .curation
            .unmerge(&merge, &caller.actor(), &reason)
            .await?;
        Ok(Response::new(UnmergePersonResponse {
            merge_id: merge.id.to_string(),
            surviving_person: Some(
                self.person_message(merge.surviving_person_id, false, reader(&caller))
                    .await?,
            ),
            restored_person: Some(
                self.person_message(merge.merged_person_id, false, reader(&caller))
                    .await?,
            ),
            unmerged_at: Some(timestamp(unmerged_at)),
        }))
    }

    async fn list_possible_duplicates(
        &self,
        request: Request<ListPossibleDuplicatesRequest>,
    ) -> Answer<ListPossibleDuplicatesResponse> {
        let caller = caller_with(&request, scopes::INDEX_ADMIN)?;
        let body = request.get_ref();
        let organisation = if body.organisation_code.is_empty() {
            None
        } else {
            Some(body.organisation_code.trim().to_ascii_uppercase())
        };
        let fingerprint = format!("reviews:{organisation:?}");
        let page_request = body.page.clone().unwrap_or_default();
        let page = parse_page(
            page_request.page_size,
            &page_request.page_token,
            &fingerprint,
        )
        .map_err(IndexError::from)?;
        let after = match page.after.as_deref() {
            None => None,
            Some(cursor) => Some(
                parse_review_cursor(cursor)
                    .ok_or_else(|| IndexError::invalid("page.page_token", "is not valid"))?,
            ),
        };
        let mut rows = curation::open_reviews(
            self.pool(),
            organisation.as_deref(),
            after,
            i64::from(page.size) + 1,
        )
        .await?;
        let next_page_token = if rows.len() > page.size as usize {
            rows.truncate(page.size as usize);
            rows.last()
                .map(|last| {
                    next_page_token(
                        &format!("{}:{}", last.queued_at.unix_timestamp_nanos(), last.id),
                        &fingerprint,
                    )
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let candidates = self
                .candidates_with_persons(
                    decode_candidates(&row.candidates)?,
                    Vec::new(),
                    reader(&caller),
                )
                .await?;
            items.push(PossibleDuplicate {
                review_item_id: row.id.to_string(),
                person: Some(
                    self.person_message(row.person_id, false, reader(&caller))
                        .await?,
                ),
                registered_identifier: Some(mcr_proto::common::v1::LocalIdentifier {
                    organisation_code: row.organisation_code,
                    system: row.system,
                    value: row.value,
                }),
                candidates,
                queued_at: Some(timestamp(row.queued_at)),
            });
        }
        Ok(Response::new(ListPossibleDuplicatesResponse {
            items,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn dismiss_possible_duplicate(
        &self,
        request: Request<DismissPossibleDuplicateRequest>,
    ) -> Answer<DismissPossibleDuplicateResponse> {
        caller_with(&request, scopes::INDEX_ADMIN)?;
        let body = request.get_ref();
        let review_item_id = uuid("review_item_id", &body.review_item_id)?;
        let reason = reason("reason", &body.reason, true)?;
        let dismissed_at = curation::dismiss_review(self.pool(), review_item_id, &reason).await?;
        Ok(Response::new(DismissPossibleDuplicateResponse {
            review_item_id: review_item_id.to_string(),
            dismissed_at: Some(timestamp(dismissed_at)),
        }))
    }
}

fn parse_review_cursor(cursor: &str) -> Option<(time::OffsetDateTime, Uuid)> {
    let (nanos, id) = cursor.split_once(':')?;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
    Some((at, Uuid::parse_str(id).ok()?))
}
