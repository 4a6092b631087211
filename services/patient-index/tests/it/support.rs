//! A patient index with a real identity in front of it, and demographics to register.

use mcr_proto::common::v1::{Address, HumanName, LocalIdentifier, Role};
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::patient_index::v1::*;
use mcr_testkit::{RunningService, TestEnvironment};
use mcr_testkit_identity::{Identity, with_token};
use tonic::transport::Channel;

pub struct Index {
    pub environment: TestEnvironment,
    pub identity: Identity,
    /// Kept so the service runs as long as the test.
    pub _service: RunningService,
    pub client: PatientIndexClient<Channel>,
    /// A clerk of RQW (index:write).
    pub clerk: String,
    /// A connector's service account (index:write for any organisation).
    pub connector: String,
    /// A system administrator (index:admin).
    pub admin: String,
}

pub async fn start() -> Index {
    start_with(&[]).await
}

/// An index with `extra` settings.
pub async fn start_with(extra: &[(&str, &str)]) -> Index {
    let environment = TestEnvironment::new().await;
    let identity = mcr_testkit_identity::start_in(environment.clone(), &[]).await;
    let identity_url = identity.identity_url();
    let mut settings = vec![("MCR_AUTH__IDENTITY_URL", identity_url.as_str())];
    settings.extend_from_slice(extra);
    let service = mcr_testkit::spawn_service::<mcr_patient_index::PatientIndexService>(
        &environment,
        &settings,
    )
    .await;
    let client = PatientIndexClient::new(service.channel().await);
    let clerk = identity
        .token_for("ward.clerk", "RQW", Role::AdminClerical)
        .await;
    let connector = identity
        .service_token("connector", "MCRAGG", &["index:read", "index:write"])
        .await;
    let admin = identity.admin_token().await;
    Index {
        environment,
        identity,
        _service: service,
        client,
        clerk,
        connector,
        admin,
    }
}

pub fn identifier(organisation: &str, value: &str) -> LocalIdentifier {
    LocalIdentifier {
        organisation_code: organisation.to_owned(),
        system: format!(
            "https://{}.example.nhs.uk/id/patient",
            organisation.to_lowercase()
        ),
        value: value.to_owned(),
    }
}

pub fn person(given: &str, family: &str, birth_date: &str, postcode: &str) -> Demographics {
    Demographics {
        name: Some(HumanName {
            prefix: String::new(),
            given: vec![given.to_owned()],
            family: family.to_owned(),
            suffix: String::new(),
        }),
        birth_date: birth_date.to_owned(),
        sex: Sex::Female as i32,
        address: Some(Address {
            lines: vec!["14 Maple Avenue".to_owned()],
            city: "Harlow".to_owned(),
            district: "Essex".to_owned(),
            postcode: postcode.to_owned(),
            country: "GB".to_owned(),
        }),
        ..Demographics::default()
    }
}

impl Index {
    /// Registers as a connector does (any organisation's identifier).
    pub async fn register(
        &self,
        identifier: LocalIdentifier,
        demographics: Demographics,
    ) -> Result<RegisterPersonResponse, tonic::Status> {
        self.client
            .clone()
            .register_person(with_token(
                RegisterPersonRequest {
                    local_identifier: Some(identifier),
                    demographics: Some(demographics),
                },
                &self.connector,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The open review items, as an administrator sees them.
    pub async fn review_queue(&self) -> Vec<PossibleDuplicate> {
        self.client
            .clone()
            .list_possible_duplicates(with_token(
                ListPossibleDuplicatesRequest::default(),
                &self.admin,
            ))
            .await
            .expect("review queue")
            .into_inner()
            .items
    }

    pub async fn person(&self, person_id: &str) -> GetPersonResponse {
        self.client
            .clone()
            .get_person(with_token(
                GetPersonRequest {
                    person: Some(mcr_proto::common::v1::PersonReference {
                        reference: Some(
                            mcr_proto::common::v1::person_reference::Reference::PersonId(
                                person_id.to_owned(),
                            ),
                        ),
                    }),
                    include_history: true,
                },
                &self.admin,
            ))
            .await
            .expect("reading a person")
            .into_inner()
    }
}
