//! Opt-outs and permissions to view.

use mcr_auth::{Principal, PrincipalKind};
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::consent::v1::*;
use prost::Message;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Change, ConsentApi};
use crate::convert::{provenance, timestamp};
use crate::domain::validate;
use crate::error::ConsentError;
use crate::store::{self, FactTable, PermissionRow};

type Done<T> = Result<T, ConsentError>;

impl ConsentApi {
    #[tracing::instrument(name = "consent.record_opt_out", skip_all)]
    pub(crate) async fn opt_out(
        &self,
        caller: &Principal,
        body: &RecordOptOutRequest,
    ) -> Done<RecordOptOutResponse> {
        let organisation = validate::organisation_code_or(
            "recorded_at_organisation_code",
            &body.recorded_at_organisation_code,
            &caller.organisation_code,
        )?;
        let note = validate::note("note", &body.note)?;
        let person_id = self
            .directory
            .require_existing("person", body.person.as_ref())
            .await?;
        let now = OffsetDateTime::now_utc();
        let mut tx = store::begin(&self.pool).await?;
        let version = store::bump_version(&mut tx, person_id, now).await?;
        if let Some((_, existing)) = store::opt_out_in_force(&mut tx, person_id).await? {
            tx.rollback().await?;
            return Ok(RecordOptOutResponse {
                opt_out: Some(OptOut::decode(existing.as_slice())?),
                already_in_force: true,
            });
        }
        let actor = caller.actor();
        let opt_out = OptOut {
            opt_out_id: Uuid::now_v7().to_string(),
            person_id: person_id.to_string(),
            recorded_at_organisation_code: organisation,
            effective_from: Some(timestamp(now)),
            withdrawn_at: None,
            recorded: Some(provenance(&actor, now, "", &note)),
            withdrawn: None,
        };
        let id = Uuid::parse_str(&opt_out.opt_out_id)
            .map_err(|e| ConsentError::Corrupt(e.to_string()))?;
        let encoded = opt_out.encode_to_vec();
        store::insert_opt_out(&mut tx, id, person_id, now, &encoded).await?;
        self.commit_change(
            tx,
            Change {
                person_id,
                kind: ConsentChangeKind::OptOutRecorded,
                fact_id: id,
                actor,
                version,
                now,
                source_system: String::new(),
                note,
                fact: encoded,
                audit_action: AuditAction::OptOut,
                description: "opt-out recorded".to_owned(),
                break_glass_grant_id: None,
            },
        )
        .await?;
        Ok(RecordOptOutResponse {
            opt_out: Some(opt_out),
            already_in_force: false,
        })
    }

    #[tracing::instrument(name = "consent.withdraw_opt_out", skip_all)]
    pub(crate) async fn withdraw_opt_out(
        &self,
        caller: &Principal,
        body: &WithdrawOptOutRequest,
    ) -> Done<WithdrawOptOutResponse> {
        let note = validate::note("note", &body.note)?;
        let person_id = self
            .directory
            .require_existing("person", body.person.as_ref())
            .await?;
        let now = OffsetDateTime::now_utc();
        let mut tx = store::begin(&self.pool).await?;
        let version = store::bump_version(&mut tx, person_id, now).await?;
        let Some((id, existing)) = store::opt_out_in_force(&mut tx, person_id).await? else {
            return Err(ConsentError::FailedPrecondition(
                "no opt-out is in force for this person".to_owned(),
            ));
        };
        let actor = caller.actor();
        let mut opt_out = OptOut::decode(existing.as_slice())?;
        opt_out.withdrawn_at = Some(timestamp(now));
        opt_out.withdrawn = Some(provenance(&actor, now, "", &note));
        let encoded = opt_out.encode_to_vec();
        store::close_fact(&mut tx, FactTable::OptOut, id, now, &encoded).await?;
        self.commit_change(
            tx,
            Change {
                person_id,
                kind: ConsentChangeKind::OptOutWithdrawn,
                fact_id: id,
                actor,
                version,
                now,
                source_system: String::new(),
                note,
                fact: encoded,
                audit_action: AuditAction::OptOut,
                description: "opt-out withdrawn".to_owned(),
                break_glass_grant_id: None,
            },
        )
        .await?;
        Ok(WithdrawOptOutResponse {
            opt_out: Some(opt_out),
        })
    }

    #[tracing::instrument(name = "consent.record_permission_to_view", skip_all)]
    pub(crate) async fn permission(
        &self,
        caller: &Principal,
        body: &RecordPermissionToViewRequest,
    ) -> Done<RecordPermissionToViewResponse> {
        let organisation = validate::organisation_code_or(
            "organisation_code",
            &body.organisation_code,
            &caller.organisation_code,
        )?;
        if caller.kind == PrincipalKind::User && organisation != caller.organisation_code {
            return Err(ConsentError::PermissionDenied(format!(
                "a professional records permission for their own organisation only ({})",
                caller.organisation_code
            )));
        }
        let user_id = if body.user_id.trim().is_empty() {
            String::new()
        } else {
            validate::uuid("user_id", &body.user_id)?.to_string()
        };
        let basis = PermissionBasis::try_from(body.basis).unwrap_or(PermissionBasis::Unspecified);
        let best_interests = match (basis, &body.best_interests) {
            (PermissionBasis::Unspecified, _) => {
                return Err(ConsentError::invalid(
                    "basis",
                    "is required: PERMISSION_BASIS_PERSON_CONSENTED or PERMISSION_BASIS_BEST_INTERESTS",
                ));
            }
            (PermissionBasis::BestInterests, None) => {
                return Err(ConsentError::invalid(
                    "best_interests",
                    "is required when basis is PERMISSION_BASIS_BEST_INTERESTS",
                ));
            }
            (PermissionBasis::BestInterests, Some(decision)) => Some(BestInterestsDecision {
                decision_maker_name: validate::text(
                    "best_interests.decision_maker_name",
                    &decision.decision_maker_name,
                    1,
                    200,
                )?,
                decision_maker_role: validate::text(
                    "best_interests.decision_maker_role",
                    &decision.decision_maker_role,
                    1,
                    100,
                )?,
                reason: validate::text("best_interests.reason", &decision.reason, 10, 2000)?,
            }),
            (PermissionBasis::PersonConsented, Some(_)) => {
                return Err(ConsentError::invalid(
                    "best_interests",
                    "must be unset unless basis is PERMISSION_BASIS_BEST_INTERESTS",
                ));
            }
            (PermissionBasis::PersonConsented, None) => None,
        };
        let episode_reference =
            validate::text("episode_reference", &body.episode_reference, 0, 128)?;
        let categories = validate::stored_categories(&body.categories)?;
        let now = OffsetDateTime::now_utc();
        let expires_at = body
            .expires_at
            .as_ref()
            .ok_or_else(|| ConsentError::invalid("expires_at", "is required"))
            .and_then(|at| Ok(validate::instant("expires_at", at)?))?;
        if expires_at <= now {
            return Err(ConsentError::invalid("expires_at", "must be in the future"));
        }
        let max_days = i64::from(self.limits.permission_max_days);
        if expires_at > now + Duration::days(max_days) {
            return Err(ConsentError::invalid(
                "expires_at",
                format!("must be at most {max_days} days ahead"),
            ));
        }
        let note = validate::note("note", &body.note)?;
        let person_id = self
            .directory
            .require_existing("person", body.person.as_ref())
            .await?;
        let id = Uuid::now_v7();
        let actor = caller.actor();
        let permission = PermissionToView {
            permission_id: id.to_string(),
            person_id: person_id.to_string(),
            organisation_code: organisation.clone(),
            user_id: user_id.clone(),
            basis: basis as i32,
            best_interests: best_interests.clone(),
            episode_reference,
            categories: categories.iter().map(|c| i32::from(*c)).collect(),
            valid_from: Some(timestamp(now)),
            expires_at: Some(timestamp(expires_at)),
            withdrawn_at: None,
            recorded: Some(provenance(&actor, now, "", &note)),
        };
        let encoded = permission.encode_to_vec();
        let mut tx = store::begin(&self.pool).await?;
        let version = store::bump_version(&mut tx, person_id, now).await?;
        let row = PermissionRow {
            id,
            person_id,
            organisation_code: organisation,
            user_id,
            best_interests: best_interests.is_some(),
            categories,
            valid_from: now,
            expires_at,
        };
        store::insert_permission(&mut tx, &row, &encoded).await?;
        self.commit_change(
            tx,
            Change {
                person_id,
                kind: ConsentChangeKind::PermissionRecorded,
                fact_id: id,
                actor,
                version,
                now,
                source_system: String::new(),
                note,
                fact: encoded,
                audit_action: AuditAction::ConsentChange,
                description: "permission to view recorded".to_owned(),
                break_glass_grant_id: None,
            },
        )
        .await?;
        Ok(RecordPermissionToViewResponse {
            permission: Some(permission),
        })
    }

    #[tracing::instrument(name = "consent.withdraw_permission_to_view", skip_all)]
    pub(crate) async fn withdraw_permission(
        &self,
        caller: &Principal,
        body: &WithdrawPermissionToViewRequest,
    ) -> Done<WithdrawPermissionToViewResponse> {
        let id = validate::uuid("permission_id", &body.permission_id)?;
        let note = validate::note("note", &body.note)?;
        let mut open = self
            .open_fact::<PermissionToView>(FactTable::Permission, id, "permission")
            .await?;
        if open.fact.withdrawn_at.is_some() {
            return Err(ConsentError::FailedPrecondition(
                "this permission was already withdrawn".to_owned(),
            ));
        }
        if open
            .fact
            .expires_at
            .is_some_and(|at| at.seconds <= open.now.unix_timestamp())
        {
            return Err(ConsentError::FailedPrecondition(
                "this permission has already expired".to_owned(),
            ));
        }
        open.fact.withdrawn_at = Some(timestamp(open.now));
        let permission = self
            .commit_closed_fact(
                open,
                ConsentChangeKind::PermissionWithdrawn,
                caller.actor(),
                note,
                "permission to view withdrawn",
            )
            .await?;
        Ok(WithdrawPermissionToViewResponse {
            permission: Some(permission),
        })
    }
}
