//! The gRPC adapter: convert, check the caller's scope, call the domain and
//! store, map errors. No rules live here.

use mcr_auth::{Principal, PrincipalKind, principal, scopes};
use mcr_proto::common::v1::PageResponse;
use mcr_proto::identity::v1::identity_server::Identity;
use mcr_proto::identity::v1::revoke_token_request::Target;
use mcr_proto::identity::v1::*;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::domain::validation::{self, NewOrganisation, NewRoleProfile, PersonName};
use crate::error::IdentityError;
use crate::events::timestamp;
use crate::passwords;
use crate::sessions::{Sessions, SignIn, hex};
use crate::store::{self, NewUser, OrganisationFilter, ServiceAccountRow, SessionSelector};

/// Methods callable without an access token: they are how tokens are obtained.
pub const PUBLIC_METHODS: &[&str] = &[
    "Authenticate",
    "RefreshToken",
    "IssueServiceToken",
    "GetJwks",
    "ExchangeExternalToken",
];

/// The `mcr.identity.v1.Identity` handlers.
#[derive(Debug, Clone)]
pub struct IdentityApi {
    pub(crate) sessions: Sessions,
}

type Answer<T> = Result<Response<T>, Status>;

fn admin(request: &Request<impl Sized>) -> Result<Principal, Status> {
    let caller = principal(request)?;
    caller.require_scope(scopes::IDENTITY_ADMIN)?;
    Ok(caller.clone())
}

fn sign_in_answer(outcome: SignIn) -> (Option<TokenSet>, bool, Vec<RoleProfile>) {
    match outcome {
        SignIn::Tokens(tokens) => (Some(*tokens), false, Vec::new()),
        SignIn::ChooseProfile(profiles) => (
            None,
            true,
            profiles.iter().map(convert::role_profile).collect(),
        ),
    }
}

impl IdentityApi {
    async fn user_message(&self, user_id: uuid::Uuid) -> Result<User, IdentityError> {
        let pool = &self.sessions.pool;
        let user = store::get_user(pool, user_id)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("user {user_id} does not exist")))?;
        let profiles = store::role_profiles(pool, user_id).await?;
        let external_subjects = store::external_subjects(pool, user_id).await?;
        Ok(convert::user(user, &profiles, external_subjects))
    }
}

#[tonic::async_trait]
impl Identity for IdentityApi {
    async fn create_organisation(
        &self,
        request: Request<CreateOrganisationRequest>,
    ) -> Answer<CreateOrganisationResponse> {
        admin(&request)?;
        let organisation = NewOrganisation::from_request(request.get_ref())?;
        let row = store::insert_organisation(&self.sessions.pool, &organisation).await?;
        Ok(Response::new(CreateOrganisationResponse {
            organisation: Some(convert::organisation(row)),
        }))
    }

    async fn get_organisation(
        &self,
        request: Request<GetOrganisationRequest>,
    ) -> Answer<GetOrganisationResponse> {
        principal(&request)?.require_scope(scopes::IDENTITY_READ)?;
        let code = validation::organisation_code(
            "organisation_code",
            &request.get_ref().organisation_code,
        )?;
        let row = store::get_organisation(&self.sessions.pool, &code)
            .await?
            .ok_or_else(|| {
                IdentityError::NotFound(format!("organisation {code} does not exist"))
            })?;
        Ok(Response::new(GetOrganisationResponse {
            organisation: Some(convert::organisation(row)),
        }))
    }

    async fn list_organisations(
        &self,
        request: Request<ListOrganisationsRequest>,
    ) -> Answer<ListOrganisationsResponse> {
        principal(&request)?.require_scope(scopes::IDENTITY_READ)?;
        let query = request.get_ref();
        if query.organisation_codes.len() > 500 {
            return Err(IdentityError::invalid("organisation_codes", "at most 500 codes").into());
        }
        let filter = OrganisationFilter {
            organisation_type: (query.organisation_type != 0).then_some(query.organisation_type),
            codes: query
                .organisation_codes
                .iter()
                .map(|code| validation::organisation_code("organisation_codes", code))
                .collect::<Result<_, _>>()?,
            name_contains: validation::free_text("name_contains", &query.name_contains, 100)?,
            include_inactive: query.include_inactive,
        };
        let fingerprint = format!("{filter:?}");
        let page_request = query.page.clone().unwrap_or_default();
        let page = mcr_runtime::paging::parse_page(
            page_request.page_size,
            &page_request.page_token,
            &fingerprint,
        )
        .map_err(IdentityError::from)?;
        // One extra row tells whether another page follows.
        let mut rows = store::list_organisations(
            &self.sessions.pool,
            &filter,
            page.after.as_deref(),
            page.size + 1,
        )
        .await?;
        let next_page_token = if rows.len() > page.size as usize {
            rows.truncate(page.size as usize);
            rows.last()
                .map(|last| mcr_runtime::paging::next_page_token(&last.code, &fingerprint))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListOrganisationsResponse {
            organisations: rows.into_iter().map(convert::organisation).collect(),
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn create_user(&self, request: Request<CreateUserRequest>) -> Answer<CreateUserResponse> {
        admin(&request)?;
        let user = request.into_inner();
        if user.role_profiles.len() > 20 {
            return Err(IdentityError::invalid("role_profiles", "at most 20 role profiles").into());
        }
        if user.external_subjects.len() > 10 {
            return Err(IdentityError::invalid(
                "external_subjects",
                "at most 10 external subjects",
            )
            .into());
        }
        for subject in &user.external_subjects {
            let issuer = subject
                .split_once('|')
                .map(|(issuer, _)| issuer)
                .unwrap_or_default();
            if !self.sessions.external.is_configured(issuer) {
                return Err(IdentityError::invalid(
                    "external_subjects",
                    format!("{subject:?} must be \"issuer|subject\" with a configured issuer"),
                )
                .into());
            }
        }
        let new_user = NewUser {
            username: validation::username(&user.username)?,
            name: PersonName::from_proto(user.name.as_ref())?,
            email: validation::email("email", &user.email, false)?,
            registrations: validation::registrations(&user.registrations)?,
            password_hash: passwords::hash(validation::new_password(&user.password)?.to_owned())
                .await?,
            role_profiles: user
                .role_profiles
                .iter()
                .map(|spec| NewRoleProfile::from_proto(Some(spec)))
                .collect::<Result<_, _>>()?,
            external_subjects: user.external_subjects,
        };
        let user_id = store::insert_user(&self.sessions.pool, &new_user).await?;
        tracing::info!(%user_id, "user created");
        Ok(Response::new(CreateUserResponse {
            user: Some(self.user_message(user_id).await?),
        }))
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Answer<GetUserResponse> {
        let caller = principal(&request)?.clone();
        let user_id = match &request.get_ref().lookup {
            Some(get_user_request::Lookup::UserId(id)) => validation::uuid("user_id", id)?,
            Some(get_user_request::Lookup::Username(name)) => {
                let username = validation::username(name)?;
                store::get_user_by_username(&self.sessions.pool, &username)
                    .await?
                    .map(|user| user.id)
                    .ok_or_else(|| {
                        IdentityError::NotFound(format!("user {username} does not exist"))
                    })?
            }
            None => return Err(IdentityError::invalid("lookup", "give user_id or username").into()),
        };
        let reading_themselves =
            caller.kind == PrincipalKind::User && caller.subject == user_id.to_string();
        if !reading_themselves {
            caller.require_scope(scopes::IDENTITY_ADMIN)?;
        }
        Ok(Response::new(GetUserResponse {
            user: Some(self.user_message(user_id).await?),
        }))
    }

    async fn set_user_status(
        &self,
        request: Request<SetUserStatusRequest>,
    ) -> Answer<SetUserStatusResponse> {
        let caller = admin(&request)?;
        let change = request.get_ref();
        let user_id = validation::uuid("user_id", &change.user_id)?;
        validation::free_text("reason", &change.reason, 500)?;
        let status = match UserStatus::try_from(change.status) {
            Ok(UserStatus::Active) => "active",
            Ok(UserStatus::Suspended) => "suspended",
            _ => {
                return Err(IdentityError::invalid(
                    "status",
                    "must be USER_STATUS_ACTIVE or USER_STATUS_SUSPENDED",
                )
                .into());
            }
        };
        let pool = &self.sessions.pool;
        if status == "suspended" {
            let administrator = mcr_proto::common::v1::Role::SystemAdministrator as i32;
            let target_profiles = store::role_profiles(pool, user_id).await?;
            let target_is_admin = target_profiles
                .iter()
                .any(|profile| profile.removed_at.is_none() && profile.role == administrator);
            if target_is_admin
                && store::count_other_active_administrators(pool, user_id, administrator).await?
                    == 0
            {
                return Err(IdentityError::FailedPrecondition(
                    "this is the last active system administrator; add another before suspending this one".to_owned(),
                )
                .into());
            }
        }
        store::set_user_status(pool, user_id, status)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("user {user_id} does not exist")))?;
        let revoked = if status == "suspended" {
            self.sessions
                .revoke(
                    SessionSelector::OfUser(user_id),
                    RevocationReason::UserSuspended,
                    Some(caller.actor()),
                )
                .await?
        } else {
            Vec::new()
        };
        Ok(Response::new(SetUserStatusResponse {
            user: Some(self.user_message(user_id).await?),
            revoked_session_ids: revoked
                .iter()
                .map(|session| session.id.to_string())
                .collect(),
        }))
    }

    async fn add_role_profile(
        &self,
        request: Request<AddRoleProfileRequest>,
    ) -> Answer<AddRoleProfileResponse> {
        admin(&request)?;
        let user_id = validation::uuid("user_id", &request.get_ref().user_id)?;
        let profile = NewRoleProfile::from_proto(request.get_ref().role_profile.as_ref())?;
        let row = store::insert_role_profile(&self.sessions.pool, user_id, &profile).await?;
        Ok(Response::new(AddRoleProfileResponse {
            role_profile: Some(convert::role_profile(&row)),
        }))
    }

    async fn remove_role_profile(
        &self,
        request: Request<RemoveRoleProfileRequest>,
    ) -> Answer<RemoveRoleProfileResponse> {
        let caller = admin(&request)?;
        let role_profile_id =
            validation::uuid("role_profile_id", &request.get_ref().role_profile_id)?;
        validation::free_text("reason", &request.get_ref().reason, 500)?;
        let pool = &self.sessions.pool;
        let removed = match store::remove_role_profile(pool, role_profile_id).await? {
            Some(removed) => removed,
            None => {
                return Err(
                    match store::get_role_profile(pool, role_profile_id).await? {
                        Some(_) => IdentityError::FailedPrecondition(format!(
                            "role profile {role_profile_id} was removed already"
                        )),
                        None => IdentityError::NotFound(format!(
                            "role profile {role_profile_id} does not exist"
                        )),
                    }
                    .into(),
                );
            }
        };
        let revoked = self
            .sessions
            .revoke(
                SessionSelector::OfRoleProfile(role_profile_id),
                RevocationReason::RoleProfileRemoved,
                Some(caller.actor()),
            )
            .await?;
        Ok(Response::new(RemoveRoleProfileResponse {
            role_profile: Some(convert::role_profile(&removed)),
            revoked_session_ids: revoked
                .iter()
                .map(|session| session.id.to_string())
                .collect(),
        }))
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Answer<AuthenticateResponse> {
        let credentials = request.into_inner();
        let outcome = self
            .sessions
            .authenticate(
                &credentials.username,
                &credentials.password,
                &credentials.role_profile_id,
            )
            .await?;
        let (tokens, role_profile_selection_required, role_profiles) = sign_in_answer(outcome);
        Ok(Response::new(AuthenticateResponse {
            tokens,
            role_profile_selection_required,
            role_profiles,
        }))
    }

    async fn refresh_token(
        &self,
        request: Request<RefreshTokenRequest>,
    ) -> Answer<RefreshTokenResponse> {
        let tokens = self
            .sessions
            .refresh(&request.get_ref().refresh_token)
            .await?;
        Ok(Response::new(RefreshTokenResponse {
            tokens: Some(tokens),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Answer<RevokeTokenResponse> {
        let caller = principal(&request)?.clone();
        validation::free_text("note", &request.get_ref().note, 500)?;
        let is_admin = caller.has_scope(scopes::IDENTITY_ADMIN);
        let reason = if is_admin {
            RevocationReason::Administrator
        } else {
            RevocationReason::SignOut
        };
        let selector = match &request.get_ref().target {
            Some(Target::SessionId(id)) => {
                let session_id = validation::uuid("session_id", id)?;
                let owner = self.sessions.session_owner(session_id).await?;
                if !is_admin && owner.to_string() != caller.subject {
                    return Err(Status::permission_denied(
                        "you may end only your own sessions",
                    ));
                }
                SessionSelector::One(session_id)
            }
            Some(Target::RefreshToken(token)) => {
                let (session_id, owner) = store::session_of_refresh_token(
                    &self.sessions.pool,
                    &crate::domain::tokens::hash_secret(token),
                )
                .await?
                .ok_or_else(|| {
                    IdentityError::NotFound("this refresh token is not recognised".to_owned())
                })?;
                if !is_admin && owner.to_string() != caller.subject {
                    return Err(Status::permission_denied(
                        "you may end only your own sessions",
                    ));
                }
                SessionSelector::One(session_id)
            }
            Some(Target::UserId(id)) => {
                let user_id = validation::uuid("user_id", id)?;
                if !is_admin {
                    return Err(Status::permission_denied(
                        "ending every session of a user needs scope identity:admin",
                    ));
                }
                if store::get_user(&self.sessions.pool, user_id)
                    .await?
                    .is_none()
                {
                    return Err(
                        IdentityError::NotFound(format!("user {user_id} does not exist")).into(),
                    );
                }
                SessionSelector::OfUser(user_id)
            }
            None => {
                return Err(IdentityError::invalid(
                    "target",
                    "give session_id, refresh_token or user_id",
                )
                .into());
            }
        };
        let revoked = self
            .sessions
            .revoke(selector, reason, Some(caller.actor()))
            .await?;
        Ok(Response::new(RevokeTokenResponse {
            revoked_session_ids: revoked
                .iter()
                .map(|session| session.id.to_string())
                .collect(),
            revoked_at: Some(timestamp(time::OffsetDateTime::now_utc())),
        }))
    }

    async fn create_service_account(
        &self,
        request: Request<CreateServiceAccountRequest>,
    ) -> Answer<CreateServiceAccountResponse> {
        admin(&request)?;
        let account = request.get_ref();
        let name = validation::required_name("name", &account.name, 100)?;
        if account.allowed_scopes.is_empty() {
            return Err(IdentityError::invalid("allowed_scopes", "give 1-20 scopes").into());
        }
        let allowed_scopes = validation::scopes("allowed_scopes", &account.allowed_scopes)?;
        let organisation_code =
            validation::organisation_code("organisation_code", &account.organisation_code)?;
        let (client_secret, secret_hash) = crate::domain::tokens::new_opaque_secret();
        let row = store::insert_service_account(
            &self.sessions.pool,
            &ServiceAccountRow {
                client_id: format!("svc-{}", uuid::Uuid::new_v4().simple()),
                name,
                organisation_code,
                allowed_scopes,
                secret_hash: hex(&secret_hash),
                active: true,
                created_at: time::OffsetDateTime::now_utc(),
            },
        )
        .await?;
        Ok(Response::new(CreateServiceAccountResponse {
            service_account: Some(convert::service_account(row)),
            client_secret,
        }))
    }

    async fn issue_service_token(
        &self,
        request: Request<IssueServiceTokenRequest>,
    ) -> Answer<IssueServiceTokenResponse> {
        let asked = request.get_ref();
        let (access_token, expires_at, scopes) = self
            .sessions
            .issue_service_token(&asked.client_id, &asked.client_secret, &asked.scopes)
            .await?;
        Ok(Response::new(IssueServiceTokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_at: Some(timestamp(expires_at)),
            scopes,
        }))
    }

    async fn get_jwks(&self, _request: Request<GetJwksRequest>) -> Answer<GetJwksResponse> {
        let keys = self.sessions.keyring.published();
        if keys.is_empty() {
            return Err(Status::unavailable(
                "no signing keys are loaded yet; retry shortly",
            ));
        }
        let jwks_json = serde_json::json!({
            "keys": keys.iter().map(|key| serde_json::json!({
                "kty": key.kty, "crv": key.crv, "x": key.x, "kid": key.kid, "alg": key.alg, "use": key.key_use,
            })).collect::<Vec<_>>()
        })
        .to_string();
        Ok(Response::new(GetJwksResponse {
            keys,
            jwks_json,
            max_age_seconds: self.sessions.config.jwks_max_age_seconds,
        }))
    }

    async fn exchange_external_token(
        &self,
        request: Request<ExchangeExternalTokenRequest>,
    ) -> Answer<ExchangeExternalTokenResponse> {
        let exchange = request.get_ref();
        let outcome = self
            .sessions
            .exchange_external(&exchange.id_token, &exchange.role_profile_id)
            .await?;
        let (tokens, role_profile_selection_required, role_profiles) = sign_in_answer(outcome);
        Ok(Response::new(ExchangeExternalTokenResponse {
            tokens,
            role_profile_selection_required,
            role_profiles,
        }))
    }
}
