//! Small conversions between wire and domain types.

use mcr_proto::common::v1::Actor;
use mcr_proto::consent::v1::{
    DecideResponse, Decision as ProtoDecision, DecisionReason, Obligation, Provenance, Withholding,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Decision;

pub use mcr_proto::timestamps::timestamp;

/// Who recorded a change, when, from where.
pub fn provenance(
    actor: &Actor,
    at: OffsetDateTime,
    source_system: &str,
    note: &str,
) -> Provenance {
    Provenance {
        recorded_by: Some(actor.clone()),
        recorded_at: Some(timestamp(at)),
        source_system: source_system.to_owned(),
        note: note.to_owned(),
    }
}

/// Everything Decide answers besides the decision itself.
#[derive(Debug, Clone)]
pub struct DecisionContext<'a> {
    pub decision_id: Uuid,
    pub person_id: Uuid,
    pub purpose_code: &'static str,
    pub policy_version: &'a str,
    pub consent_version: u64,
    pub decided_at: OffsetDateTime,
}

/// The domain decision as the Decide response.
pub fn decide_response(decision: Decision, context: &DecisionContext<'_>) -> DecideResponse {
    DecideResponse {
        decision_id: context.decision_id.to_string(),
        decision: if decision.permit {
            ProtoDecision::Permit
        } else {
            ProtoDecision::Deny
        } as i32,
        person_id: context.person_id.to_string(),
        permitted_categories: decision
            .permitted
            .to_vec()
            .into_iter()
            .map(|c| c as i32)
            .collect(),
        reasons: decision
            .reasons
            .into_iter()
            .map(|reason| DecisionReason {
                code: reason.code as i32,
                text: reason.text,
                category: reason.category as i32,
            })
            .collect(),
        obligations: decision
            .obligations
            .into_iter()
            .map(|(kind, text)| Obligation {
                obligation_type: kind as i32,
                text,
            })
            .collect(),
        withholdings: decision
            .withholdings
            .into_iter()
            .map(|(class, category, text)| Withholding {
                reason_class: class as i32,
                category: category as i32,
                text,
            })
            .collect(),
        excluded_source_organisation_codes: decision.excluded_source_organisation_codes,
        excluded_entry_ids: decision.excluded_entry_ids,
        withhold_sensitive_demographics: decision.withhold_sensitive_demographics,
        break_glass_grant_id: decision
            .break_glass_grant_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        purpose_of_use_code: context.purpose_code.to_owned(),
        policy_version: context.policy_version.to_owned(),
        consent_version: context.consent_version,
        decided_at: Some(timestamp(context.decided_at)),
        valid_until: decision.valid_until.map(timestamp),
    }
}
