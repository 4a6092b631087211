//! The gRPC adapter: check the request, call [`Records`], convert.

use mcr_auth::{Principal, PrincipalKind, principal, scopes};
use mcr_proto::common::v1::{Category, PageResponse};
use mcr_proto::records::v1::record_aggregator_server::RecordAggregator;
use mcr_proto::records::v1::{
    BundleType, CareRecordEntry, CategoryCount, EntrySource, GetCareRecordBundleRequest,
    GetCareRecordBundleResponse, GetCareRecordRequest, GetCareRecordResponse, GetEntryRequest,
    GetEntryResponse, GroupedEntry, SourceFreshness,
};
use mcr_proto::timestamps::timestamp;
use mcr_runtime::paging::{next_page_token, parse_page};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::domain::StoredEntry;
use crate::domain::fhir::{BundleKind, BundleResource, bundle};
use crate::domain::request;
use crate::domain::view::page;
use crate::error::AggregatorError;
use crate::records::{PermittedView, Records, ViewRequest};

type Answer<T> = Result<Response<T>, Status>;

#[cfg(test)]
#[path = "grpc_proptests.rs"]
mod proptests;

/// The `mcr.records.v1.RecordAggregator` handlers.
#[derive(Debug, Clone)]
pub struct RecordAggregatorApi {
    pub records: Records,
}

/// A professional with `records:read`: record reads are always for a person
/// acting in a role, never for a service.
fn reader<T>(request: &Request<T>) -> Result<Principal, Status> {
    let caller = principal(request)?;
    caller.require_scope(scopes::RECORDS_READ)?;
    if caller.kind != PrincipalKind::User {
        return Err(Status::permission_denied(
            "care records are read by professionals: use a user token, not a service token",
        ));
    }
    Ok(caller.clone())
}

fn client_address<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map(|address| address.ip().to_string())
        .unwrap_or_default()
}

/// The text a page token is bound to: the same query gets the next page.
fn fingerprint(view: &ViewRequest, extra: &str) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{extra}",
        view.person.reference, view.purpose, view.categories, view.window.from, view.window.to
    )
}

/// The checked fields every view request shares.
fn view_request(
    person: Option<&mcr_proto::common::v1::PersonReference>,
    purpose: i32,
    categories: &[i32],
    (from, to): (
        Option<&prost_types::Timestamp>,
        Option<&prost_types::Timestamp>,
    ),
    client_address: String,
) -> Result<ViewRequest, AggregatorError> {
    for (field, bound) in [("effective_from", from), ("effective_to", to)] {
        if bound.is_some_and(|at| {
            !(EARLIEST_WINDOW_SECONDS..=LATEST_WINDOW_SECONDS).contains(&at.seconds)
        }) {
            return Err(AggregatorError::invalid(
                field,
                "must lie between 1800-01-01 and 2200-01-01; leave it out for an open window",
            ));
        }
    }
    Ok(ViewRequest {
        person: request::person_reference(person)?,
        purpose: request::purpose(purpose)?,
        categories: request::categories(categories)?,
        window: request::window(from, to)?,
        client_address,
    })
}

/// 1800-01-01T00:00:00Z. No entry is older (connectors publish nothing
/// before 1850), so an earlier window bound is a client's mistake — or a
/// probe — not a question.
const EARLIEST_WINDOW_SECONDS: i64 = -5_364_662_400;
/// 2200-01-01T00:00:00Z, far past any booked appointment.
const LATEST_WINDOW_SECONDS: i64 = 7_258_118_400;

fn offset(after: Option<&String>) -> Result<usize, AggregatorError> {
    after
        .map(|cursor| cursor.parse::<usize>())
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|_| AggregatorError::invalid("page.page_token", "is not valid for this query"))
}

#[tonic::async_trait]
impl RecordAggregator for RecordAggregatorApi {
    #[tracing::instrument(skip_all, fields(purpose, categories))]
    async fn get_care_record(
        &self,
        request: Request<GetCareRecordRequest>,
    ) -> Answer<GetCareRecordResponse> {
        let caller = reader(&request)?;
        let client = client_address(&request);
        let body = request.into_inner();
        let view_request = view_request(
            body.person.as_ref(),
            body.purpose,
            &body.categories,
            (body.effective_from.as_ref(), body.effective_to.as_ref()),
            client,
        )?;
        let page_request = body.page.unwrap_or_default();
        let text = fingerprint(&view_request, &body.include_resources.to_string());
        let page_spec = parse_page(page_request.page_size, &page_request.page_token, &text)
            .map_err(AggregatorError::from)?;
        let start = offset(page_spec.after.as_ref())?;
        let view = self.records.permitted_view(&caller, view_request).await?;
        let timeline = view.timeline();
        let (items, next) = page(&timeline.items, start, page_spec.size as usize);
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let mut entry = self
                .entry_message(&view, item.entry, body.include_resources)
                .await;
            for duplicate in &item.duplicates {
                let (summary, _) = view.shown(duplicate);
                entry.duplicates.push(GroupedEntry {
                    entry_id: duplicate.entry_id.to_string(),
                    source: Some(self.source(duplicate).await),
                    display_summary: summary,
                    effective_time: Some(timestamp(duplicate.effective_time)),
                });
            }
            entries.push(entry);
        }
        let mut sources = Vec::with_capacity(timeline.freshness.len());
        for (code, at) in &timeline.freshness {
            sources.push(SourceFreshness {
                organisation_code: code.clone(),
                organisation_name: self.records.names.name(code).await,
                last_update_received_at: Some(timestamp(*at)),
            });
        }
        let shown_categories = shown_categories(&timeline.category_counts);
        let audit_event_id = self
            .records
            .audit_view(&caller, &view, shown_categories, timeline.items.len())
            .await?;
        Ok(Response::new(GetCareRecordResponse {
            person_id: view.decision.person_id.clone(),
            patient: view.patient.clone(),
            sensitive_demographics_withheld: view.sensitive_withheld,
            entries,
            category_counts: timeline
                .category_counts
                .iter()
                .map(|(category, count)| CategoryCount {
                    category: *category,
                    count: *count,
                })
                .collect(),
            sources,
            withheld: view.notices.clone(),
            permitted_categories: view.decision.permitted_categories.clone(),
            decision_id: view.decision.decision_id.clone(),
            policy_version: view.decision.policy_version.clone(),
            break_glass_banner: banner(&view),
            view_version: view.record.view_version,
            audit_event_id,
            generated_at: Some(timestamp(OffsetDateTime::now_utc())),
            page: Some(PageResponse {
                next_page_token: next.map_or_else(String::new, |next| {
                    next_page_token(&text, &next.to_string())
                }),
            }),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_care_record_bundle(
        &self,
        request: Request<GetCareRecordBundleRequest>,
    ) -> Answer<GetCareRecordBundleResponse> {
        let caller = reader(&request)?;
        let client = client_address(&request);
        let body = request.into_inner();
        let kind = match BundleType::try_from(body.bundle_type) {
            Ok(BundleType::Unspecified | BundleType::Searchset) => BundleKind::Searchset,
            Ok(BundleType::Collection) => BundleKind::Collection,
            Err(_) => {
                return Err(AggregatorError::invalid(
                    "bundle_type",
                    "must be SEARCHSET or COLLECTION",
                )
                .into());
            }
        };
        let view_request = view_request(
            body.person.as_ref(),
            body.purpose,
            &body.categories,
            (body.effective_from.as_ref(), body.effective_to.as_ref()),
            client,
        )?;
        let page_request = body.page.unwrap_or_default();
        let text = fingerprint(&view_request, &format!("bundle:{kind:?}"));
        let page_spec = parse_page(page_request.page_size, &page_request.page_token, &text)
            .map_err(AggregatorError::from)?;
        let start = offset(page_spec.after.as_ref())?;
        let view = self.records.permitted_view(&caller, view_request).await?;
        let timeline = view.timeline();
        // A Bundle carries every resource as published: grouped copies too.
        let resources: Vec<&StoredEntry> = timeline
            .items
            .iter()
            .flat_map(|item| std::iter::once(item.entry).chain(item.duplicates.iter().copied()))
            .collect();
        let (page_items, next) = page(&resources, start, page_spec.size as usize);
        let shown: Vec<(String, String)> =
            page_items.iter().map(|entry| view.shown(entry)).collect();
        let bundle_resources: Vec<BundleResource<'_>> = page_items
            .iter()
            .zip(&shown)
            .map(|(entry, (_, resource))| BundleResource {
                entry_id: entry.entry_id.to_string(),
                resource_json: resource,
            })
            .collect();
        let notices: Vec<String> = view
            .notices
            .iter()
            .map(|notice| notice.text.clone())
            .collect();
        let audit_event_id = self
            .records
            .audit_view(
                &caller,
                &view,
                shown_categories(&timeline.category_counts),
                resources.len(),
            )
            .await?;
        let bundle = bundle(
            kind,
            &audit_event_id,
            OffsetDateTime::now_utc(),
            &bundle_resources,
            resources.len(),
            &notices,
        );
        Ok(Response::new(GetCareRecordBundleResponse {
            bundle_json: bundle.to_string(),
            person_id: view.decision.person_id.clone(),
            decision_id: view.decision.decision_id.clone(),
            audit_event_id,
            page: Some(PageResponse {
                next_page_token: next.map_or_else(String::new, |next| {
                    next_page_token(&text, &next.to_string())
                }),
            }),
        }))
    }

    #[tracing::instrument(skip_all, fields(entry_id = %request.get_ref().entry_id))]
    async fn get_entry(&self, request: Request<GetEntryRequest>) -> Answer<GetEntryResponse> {
        let caller = reader(&request)?;
        let client = client_address(&request);
        let body = request.into_inner();
        let entry_id = uuid::Uuid::parse_str(body.entry_id.trim()).map_err(|_| {
            AggregatorError::invalid(
                "entry_id",
                "must be an entry id (a UUID) from GetCareRecord",
            )
        })?;
        let purpose = request::purpose(body.purpose)?;
        let (entry, decision, sensitive_withheld, audit_event_id) = self
            .records
            .entry(&caller, entry_id, purpose, client)
            .await?;
        let mut message = self.plain_entry_message(&entry).await;
        message.fhir_resource_json = entry.fhir_resource_json.clone();
        Ok(Response::new(GetEntryResponse {
            entry: Some(message),
            person_id: decision.person_id.clone(),
            decision_id: decision.decision_id.clone(),
            break_glass_banner: banner_of(&decision),
            sensitive_demographics_withheld: sensitive_withheld,
            audit_event_id,
        }))
    }
}

impl RecordAggregatorApi {
    async fn source(&self, entry: &StoredEntry) -> EntrySource {
        EntrySource {
            organisation_code: entry.organisation_code.clone(),
            organisation_name: self.records.names.name(&entry.organisation_code).await,
            system: entry.source_system.clone(),
            local_entry_id: entry.local_entry_id.clone(),
            version: entry.version,
            last_updated: Some(timestamp(entry.last_updated)),
        }
    }

    async fn plain_entry_message(&self, entry: &StoredEntry) -> CareRecordEntry {
        CareRecordEntry {
            entry_id: entry.entry_id.to_string(),
            category: entry.category as i32,
            effective_time: Some(timestamp(entry.effective_time)),
            display_summary: entry.display_summary.clone(),
            resource_type: entry.resource_type.clone(),
            source: Some(self.source(entry).await),
            duplicates: Vec::new(),
            fhir_resource_json: String::new(),
        }
    }

    async fn entry_message(
        &self,
        view: &PermittedView,
        entry: &StoredEntry,
        with_resource: bool,
    ) -> CareRecordEntry {
        let mut message = self.plain_entry_message(entry).await;
        // Only a sensitive person's entries differ from what is stored, and
        // only a Bundle or include_resources needs the resource: most views
        // copy neither.
        if with_resource || view.sensitive_withheld {
            let (summary, resource) = view.shown(entry);
            message.display_summary = summary;
            if with_resource {
                message.fhir_resource_json = resource;
            }
        }
        message
    }
}

fn shown_categories(counts: &std::collections::BTreeMap<i32, u32>) -> Vec<Category> {
    counts
        .keys()
        .filter_map(|value| Category::try_from(*value).ok())
        .collect()
}

fn banner(view: &PermittedView) -> String {
    banner_of(&view.decision)
}

fn banner_of(decision: &mcr_proto::consent::v1::DecideResponse) -> String {
    use mcr_proto::consent::v1::ObligationType;
    decision
        .obligations
        .iter()
        .find(|obligation| obligation.obligation_type() == ObligationType::ShowBreakGlassBanner)
        .map(|obligation| obligation.text.clone())
        .unwrap_or_default()
}
