//! The whole platform in one test: identity, patient-index, consent and the
//! record aggregator (and, when asked, audit) started in-process in one
//! [`TestEnvironment`], wired to each other with real service accounts, plus
//! professionals, consent facts and a connector publishing over NATS.
#![forbid(unsafe_code)]

use std::time::Duration;

use async_nats::jetstream;
use mcr_auth::scopes;
use mcr_connector::publisher::Publisher;
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{LocalIdentifier, PersonReference, Role};
use mcr_proto::consent::v1::consent_client::ConsentClient;
use mcr_proto::consent::v1::{
    CareRelationshipType, PermissionBasis, RecordCareRelationshipRequest,
    RecordPermissionToViewRequest,
};
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::records::v1::record_aggregator_client::RecordAggregatorClient;
use mcr_proto::timestamps::timestamp;
use mcr_testkit::{RunningService, TestEnvironment};
use mcr_testkit_identity::{Identity, with_token};
use time::OffsetDateTime;
use tonic::transport::Channel;

pub use mcr_testkit_identity::ServiceAccountCredentials;

/// What the record aggregator's service account may do.
pub const AGGREGATOR_SCOPES: &[&str] = &[
    scopes::INDEX_READ,
    scopes::INDEX_WRITE,
    scopes::CONSENT_DECIDE,
    scopes::CONSENT_WRITE,
    scopes::IDENTITY_READ,
];

/// The organisation platform services act for.
pub const PLATFORM_ORGANISATION: &str = "MCR001";

/// Identity, patient-index and consent wired to each other in one
/// environment, the record aggregator's service account and a NATS
/// connection: what every platform test starts from, whether the
/// aggregator then runs in this process ([`Platform`]) or as a process of
/// its own (the fault tests).
#[allow(missing_debug_implementations)]
pub struct Core {
    pub environment: TestEnvironment,
    pub identity: Identity,
    pub patient_index: RunningService,
    pub consent: RunningService,
    /// The aggregator's service account (also usable by tests as a connector
    /// or to record care relationships).
    pub aggregator_account: ServiceAccountCredentials,
    nats: async_nats::Client,
}

/// The running platform: a [`Core`] and the aggregator (and audit).
#[allow(missing_debug_implementations)]
pub struct Platform {
    core: Core,
    pub aggregator: RunningService,
    /// Present when started with [`Options::with_audit`].
    pub audit: Option<RunningService>,
}

impl std::ops::Deref for Platform {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

/// How to start the platform.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Settings overrides for the aggregator only.
    pub aggregator_overrides: Vec<(String, String)>,
    /// Also start the audit service.
    pub with_audit: bool,
}

/// Settings overrides as owned pairs.
pub fn owned(overrides: Vec<(&'static str, String)>) -> Vec<(String, String)> {
    overrides
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// Owned settings as the borrowed pairs the service starters take.
pub fn pairs(overrides: &[(String, String)]) -> Vec<(&str, &str)> {
    overrides
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

impl Platform {
    /// Every service but audit, with default settings.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// The platform as `options` say.
    pub async fn start_with(options: Options) -> Self {
        let core = Core::start_in(TestEnvironment::new().await, "nats://127.0.0.1:4222").await;
        let aggregator =
            mcr_testkit::spawn_service::<mcr_record_aggregator::RecordAggregatorService>(
                &core.environment,
                &pairs(&core.aggregator_settings(&options.aggregator_overrides)),
            )
            .await;
        let audit = if options.with_audit {
            Some(
                mcr_testkit::spawn_service::<mcr_audit::AuditService>(
                    &core.environment,
                    &pairs(&core.audit_settings()),
                )
                .await,
            )
        } else {
            None
        };
        Self {
            core,
            aggregator,
            audit,
        }
    }

    /// A client of the record aggregator.
    pub async fn records(&self) -> RecordAggregatorClient<Channel> {
        RecordAggregatorClient::new(self.aggregator.channel().await)
    }
}

impl Core {
    /// Starts identity, patient-index and consent in `environment`, and
    /// connects to NATS at `nats_url`.
    pub async fn start_in(environment: TestEnvironment, nats_url: &str) -> Self {
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
        let mut consent_overrides = owned(consent_account.overrides());
        consent_overrides.extend([
            ("MCR_AUTH__IDENTITY_URL".to_owned(), identity_url),
            (
                "MCR_CONSENT__PATIENT_INDEX_URL".to_owned(),
                patient_index.grpc_endpoint(),
            ),
        ]);
        let consent = mcr_testkit::spawn_service::<mcr_consent::ConsentService>(
            &environment,
            &pairs(&consent_overrides),
        )
        .await;
        let aggregator_account = identity
            .service_account(
                "record-aggregator",
                PLATFORM_ORGANISATION,
                AGGREGATOR_SCOPES,
            )
            .await;
        let nats = match async_nats::connect(nats_url).await {
            Ok(client) => client,
            Err(error) => panic!("NATS at {nats_url} is unreachable: {error}"),
        };
        Self {
            environment,
            identity,
            patient_index,
            consent,
            aggregator_account,
            nats,
        }
    }

    /// The aggregator's settings wired to this core, then `extra` (later
    /// wins).
    pub fn aggregator_settings(&self, extra: &[(String, String)]) -> Vec<(String, String)> {
        let mut settings = owned(self.aggregator_account.overrides());
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
            // Tests want to see each update at once, not after a batch fills.
            (
                "MCR_RECORDS__INGEST__BATCH_LINGER_MS".to_owned(),
                "2".to_owned(),
            ),
        ]);
        settings.extend(extra.iter().cloned());
        settings
    }

    /// Audit's settings wired to this core.
    pub fn audit_settings(&self) -> Vec<(String, String)> {
        vec![(
            "MCR_AUTH__IDENTITY_URL".to_owned(),
            self.identity.identity_url(),
        )]
    }

    /// This test's environment (namespace, databases).
    pub fn environment(&self) -> &TestEnvironment {
        &self.environment
    }

    /// A JetStream context on the shared NATS server.
    pub fn jetstream(&self) -> jetstream::Context {
        jetstream::new(self.nats.clone())
    }

    /// The NATS client of this test.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// A connector publishing into this test's namespace.
    pub fn publisher(&self) -> Publisher {
        Publisher::new(self.jetstream()).with_namespace(&self.environment().id)
    }

    /// A client of consent.
    pub async fn consent_client(&self) -> ConsentClient<Channel> {
        ConsentClient::new(self.consent.channel().await)
    }

    /// A client of patient-index.
    pub async fn index_client(&self) -> PatientIndexClient<Channel> {
        PatientIndexClient::new(self.patient_index.channel().await)
    }

    /// An access token of a new professional `username` in `role` at
    /// `organisation_code` (created when missing).
    pub async fn professional(
        &self,
        username: &str,
        organisation_code: &str,
        role: Role,
    ) -> String {
        self.identity
            .token_for(username, organisation_code, role)
            .await
    }

    /// A service token of the aggregator's account (to act as a connector
    /// or platform service in a test).
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
            .await
            .expect("a service token");
        response.into_inner().access_token
    }

    /// Lets the professional holding `token` (acting for `organisation_code`)
    /// see `person`: an open care relationship of their organisation (as a
    /// connector would publish it) and the person's permission to view.
    pub async fn allow(&self, person: &PersonReference, organisation_code: &str, token: &str) {
        let now = OffsetDateTime::now_utc();
        let mut consent = self.consent_client().await;
        consent
            .record_care_relationship(with_token(
                RecordCareRelationshipRequest {
                    person: Some(person.clone()),
                    organisation_code: organisation_code.to_owned(),
                    team_code: String::new(),
                    relationship_type: CareRelationshipType::Admission as i32,
                    start_time: Some(timestamp(now - time::Duration::days(1))),
                    end_time: None,
                    source_system: "PAS".to_owned(),
                    source_reference: format!("ADM-{}", uuid::Uuid::new_v4()),
                    reason: String::new(),
                },
                &self.service_token().await,
            ))
            .await
            .expect("recording a care relationship");
        consent
            .record_permission_to_view(with_token(
                RecordPermissionToViewRequest {
                    person: Some(person.clone()),
                    organisation_code: organisation_code.to_owned(),
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
            .await
            .expect("recording permission to view");
    }

    /// The aggregator's ingest consumer's (pending, unacked) counts; `None`
    /// while the stream or consumer cannot be read.
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

    /// Waits until the aggregator has acked everything published so far
    /// (the ingest consumer has nothing pending), or panics after `limit`.
    pub async fn wait_for_ingest(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let settled = self.ingest_settled().await;
            if settled == Some((0, 0)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the aggregator did not ack every update within {limit:?} (pending, unacked: {settled:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A person reference by local identifier.
pub fn local_person(organisation_code: &str, system: &str, value: &str) -> PersonReference {
    PersonReference {
        reference: Some(Reference::LocalIdentifier(LocalIdentifier {
            organisation_code: organisation_code.to_owned(),
            system: system.to_owned(),
            value: value.to_owned(),
        })),
    }
}

/// A person reference by platform id.
pub fn person_id(id: &str) -> PersonReference {
    PersonReference {
        reference: Some(Reference::PersonId(id.to_owned())),
    }
}
