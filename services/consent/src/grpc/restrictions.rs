//! Restrictions the person asks for: a category, an organisation's entries
//! or specific entries, withheld from some or all viewers.

use mcr_auth::Principal;
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::consent::v1::*;
use prost::Message;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Change, ConsentApi};
use crate::convert::{provenance, timestamp};
use crate::domain::validate;
use crate::error::ConsentError;
use crate::store::{self, FactTable, RestrictionRow};

type Done<T> = Result<T, ConsentError>;

impl ConsentApi {
    #[tracing::instrument(name = "consent.record_restriction", skip_all)]
    pub(crate) async fn restriction(
        &self,
        caller: &Principal,
        body: &RecordRestrictionRequest,
    ) -> Done<RecordRestrictionResponse> {
        let (category, source_organisation_code, entry_ids, target) = match &body.target {
            Some(record_restriction_request::Target::Category(value)) => {
                let category = validate::category("category", *value)?;
                (
                    category as i16,
                    String::new(),
                    Vec::new(),
                    restriction::Target::Category(category as i32),
                )
            }
            Some(record_restriction_request::Target::SourceOrganisationCode(code)) => {
                let code = validate::organisation_code("source_organisation_code", code)?;
                (
                    0,
                    code.clone(),
                    Vec::new(),
                    restriction::Target::SourceOrganisationCode(code),
                )
            }
            Some(record_restriction_request::Target::Entries(entries)) => {
                if entries.entry_ids.is_empty() {
                    return Err(ConsentError::invalid(
                        "entries.entry_ids",
                        "must hold 1 to 100 entry ids",
                    ));
                }
                let ids = validate::bounded_list(
                    "entries.entry_ids",
                    &entries.entry_ids,
                    100,
                    |field, value| validate::uuid(field, value).map(|id| id.to_string()),
                )?;
                (
                    0,
                    String::new(),
                    ids.clone(),
                    restriction::Target::Entries(EntrySelection { entry_ids: ids }),
                )
            }
            None => {
                return Err(ConsentError::invalid(
                    "target",
                    "is required: give category, source_organisation_code or entries",
                ));
            }
        };
        let viewers = body.viewers.clone().unwrap_or_default();
        let viewer_organisation_codes = validate::bounded_list(
            "viewers.organisation_codes",
            &viewers.organisation_codes,
            50,
            validate::organisation_code,
        )?;
        let viewer_user_ids =
            validate::bounded_list("viewers.user_ids", &viewers.user_ids, 50, |field, value| {
                validate::uuid(field, value).map(|id| id.to_string())
            })?;
        if viewers.roles.len() > 10 {
            return Err(ConsentError::invalid(
                "viewers.roles",
                "must hold at most 10 items",
            ));
        }
        let mut viewer_roles = Vec::with_capacity(viewers.roles.len());
        for (index, role) in viewers.roles.iter().enumerate() {
            viewer_roles.push(validate::role(&format!("viewers.roles[{index}]"), *role)? as i16);
        }
        let now = OffsetDateTime::now_utc();
        let expires_at = match &body.expires_at {
            Some(at) => {
                let at = validate::instant("expires_at", at)?;
                if at <= now {
                    return Err(ConsentError::invalid("expires_at", "must be in the future"));
                }
                Some(at)
            }
            None => None,
        };
        let note = validate::note("note", &body.note)?;
        let person_id = self
            .directory
            .require_existing("person", body.person.as_ref())
            .await?;
        let id = Uuid::now_v7();
        let actor = caller.actor();
        let restriction = Restriction {
            restriction_id: id.to_string(),
            person_id: person_id.to_string(),
            target: Some(target),
            viewers: Some(ViewerScope {
                organisation_codes: viewer_organisation_codes.clone(),
                roles: viewer_roles.iter().map(|r| i32::from(*r)).collect(),
                user_ids: viewer_user_ids.clone(),
            }),
            expires_at: expires_at.map(timestamp),
            removed_at: None,
            recorded: Some(provenance(&actor, now, "", &note)),
            removed: None,
        };
        let encoded = restriction.encode_to_vec();
        let mut tx = store::begin(&self.pool).await?;
        let version = store::bump_version(&mut tx, person_id, now).await?;
        let row = RestrictionRow {
            id,
            person_id,
            category,
            source_organisation_code,
            entry_ids,
            viewer_organisation_codes,
            viewer_roles,
            viewer_user_ids,
            expires_at,
        };
        store::insert_restriction(&mut tx, &row, &encoded).await?;
        self.commit_change(
            tx,
            Change {
                person_id,
                kind: ConsentChangeKind::RestrictionRecorded,
                fact_id: id,
                actor,
                version,
                now,
                source_system: String::new(),
                note,
                fact: encoded,
                audit_action: AuditAction::ConsentChange,
                description: "restriction recorded".to_owned(),
                break_glass_grant_id: None,
            },
        )
        .await?;
        Ok(RecordRestrictionResponse {
            restriction: Some(restriction),
        })
    }

    #[tracing::instrument(name = "consent.remove_restriction", skip_all)]
    pub(crate) async fn remove_restriction(
        &self,
        caller: &Principal,
        body: &RemoveRestrictionRequest,
    ) -> Done<RemoveRestrictionResponse> {
        let id = validate::uuid("restriction_id", &body.restriction_id)?;
        let note = validate::note("note", &body.note)?;
        let mut open = self
            .open_fact::<Restriction>(FactTable::Restriction, id, "restriction")
            .await?;
        if open.fact.removed_at.is_some() {
            return Err(ConsentError::FailedPrecondition(
                "this restriction was already removed".to_owned(),
            ));
        }
        let actor = caller.actor();
        open.fact.removed_at = Some(timestamp(open.now));
        open.fact.removed = Some(provenance(&actor, open.now, "", &note));
        let restriction = self
            .commit_closed_fact(
                open,
                ConsentChangeKind::RestrictionRemoved,
                actor,
                note,
                "restriction removed",
            )
            .await?;
        Ok(RemoveRestrictionResponse {
            restriction: Some(restriction),
        })
    }
}
