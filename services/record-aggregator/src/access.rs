//! Every read goes through here: consent decides, and the access —
//! permitted or denied — is recorded durably on the audit stream before any
//! data leaves. No decision, no data; no audit, no data.

use mcr_audit_client::AuditPublisher;
use mcr_auth::Principal;
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome, OutcomeReason};
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{Category, PersonReference, Purpose};
use mcr_proto::consent::v1::{DecideResponse, Decision, DecisionReason, ReasonCode};
use mcr_proto::timestamps::timestamp;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::dependencies::Consent;
use crate::error::AggregatorError;

/// What is being read.
#[derive(Debug, Clone)]
pub struct ReadAttempt {
    pub action: AuditAction,
    pub person: PersonReference,
    pub purpose: Purpose,
    pub categories: Vec<Category>,
    /// For GetEntry.
    pub entry_id: String,
    pub client_address: String,
}

/// What a permitted read reports to the audit trail once assembled.
#[derive(Debug, Clone, Default)]
pub struct Disclosure {
    pub categories: Vec<Category>,
    pub entry_count: u32,
}

/// Consent and the audit trail, as reads use them.
#[derive(Debug, Clone)]
pub struct Gatekeeper {
    pub consent: Consent,
    pub audit: AuditPublisher,
}

impl Gatekeeper {
    /// Asks consent about `person` (the person the attempt's reference was
    /// resolved to); a DENY is audited and returned as an error, so the
    /// caller only ever holds a permit.
    pub async fn decide(
        &self,
        principal: &Principal,
        attempt: &ReadAttempt,
        person: Uuid,
    ) -> Result<DecideResponse, AggregatorError> {
        let decision = self
            .consent
            .decide(
                principal.actor(),
                PersonReference {
                    reference: Some(Reference::PersonId(person.to_string())),
                },
                attempt.purpose,
                &attempt.categories,
            )
            .await?;
        if decision.decision() == Decision::Permit {
            return Ok(decision);
        }
        let reasons = outcome_reasons(&decision);
        self.record(
            principal,
            attempt,
            Some(&decision),
            AuditOutcome::Denied,
            reasons,
            &Disclosure::default(),
        )
        .await?;
        Err(denial(&decision))
    }

    /// The answer to a reference that names nobody, audited as
    /// PERSON_NOT_FOUND: exactly the denial a person the caller has no
    /// basis for gets ([`unknown_person_denial`]), so probing cannot tell
    /// who is registered.
    pub async fn refuse_unknown_person(
        &self,
        principal: &Principal,
        attempt: &ReadAttempt,
    ) -> AggregatorError {
        let reasons = vec![OutcomeReason {
            code: "PERSON_NOT_FOUND".to_owned(),
            text: "no person matches the reference".to_owned(),
        }];
        if let Err(error) = self
            .record(
                principal,
                attempt,
                None,
                AuditOutcome::Denied,
                reasons,
                &Disclosure::default(),
            )
            .await
        {
            return error;
        }
        unknown_person_denial(principal, attempt.purpose)
    }

    /// Records a permitted read; the caller returns data only when this succeeds.
    pub async fn record_permitted(
        &self,
        principal: &Principal,
        attempt: &ReadAttempt,
        decision: &DecideResponse,
        disclosure: &Disclosure,
    ) -> Result<String, AggregatorError> {
        let reasons = outcome_reasons(decision);
        self.record(
            principal,
            attempt,
            Some(decision),
            AuditOutcome::Permitted,
            reasons,
            disclosure,
        )
        .await
    }

    /// Records a read refused after a permit (an entry withheld by a
    /// restriction), with `reason`.
    pub async fn record_withheld(
        &self,
        principal: &Principal,
        attempt: &ReadAttempt,
        decision: &DecideResponse,
        reason: OutcomeReason,
    ) -> Result<String, AggregatorError> {
        self.record(
            principal,
            attempt,
            Some(decision),
            AuditOutcome::Denied,
            vec![reason],
            &Disclosure::default(),
        )
        .await
    }

    #[tracing::instrument(name = "audit.publish", skip_all, fields(messaging.system = "nats", audit.action = attempt.action.as_str_name()))]
    async fn record(
        &self,
        principal: &Principal,
        attempt: &ReadAttempt,
        decision: Option<&DecideResponse>,
        outcome: AuditOutcome,
        reasons: Vec<OutcomeReason>,
        disclosure: &Disclosure,
    ) -> Result<String, AggregatorError> {
        let event_id = uuid::Uuid::new_v4().to_string();
        let person_id = decision
            .map(|decision| decision.person_id.clone())
            .unwrap_or_default();
        let named_by_id = matches!(
            &attempt.person.reference,
            Some(Reference::PersonId(id)) if *id == person_id
        );
        let event = AuditEvent {
            event_id: event_id.clone(),
            occurred_at: Some(timestamp(OffsetDateTime::now_utc())),
            source_service: "record-aggregator".to_owned(),
            actor: Some(principal.actor()),
            action: attempt.action as i32,
            person_id,
            requested_person: (!named_by_id).then(|| attempt.person.clone()),
            purpose: attempt.purpose as i32,
            purpose_of_use_code: purpose_of_use_code(attempt.purpose).to_owned(),
            outcome: outcome as i32,
            reasons,
            categories: disclosure
                .categories
                .iter()
                .map(|category| *category as i32)
                .collect(),
            entry_count: disclosure.entry_count,
            entry_id: attempt.entry_id.clone(),
            decision_id: decision.map(|d| d.decision_id.clone()).unwrap_or_default(),
            policy_version: decision
                .map(|d| d.policy_version.clone())
                .unwrap_or_default(),
            break_glass_grant_id: decision
                .map(|d| d.break_glass_grant_id.clone())
                .unwrap_or_default(),
            trace_id: mcr_runtime::propagation::current_trace_id().unwrap_or_default(),
            span_id: String::new(),
            client_address: attempt.client_address.clone(),
            target_reference: String::new(),
            description: match (attempt.action, outcome) {
                (AuditAction::ViewEntry, AuditOutcome::Permitted) => "viewed a care record entry",
                (AuditAction::ViewEntry, _) => "was refused a care record entry",
                (_, AuditOutcome::Permitted) => "viewed care record",
                _ => "was refused the care record",
            }
            .to_owned(),
        };
        self.audit
            .publish(&event)
            .await
            .map_err(|error| AggregatorError::AuditUnavailable(error.to_string()))?;
        Ok(event_id)
    }
}

/// HL7 PurposeOfUse code of `purpose`.
pub fn purpose_of_use_code(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Emergency => "ETREAT",
        Purpose::DirectCare | Purpose::Unspecified => "TREAT",
    }
}

fn outcome_reasons(decision: &DecideResponse) -> Vec<OutcomeReason> {
    decision
        .reasons
        .iter()
        .map(|reason| OutcomeReason {
            code: reason.code().as_str_name().to_owned(),
            text: reason.text.chars().take(500).collect(),
        })
        .collect()
}

/// The answer for a reference that names nobody: exactly the DENY consent
/// gives an existing person the caller's organisation has no basis for
/// (same code, text and trailing metadata, a fresh decision id), so probing
/// NHS Numbers or local identifiers cannot tell who is registered. The
/// audit trail still says PERSON_NOT_FOUND. The texts mirror consent's
/// `decide` (direct care: no care relationship; emergency: no break-glass
/// grant); the enumeration test compares the two answers end to end.
fn unknown_person_denial(principal: &Principal, purpose: Purpose) -> AggregatorError {
    let (code, text) = match purpose {
        Purpose::Emergency => (
            ReasonCode::PurposeNotPermitted,
            "emergency access needs a break-glass grant for this person".to_owned(),
        ),
        Purpose::DirectCare | Purpose::Unspecified => (
            ReasonCode::NoCareRelationship,
            format!(
                "no care relationship between {} and this person",
                principal.organisation_code
            ),
        ),
    };
    denial(&DecideResponse {
        decision_id: uuid::Uuid::now_v7().to_string(),
        decision: Decision::Deny as i32,
        reasons: vec![DecisionReason {
            code: code as i32,
            text,
            category: Category::Unspecified as i32,
        }],
        ..Default::default()
    })
}

/// The PERMISSION_DENIED of a DENY: its human reasons, and its id and
/// reason codes as trailing metadata.
fn denial(decision: &DecideResponse) -> AggregatorError {
    let texts: Vec<&str> = decision
        .reasons
        .iter()
        .map(|reason| reason.text.as_str())
        .filter(|text| !text.is_empty())
        .collect();
    let message = if texts.is_empty() {
        "access denied: no policy permits it".to_owned()
    } else {
        format!("access denied: {}", texts.join("; "))
    };
    let codes: Vec<&str> = decision
        .reasons
        .iter()
        .map(|reason| reason.code())
        .filter(|code| *code != ReasonCode::Unspecified)
        .map(|code| code.as_str_name())
        .collect();
    AggregatorError::Denied {
        message,
        decision_id: decision.decision_id.clone(),
        reason_codes: codes.join(","),
    }
}
