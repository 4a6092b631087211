//! Each event as a FHIR R4 `AuditEvent` in the shape of the IHE Basic Audit
//! Log Patterns (BALP): the user agent carries the role code, the
//! organisation agent the ODS code, `purposeOfEvent` the HL7 PurposeOfUse
//! (TREAT, ETREAT), the patient is an entity with role "patient".

use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome};
use mcr_proto::common::v1::{ActorKind, Purpose};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Code systems used in the rendering.
pub mod systems {
    /// DICOM/FHIR audit event types.
    pub const EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
    /// The platform's own action names.
    pub const MCR_ACTION: &str = "https://mycarerecord.org/fhir/CodeSystem/audit-action";
    /// FHIR RESTful interactions.
    pub const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
    /// HL7 v3 ActReason (PurposeOfUse).
    pub const PURPOSE_OF_USE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
    /// Agent types (BALP: the requesting user).
    pub const AGENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/extra-security-role-type";
    /// HL7 v3 RoleClass, for the organisation agent.
    pub const ROLE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleClass";
    /// The deployment's RBAC job-role codes.
    pub const ROLE_CODE: &str = "https://mycarerecord.org/fhir/CodeSystem/role-code";
    /// ODS organisation codes.
    pub const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
    /// Platform user ids.
    pub const USER_ID: &str = "https://mycarerecord.org/Id/user";
    /// Platform person ids.
    pub const PERSON_ID: &str = "https://mycarerecord.org/Id/person";
    /// Audit entity types.
    pub const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
    /// Audit entity roles.
    pub const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
    /// Audit source types.
    pub const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
}

/// BALP profile of a patient-specific read; other events claim no profile.
const PROFILE_PATIENT_READ: &str =
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead";

/// The event as FHIR R4 `AuditEvent` JSON.
pub fn audit_event(event: &AuditEvent) -> Value {
    let action = AuditAction::try_from(event.action).unwrap_or(AuditAction::Unspecified);
    let action_name = action
        .as_str_name()
        .strip_prefix("AUDIT_ACTION_")
        .unwrap_or("UNSPECIFIED");
    let (fhir_action, interaction) = match action {
        AuditAction::ViewRecord
        | AuditAction::ViewEntry
        | AuditAction::ViewPerson
        | AuditAction::ViewConsent
        | AuditAction::QueryAudit
        | AuditAction::SubjectAccessReport
        | AuditAction::ExportAudit => ("R", "read"),
        AuditAction::SearchPersons => ("E", "search-type"),
        AuditAction::RetentionPurge => ("D", "delete"),
        AuditAction::Authenticate | AuditAction::Revoke | AuditAction::Decide => ("E", "operation"),
        _ => ("U", "update"),
    };
    let permitted = event.outcome == AuditOutcome::Permitted as i32;
    let recorded = event
        .occurred_at
        .as_ref()
        .and_then(|at| {
            OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos),
            )
            .ok()
        })
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default();

    let mut resource = json!({
        "resourceType": "AuditEvent",
        "id": event.event_id,
        "type": {"system": systems::EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [
            {"system": systems::RESTFUL_INTERACTION, "code": interaction},
            {"system": systems::MCR_ACTION, "code": action_name},
        ],
        "action": fhir_action,
        "recorded": recorded,
        // 0 = success, 4 = minor failure (a refusal is not a system failure).
        "outcome": if permitted { "0" } else { "4" },
        "agent": agents(event),
        "source": {
            "site": event.source_service,
            "observer": {"display": format!("My Care Record {}", event.source_service)},
            "type": [{"system": systems::SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    });
    let reasons: Vec<String> = event
        .reasons
        .iter()
        .map(|reason| format!("{}: {}", reason.code, reason.text))
        .collect();
    if let Some(object) = resource.as_object_mut() {
        if fhir_action == "R" && !event.person_id.is_empty() {
            object.insert(
                "meta".to_owned(),
                json!({"profile": [PROFILE_PATIENT_READ]}),
            );
        }
        if !reasons.is_empty() {
            object.insert("outcomeDesc".to_owned(), json!(reasons.join("; ")));
        }
        if let Some(code) = purpose_of_use(event) {
            object.insert(
                "purposeOfEvent".to_owned(),
                json!([{"coding": [{"system": systems::PURPOSE_OF_USE, "code": code}]}]),
            );
        }
        let entities = entities(event);
        if !entities.is_empty() {
            object.insert("entity".to_owned(), Value::Array(entities));
        }
    }
    resource
}

/// TREAT / ETREAT, from the event's code or its purpose.
fn purpose_of_use(event: &AuditEvent) -> Option<&str> {
    if !event.purpose_of_use_code.is_empty() {
        return Some(event.purpose_of_use_code.as_str());
    }
    match Purpose::try_from(event.purpose) {
        Ok(Purpose::DirectCare) => Some("TREAT"),
        Ok(Purpose::Emergency) => Some("ETREAT"),
        _ => None,
    }
}

fn agents(event: &AuditEvent) -> Vec<Value> {
    let Some(actor) = event.actor.as_ref() else {
        return Vec::new();
    };
    let is_service = actor.kind == ActorKind::Service as i32;
    let mut user = json!({
        "type": {"coding": [{
            "system": systems::AGENT_TYPE,
            "code": if is_service { "dataprocessor" } else { "humanuser" },
        }]},
        "who": {"identifier": {"system": systems::USER_ID, "value": actor.user_id}},
        "requestor": true,
    });
    if let Some(object) = user.as_object_mut() {
        if !actor.display_name.is_empty()
            && let Some(who) = object.get_mut("who").and_then(Value::as_object_mut)
        {
            who.insert("display".to_owned(), json!(actor.display_name));
        }
        if !actor.role_code.is_empty() {
            object.insert(
                "role".to_owned(),
                json!([{"coding": [{"system": systems::ROLE_CODE, "code": actor.role_code}]}]),
            );
        }
        if !event.client_address.is_empty() {
            object.insert(
                "network".to_owned(),
                json!({"address": event.client_address, "type": "2"}),
            );
        }
        if !event.decision_id.is_empty() {
            object.insert(
                "policy".to_owned(),
                json!([format!("urn:uuid:{}", event.decision_id)]),
            );
        }
        if let Some(code) = purpose_of_use(event) {
            object.insert(
                "purposeOfUse".to_owned(),
                json!([{"coding": [{"system": systems::PURPOSE_OF_USE, "code": code}]}]),
            );
        }
    }
    let mut agents = vec![user];
    if !actor.organisation_code.is_empty() {
        agents.push(json!({
            "type": {"coding": [{"system": systems::ROLE_CLASS, "code": "PROV", "display": "healthcare provider"}]},
            "who": {"identifier": {"system": systems::ODS, "value": actor.organisation_code}},
            "requestor": false,
        }));
    }
    agents
}

fn entities(event: &AuditEvent) -> Vec<Value> {
    let mut entities = Vec::new();
    if !event.person_id.is_empty() {
        entities.push(json!({
            "what": {"identifier": {"system": systems::PERSON_ID, "value": event.person_id}},
            "type": {"system": systems::ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": systems::OBJECT_ROLE, "code": "1", "display": "Patient"},
        }));
    }
    if !event.entry_id.is_empty() || !event.target_reference.is_empty() {
        let reference = if event.entry_id.is_empty() {
            &event.target_reference
        } else {
            &event.entry_id
        };
        entities.push(json!({
            "what": {"display": reference},
            "type": {"system": systems::ENTITY_TYPE, "code": "2", "display": "System Object"},
        }));
    }
    entities
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::tests::sample_event;

    #[test]
    fn a_record_view_has_the_balp_shape() {
        let resource = audit_event(&sample_event());
        assert_eq!(resource["resourceType"], "AuditEvent");
        assert_eq!(resource["meta"]["profile"][0], PROFILE_PATIENT_READ);
        assert_eq!(resource["action"], "R");
        assert_eq!(resource["outcome"], "0");
        assert_eq!(resource["recorded"], "2026-09-21T14:13:20.123456789Z");
        assert_eq!(resource["purposeOfEvent"][0]["coding"][0]["code"], "TREAT");
        let user = &resource["agent"][0];
        assert_eq!(user["requestor"], true);
        assert_eq!(user["type"]["coding"][0]["code"], "humanuser");
        assert_eq!(user["role"][0]["coding"][0]["code"], "R8001");
        assert_eq!(user["who"]["display"], "Nurse Jones");
        let organisation = &resource["agent"][1];
        assert_eq!(organisation["who"]["identifier"]["system"], systems::ODS);
        assert_eq!(organisation["who"]["identifier"]["value"], "RQW");
        assert_eq!(resource["entity"][0]["role"]["code"], "1");
        assert_eq!(
            resource["entity"][0]["what"]["identifier"]["value"],
            "0193a6a4-3b7e-7cc0-8000-0000000000aa"
        );
        assert_eq!(resource["source"]["site"], "record-aggregator");
    }

    #[test]
    fn a_refused_emergency_access_says_so() {
        let mut event = sample_event();
        event.outcome = AuditOutcome::Denied as i32;
        event.purpose_of_use_code.clear();
        event.purpose = Purpose::Emergency as i32;
        event.action = AuditAction::BreakGlass as i32;
        event.reasons = vec![mcr_proto::audit::v1::OutcomeReason {
            code: "REASON_CODE_OPTED_OUT".to_owned(),
            text: "the person opted out".to_owned(),
        }];
        let resource = audit_event(&event);
        assert_eq!(resource["outcome"], "4");
        assert_eq!(resource["purposeOfEvent"][0]["coding"][0]["code"], "ETREAT");
        assert_eq!(resource["subtype"][1]["code"], "BREAK_GLASS");
        assert!(
            resource["outcomeDesc"]
                .as_str()
                .is_some_and(|text| text.contains("REASON_CODE_OPTED_OUT"))
        );
    }
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::domain::event::tests::sample_event;

    /// The checked-in rendering, validated against FHIR R4 with
    /// `tests/fhir/validate.py` (PyPI `fhir.resources`, R4B models).
    const VIEW_RECORD: &str = include_str!("../../tests/fhir/view_record.json");

    #[test]
    fn the_rendering_matches_the_validated_sample() {
        let mut event = sample_event();
        event.client_address = "10.1.2.3".to_owned();
        event.decision_id = "0193a6a4-3b7e-7cc0-8000-0000000000dd".to_owned();
        let rendered = audit_event(&event);
        if std::env::var_os("MCR_WRITE_FHIR_SAMPLE").is_some() {
            let pretty = serde_json::to_string_pretty(&rendered).unwrap_or_default();
            let _ = std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fhir/view_record.json"),
                pretty + "\n",
            );
            return;
        }
        let expected: Value = serde_json::from_str(VIEW_RECORD).unwrap_or_default();
        assert_eq!(rendered, expected);
    }
}
