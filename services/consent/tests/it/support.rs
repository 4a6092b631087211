//! A consent service with a real identity and patient-index in front of it.

use base64::Engine;
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{Actor, ActorKind, HumanName, LocalIdentifier, PersonReference, Role};
use mcr_proto::consent::v1::consent_client::ConsentClient;
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::patient_index::v1::{Demographics, RegisterPersonRequest, Sex};
use mcr_testkit::{RunningService, TestEnvironment};
use mcr_testkit_identity::{Identity, with_token};
use tonic::transport::Channel;

/// The organisation most tests act for.
pub const ORG: &str = "RQW";

pub struct Platform {
    pub environment: TestEnvironment,
    pub identity: Identity,
    pub _index: RunningService,
    pub _consent: RunningService,
    pub consent: ConsentClient<Channel>,
    pub index: PatientIndexClient<Channel>,
    /// A clerk of ORG with index:write, for registering persons.
    clerk: String,
    /// A record-aggregator-like service: consent:decide and consent:write.
    pub aggregator: String,
    pub nats: async_nats::Client,
    counter: std::sync::atomic::AtomicU32,
}

pub async fn start() -> Platform {
    start_with(&[]).await
}

pub async fn start_with(extra: &[(&str, &str)]) -> Platform {
    let environment = TestEnvironment::new().await;
    let identity = mcr_testkit_identity::start_in(environment.clone(), &[]).await;
    let identity_url = identity.identity_url();
    let index = mcr_testkit::spawn_service::<mcr_patient_index::PatientIndexService>(
        &environment,
        &[("MCR_AUTH__IDENTITY_URL", identity_url.as_str())],
    )
    .await;
    let consent_account = identity
        .service_account("consent", "MCRCON", &["index:read"])
        .await;
    let index_url = format!("http://127.0.0.1:{}", index.grpc_port);
    let mut overrides: Vec<(&str, String)> = vec![
        ("MCR_AUTH__IDENTITY_URL", identity_url.clone()),
        ("MCR_CONSENT__PATIENT_INDEX_URL", index_url),
    ];
    overrides.extend(consent_account.overrides());
    let mut borrowed: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    borrowed.extend_from_slice(extra);
    let consent_service =
        mcr_testkit::spawn_service::<mcr_consent::ConsentService>(&environment, &borrowed).await;
    let aggregator = identity
        .service_token("aggregator", "MCRAGG", &["consent:decide", "consent:write"])
        .await;
    let clerk = identity
        .token_for("registration.clerk", ORG, Role::AdminClerical)
        .await;
    let nats = async_nats::connect("127.0.0.1:4222")
        .await
        .expect("nats for the test");
    Platform {
        consent: ConsentClient::new(consent_service.channel().await),
        index: PatientIndexClient::new(index.channel().await),
        environment,
        identity,
        _index: index,
        _consent: consent_service,
        clerk,
        aggregator,
        nats,
        counter: std::sync::atomic::AtomicU32::new(0),
    }
}

pub fn by_id(person_id: &str) -> Option<PersonReference> {
    Some(PersonReference {
        reference: Some(Reference::PersonId(person_id.to_owned())),
    })
}

pub fn by_nhs_number(nhs_number: &str) -> Option<PersonReference> {
    Some(PersonReference {
        reference: Some(Reference::NhsNumber(nhs_number.to_owned())),
    })
}

/// The claims of a token (already verified by the services; tests only read them).
pub fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the payload is base64url");
    serde_json::from_slice(&bytes).expect("the payload is JSON")
}

/// The actor a token stands for, as an aggregator would build it.
pub fn actor_of(token: &str) -> Actor {
    let claims = claims(token);
    let text = |name: &str| claims[name].as_str().unwrap_or_default().to_owned();
    Actor {
        user_id: text("sub"),
        role_profile_id: text("rpid"),
        role: Role::from_str_name(&text("role")).unwrap_or(Role::Unspecified) as i32,
        role_code: text("role_code"),
        organisation_code: text("org"),
        session_id: text("sid"),
        kind: ActorKind::User as i32,
        display_name: text("name"),
    }
}

/// A synthetic professional (no identity user needed when a service decides).
pub fn actor(role: Role, organisation_code: &str) -> Actor {
    Actor {
        user_id: uuid::Uuid::new_v4().to_string(),
        role_profile_id: uuid::Uuid::new_v4().to_string(),
        role: role as i32,
        organisation_code: organisation_code.to_owned(),
        kind: ActorKind::User as i32,
        ..Actor::default()
    }
}

impl Platform {
    /// A new user's token (unique username per call).
    pub async fn user(&self, role: Role, organisation_code: &str) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let username = format!(
            "user.{}.{n}",
            role.as_str_name().to_lowercase().replace('_', ".")
        );
        self.identity
            .token_for(&username, organisation_code, role)
            .await
    }

    /// Registers a new person (optionally with an NHS Number); returns the id.
    pub async fn person(&self, nhs_number: Option<&str>) -> String {
        self.registered(nhs_number).await.0
    }

    /// Registers a new person; returns the id and the local identifier it
    /// was registered under.
    pub async fn registered(&self, nhs_number: Option<&str>) -> (String, LocalIdentifier) {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let identifier = LocalIdentifier {
            organisation_code: ORG.to_owned(),
            system: "PAS".to_owned(),
            value: format!("H{n:06}{}", &uuid::Uuid::new_v4().simple().to_string()[..6]),
        };
        let response = self
            .index
            .clone()
            .register_person(with_token(
                RegisterPersonRequest {
                    local_identifier: Some(identifier.clone()),
                    demographics: Some(Demographics {
                        name: Some(HumanName {
                            given: vec![format!("Given{n}")],
                            family: format!("Family{}", uuid::Uuid::new_v4().simple()),
                            ..HumanName::default()
                        }),
                        birth_date: format!("19{:02}-0{}-1{}", 40 + n % 50, 1 + n % 9, n % 10),
                        sex: Sex::Female as i32,
                        nhs_number: nhs_number.unwrap_or_default().to_owned(),
                        ..Demographics::default()
                    }),
                },
                &self.clerk,
            ))
            .await
            .expect("registering a person")
            .into_inner();
        (response.person_id, identifier)
    }
}
