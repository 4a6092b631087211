//! Every read goes through here: consent decides, and the access —
//! permitted or denied — is recorded durably on the audit stream before any
//! data leaves. No decision, no data; no audit, no data.

use mcr_audit_client::AuditPublisher;
use mcr_auth::Principal;
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome, OutcomeReason};
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{Category, PersonReference, Purpose};
use mcr_proto::consent::v1::{DecideResponse, Decision, ReasonCode};
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
        let decision = self.ask_consent(principal, attempt, person).await?;
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
    /// PERSON_NOT_FOUND: consent's own DENY for a person it holds nothing
    /// about (the nil id, which no person ever has), so the texts, reason
    /// codes and decision id have exactly the shape a registered person
    /// without a basis gets, and probing cannot tell who is registered.
    pub async fn refuse_unknown_person(
        &self,
        principal: &Principal,
        attempt: &ReadAttempt,
    ) -> AggregatorError {
        let decision = match self.ask_consent(principal, attempt, Uuid::nil()).await {
            Ok(decision) if decision.decision() != Decision::Permit => decision,
            Ok(_) => {
                return AggregatorError::Internal(
                    "consent permitted access to a person nobody is".to_owned(),
                );
            }
            Err(error) => return error,
        };
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
        denial(&decision)
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

    async fn ask_consent(
        &self,
        principal: &Principal,
        attempt: &ReadAttempt,
        person: Uuid,
    ) -> Result<DecideResponse, AggregatorError> {
        self.consent
            .decide(
                principal.actor(),
                PersonReference {
                    reference: Some(Reference::PersonId(person.to_string())),
                },
                attempt.purpose,
                &attempt.categories,
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
