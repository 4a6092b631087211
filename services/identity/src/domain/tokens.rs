//! What goes into tokens: claims for users and services, opaque refresh
//! tokens (only their hash is stored), service scope grants.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcr_auth::{AccessClaims, PrincipalKind};
use mcr_proto::common::v1::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::IdentityError;

/// Who signs and for whom.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
}

/// The parts of a user session a token describes.
#[derive(Debug, Clone)]
pub struct SessionGrant<'a> {
    /// User id.
    pub user_id: uuid::Uuid,
    /// Display name.
    pub display_name: &'a str,
    /// Session id.
    pub session_id: uuid::Uuid,
    /// Role profile id.
    pub role_profile_id: uuid::Uuid,
    /// Organisation of the profile.
    pub organisation_code: &'a str,
    /// Role of the profile.
    pub role: Role,
    /// RBAC job-role code.
    pub role_code: &'a str,
    /// Scopes granted.
    pub scopes: &'a [String],
}

/// Claims common to user and service tokens, valid for `lifetime` from `now`.
#[allow(clippy::too_many_arguments)]
fn base_claims(
    issuer: &Issuer,
    subject: String,
    kind: PrincipalKind,
    organisation_code: &str,
    scopes: &[String],
    name: &str,
    now: OffsetDateTime,
    lifetime: Duration,
) -> AccessClaims {
    AccessClaims {
        iss: issuer.issuer.clone(),
        aud: issuer.audience.clone(),
        sub: subject,
        kind,
        exp: (now + lifetime).unix_timestamp(),
        nbf: now.unix_timestamp(),
        iat: now.unix_timestamp(),
        jti: uuid::Uuid::new_v4().to_string(),
        sid: None,
        org: organisation_code.to_owned(),
        rpid: None,
        role: None,
        role_code: None,
        scope: scopes.join(" "),
        name: name.to_owned(),
    }
}

/// Claims of a user's access token valid for `lifetime` from `now`.
pub fn user_claims(
    issuer: &Issuer,
    grant: &SessionGrant<'_>,
    now: OffsetDateTime,
    lifetime: Duration,
) -> AccessClaims {
    AccessClaims {
        sid: Some(grant.session_id.to_string()),
        rpid: Some(grant.role_profile_id.to_string()),
        role: Some(grant.role.as_str_name().to_owned()),
        role_code: Some(grant.role_code.to_owned()),
        ..base_claims(
            issuer,
            grant.user_id.to_string(),
            PrincipalKind::User,
            grant.organisation_code,
            grant.scopes,
            grant.display_name,
            now,
            lifetime,
        )
    }
}

/// Claims of a service account's token.
pub fn service_claims(
    issuer: &Issuer,
    client_id: &str,
    name: &str,
    organisation_code: &str,
    scopes: &[String],
    now: OffsetDateTime,
    lifetime: Duration,
) -> AccessClaims {
    base_claims(
        issuer,
        client_id.to_owned(),
        PrincipalKind::Service,
        organisation_code,
        scopes,
        name,
        now,
        lifetime,
    )
}

/// A new opaque secret (refresh token or client secret) and the SHA-256 we keep.
pub fn new_opaque_secret() -> (String, Vec<u8>) {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_secret(&secret);
    (secret, hash)
}

/// The stored form of an opaque secret. SHA-256 suffices: the secret has 256
/// bits of entropy, so unlike a password it cannot be guessed from its hash.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The scopes a service token gets: everything allowed when none are asked
/// for, else exactly what was asked, each of which must be allowed.
pub fn grant_service_scopes(
    allowed: &[String],
    requested: &[String],
) -> Result<Vec<String>, IdentityError> {
    if requested.is_empty() {
        return Ok(allowed.to_vec());
    }
    let not_allowed: Vec<&str> = requested
        .iter()
        .filter(|scope| !allowed.contains(scope))
        .map(String::as_str)
        .collect();
    if !not_allowed.is_empty() {
        return Err(IdentityError::PermissionDenied(format!(
            "this service account may not request scope(s) {}; allowed: {}",
            not_allowed.join(", "),
            allowed.join(" ")
        )));
    }
    let mut granted = requested.to_vec();
    granted.sort();
    granted.dedup();
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Issuer {
        Issuer {
            issuer: "https://identity.test".to_owned(),
            audience: "mcr".to_owned(),
        }
    }

    #[test]
    fn user_claims_carry_the_session_and_one_role_profile() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let scopes = vec!["records:read".to_owned(), "index:read".to_owned()];
        let grant = SessionGrant {
            user_id: uuid::Uuid::nil(),
            display_name: "Dr Ada Lovelace",
            session_id: uuid::Uuid::max(),
            role_profile_id: uuid::Uuid::nil(),
            organisation_code: "F81001",
            role: Role::ClinicalPractitioner,
            role_code: "R8000",
            scopes: &scopes,
        };
        let claims = user_claims(&issuer(), &grant, now, Duration::minutes(5));
        assert_eq!(claims.exp - claims.iat, 300);
        assert_eq!(claims.role.as_deref(), Some("ROLE_CLINICAL_PRACTITIONER"));
        assert_eq!(claims.sid, Some(uuid::Uuid::max().to_string()));
        assert_eq!(claims.scope, "records:read index:read");
        assert_eq!(claims.kind, PrincipalKind::User);
    }

    #[test]
    fn opaque_secrets_are_random_and_only_their_hash_is_kept() {
        let (first, first_hash) = new_opaque_secret();
        let (second, _) = new_opaque_secret();
        assert_ne!(first, second);
        assert_eq!(hash_secret(&first), first_hash);
        assert_eq!(first_hash.len(), 32);
        assert!(first.len() >= 43);
    }

    #[test]
    fn service_scopes_are_limited_to_what_is_allowed() {
        let allowed = vec!["index:write".to_owned(), "records:read".to_owned()];
        assert_eq!(
            grant_service_scopes(&allowed, &[]).ok(),
            Some(allowed.clone())
        );
        assert_eq!(
            grant_service_scopes(&allowed, &["records:read".to_owned()]).ok(),
            Some(vec!["records:read".to_owned()])
        );
        let refused = grant_service_scopes(&allowed, &["identity:admin".to_owned()])
            .expect_err("not allowed");
        assert!(
            matches!(refused, IdentityError::PermissionDenied(message) if message.contains("identity:admin"))
        );
    }
}
