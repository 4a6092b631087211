//! Support for the fault tests: the platform wired to NATS, Redis and
//! PostgreSQL processes the test owns ([`Stack`]), the aggregator and audit
//! in-process or as their real binaries, and record updates made to order.
//!
//! Identity, patient-index and consent always run in-process; the service a
//! test kills or starves runs as a process or with its own settings.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use async_nats::jetstream;
use mcr_auth::scopes;
use mcr_connector::builder::RecordUpdateBuilder;
use mcr_connector::publisher::Publisher;
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{
    Category, HumanName, LocalIdentifier, PageRequest, PersonReference, Purpose, Role,
};
use mcr_proto::consent::v1::consent_client::ConsentClient;
use mcr_proto::consent::v1::{
    CareRelationshipType, PermissionBasis, RecordCareRelationshipRequest,
    RecordPermissionToViewRequest,
};
use mcr_proto::patient_index::v1::Demographics;
use mcr_proto::records::v1::record_aggregator_client::RecordAggregatorClient;
use mcr_proto::records::v1::{GetCareRecordRequest, GetCareRecordResponse, RecordUpdate};
use mcr_proto::timestamps::timestamp;
use mcr_runtime::McrService;
use mcr_testkit::binary::ServiceProcess;
use mcr_testkit::servers::OwnedServers;
use mcr_testkit::{RunningService, TestEnvironment};
use mcr_testkit_identity::{Identity, ServiceAccountCredentials, with_token};
use time::OffsetDateTime;
use tonic::transport::Channel;

/// The organisation platform services act for.
pub const PLATFORM_ORGANISATION: &str = "MCR001";
/// The provider whose updates the tests publish and whose staff read them.
pub const PROVIDER: &str = "RQW";
/// The provider's source system and identifier system.
pub const SYSTEM: &str = "EPR";

/// What the aggregator's service account may do.
const AGGREGATOR_SCOPES: &[&str] = &[
    scopes::INDEX_READ,
    scopes::INDEX_WRITE,
    scopes::CONSENT_DECIDE,
    scopes::CONSENT_WRITE,
    scopes::IDENTITY_READ,
];

/// Owned servers, and identity, patient-index and consent running on them.
#[allow(missing_debug_implementations)]
pub struct Stack {
    pub servers: OwnedServers,
    pub environment: TestEnvironment,
    pub identity: Identity,
    pub patient_index: RunningService,
    pub consent: RunningService,
    pub aggregator_account: ServiceAccountCredentials,
    nats: async_nats::Client,
}

impl Stack {
    /// Starts the servers, then identity, patient-index and consent.
    pub async fn start() -> Self {
        let servers = OwnedServers::start().await;
        let environment = servers.environment();
        let identity = mcr_testkit_identity::start_in(environment.clone(), &[]).await;
        let identity_url = identity.identity_url();
        let patient_index = mcr_testkit::spawn_service::<mcr_patient_index::PatientIndexService>(
            &environment,
            &[("MCR_AUTH__IDENTITY_URL", identity_url.as_str())],
        )
        .await;
        let consent_account = identity
            .service_account("consent", PLATFORM_ORGANISATION, &[scopes::INDEX_READ])
            .await;
        let mut consent_settings = owned(&consent_account);
        consent_settings.extend([
            ("MCR_AUTH__IDENTITY_URL".to_owned(), identity_url.clone()),
            (
                "MCR_CONSENT__PATIENT_INDEX_URL".to_owned(),
                patient_index.grpc_endpoint(),
            ),
        ]);
        let consent = mcr_testkit::spawn_service::<mcr_consent::ConsentService>(
            &environment,
            &pairs(&consent_settings),
        )
        .await;
        let aggregator_account = identity
            .service_account(
                "record-aggregator",
                PLATFORM_ORGANISATION,
                AGGREGATOR_SCOPES,
            )
            .await;
        let nats = match async_nats::connect(servers.nats.url()).await {
            Ok(client) => client,
            Err(error) => panic!("the test's own nats-server is unreachable: {error}"),
        };
        Self {
            servers,
            environment,
            identity,
            patient_index,
            consent,
            aggregator_account,
            nats,
        }
    }

    /// The aggregator's settings in this stack, then `extra` (later wins).
    pub fn aggregator_settings(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut settings = owned(&self.aggregator_account);
        settings.extend([
            (
                "MCR_AUTH__IDENTITY_URL".to_owned(),
                self.identity.identity_url(),
            ),
            (
                "MCR_RECORDS__PATIENT_INDEX_URL".to_owned(),
                self.patient_index.grpc_endpoint(),
            ),
            (
                "MCR_RECORDS__CONSENT_URL".to_owned(),
                self.consent.grpc_endpoint(),
            ),
            // Tests want each update at once, not after a batch fills.
            (
                "MCR_RECORDS__INGEST__BATCH_LINGER_MS".to_owned(),
                "2".to_owned(),
            ),
        ]);
        settings.extend(
            extra
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        settings
    }

    /// The aggregator in this process.
    pub async fn spawn_aggregator(&self, extra: &[(&str, &str)]) -> RunningService {
        let settings = self.aggregator_settings(extra);
        mcr_testkit::spawn_service::<mcr_record_aggregator::RecordAggregatorService>(
            &self.environment,
            &pairs(&settings),
        )
        .await
    }

    /// The aggregator's real `binary` as a child process (not yet SERVING).
    /// (Only integration tests know binaries' paths: `env!("CARGO_BIN_EXE_…")`.)
    pub fn aggregator_process(&self, binary: &str, extra: &[(&str, &str)]) -> ServiceProcess {
        let settings = self.aggregator_settings(extra);
        ServiceProcess::start(
            binary,
            &mcr_record_aggregator::RecordAggregatorService::SPEC,
            &self.environment,
            &pairs(&settings),
        )
    }

    /// Audit in this process.
    pub async fn spawn_audit(&self) -> RunningService {
        let identity_url = self.identity.identity_url();
        mcr_testkit::spawn_service::<mcr_audit::AuditService>(
            &self.environment,
            &[("MCR_AUTH__IDENTITY_URL", identity_url.as_str())],
        )
        .await
    }

    /// Audit's real `binary` as a child process (not yet SERVING).
    pub fn audit_process(&self, binary: &str, extra: &[(&str, &str)]) -> ServiceProcess {
        let identity_url = self.identity.identity_url();
        let mut settings = vec![("MCR_AUTH__IDENTITY_URL", identity_url.as_str())];
        settings.extend_from_slice(extra);
        ServiceProcess::start(
            binary,
            &mcr_audit::AuditService::SPEC,
            &self.environment,
            &settings,
        )
    }

    /// The test's own NATS connection (it reconnects by itself).
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// JetStream on the test's own NATS.
    pub fn jetstream(&self) -> jetstream::Context {
        jetstream::new(self.nats.clone())
    }

    /// A connector publishing into this stack's namespace.
    pub fn publisher(&self) -> Publisher {
        Publisher::new(self.jetstream()).with_namespace(&self.environment.id)
    }

    /// A pool on `service`'s database in this stack.
    pub async fn database<S: McrService>(&self) -> sqlx::PgPool {
        let url = self
            .servers
            .postgres
            .url(&self.environment.database_name(&S::SPEC));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // The service creates its database at start-up: wait for it.
            match sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect(&url)
                .await
            {
                Ok(pool) => return pool,
                Err(error) if Instant::now() > deadline => {
                    panic!("{}'s database never appeared: {error}", S::SPEC.name)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// An access token of a new professional `username` in `role` at the provider.
    pub async fn professional(&self, username: &str, role: Role) -> String {
        self.identity.token_for(username, PROVIDER, role).await
    }

    /// A token of the aggregator's service account.
    pub async fn service_token(&self) -> String {
        let response = self
            .identity
            .client
            .clone()
            .issue_service_token(mcr_proto::identity::v1::IssueServiceTokenRequest {
                client_id: self.aggregator_account.client_id.clone(),
                client_secret: self.aggregator_account.client_secret.clone(),
                scopes: Vec::new(),
            })
            .await;
        match response {
            Ok(response) => response.into_inner().access_token,
            Err(status) => panic!("no service token: {status}"),
        }
    }

    /// A consent client.
    pub async fn consent_client(&self) -> ConsentClient<Channel> {
        ConsentClient::new(self.consent.channel().await)
    }

    /// Lets the provider's professional holding `token` see `person`: an
    /// open care relationship and the person's permission to view.
    pub async fn allow(&self, person: &PersonReference, token: &str) {
        let now = OffsetDateTime::now_utc();
        let mut consent = self.consent_client().await;
        let relationship = consent
            .record_care_relationship(with_token(
                RecordCareRelationshipRequest {
                    person: Some(person.clone()),
                    organisation_code: PROVIDER.to_owned(),
                    team_code: String::new(),
                    relationship_type: CareRelationshipType::Admission as i32,
                    start_time: Some(timestamp(now - time::Duration::days(1))),
                    end_time: None,
                    source_system: "PAS".to_owned(),
                    source_reference: format!("ADM-{}", uuid::Uuid::new_v4().simple()),
                    reason: String::new(),
                },
                &self.service_token().await,
            ))
            .await;
        if let Err(status) = relationship {
            panic!("recording a care relationship failed: {status}");
        }
        let permission = consent
            .record_permission_to_view(with_token(
                RecordPermissionToViewRequest {
                    person: Some(person.clone()),
                    organisation_code: PROVIDER.to_owned(),
                    user_id: String::new(),
                    basis: PermissionBasis::PersonConsented as i32,
                    best_interests: None,
                    episode_reference: String::new(),
                    categories: Vec::new(),
                    expires_at: Some(timestamp(now + time::Duration::days(1))),
                    note: String::new(),
                },
                token,
            ))
            .await;
        if let Err(status) = permission {
            panic!("recording permission to view failed: {status}");
        }
    }

    /// Whether the aggregator's ingest consumer has nothing pending or
    /// unacked (`None` while the stream or consumer cannot be read).
    pub async fn ingest_settled(&self) -> Option<(u64, usize)> {
        let stream_name = format!("{}_MCR_RECORDS", self.environment.id);
        let stream = self.jetstream().get_stream(&stream_name).await.ok()?;
        let mut consumer: jetstream::consumer::PullConsumer = stream
            .get_consumer(mcr_record_aggregator::ingest::CONSUMER)
            .await
            .ok()?;
        let info = consumer.info().await.ok()?;
        Some((info.num_pending, info.num_ack_pending))
    }

    /// Waits until the aggregator has acked everything published so far.
    pub async fn wait_for_ingest(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let settled = self.ingest_settled().await;
            if settled == Some((0, 0)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the aggregator did not ack every update within {limit:?} (pending, unacked: {settled:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn owned(account: &ServiceAccountCredentials) -> Vec<(String, String)> {
    account
        .overrides()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

fn pairs(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// The provider's identifier of test person `number`.
pub fn patient_value(number: u32) -> String {
    format!("RES-{number}")
}

/// Test person `number` by the provider's identifier.
pub fn person(number: u32) -> PersonReference {
    PersonReference {
        reference: Some(Reference::LocalIdentifier(LocalIdentifier {
            organisation_code: PROVIDER.to_owned(),
            system: SYSTEM.to_owned(),
            value: patient_value(number),
        })),
    }
}

/// The provider's id of entry `entry` of person `number` (entry ids are
/// unique per organisation and system, so they carry the person).
pub fn local_entry(number: u32, entry: u32) -> String {
    format!("p{number}-obs-{entry}")
}

/// The summary entry `entry` of person `number` shows at `version`: what
/// content checks compare.
pub fn summary(number: u32, entry: u32, version: u64) -> String {
    format!(
        "Haemoglobin {} g/L (p{number} e{entry} v{version})",
        100 + entry % 60
    )
}

/// Version `version` of entry `entry` of test person `number`.
pub fn update(number: u32, entry: u32, version: u64) -> RecordUpdate {
    let nhs_number =
        mcr_connector::nhs_number::from_stem(400_000_000 + number * 7).unwrap_or_default();
    let built = RecordUpdateBuilder::upsert(PROVIDER, SYSTEM, Category::TestResults)
        .patient(SYSTEM, &patient_value(number))
        .entry(&local_entry(number, entry), version)
        .effective_time(prost_types::Timestamp {
            seconds: 1_735_689_600 + i64::from(entry) * 60,
            nanos: 0,
        })
        .resource(&serde_json::json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Haemoglobin"}]},
            "valueQuantity": {"value": 100 + entry % 60, "unit": "g/L"}
        }))
        .display_summary(&summary(number, entry, version))
        .demographics(Demographics {
            nhs_number,
            birth_date: "1970-01-01".to_owned(),
            name: Some(HumanName {
                family: format!("Resilience{number}"),
                given: vec!["Test".to_owned()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .build();
    match built {
        Ok(update) => update,
        Err(rejection) => panic!("the test update is invalid: {rejection}"),
    }
}

/// GetCareRecord of `person` (every entry on one page), with a 15 s
/// deadline of the caller's own so no test ever hangs.
pub async fn view(
    channel: Channel,
    token: &str,
    person: &PersonReference,
) -> Result<GetCareRecordResponse, tonic::Status> {
    let mut request = with_token(
        GetCareRecordRequest {
            person: Some(person.clone()),
            purpose: Purpose::DirectCare as i32,
            page: Some(PageRequest {
                page_size: 500,
                page_token: String::new(),
            }),
            ..Default::default()
        },
        token,
    );
    request.set_timeout(Duration::from_secs(15));
    RecordAggregatorClient::new(channel)
        .get_care_record(request)
        .await
        .map(tonic::Response::into_inner)
}
