//! Signing in, refreshing, revoking: the flows that issue and end tokens.

use std::sync::Arc;

use mcr_auth::default_scopes_for_role;
use mcr_proto::common::v1::{Actor, Role};
use mcr_proto::identity::v1::{RevocationReason, TokenSet};
use mcr_runtime::nats::NatsBus;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::config::IdentityConfig;
use crate::convert;
use crate::domain::lockout::LockoutPolicy;
use crate::domain::tokens::{self, Issuer, SessionGrant};
use crate::domain::validation;
use crate::error::IdentityError;
use crate::events::{self, timestamp};
use crate::external::ExternalIssuers;
use crate::keyring::Keyring;
use crate::passwords;
use crate::store::{self, RefreshOutcome, RoleProfileRow, SessionRow, SessionSelector, UserRow};

/// The outcome of a sign-in.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in; here are the tokens.
    Tokens(Box<TokenSet>),
    /// Several role profiles and none chosen: pick one and ask again.
    ChooseProfile(Vec<RoleProfileRow>),
}

/// Issues and ends sessions.
#[derive(Debug, Clone)]
pub struct Sessions {
    pub(crate) pool: PgPool,
    pub(crate) nats: NatsBus,
    pub(crate) keyring: Keyring,
    pub(crate) issuer: Issuer,
    pub(crate) config: Arc<IdentityConfig>,
    pub(crate) external: Arc<ExternalIssuers>,
    pub(crate) leeway: Duration,
    pub(crate) audit: mcr_audit_client::AuditPublisher,
}

fn seconds(value: u64) -> Duration {
    Duration::seconds(i64::try_from(value).unwrap_or(i64::MAX))
}

impl Sessions {
    fn lockout(&self) -> LockoutPolicy {
        LockoutPolicy {
            threshold: self.config.lockout_threshold.max(1),
            duration: seconds(self.config.lockout_seconds),
        }
    }

    /// Username and password sign-in in one role profile.
    /// Every attempt is recorded on the audit stream before the answer leaves.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        role_profile_id: &str,
    ) -> Result<SignIn, IdentityError> {
        let outcome = self
            .check_password_sign_in(username, password, role_profile_id)
            .await;
        let attempted_as = format!("username:{}", username.trim().to_lowercase());
        self.audit_sign_in(&attempted_as, outcome).await
    }

    async fn check_password_sign_in(
        &self,
        username: &str,
        password: &str,
        role_profile_id: &str,
    ) -> Result<SignIn, IdentityError> {
        let username = username.trim().to_lowercase();
        if username.is_empty() || username.len() > 64 {
            return Err(IdentityError::invalid(
                "username",
                "is required (at most 64 characters)",
            ));
        }
        if password.is_empty() || password.len() > 1024 {
            return Err(IdentityError::invalid("password", "is required"));
        }
        let now = OffsetDateTime::now_utc();
        let account = store::get_user_by_username(&self.pool, &username).await?;
        if let Some(locked_until) = account.as_ref().and_then(|user| user.locked_until)
            && LockoutPolicy::is_locked(Some(locked_until), now)
        {
            return Err(IdentityError::FailedPrecondition(
                self.lockout().locked_message(locked_until),
            ));
        }
        let stored_hash = account.as_ref().map(|user| user.password_hash.clone());
        let password_matches = passwords::verify(password.to_owned(), stored_hash).await?;
        let user = match account {
            Some(user) if password_matches => user,
            Some(user) => {
                let failed_attempts = u32::try_from(user.failed_attempts).unwrap_or(0);
                let after = self.lockout().after_failure(failed_attempts, now);
                store::record_failed_sign_in(
                    &self.pool,
                    user.id,
                    after.failed_attempts,
                    after.locked_until,
                )
                .await?;
                tracing::info!(user_id = %user.id, locked = after.locked_until.is_some(), "sign-in refused: wrong password");
                if let Some(locked_until) = after.locked_until {
                    return Err(IdentityError::FailedPrecondition(
                        self.lockout().locked_message(locked_until),
                    ));
                }
                return Err(wrong_credentials());
            }
            None => return Err(wrong_credentials()),
        };
        if !user.is_active() {
            return Err(suspended());
        }
        store::record_successful_sign_in(&self.pool, user.id).await?;
        self.open_session(&user, role_profile_id).await
    }

    /// Sign-in with an external issuer's ID token.
    /// Audited like a password sign-in.
    pub async fn exchange_external(
        &self,
        id_token: &str,
        role_profile_id: &str,
    ) -> Result<SignIn, IdentityError> {
        let outcome = self.check_external_sign_in(id_token, role_profile_id).await;
        self.audit_sign_in("external identity provider", outcome)
            .await
    }

    async fn check_external_sign_in(
        &self,
        id_token: &str,
        role_profile_id: &str,
    ) -> Result<SignIn, IdentityError> {
        let external_subject = self.external.verify(id_token)?;
        let user = store::user_for_external_subject(&self.pool, &external_subject)
            .await?
            .ok_or_else(|| IdentityError::NotFound("no user here is mapped to this external identity; ask your system administrator".to_owned()))?;
        if !user.is_active() {
            return Err(suspended());
        }
        store::record_successful_sign_in(&self.pool, user.id).await?;
        self.open_session(&user, role_profile_id).await
    }

    async fn open_session(
        &self,
        user: &UserRow,
        role_profile_id: &str,
    ) -> Result<SignIn, IdentityError> {
        let active: Vec<RoleProfileRow> = store::role_profiles(&self.pool, user.id)
            .await?
            .into_iter()
            .filter(|profile| profile.removed_at.is_none())
            .collect();
        if active.is_empty() {
            return Err(IdentityError::FailedPrecondition(
                "this account has no active role profile; ask your system administrator to add one"
                    .to_owned(),
            ));
        }
        let profile = if role_profile_id.trim().is_empty() {
            match active.as_slice() {
                [only] => only.clone(),
                _ => return Ok(SignIn::ChooseProfile(active)),
            }
        } else {
            let chosen = validation::uuid("role_profile_id", role_profile_id)?;
            active
                .iter()
                .find(|profile| profile.id == chosen)
                .cloned()
                .ok_or_else(|| {
                    IdentityError::FailedPrecondition(format!(
                        "role profile {chosen} is not one of this account's active role profiles"
                    ))
                })?
        };
        let (refresh_token, refresh_hash) = tokens::new_opaque_secret();
        let expires_at = OffsetDateTime::now_utc() + seconds(self.config.session_ttl_seconds);
        let session =
            store::create_session(&self.pool, user.id, profile.id, expires_at, &refresh_hash)
                .await?;
        tracing::info!(user_id = %user.id, session_id = %session.id, organisation = %profile.organisation_code, "signed in");
        Ok(SignIn::Tokens(Box::new(self.token_set(
            user,
            &profile,
            &session,
            refresh_token,
        )?)))
    }

    fn token_set(
        &self,
        user: &UserRow,
        profile: &RoleProfileRow,
        session: &SessionRow,
        refresh_token: String,
    ) -> Result<TokenSet, IdentityError> {
        let role = Role::try_from(profile.role).unwrap_or(Role::Unspecified);
        let scopes: Vec<String> = default_scopes_for_role(role)
            .iter()
            .map(|scope| (*scope).to_owned())
            .collect();
        let now = OffsetDateTime::now_utc();
        let access_lifetime = seconds(self.config.access_token_ttl_seconds);
        let display_name = user.name.0.display();
        let grant = SessionGrant {
            user_id: user.id,
            display_name: &display_name,
            session_id: session.id,
            role_profile_id: profile.id,
            organisation_code: &profile.organisation_code,
            role,
            role_code: &profile.role_code,
            scopes: &scopes,
        };
        let claims = tokens::user_claims(&self.issuer, &grant, now, access_lifetime);
        let access_token = self.keyring.signing_key()?.sign(&claims)?;
        Ok(TokenSet {
            access_token,
            token_type: "Bearer".to_owned(),
            access_token_expires_at: Some(timestamp(now + access_lifetime)),
            refresh_token,
            refresh_token_expires_at: Some(timestamp(session.expires_at)),
            session_id: session.id.to_string(),
            scopes,
            role_profile: Some(convert::role_profile(profile)),
        })
    }

    /// Rotates a refresh token; a reused one ends the session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, IdentityError> {
        if refresh_token.is_empty() || refresh_token.len() > 256 {
            return Err(IdentityError::invalid("refresh_token", "is required"));
        }
        let (successor, successor_hash) = tokens::new_opaque_secret();
        let session = match store::rotate_refresh_token(
            &self.pool,
            &tokens::hash_secret(refresh_token),
            &successor_hash,
        )
        .await?
        {
            RefreshOutcome::Unknown => {
                return Err(IdentityError::Unauthenticated(
                    "this refresh token is not recognised; sign in again".to_owned(),
                ));
            }
            RefreshOutcome::Reused(session) => {
                tracing::warn!(session_id = %session.id, "refresh token reused; ending the session");
                self.revoke(
                    SessionSelector::One(session.id),
                    RevocationReason::RefreshTokenReuse,
                    None,
                )
                .await?;
                return Err(IdentityError::Unauthenticated(
                    "this refresh token was already used, so the session has been ended to protect the account; sign in again"
                        .to_owned(),
                ));
            }
            RefreshOutcome::Rotated(session) => session,
        };
        if session.revoked_at.is_some() {
            return Err(IdentityError::Unauthenticated(
                "this session was revoked; sign in again".to_owned(),
            ));
        }
        if session.expires_at <= OffsetDateTime::now_utc() {
            return Err(IdentityError::Unauthenticated(
                "this session has expired; sign in again".to_owned(),
            ));
        }
        let user = store::get_user(&self.pool, session.user_id)
            .await?
            .ok_or_else(|| {
                IdentityError::Internal(format!("session {} has no user", session.id))
            })?;
        if !user.is_active() {
            return Err(suspended());
        }
        let profile = store::get_role_profile(&self.pool, session.role_profile_id)
            .await?
            .filter(|profile| profile.removed_at.is_none())
            .ok_or_else(|| {
                IdentityError::FailedPrecondition(
                    "the role profile of this session was removed; sign in again".to_owned(),
                )
            })?;
        self.token_set(&user, &profile, &session, successor)
    }

    /// Ends sessions and announces it before returning.
    pub async fn revoke(
        &self,
        selector: SessionSelector,
        reason: RevocationReason,
        revoked_by: Option<Actor>,
    ) -> Result<Vec<SessionRow>, IdentityError> {
        let revoked = store::revoke_sessions(&self.pool, selector, reason as i32).await?;
        let valid_until =
            OffsetDateTime::now_utc() + seconds(self.config.access_token_ttl_seconds) + self.leeway;
        events::publish_revocations(&self.nats, &revoked, reason, revoked_by, valid_until).await?;
        Ok(revoked)
    }

    /// Client-credentials grant.
    pub async fn issue_service_token(
        &self,
        client_id: &str,
        client_secret: &str,
        requested_scopes: &[String],
    ) -> Result<(String, OffsetDateTime, Vec<String>), IdentityError> {
        if client_id.is_empty() || client_id.len() > 64 {
            return Err(IdentityError::invalid("client_id", "is required"));
        }
        if client_secret.is_empty() || client_secret.len() > 256 {
            return Err(IdentityError::invalid("client_secret", "is required"));
        }
        let requested = validation::scopes("scopes", requested_scopes)?;
        let account = store::get_service_account(&self.pool, client_id).await?;
        let presented_hash = hex(&tokens::hash_secret(client_secret));
        let account = match account {
            Some(account) if account.secret_hash == presented_hash => account,
            _ => {
                return Err(IdentityError::Unauthenticated(
                    "wrong client id or secret".to_owned(),
                ));
            }
        };
        if !account.active {
            return Err(IdentityError::FailedPrecondition(
                "this service account is disabled".to_owned(),
            ));
        }
        let granted = tokens::grant_service_scopes(&account.allowed_scopes, &requested)?;
        let now = OffsetDateTime::now_utc();
        let lifetime = seconds(self.config.service_token_ttl_seconds);
        let claims = tokens::service_claims(
            &self.issuer,
            &account.client_id,
            &account.name,
            &account.organisation_code,
            &granted,
            now,
            lifetime,
        );
        let token = self.keyring.signing_key()?.sign(&claims)?;
        Ok((token, now + lifetime, granted))
    }

    /// The session's owner, for sign-out checks.
    pub async fn session_owner(&self, session_id: Uuid) -> Result<Uuid, IdentityError> {
        store::get_session(&self.pool, session_id)
            .await?
            .map(|session| session.user_id)
            .ok_or_else(|| IdentityError::NotFound(format!("session {session_id} does not exist")))
    }
}

impl Sessions {
    /// Records a sign-in attempt (never the password or token) and returns
    /// its outcome; when the audit trail cannot be written no token leaves:
    /// UNAVAILABLE.
    async fn audit_sign_in(
        &self,
        attempted_as: &str,
        outcome: Result<SignIn, IdentityError>,
    ) -> Result<SignIn, IdentityError> {
        use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome, OutcomeReason};
        let (actor, audit_outcome, reasons, description) = match &outcome {
            Ok(SignIn::Tokens(tokens)) => {
                let profile = tokens.role_profile.clone().unwrap_or_default();
                let actor = Actor {
                    user_id: profile.user_id.clone(),
                    role_profile_id: profile.role_profile_id.clone(),
                    role: profile.role,
                    role_code: profile.role_code.clone(),
                    organisation_code: profile.organisation_code.clone(),
                    session_id: tokens.session_id.clone(),
                    kind: mcr_proto::common::v1::ActorKind::User as i32,
                    display_name: String::new(),
                };
                (
                    Some(actor),
                    AuditOutcome::Permitted,
                    Vec::new(),
                    "signed in".to_owned(),
                )
            }
            Ok(SignIn::ChooseProfile(_)) => (
                None,
                AuditOutcome::Permitted,
                Vec::new(),
                "credentials verified; role profile selection required".to_owned(),
            ),
            Err(error) => (
                None,
                AuditOutcome::Denied,
                vec![OutcomeReason {
                    code: sign_in_refusal_code(error).to_owned(),
                    text: error.to_string(),
                }],
                "sign-in refused".to_owned(),
            ),
        };
        let event = AuditEvent {
            event_id: Uuid::now_v7().to_string(),
            occurred_at: Some(timestamp(OffsetDateTime::now_utc())),
            source_service: "identity".to_owned(),
            actor,
            action: AuditAction::Authenticate as i32,
            outcome: audit_outcome as i32,
            reasons,
            trace_id: mcr_runtime::propagation::current_trace_id().unwrap_or_default(),
            target_reference: attempted_as.to_owned(),
            description,
            ..AuditEvent::default()
        };
        if let Err(error) = self.audit.publish(&event).await {
            tracing::error!(%error, "sign-in attempt could not be audited; refusing it");
            return Err(IdentityError::Unavailable(
                "the audit trail is unavailable, so sign-in is refused; retry shortly".to_owned(),
            ));
        }
        outcome
    }
}

fn sign_in_refusal_code(error: &IdentityError) -> &'static str {
    match error {
        IdentityError::InvalidArgument { .. } => "invalid_request",
        IdentityError::Unauthenticated(_) => "wrong_credentials",
        IdentityError::FailedPrecondition(_) => "account_not_usable",
        IdentityError::NotFound(_) => "no_mapped_user",
        IdentityError::AlreadyExists(_)
        | IdentityError::PermissionDenied(_)
        | IdentityError::Database(_)
        | IdentityError::Messaging(_)
        | IdentityError::Unavailable(_)
        | IdentityError::Internal(_) => "service_error",
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn wrong_credentials() -> IdentityError {
    IdentityError::Unauthenticated("wrong username or password".to_owned())
}

fn suspended() -> IdentityError {
    IdentityError::FailedPrecondition(
        "this account is suspended; contact your system administrator".to_owned(),
    )
}
