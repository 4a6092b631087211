//! Break-glass: emergency access for one professional to one person.

use mcr_auth::{Principal, PrincipalKind};
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::common::v1::Purpose;
use mcr_proto::consent::v1::*;
use prost::Message;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Change, ConsentApi};
use crate::audit::Audited;
use crate::convert::timestamp;
use crate::domain::decide::BREAK_GLASS_BANNER;
use crate::domain::validate;
use crate::error::ConsentError;
use crate::events;
use crate::store::{self, GrantRow, ReviewRow};

impl ConsentApi {
    #[tracing::instrument(name = "consent.break_glass", skip_all)]
    pub(crate) async fn grant_break_glass(
        &self,
        caller: &Principal,
        body: &BreakGlassRequest,
    ) -> Result<BreakGlassResponse, ConsentError> {
        if caller.kind != PrincipalKind::User {
            return Err(ConsentError::PermissionDenied(
                "break-glass is for a professional signed in with a user token, not a service"
                    .to_owned(),
            ));
        }
        let reason =
            BreakGlassReason::try_from(body.reason_code).unwrap_or(BreakGlassReason::Unspecified);
        if reason == BreakGlassReason::Unspecified {
            return Err(ConsentError::invalid("reason_code", "is required"));
        }
        let justification = validate::text("justification", &body.justification, 10, 1000)?;
        let minutes = match body.duration_minutes {
            0 => self.limits.break_glass_default_minutes,
            asked if asked > self.limits.break_glass_max_minutes => {
                return Err(ConsentError::invalid(
                    "duration_minutes",
                    format!(
                        "must be at most {} minutes",
                        self.limits.break_glass_max_minutes
                    ),
                ));
            }
            asked => asked,
        };
        let person_id = self
            .directory
            .require_existing("person", body.person.as_ref())
            .await?;
        let now = OffsetDateTime::now_utc();
        let actor = caller.actor();
        let mut tx = store::begin(&self.pool).await?;
        let version = store::bump_version(&mut tx, person_id, now).await?;
        if store::opt_out_in_force(&mut tx, person_id).await?.is_some() {
            tx.rollback().await?;
            // Refused, and the attempt is on the record.
            self.auditor
                .record(
                    &actor,
                    AuditAction::BreakGlass,
                    false,
                    Audited {
                        person_id: Some(person_id),
                        description: "break-glass refused: the person has opted out".to_owned(),
                        reasons: vec![(
                            ReasonCode::OptedOut.as_str_name().to_owned(),
                            "the person has opted out; break-glass never overrides an opt-out"
                                .to_owned(),
                        )],
                        target_reference: String::new(),
                    },
                    |event| {
                        event.purpose = Purpose::Emergency as i32;
                        event.purpose_of_use_code = "ETREAT".to_owned();
                    },
                )
                .await?;
            return Err(ConsentError::FailedPrecondition(
                "the person has opted out; break-glass never overrides an opt-out".to_owned(),
            ));
        }
        let grant_id = Uuid::now_v7();
        let review_item_id = Uuid::now_v7();
        let expires_at = now + Duration::minutes(i64::from(minutes));
        let grant = BreakGlassGrant {
            grant_id: grant_id.to_string(),
            person_id: person_id.to_string(),
            actor: Some(actor.clone()),
            reason_code: reason as i32,
            justification,
            granted_at: Some(timestamp(now)),
            expires_at: Some(timestamp(expires_at)),
            review_item_id: review_item_id.to_string(),
            review_outcome: ReviewOutcome::Unspecified as i32,
        };
        let encoded = grant.encode_to_vec();
        store::insert_grant(
            &mut tx,
            &GrantRow {
                id: grant_id,
                person_id,
                user_id: actor.user_id.clone(),
                role_profile_id: actor.role_profile_id.clone(),
                granted_at: now,
                expires_at,
            },
            &encoded,
        )
        .await?;
        let item = ReviewItem {
            review_item_id: review_item_id.to_string(),
            kind: ReviewItemKind::BreakGlass as i32,
            person_id: person_id.to_string(),
            queued_at: Some(timestamp(now)),
            ..ReviewItem::default()
        };
        store::insert_review_item(
            &mut tx,
            &ReviewRow {
                id: review_item_id,
                kind: ReviewItemKind::BreakGlass as i16,
                person_id,
                subject_id: grant_id,
                raised_by_user_id: actor.user_id.clone(),
                raised_by_organisation_code: actor.organisation_code.clone(),
                queued_at: now,
                outcome: 0,
                body: item.encode_to_vec(),
            },
        )
        .await?;
        self.commit_change(
            tx,
            Change {
                person_id,
                kind: ConsentChangeKind::BreakGlassGranted,
                fact_id: grant_id,
                actor,
                version,
                now,
                source_system: String::new(),
                note: String::new(),
                fact: encoded,
                audit_action: AuditAction::BreakGlass,
                description: format!("break-glass granted ({})", reason.as_str_name()),
                break_glass_grant_id: Some(grant_id),
            },
        )
        .await?;
        let alert = BreakGlassAlert {
            alert_id: Uuid::now_v7().to_string(),
            grant: Some(grant.clone()),
            raised_at: Some(timestamp(now)),
        };
        if let Err(error) = events::publish_alert(&self.nats, &alert).await {
            // The grant is audited; audit raises its own alert for it too.
            tracing::error!(%error, %grant_id, "break-glass alert not published");
        }
        tracing::info!(%grant_id, %person_id, "break-glass granted");
        Ok(BreakGlassResponse {
            grant: Some(grant),
            banner_text: BREAK_GLASS_BANNER.to_owned(),
        })
    }
}
