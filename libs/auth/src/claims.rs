//! The access-token claims (normative: `proto/mcr/identity/v1/identity.proto`)
//! and the verified [`Principal`] handlers work with.

use std::collections::BTreeSet;

use mcr_proto::common::v1::{Actor, ActorKind, Role};
use serde::{Deserialize, Serialize};

/// The scopes of the platform; every RPC checks one.
pub mod scopes {
    /// Read organisations.
    pub const IDENTITY_READ: &str = "identity:read";
    /// Manage organisations, users, role profiles, service accounts.
    pub const IDENTITY_ADMIN: &str = "identity:admin";
    /// Find and read persons.
    pub const INDEX_READ: &str = "index:read";
    /// Register and link local identifiers.
    pub const INDEX_WRITE: &str = "index:write";
    /// Merge, unmerge, review possible duplicates.
    pub const INDEX_ADMIN: &str = "index:admin";
    /// View care records.
    pub const RECORDS_READ: &str = "records:read";
    /// Read consent facts.
    pub const CONSENT_READ: &str = "consent:read";
    /// Record consent facts.
    pub const CONSENT_WRITE: &str = "consent:write";
    /// Emergency access without permission.
    pub const CONSENT_BREAK_GLASS: &str = "consent:break-glass";
    /// Ask for access decisions (services).
    pub const CONSENT_DECIDE: &str = "consent:decide";
    /// Review break-glass and self-declared relationships.
    pub const CONSENT_REVIEW: &str = "consent:review";
    /// Query audit events and subject access reports.
    pub const AUDIT_READ: &str = "audit:read";
    /// Stream audit events to a SIEM.
    pub const AUDIT_EXPORT: &str = "audit:export";

    /// Every scope, for validating requests.
    pub const ALL: &[&str] = &[
        IDENTITY_READ,
        IDENTITY_ADMIN,
        INDEX_READ,
        INDEX_WRITE,
        INDEX_ADMIN,
        RECORDS_READ,
        CONSENT_READ,
        CONSENT_WRITE,
        CONSENT_BREAK_GLASS,
        CONSENT_DECIDE,
        CONSENT_REVIEW,
        AUDIT_READ,
        AUDIT_EXPORT,
    ];
}

/// Who a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// A professional signed in with one role profile.
    User,
    /// A connector or platform service (client credentials).
    Service,
}

/// The claims of an access token, exactly as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer URL.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// User id or service account client id.
    pub sub: String,
    /// `user` or `service`.
    pub kind: PrincipalKind,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// Session id (users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Organisation the caller acts for.
    pub org: String,
    /// Role profile id (users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpid: Option<String>,
    /// `mcr.common.v1.Role` value name (users), e.g. `ROLE_NURSE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The deployment's RBAC job-role code (users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_code: Option<String>,
    /// Space-separated scopes.
    pub scope: String,
    /// Display name.
    pub name: String,
}

/// A verified caller. Put in each request's extensions by the auth layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id or service account client id.
    pub subject: String,
    /// User or service.
    pub kind: PrincipalKind,
    /// Session id (users).
    pub session_id: Option<String>,
    /// Organisation the caller acts for.
    pub organisation_code: String,
    /// Role profile id (users).
    pub role_profile_id: Option<String>,
    /// Role (users); `Unspecified` for services.
    pub role: Role,
    /// RBAC job-role code (users).
    pub role_code: Option<String>,
    /// Granted scopes.
    pub scopes: BTreeSet<String>,
    /// Display name.
    pub display_name: String,
    /// Token expiry, seconds since the epoch.
    pub expires_at: i64,
}

impl Principal {
    /// Builds a principal from verified claims; `None` when a claim the kind
    /// requires is missing or names an unknown role.
    pub fn from_claims(claims: AccessClaims) -> Option<Self> {
        let role = match (&claims.kind, &claims.role) {
            (PrincipalKind::User, Some(role_name)) => match Role::from_str_name(role_name) {
                Some(Role::Unspecified) | None => return None,
                Some(role) => role,
            },
            (PrincipalKind::User, None) => return None,
            (PrincipalKind::Service, _) => Role::Unspecified,
        };
        if claims.kind == PrincipalKind::User && (claims.sid.is_none() || claims.rpid.is_none()) {
            return None;
        }
        Some(Self {
            subject: claims.sub,
            kind: claims.kind,
            session_id: claims.sid,
            organisation_code: claims.org,
            role_profile_id: claims.rpid,
            role,
            role_code: claims.role_code,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            display_name: claims.name,
            expires_at: claims.exp,
        })
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// PERMISSION_DENIED naming the missing scope unless the token carries it.
    pub fn require_scope(&self, scope: &str) -> Result<(), tonic::Status> {
        if self.has_scope(scope) {
            return Ok(());
        }
        Err(tonic::Status::permission_denied(format!(
            "this call needs scope {scope}, which the {} token acting for {} does not carry",
            self.describe_role(),
            self.organisation_code
        )))
    }

    /// The caller as an audit/consent `Actor`.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.subject.clone(),
            role_profile_id: self.role_profile_id.clone().unwrap_or_default(),
            role: self.role as i32,
            role_code: self.role_code.clone().unwrap_or_default(),
            organisation_code: self.organisation_code.clone(),
            session_id: self.session_id.clone().unwrap_or_default(),
            kind: match self.kind {
                PrincipalKind::User => ActorKind::User as i32,
                PrincipalKind::Service => ActorKind::Service as i32,
            },
            display_name: self.display_name.clone(),
        }
    }

    fn describe_role(&self) -> &'static str {
        match self.kind {
            PrincipalKind::Service => "service",
            PrincipalKind::User => self.role.as_str_name(),
        }
    }
}

/// The default scopes of each role (a deployment may override them in
/// identity's settings).
pub fn default_scopes_for_role(role: Role) -> &'static [&'static str] {
    use scopes::*;
    const CLINICAL: &[&str] = &[
        IDENTITY_READ,
        INDEX_READ,
        RECORDS_READ,
        CONSENT_READ,
        CONSENT_WRITE,
        CONSENT_BREAK_GLASS,
    ];
    match role {
        Role::Unspecified => &[],
        Role::ClinicalPractitioner
        | Role::Nurse
        | Role::HealthVisitor
        | Role::Midwife
        | Role::Paramedic
        | Role::Pharmacist => CLINICAL,
        Role::SocialWorker => &[
            IDENTITY_READ,
            INDEX_READ,
            RECORDS_READ,
            CONSENT_READ,
            CONSENT_WRITE,
        ],
        Role::AdminClerical => &[
            IDENTITY_READ,
            INDEX_READ,
            INDEX_WRITE,
            RECORDS_READ,
            CONSENT_READ,
            CONSENT_WRITE,
        ],
        Role::PrivacyOfficer => &[
            IDENTITY_READ,
            INDEX_READ,
            CONSENT_READ,
            CONSENT_WRITE,
            CONSENT_REVIEW,
            AUDIT_READ,
        ],
        Role::SystemAdministrator => &[
            IDENTITY_READ,
            IDENTITY_ADMIN,
            INDEX_READ,
            INDEX_ADMIN,
            AUDIT_READ,
            AUDIT_EXPORT,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_claims() -> AccessClaims {
        AccessClaims {
            iss: "https://identity.test".to_owned(),
            aud: "mcr".to_owned(),
            sub: "0f0e8c1e-0000-4000-8000-000000000001".to_owned(),
            kind: PrincipalKind::User,
            exp: 2_000_000_000,
            nbf: 1_000_000_000,
            iat: 1_000_000_000,
            jti: "jti".to_owned(),
            sid: Some("session".to_owned()),
            org: "F81001".to_owned(),
            rpid: Some("profile".to_owned()),
            role: Some("ROLE_NURSE".to_owned()),
            role_code: Some("R8001".to_owned()),
            scope: "records:read index:read".to_owned(),
            name: "Nurse Example".to_owned(),
        }
    }

    #[test]
    fn a_user_principal_carries_role_and_scopes() {
        let principal = Principal::from_claims(user_claims()).expect("complete user claims");
        assert_eq!(principal.role, Role::Nurse);
        assert!(principal.has_scope("records:read"));
        assert!(principal.require_scope(scopes::IDENTITY_ADMIN).is_err());
        let denied = principal
            .require_scope(scopes::IDENTITY_ADMIN)
            .expect_err("nurse is not an admin");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(
            denied.message().contains("identity:admin") && denied.message().contains("ROLE_NURSE")
        );
    }

    #[test]
    fn a_user_token_without_session_or_with_an_unknown_role_is_refused() {
        let mut without_session = user_claims();
        without_session.sid = None;
        assert!(Principal::from_claims(without_session).is_none());
        let mut unknown_role = user_claims();
        unknown_role.role = Some("ROLE_SUPERUSER".to_owned());
        assert!(Principal::from_claims(unknown_role).is_none());
        let mut unspecified_role = user_claims();
        unspecified_role.role = Some("ROLE_UNSPECIFIED".to_owned());
        assert!(Principal::from_claims(unspecified_role).is_none());
    }

    #[test]
    fn only_clinical_roles_may_break_glass_and_only_admins_administer() {
        for role in [Role::ClinicalPractitioner, Role::Nurse, Role::Paramedic] {
            assert!(default_scopes_for_role(role).contains(&scopes::CONSENT_BREAK_GLASS));
            assert!(!default_scopes_for_role(role).contains(&scopes::IDENTITY_ADMIN));
        }
        for role in [
            Role::SocialWorker,
            Role::AdminClerical,
            Role::PrivacyOfficer,
        ] {
            assert!(!default_scopes_for_role(role).contains(&scopes::CONSENT_BREAK_GLASS));
        }
        assert!(
            default_scopes_for_role(Role::SystemAdministrator).contains(&scopes::IDENTITY_ADMIN)
        );
        assert!(
            !default_scopes_for_role(Role::SystemAdministrator).contains(&scopes::RECORDS_READ)
        );
    }
}
