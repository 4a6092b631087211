//! A typed way to build a `RecordUpdate` that is valid by the time it
//! exists: [`RecordUpdateBuilder::build`] runs [`validate_update`].
//!
//! ```
//! use mcr_connector::builder::RecordUpdateBuilder;
//! use mcr_proto::common::v1::Category;
//! use serde_json::json;
//!
//! let update = RecordUpdateBuilder::upsert("RQW", "PAS", Category::TestResults)
//!     .patient("PAS", "H123456")
//!     .entry("obs-1", 1)
//!     .effective_time(prost_types::Timestamp { seconds: 1_764_000_000, nanos: 0 })
//!     .resource(&json!({
//!         "resourceType": "Observation",
//!         "status": "final",
//!         "code": {"text": "Haemoglobin"}
//!     }))
//!     .display_summary("Haemoglobin 135 g/L")
//!     .build()?;
//! assert_eq!(update.message_id, "RQW:PAS:obs-1:1");
//! # Ok::<(), mcr_connector::validate::Rejection>(())
//! ```

use mcr_proto::common::v1::{Category, LocalIdentifier};
use mcr_proto::consent::v1::CareRelationshipType;
use mcr_proto::patient_index::v1::Demographics;
use mcr_proto::records::v1::{CarriedCareRelationship, RecordOperation, RecordUpdate};

use crate::validate::{Rejection, validate_update};

/// Builds one `RecordUpdate`; every setter takes the value as the provider
/// holds it and `build` judges the whole.
#[derive(Debug, Clone)]
pub struct RecordUpdateBuilder {
    update: RecordUpdate,
}

impl RecordUpdateBuilder {
    /// An upsert (create or replace) of an entry of `category` held by
    /// `organisation_code`'s `source_system`.
    pub fn upsert(organisation_code: &str, source_system: &str, category: Category) -> Self {
        Self::new(
            organisation_code,
            source_system,
            category,
            RecordOperation::Upsert,
        )
    }

    /// A delete of an entry of `category`; it carries no resource.
    pub fn delete(organisation_code: &str, source_system: &str, category: Category) -> Self {
        Self::new(
            organisation_code,
            source_system,
            category,
            RecordOperation::Delete,
        )
    }

    fn new(
        organisation_code: &str,
        source_system: &str,
        category: Category,
        operation: RecordOperation,
    ) -> Self {
        Self {
            update: RecordUpdate {
                source_organisation_code: organisation_code.to_ascii_uppercase(),
                source_system: source_system.to_owned(),
                category: category as i32,
                operation: operation as i32,
                ..Default::default()
            },
        }
    }

    /// The provider's identifier of the person: `system` (e.g. "PAS" or an
    /// identifier URI) and `value` within the source organisation.
    pub fn patient(mut self, system: &str, value: &str) -> Self {
        self.update.patient_identifier = Some(LocalIdentifier {
            organisation_code: self.update.source_organisation_code.clone(),
            system: system.to_owned(),
            value: value.to_owned(),
        });
        self
    }

    /// The provider's id of the entry and its version (strictly increasing
    /// per entry at the source).
    pub fn entry(mut self, local_entry_id: &str, version: u64) -> Self {
        self.update.local_entry_id = local_entry_id.to_owned();
        self.update.version = version;
        self
    }

    /// When the fact happened or applies (required for an upsert).
    pub fn effective_time(mut self, at: impl Into<prost_types::Timestamp>) -> Self {
        self.update.effective_time = Some(at.into());
        self
    }

    /// The FHIR R4 resource; `resource_type` is taken from its
    /// `resourceType`.
    pub fn resource(mut self, resource: &serde_json::Value) -> Self {
        self.update.resource_type = resource
            .get("resourceType")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.update.fhir_resource_json = resource.to_string();
        self
    }

    /// The FHIR R4 resource as JSON text already serialised, with its type.
    pub fn resource_json(mut self, resource_type: &str, json: String) -> Self {
        self.update.resource_type = resource_type.to_owned();
        self.update.fhir_resource_json = json;
        self
    }

    /// A resource type without a resource (allowed on deletes, for display).
    pub fn resource_type(mut self, resource_type: &str) -> Self {
        self.update.resource_type = resource_type.to_owned();
        self
    }

    /// Short human summary for the timeline (1-500 characters).
    pub fn display_summary(mut self, summary: &str) -> Self {
        self.update.display_summary = summary.to_owned();
        self
    }

    /// Demographics the provider holds; used to register the person on
    /// first sight.
    pub fn demographics(mut self, demographics: Demographics) -> Self {
        self.update.demographics = Some(demographics);
        self
    }

    /// A care relationship this update shows, as the proto message.
    pub fn care_relationship(mut self, relationship: CarriedCareRelationship) -> Self {
        self.update.care_relationship = Some(relationship);
        self
    }

    /// A care relationship this update shows: its kind, the provider's
    /// reference (encounter, referral, appointment id), start and optional
    /// end.
    pub fn carries(
        self,
        relationship_type: CareRelationshipType,
        source_reference: &str,
        start: impl Into<prost_types::Timestamp>,
        end: Option<prost_types::Timestamp>,
    ) -> Self {
        self.care_relationship(CarriedCareRelationship {
            relationship_type: relationship_type as i32,
            source_reference: source_reference.to_owned(),
            start_time: Some(start.into()),
            end_time: end,
            team_code: String::new(),
        })
    }

    /// When the source produced the update.
    pub fn source_time(mut self, at: impl Into<prost_types::Timestamp>) -> Self {
        self.update.source_time = Some(at.into());
        self
    }

    /// Overrides the de-duplication id (default
    /// `{org}:{system}:{local_entry_id}:{version}`).
    pub fn message_id(mut self, message_id: &str) -> Self {
        self.update.message_id = message_id.to_owned();
        self
    }

    /// The update, or why it would be rejected.
    pub fn build(self) -> Result<RecordUpdate, Rejection> {
        let update = self.build_unchecked();
        validate_update(&update)?;
        Ok(update)
    }

    /// The update without judging it, for generators whose tests prove
    /// their output valid (the publisher validates again anyway).
    pub(crate) fn build_unchecked(mut self) -> RecordUpdate {
        if self.update.message_id.is_empty() {
            self.update.message_id = default_message_id(&self.update);
        }
        self.update
    }
}

/// `{org}:{system}:{local_entry_id}:{version}`: the same update published
/// twice gets the same id, so JetStream stores it once.
pub fn default_message_id(update: &RecordUpdate) -> String {
    format!(
        "{}:{}:{}:{}",
        update.source_organisation_code,
        update.source_system,
        update.local_entry_id,
        update.version
    )
}

#[cfg(test)]
mod tests {
    use mcr_proto::records::v1::DeadLetterReason;
    use serde_json::json;

    use super::*;

    fn at(seconds: i64) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos: 0 }
    }

    fn appointment() -> RecordUpdateBuilder {
        RecordUpdateBuilder::upsert("f81001", "EMIS", Category::Appointments)
            .patient("EMIS", "P-17")
            .entry("appt-9", 2)
            .effective_time(at(1_764_000_000))
            .resource(&json!({
                "resourceType": "Appointment",
                "status": "booked",
                "participant": [{"status": "accepted", "actor": {"display": "Dr Shah"}}]
            }))
            .display_summary("GP appointment")
    }

    #[test]
    fn a_complete_upsert_builds_with_the_default_message_id() {
        let update = appointment()
            .carries(
                CareRelationshipType::ScheduledAppointment,
                "appt-9",
                at(1_764_000_000),
                None,
            )
            .build();
        let Ok(update) = update else {
            panic!("expected a valid update: {update:?}");
        };
        assert_eq!(update.message_id, "F81001:EMIS:appt-9:2");
        assert_eq!(update.resource_type, "Appointment");
        assert_eq!(
            update.patient_identifier.map(|id| id.organisation_code),
            Some("F81001".to_owned())
        );
    }

    #[test]
    fn an_explicit_message_id_is_kept() {
        let update = appointment().message_id("custom-1").build();
        assert_eq!(update.map(|u| u.message_id), Ok("custom-1".to_owned()));
    }

    #[test]
    fn build_refuses_what_validation_refuses() {
        let missing_patient = RecordUpdateBuilder::upsert("RQW", "PAS", Category::Medications)
            .entry("m", 1)
            .build();
        assert_eq!(
            missing_patient.map_err(|r| r.reason),
            Err(DeadLetterReason::InvalidField)
        );
        let wrong_type = appointment()
            .resource(
                &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
            )
            .build();
        assert_eq!(
            wrong_type.map_err(|r| r.reason),
            Err(DeadLetterReason::ResourceTypeMismatch)
        );
    }

    #[test]
    fn a_delete_needs_only_the_entry_key() {
        let update = RecordUpdateBuilder::delete("RQW", "PAS", Category::Medications)
            .patient("PAS", "H1")
            .entry("med-1", 7)
            .build();
        assert!(update.is_ok(), "{update:?}");
    }
}
