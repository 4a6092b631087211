//! Support for the fault tests: the platform wired to NATS, Redis and
//! PostgreSQL processes the test owns ([`Stack`]), the aggregator and audit
//! in-process or as their real binaries, and record updates made to order.
//!
//! Identity, patient-index and consent always run in-process; the service a
//! test kills or starves runs as a process or with its own settings.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use mcr_connector::builder::RecordUpdateBuilder;
use mcr_proto::common::v1::person_reference::Reference;
use mcr_proto::common::v1::{
    Category, HumanName, LocalIdentifier, PageRequest, PersonReference, Purpose, Role,
};
use mcr_proto::patient_index::v1::Demographics;
use mcr_proto::records::v1::record_aggregator_client::RecordAggregatorClient;
use mcr_proto::records::v1::{GetCareRecordRequest, GetCareRecordResponse, RecordUpdate};
use mcr_runtime::McrService;
use mcr_testkit::RunningService;
use mcr_testkit::binary::ServiceProcess;
use mcr_testkit::servers::OwnedServers;
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::{Core, pairs};
use tonic::transport::Channel;

/// The provider whose updates the tests publish and whose staff read them.
pub const PROVIDER: &str = "RQW";
/// The provider's source system and identifier system.
pub const SYSTEM: &str = "EPR";

/// Owned servers, and identity, patient-index and consent running on them
/// (a [`Core`], which the stack derefs to).
#[allow(missing_debug_implementations)]
pub struct Stack {
    pub servers: OwnedServers,
    core: Core,
}

impl std::ops::Deref for Stack {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Stack {
    /// Starts the servers, then identity, patient-index and consent.
    pub async fn start() -> Self {
        let servers = OwnedServers::start().await;
        let core = Core::start_in(servers.environment(), &servers.nats.url()).await;
        Self { servers, core }
    }

    /// The aggregator's settings in this stack, then `extra` (later wins).
    pub fn aggregator_settings(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        self.core.aggregator_settings(&extra)
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
        mcr_testkit::spawn_service::<mcr_audit::AuditService>(
            &self.environment,
            &pairs(&self.audit_settings()),
        )
        .await
    }

    /// Audit's real `binary` as a child process (not yet SERVING).
    pub fn audit_process(&self, binary: &str, extra: &[(&str, &str)]) -> ServiceProcess {
        let settings = self.audit_settings();
        let mut settings = pairs(&settings);
        settings.extend_from_slice(extra);
        ServiceProcess::start(
            binary,
            &mcr_audit::AuditService::SPEC,
            &self.environment,
            &settings,
        )
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

    /// Lets the provider's professional holding `token` see `person`: an
    /// open care relationship and the person's permission to view.
    pub async fn allow(&self, person: &PersonReference, token: &str) {
        self.core.allow(person, PROVIDER, token).await;
    }
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
