//! A real identity service for tests of every service: started in-process
//! with a first administrator, creating organisations and users, and signing
//! them in for access tokens.
#![forbid(unsafe_code)]

use mcr_proto::common::v1::{Address, HumanName, OrganisationType, Role};
use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_proto::identity::v1::*;
use mcr_testkit::{RunningService, TestEnvironment};
use tonic::transport::Channel;

pub const ADMIN_USERNAME: &str = "platform.admin";
pub const ADMIN_PASSWORD: &str = "an initial admin password";
pub const PASSWORD: &str = "a long enough password";

/// A running identity service and a client for it.
#[allow(missing_debug_implementations)]
pub struct Identity {
    pub environment: TestEnvironment,
    pub service: RunningService,
    pub client: IdentityClient<Channel>,
}

/// Starts identity in a fresh test environment.
pub async fn start(extra: &[(&str, &str)]) -> Identity {
    let environment = TestEnvironment::new().await;
    start_in(environment, extra).await
}

/// Starts identity in `environment` (share it with the service under test).
pub async fn start_in(environment: TestEnvironment, extra: &[(&str, &str)]) -> Identity {
    let mut overrides = vec![
        ("MCR_IDENTITY__BOOTSTRAP_ADMIN__USERNAME", ADMIN_USERNAME),
        ("MCR_IDENTITY__BOOTSTRAP_ADMIN__PASSWORD", ADMIN_PASSWORD),
        ("MCR_IDENTITY__BOOTSTRAP_ADMIN__ORGANISATION_CODE", "MCR001"),
        (
            "MCR_IDENTITY__BOOTSTRAP_ADMIN__ORGANISATION_NAME",
            "My Care Record operator",
        ),
    ];
    overrides.extend_from_slice(extra);
    let service =
        mcr_testkit::spawn_service::<mcr_identity::IdentityService>(&environment, &overrides).await;
    let client = IdentityClient::new(service.channel().await);
    let identity = Identity {
        environment,
        service,
        client,
    };
    // The bootstrap runs in the background; wait until the admin can sign in.
    for _ in 0..100 {
        if identity
            .sign_in(ADMIN_USERNAME, ADMIN_PASSWORD, "")
            .await
            .is_ok()
        {
            return identity;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the bootstrap administrator never became able to sign in");
}

/// `message` with `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().expect("a token is ASCII");
    request.metadata_mut().insert("authorization", value);
    request
}

impl Identity {
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        role_profile_id: &str,
    ) -> Result<AuthenticateResponse, tonic::Status> {
        self.client
            .clone()
            .authenticate(AuthenticateRequest {
                username: username.to_owned(),
                password: password.to_owned(),
                role_profile_id: role_profile_id.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn tokens(&self, username: &str, password: &str, role_profile_id: &str) -> TokenSet {
        match self.sign_in(username, password, role_profile_id).await {
            Ok(AuthenticateResponse {
                tokens: Some(tokens),
                ..
            }) => tokens,
            other => panic!("{username} could not sign in: {other:?}"),
        }
    }

    pub async fn admin_token(&self) -> String {
        self.tokens(ADMIN_USERNAME, ADMIN_PASSWORD, "")
            .await
            .access_token
    }

    pub async fn create_organisation(
        &self,
        admin_token: &str,
        code: &str,
        organisation_type: OrganisationType,
    ) {
        self.client
            .clone()
            .create_organisation(with_token(
                CreateOrganisationRequest {
                    organisation_code: code.to_owned(),
                    name: format!("Organisation {code}"),
                    organisation_type: organisation_type as i32,
                    data_protection_contact: Some(DataProtectionContact {
                        name: "Data Protection Officer".to_owned(),
                        postal_address: Some(Address {
                            lines: vec!["1 High Street".to_owned()],
                            city: "Harlow".to_owned(),
                            district: "Essex".to_owned(),
                            postcode: "CM20 1QX".to_owned(),
                            country: "GB".to_owned(),
                        }),
                        phone: "01279 444455".to_owned(),
                        email: "dpo@example.nhs.uk".to_owned(),
                        web_url: String::new(),
                    }),
                },
                admin_token,
            ))
            .await
            .expect("creating an organisation");
    }

    /// Creates a user with one profile per (organisation, role); returns it.
    pub async fn create_user(
        &self,
        admin_token: &str,
        username: &str,
        profiles: &[(&str, Role)],
    ) -> User {
        self.client
            .clone()
            .create_user(with_token(
                CreateUserRequest {
                    username: username.to_owned(),
                    name: Some(HumanName {
                        prefix: String::new(),
                        given: vec!["Test".to_owned()],
                        family: username.to_owned(),
                        suffix: String::new(),
                    }),
                    email: String::new(),
                    password: PASSWORD.to_owned(),
                    registrations: vec![],
                    role_profiles: profiles
                        .iter()
                        .map(|(organisation, role)| RoleProfileSpec {
                            organisation_code: (*organisation).to_owned(),
                            role: *role as i32,
                            role_code: String::new(),
                            job_title: String::new(),
                        })
                        .collect(),
                    external_subjects: vec![],
                },
                admin_token,
            ))
            .await
            .expect("creating a user")
            .into_inner()
            .user
            .expect("the created user")
    }
}

impl Identity {
    /// An access token of a new user with one `role` profile at
    /// `organisation_code` (created when missing).
    pub async fn token_for(&self, username: &str, organisation_code: &str, role: Role) -> String {
        let admin = self.admin_token().await;
        self.ensure_organisation(&admin, organisation_code).await;
        self.create_user(&admin, username, &[(organisation_code, role)])
            .await;
        self.tokens(username, PASSWORD, "").await.access_token
    }

    /// Creates `organisation_code` as a GP practice unless it exists.
    pub async fn ensure_organisation(&self, admin_token: &str, organisation_code: &str) {
        let exists = self
            .client
            .clone()
            .get_organisation(with_token(
                GetOrganisationRequest {
                    organisation_code: organisation_code.to_owned(),
                },
                admin_token,
            ))
            .await
            .is_ok();
        if !exists {
            self.create_organisation(admin_token, organisation_code, OrganisationType::GpPractice)
                .await;
        }
    }

    /// The `MCR_AUTH__IDENTITY_URL` override pointing another service at this identity.
    pub fn identity_url(&self) -> String {
        self.service.grpc_endpoint()
    }
}

/// A service account's client credentials, for a service under test that
/// calls other services.
#[derive(Debug, Clone)]
pub struct ServiceAccountCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl ServiceAccountCredentials {
    /// The settings overrides that make a spawned service use this account.
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MCR_AUTH__CLIENT_ID", self.client_id.clone()),
            ("MCR_AUTH__CLIENT_SECRET", self.client_secret.clone()),
        ]
    }
}

impl Identity {
    /// A token of a new service account `name` acting for
    /// `organisation_code`, allowed `scopes`.
    pub async fn service_token(
        &self,
        name: &str,
        organisation_code: &str,
        scopes: &[&str],
    ) -> String {
        let account = self.service_account(name, organisation_code, scopes).await;
        self.client
            .clone()
            .issue_service_token(IssueServiceTokenRequest {
                client_id: account.client_id,
                client_secret: account.client_secret,
                scopes: Vec::new(),
            })
            .await
            .expect("a service token")
            .into_inner()
            .access_token
    }

    /// A new service account `name` acting for `organisation_code` (created
    /// when missing) allowed `scopes`.
    pub async fn service_account(
        &self,
        name: &str,
        organisation_code: &str,
        scopes: &[&str],
    ) -> ServiceAccountCredentials {
        let admin = self.admin_token().await;
        self.ensure_organisation(&admin, organisation_code).await;
        let response = self
            .client
            .clone()
            .create_service_account(with_token(
                CreateServiceAccountRequest {
                    name: name.to_owned(),
                    organisation_code: organisation_code.to_owned(),
                    allowed_scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
                },
                &admin,
            ))
            .await
            .expect("creating a service account")
            .into_inner();
        ServiceAccountCredentials {
            client_id: response
                .service_account
                .expect("the created service account")
                .client_id,
            client_secret: response.client_secret,
        }
    }
}
