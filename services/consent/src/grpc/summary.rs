//! GetConsentSummary: everything recorded, optionally with history and as
//! FHIR R4 Consent resources. Every read is audited (VIEW_CONSENT).

use mcr_auth::{Principal, PrincipalKind};
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::common::v1::Role;
use mcr_proto::consent::v1::*;
use prost::Message;
use time::OffsetDateTime;

use super::ConsentApi;
use crate::audit::Audited;
use crate::convert::timestamp;
use crate::domain::fhir;
use crate::error::ConsentError;
use crate::store::{self, FactTable};

fn decode_all<T: Message + Default>(bodies: Vec<Vec<u8>>) -> Result<Vec<T>, ConsentError> {
    bodies
        .iter()
        .map(|body| T::decode(body.as_slice()).map_err(ConsentError::from))
        .collect()
}

impl ConsentApi {
    #[tracing::instrument(name = "consent.get_consent_summary", skip_all)]
    pub(crate) async fn summary(
        &self,
        caller: &Principal,
        body: &GetConsentSummaryRequest,
    ) -> Result<GetConsentSummaryResponse, ConsentError> {
        let person_id = self
            .directory
            .require_existing("person", body.person.as_ref())
            .await?;
        let now = OffsetDateTime::now_utc();
        if caller.kind == PrincipalKind::User
            && caller.role != Role::PrivacyOfficer
            && !store::has_live_relationship(&self.pool, person_id, &caller.organisation_code, now)
                .await?
        {
            return Err(ConsentError::PermissionDenied(format!(
                "reading a person's consent needs an active care relationship between {} and this person",
                caller.organisation_code
            )));
        }
        let current_only = !body.include_history;
        let pool = &self.pool;
        let opt_outs: Vec<OptOut> =
            decode_all(store::fact_bodies(pool, FactTable::OptOut, person_id, false, now).await?)?;
        let permissions: Vec<PermissionToView> = decode_all(
            store::fact_bodies(pool, FactTable::Permission, person_id, current_only, now).await?,
        )?;
        let care_relationships: Vec<CareRelationship> = decode_all(
            store::fact_bodies(
                pool,
                FactTable::CareRelationship,
                person_id,
                current_only,
                now,
            )
            .await?,
        )?;
        let restrictions: Vec<Restriction> = decode_all(
            store::fact_bodies(pool, FactTable::Restriction, person_id, current_only, now).await?,
        )?;
        let break_glass_grants: Vec<BreakGlassGrant> = decode_all(
            store::fact_bodies(
                pool,
                FactTable::BreakGlassGrant,
                person_id,
                current_only,
                now,
            )
            .await?,
        )?;
        // Bodies keep the person id they were recorded under; after a merge
        // the facts belong to the survivor.
        let owner = person_id.to_string();
        let mut opt_outs = opt_outs;
        let mut permissions = permissions;
        let mut care_relationships = care_relationships;
        let mut restrictions = restrictions;
        let mut break_glass_grants = break_glass_grants;
        opt_outs
            .iter_mut()
            .for_each(|fact| fact.person_id.clone_from(&owner));
        permissions
            .iter_mut()
            .for_each(|fact| fact.person_id.clone_from(&owner));
        care_relationships
            .iter_mut()
            .for_each(|fact| fact.person_id.clone_from(&owner));
        restrictions
            .iter_mut()
            .for_each(|fact| fact.person_id.clone_from(&owner));
        break_glass_grants
            .iter_mut()
            .for_each(|fact| fact.person_id.clone_from(&owner));
        let consent_version = store::consent_version(pool, person_id).await?;
        let (in_force, withdrawn): (Vec<OptOut>, Vec<OptOut>) = opt_outs
            .into_iter()
            .partition(|opt_out| opt_out.withdrawn_at.is_none());
        let opt_out = in_force.into_iter().next();
        let opt_out_history = if body.include_history {
            withdrawn
        } else {
            Vec::new()
        };

        let mut fhir_consents_json = Vec::new();
        if body.include_fhir {
            let seconds = now.unix_timestamp();
            let resources = opt_out
                .iter()
                .chain(opt_out_history.iter())
                .map(fhir::opt_out)
                .chain(
                    permissions
                        .iter()
                        .map(|fact| fhir::permission(fact, seconds)),
                )
                .chain(
                    care_relationships
                        .iter()
                        .map(|fact| fhir::care_relationship(fact, seconds)),
                )
                .chain(
                    restrictions
                        .iter()
                        .map(|fact| fhir::restriction(fact, seconds)),
                )
                .chain(
                    break_glass_grants
                        .iter()
                        .map(|fact| fhir::break_glass(fact, seconds)),
                );
            for resource in resources {
                fhir_consents_json.push(serde_json::to_string(&resource).map_err(|error| {
                    ConsentError::Corrupt(format!("fhir serialisation: {error}"))
                })?);
            }
        }
        self.auditor
            .record(
                &caller.actor(),
                AuditAction::ViewConsent,
                true,
                Audited {
                    person_id: Some(person_id),
                    description: "consent summary read".to_owned(),
                    reasons: Vec::new(),
                    target_reference: String::new(),
                },
                |_| {},
            )
            .await?;
        Ok(GetConsentSummaryResponse {
            person_id: person_id.to_string(),
            opt_out,
            opt_out_history,
            permissions,
            care_relationships,
            restrictions,
            break_glass_grants,
            fhir_consents_json,
            consent_version,
            as_of: Some(timestamp(now)),
        })
    }
}
