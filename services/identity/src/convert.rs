//! Stored rows → proto messages.

use mcr_proto::identity::v1 as proto;

use crate::events::timestamp;
use crate::store::{OrganisationRow, RoleProfileRow, ServiceAccountRow, UserRow};

pub fn organisation(row: OrganisationRow) -> proto::Organisation {
    proto::Organisation {
        organisation_code: row.code,
        name: row.name,
        organisation_type: row.organisation_type,
        data_protection_contact: Some(row.dp_contact.0.to_proto()),
        active: row.active,
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
    }
}

pub fn role_profile(row: &RoleProfileRow) -> proto::RoleProfile {
    proto::RoleProfile {
        role_profile_id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        organisation_code: row.organisation_code.clone(),
        role: row.role,
        role_code: row.role_code.clone(),
        job_title: row.job_title.clone(),
        active: row.removed_at.is_none(),
        created_at: Some(timestamp(row.created_at)),
        removed_at: row.removed_at.map(timestamp),
    }
}

pub fn user(
    row: UserRow,
    profiles: &[RoleProfileRow],
    external_subjects: Vec<String>,
) -> proto::User {
    let status = if row.is_active() {
        proto::UserStatus::Active
    } else {
        proto::UserStatus::Suspended
    };
    proto::User {
        user_id: row.id.to_string(),
        username: row.username,
        name: Some(row.name.0.to_proto()),
        email: row.email,
        registrations: row
            .registrations
            .0
            .into_iter()
            .map(|registration| proto::ProfessionalRegistration {
                body: registration.body,
                number: registration.number,
            })
            .collect(),
        status: status as i32,
        role_profiles: profiles.iter().map(role_profile).collect(),
        locked_until: row.locked_until.map(timestamp),
        last_authenticated_at: row.last_authenticated_at.map(timestamp),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        external_subjects,
    }
}

pub fn service_account(row: ServiceAccountRow) -> proto::ServiceAccount {
    proto::ServiceAccount {
        client_id: row.client_id,
        name: row.name,
        organisation_code: row.organisation_code,
        allowed_scopes: row.allowed_scopes,
        active: row.active,
        created_at: Some(timestamp(row.created_at)),
    }
}
