//! The three reads: a person's care record, the same as a FHIR Bundle, and
//! one entry. Each decides with consent, assembles what the permit allows,
//! records the access on the audit trail, and only then returns.

use std::collections::HashSet;
use std::sync::Arc;

use mcr_auth::Principal;
use mcr_proto::audit::v1::{AuditAction, OutcomeReason};
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{Category, PersonReference, Purpose};
use mcr_proto::consent::v1::{DecideResponse, WithheldReasonClass};
use mcr_proto::patient_index::v1::Demographics;
use mcr_proto::records::v1::WithheldNotice;
use uuid::Uuid;

use crate::access::{Disclosure, Gatekeeper, ReadAttempt};
use crate::dependencies::{Index, OrganisationNames};
use crate::domain::StoredEntry;
use crate::domain::fhir::withhold_contact_details;
use crate::domain::view::{AccessFilter, TimeWindow, Timeline, assemble};
use crate::error::AggregatorError;
use crate::views::{Lookup, PersonRecord, Views};

/// Text of the notice when a sensitive person's contact details are removed.
pub const SENSITIVE_NOTICE: &str =
    "Address and contact details are not shown: this person's demographics are sensitive";

/// What a permitted view request needs.
#[derive(Debug, Clone)]
pub struct ViewRequest {
    pub person: PersonReference,
    pub purpose: Purpose,
    pub categories: Vec<Category>,
    pub window: TimeWindow,
    pub client_address: String,
}

/// A permitted view before paging: the decision, the banner, the record
/// and what to tell the viewer is withheld.
#[derive(Debug)]
pub struct PermittedView {
    pub decision: DecideResponse,
    pub patient: Option<Demographics>,
    pub record: Arc<PersonRecord>,
    pub filter: AccessFilter,
    pub window: TimeWindow,
    pub sensitive_withheld: bool,
    pub notices: Vec<WithheldNotice>,
    attempt: ReadAttempt,
}

impl PermittedView {
    /// The viewer's timeline.
    pub fn timeline(&self) -> Timeline<'_> {
        assemble(&self.record.entries, &self.filter, self.window)
    }

    /// An entry as this viewer may see it: a sensitive person's contact
    /// details removed from the resource (and from a demographic summary).
    pub fn shown(&self, entry: &StoredEntry) -> (String, String) {
        shown(entry, self.sensitive_withheld)
    }
}

/// The reads, over every dependency.
#[derive(Debug, Clone)]
pub struct Records {
    pub views: Views,
    pub gatekeeper: Gatekeeper,
    pub index: Index,
    pub names: OrganisationNames,
}

impl Records {
    /// Resolves the person (with the banner), decides and loads the record:
    /// everything a view or a Bundle shows, not yet audited.
    pub async fn permitted_view(
        &self,
        principal: &Principal,
        request: ViewRequest,
    ) -> Result<PermittedView, AggregatorError> {
        let attempt = ReadAttempt {
            action: AuditAction::ViewRecord,
            person: request.person,
            purpose: request.purpose,
            categories: request.categories,
            entry_id: String::new(),
            client_address: request.client_address,
        };
        // Patient-index resolves the reference and gives the banner in one
        // call; consent is then asked about the person id, which it answers
        // without asking patient-index again, while the cached record is
        // fetched. Nothing is returned before the permit and the audit.
        let person = match self.index.person(&attempt.person).await {
            Err(AggregatorError::Dependency { status, .. })
                if status.code() == tonic::Code::NotFound =>
            {
                return Err(self
                    .gatekeeper
                    .refuse_unknown_person(principal, &attempt)
                    .await);
            }
            found => found?,
        };
        let person_id = Uuid::parse_str(&person.person_id).map_err(|_| {
            AggregatorError::Internal("patient-index returned a malformed person id".to_owned())
        })?;
        let (decision, lookup) = tokio::join!(
            self.gatekeeper.decide(principal, &attempt, person_id),
            self.views.lookup(person_id)
        );
        let decision = decision?;
        let record = match lookup? {
            Lookup::Cached(record) => record,
            Lookup::Missing { version } => self.views.build(person_id, version).await?,
        };
        let sensitive_withheld = decision.withhold_sensitive_demographics
            && person.demographics.as_ref().is_some_and(|d| d.sensitive);
        let mut patient = person.demographics;
        if sensitive_withheld && let Some(demographics) = patient.as_mut() {
            demographics.address = None;
            demographics.phone.clear();
            demographics.email.clear();
        }
        let notices = notices(&decision, sensitive_withheld);
        Ok(PermittedView {
            filter: access_filter(&decision),
            decision,
            patient,
            record,
            window: request.window,
            sensitive_withheld,
            notices,
            attempt,
        })
    }

    /// Records the permitted view on the audit trail; returns the event id.
    pub async fn audit_view(
        &self,
        principal: &Principal,
        view: &PermittedView,
        shown_categories: Vec<Category>,
        entry_count: usize,
    ) -> Result<String, AggregatorError> {
        let disclosure = Disclosure {
            categories: shown_categories,
            entry_count: u32::try_from(entry_count).unwrap_or(u32::MAX),
        };
        self.gatekeeper
            .record_permitted(principal, &view.attempt, &view.decision, &disclosure)
            .await
    }

    /// One entry under the same checks; returns it as shown, its decision
    /// and the audit event id.
    pub async fn entry(
        &self,
        principal: &Principal,
        entry_id: Uuid,
        purpose: Purpose,
        client_address: String,
    ) -> Result<(StoredEntry, DecideResponse, bool, String), AggregatorError> {
        let (entry, person) = crate::store::entry(&self.views.pool, entry_id)
            .await?
            .ok_or_else(|| AggregatorError::NotFound(format!("no entry {entry_id}")))?;
        let attempt = ReadAttempt {
            action: AuditAction::ViewEntry,
            person: PersonReference {
                reference: Some(Reference::PersonId(person.to_string())),
            },
            purpose,
            categories: vec![entry.category],
            entry_id: entry_id.to_string(),
            client_address,
        };
        let decision = self.gatekeeper.decide(principal, &attempt, person).await?;
        if !access_filter(&decision).allows(&entry) {
            let class = if decision
                .permitted_categories
                .contains(&(entry.category as i32))
            {
                WithheldReasonClass::PersonRequest
            } else {
                WithheldReasonClass::AccessPolicy
            };
            let text = match class {
                WithheldReasonClass::PersonRequest => {
                    "this entry is withheld at the person's request"
                }
                _ => "this entry is not available to your role or purpose under the access policy",
            };
            self.gatekeeper
                .record_withheld(
                    principal,
                    &attempt,
                    &decision,
                    OutcomeReason {
                        code: class.as_str_name().to_owned(),
                        text: text.to_owned(),
                    },
                )
                .await?;
            return Err(AggregatorError::PermissionDenied(text.to_owned()));
        }
        let sensitive_withheld = decision.withhold_sensitive_demographics
            && is_contact_bearing(&entry)
            && self
                .index
                .person(&attempt.person)
                .await?
                .demographics
                .is_some_and(|d| d.sensitive);
        let disclosure = Disclosure {
            categories: vec![entry.category],
            entry_count: 1,
        };
        let audit_event_id = self
            .gatekeeper
            .record_permitted(principal, &attempt, &decision, &disclosure)
            .await?;
        let (summary, resource) = shown(&entry, sensitive_withheld);
        let entry = StoredEntry {
            display_summary: summary,
            fhir_resource_json: resource,
            ..entry
        };
        Ok((entry, decision, sensitive_withheld, audit_event_id))
    }
}

fn access_filter(decision: &DecideResponse) -> AccessFilter {
    AccessFilter {
        permitted_categories: decision
            .permitted_categories
            .iter()
            .filter_map(|value| Category::try_from(*value).ok())
            .collect::<HashSet<_>>(),
        excluded_organisations: decision
            .excluded_source_organisation_codes
            .iter()
            .cloned()
            .collect(),
        excluded_entry_ids: decision.excluded_entry_ids.iter().cloned().collect(),
    }
}

/// The decision's withholdings as notices; the sensitive-demographics one
/// only when contact details were actually removed.
fn notices(decision: &DecideResponse, sensitive_withheld: bool) -> Vec<WithheldNotice> {
    let mut notices: Vec<WithheldNotice> = decision
        .withholdings
        .iter()
        .filter(|withholding| {
            withholding.reason_class() != WithheldReasonClass::SensitiveDemographics
        })
        .map(|withholding| WithheldNotice {
            reason_class: withholding.reason_class,
            category: withholding.category,
            text: withholding.text.clone(),
        })
        .collect();
    if sensitive_withheld {
        notices.push(WithheldNotice {
            reason_class: WithheldReasonClass::SensitiveDemographics as i32,
            category: Category::Unspecified as i32,
            text: SENSITIVE_NOTICE.to_owned(),
        });
    }
    notices
}

fn is_contact_bearing(entry: &StoredEntry) -> bool {
    matches!(entry.resource_type.as_str(), "Patient" | "RelatedPerson")
        || entry.fhir_resource_json.contains("\"contained\"")
}

/// (display summary, resource JSON) as shown to a viewer.
fn shown(entry: &StoredEntry, sensitive_withheld: bool) -> (String, String) {
    if !sensitive_withheld {
        return (
            entry.display_summary.clone(),
            entry.fhir_resource_json.clone(),
        );
    }
    let (resource, removed) = withhold_contact_details(&entry.fhir_resource_json);
    // The provider's summary of a Patient may quote an address: replace it.
    let summary = if removed && matches!(entry.resource_type.as_str(), "Patient" | "RelatedPerson")
    {
        format!(
            "{} details (address and contact details withheld)",
            entry.resource_type
        )
    } else {
        entry.display_summary.clone()
    };
    (summary, resource)
}
