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
    /// A clerk (index:write).
    pub clerk: String,
    /// A system administrator (index:admin).
    pub admin: String,
}

pub async fn start() -> Index {
    let environment = TestEnvironment::new().await;
    let identity = mcr_testkit_identity::start_in(environment.clone(), &[]).await;
    let identity_url = identity.identity_url();
    let service = mcr_testkit::spawn_service::<mcr_patient_index::PatientIndexService>(
        &environment,
        &[("MCR_AUTH__IDENTITY_URL", identity_url.as_str())],
    )
    .await;
    let client = PatientIndexClient::new(service.channel().await);
    let clerk = identity
        .token_for("ward.clerk", "RQW", Role::AdminClerical)
        .await;
    let admin = identity.admin_token().await;
    Index {
        environment,
        identity,
        _service: service,
        client,
        clerk,
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
                &self.clerk,
            ))
            .await
            .map(tonic::Response::into_inner)
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
