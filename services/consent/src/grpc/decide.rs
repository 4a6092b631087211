//! Decide: one indexed query, the pure decision, no cache.

use mcr_auth::{Principal, PrincipalKind, scopes};
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::common::v1::{Actor, ActorKind};
use mcr_proto::consent::v1::{DecideRequest, DecideResponse};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ConsentApi;
use crate::audit::Audited;
use crate::convert::{DecisionContext, decide_response};
use crate::domain::{DecideInput, Viewer, decide, validate};
use crate::error::ConsentError;
use crate::store;

/// The viewer a service names: the actor it built from a verified token.
fn viewer_from_actor(actor: &Actor) -> Result<Viewer, ConsentError> {
    if actor.kind == ActorKind::Service as i32 {
        return Err(ConsentError::invalid(
            "actor.kind",
            "must be the professional (ACTOR_KIND_USER), not a service",
        ));
    }
    let user_id = validate::text("actor.user_id", &actor.user_id, 1, 128)?;
    let role = validate::role("actor.role", actor.role)?;
    let organisation_code =
        validate::organisation_code("actor.organisation_code", &actor.organisation_code)?;
    Ok(Viewer {
        user_id,
        role_profile_id: actor.role_profile_id.trim().to_owned(),
        role,
        organisation_code,
    })
}

impl ConsentApi {
    #[tracing::instrument(name = "consent.decide", skip_all)]
    pub(crate) async fn decide_for(
        &self,
        caller: &Principal,
        body: &DecideRequest,
    ) -> Result<DecideResponse, ConsentError> {
        let (viewer, audited_by_us) = match caller.kind {
            PrincipalKind::Service => {
                caller
                    .require_scope(scopes::CONSENT_DECIDE)
                    .map_err(|status| {
                        ConsentError::PermissionDenied(status.message().to_owned())
                    })?;
                let actor = body.actor.as_ref().ok_or_else(|| {
                    ConsentError::invalid("actor", "is required when a service asks")
                })?;
                (viewer_from_actor(actor)?, false)
            }
            PrincipalKind::User => {
                caller
                    .require_scope(scopes::RECORDS_READ)
                    .map_err(|status| {
                        ConsentError::PermissionDenied(status.message().to_owned())
                    })?;
                if body
                    .actor
                    .as_ref()
                    .is_some_and(|actor| *actor != Actor::default())
                {
                    return Err(ConsentError::invalid(
                        "actor",
                        "must be empty when a professional asks for themself",
                    ));
                }
                let actor = caller.actor();
                (viewer_from_actor(&actor)?, true)
            }
        };
        let purpose = validate::purpose("purpose", body.purpose)?;
        let requested = validate::categories("requested_categories", &body.requested_categories)?;
        let person_id = self
            .directory
            .resolve("person", body.person.as_ref())
            .await?;
        let facts = store::decision_facts(&self.pool, person_id, &viewer).await?;
        let now = OffsetDateTime::now_utc();
        let input = DecideInput {
            viewer: &viewer,
            purpose,
            requested,
            now,
        };
        let decision = decide(&input, &facts, &self.policy);
        let context = DecisionContext {
            decision_id: Uuid::now_v7(),
            person_id,
            purpose_code: purpose.code(),
            policy_version: self.policy.version(),
            consent_version: facts.consent_version,
            decided_at: now,
        };
        let response = decide_response(decision, &context);
        if audited_by_us {
            let reasons = response
                .reasons
                .iter()
                .map(|reason| {
                    let code = mcr_proto::consent::v1::ReasonCode::try_from(reason.code)
                        .map(|code| code.as_str_name().to_owned())
                        .unwrap_or_default();
                    (code, reason.text.clone())
                })
                .collect();
            let permitted = response.decision == mcr_proto::consent::v1::Decision::Permit as i32;
            let decision_id = response.decision_id.clone();
            let policy_version = response.policy_version.clone();
            let grant = response.break_glass_grant_id.clone();
            let categories = response.permitted_categories.clone();
            self.auditor
                .record(
                    &caller.actor(),
                    AuditAction::Decide,
                    permitted,
                    Audited {
                        person_id: Some(person_id),
                        description: "consent decision".to_owned(),
                        reasons,
                        target_reference: String::new(),
                    },
                    |event| {
                        event.purpose = body.purpose;
                        event.purpose_of_use_code = purpose.code().to_owned();
                        event.decision_id = decision_id;
                        event.policy_version = policy_version;
                        event.break_glass_grant_id = grant;
                        event.categories = categories;
                    },
                )
                .await?;
        }
        Ok(response)
    }
}
