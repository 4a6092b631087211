//! Test support for My Care Record.
//!
//! Every test gets its own [`TestEnvironment`]: a database name, a NATS
//! namespace (prefix of every subject and stream) and a Redis key prefix that
//! no other test uses, so tests run in parallel against the same real servers
//! and never see each other's data. Services start in-process on free ports
//! ([`spawn_service`]) or as their real binaries ([`binary`]).
//!
//! Set `TEST_LOG=1` to see the services' logs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binary;
pub mod grpc;
pub mod servers;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use mcr_runtime::settings::Settings;
use mcr_runtime::{Application, McrService, ServiceSpec, StartupError};
use tokio_util::sync::CancellationToken;

/// One test's private slice of the shared servers.
#[derive(Debug, Clone)]
pub struct TestEnvironment {
    /// Short unique id, also the NATS namespace.
    pub id: String,
    /// Settings every service of this test shares (`MCR_*`).
    base_variables: HashMap<String, String>,
}

impl TestEnvironment {
    /// A fresh environment. Panics, naming the server and how to start it,
    /// when PostgreSQL, NATS or Redis is unreachable: tests never skip silently.
    pub async fn new() -> Self {
        require_servers().await;
        Self::with_overrides(&[])
    }

    /// A fresh environment: the process's own `MCR_*` settings, then this
    /// test's private names and loopback listeners, then `overrides`.
    pub(crate) fn with_overrides(overrides: &[(&str, String)]) -> Self {
        init_test_telemetry();
        let id = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut base_variables: HashMap<String, String> = mcr_runtime::process_environment()
            .into_iter()
            .filter(|(name, _)| name.starts_with("MCR_"))
            .collect();
        let own = [
            ("MCR_GRPC__HOST", "127.0.0.1".to_owned()),
            ("MCR_GRPC__PORT", "0".to_owned()),
            ("MCR_ADMIN__HOST", "127.0.0.1".to_owned()),
            ("MCR_ADMIN__PORT", "0".to_owned()),
            ("MCR_GRPC__DRAIN_TIMEOUT_MS", "3000".to_owned()),
            ("MCR_NATS__NAMESPACE", id.clone()),
            ("MCR_REDIS__KEY_PREFIX", format!("mcr-test:{id}:")),
        ];
        for (name, value) in own.iter().chain(overrides) {
            base_variables.insert((*name).to_owned(), value.clone());
        }
        Self { id, base_variables }
    }

    /// The database a service of this test uses (dropped by `.ci/run` later;
    /// every name starts `mcr_test_`).
    pub fn database_name(&self, spec: &ServiceSpec) -> String {
        format!("mcr_test_{}_{}", self.id, spec.config_section)
    }

    /// The `MCR_*` variables that point a service at this environment.
    pub fn variables(&self, spec: &ServiceSpec) -> HashMap<String, String> {
        let mut variables = self.base_variables.clone();
        variables.insert("MCR_DATABASE__NAME".to_owned(), self.database_name(spec));
        variables
    }

    /// The NATS subject `subject` as services of this environment see it.
    pub fn subject(&self, subject: &str) -> String {
        mcr_runtime::nats::scoped_subject(&self.id, subject)
    }
}

/// A service running in this process.
#[derive(Debug)]
pub struct RunningService {
    /// The bound gRPC port on 127.0.0.1.
    pub grpc_port: u16,
    /// The bound admin port on 127.0.0.1.
    pub admin_port: u16,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), StartupError>>,
}

impl RunningService {
    /// `http://127.0.0.1:<grpc port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// A connected channel to the service.
    pub async fn channel(&self) -> tonic::transport::Channel {
        grpc::connect(&self.grpc_endpoint()).await
    }

    /// Stops the service as SIGTERM would and waits for it.
    pub async fn stop(self) -> Result<(), StartupError> {
        self.stop.cancel();
        match self.task.await {
            Ok(result) => result,
            Err(join_error) => Err(StartupError::Service(format!(
                "service task panicked: {join_error}"
            ))),
        }
    }
}

/// Builds and starts `S` in-process against `environment`, with `overrides`
/// applied on top of its variables, and waits until it reports SERVING.
pub async fn spawn_service<S: McrService>(
    environment: &TestEnvironment,
    overrides: &[(&str, &str)],
) -> RunningService {
    let mut variables = environment.variables(&S::SPEC);
    for (name, value) in overrides {
        variables.insert((*name).to_owned(), (*value).to_owned());
    }
    let settings = match Settings::<S::Config>::load(&S::SPEC, &variables) {
        Ok(settings) => settings,
        Err(error) => panic!("test settings for {} are invalid: {error}", S::SPEC.name),
    };
    let application = match Application::build::<S>(settings).await {
        Ok(application) => application,
        Err(error) => panic!("{} failed to build: {error}", S::SPEC.name),
    };
    let stop = CancellationToken::new();
    let grpc_port = application.grpc_port();
    let admin_port = application.admin_port();
    let task = tokio::spawn(application.run_until_stopped(stop.clone()));
    let running = RunningService {
        grpc_port,
        admin_port,
        stop,
        task,
    };
    let channel = running.channel().await;
    if let Err(last_status) = grpc::wait_for_health(
        channel,
        S::SPEC.grpc_service_name,
        true,
        Duration::from_secs(30),
    )
    .await
    {
        panic!(
            "{} did not report SERVING within 30 s (last status {last_status}); is its database reachable?",
            S::SPEC.name
        );
    }
    running
}

/// The servers every integration test needs, with how to start each.
const REQUIRED_SERVERS: &[(&str, &str, &str)] = &[
    (
        "PostgreSQL",
        "127.0.0.1:5432",
        "./scripts/dev-stack (or: pg_ctlcluster 15 main start)",
    ),
    (
        "NATS with JetStream",
        "127.0.0.1:4222",
        "./scripts/dev-stack (or: nats-server -js -a 127.0.0.1)",
    ),
    (
        "Redis",
        "127.0.0.1:6379",
        "./scripts/dev-stack (or: redis-server --daemonize yes)",
    ),
];

/// Panics with a message naming each unreachable server and how to start it.
pub async fn require_servers() {
    static CHECKED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CHECKED
        .get_or_init(|| async {
            let mut missing = Vec::new();
            for (name, address, how_to_start) in REQUIRED_SERVERS {
                let connected = tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::net::TcpStream::connect(address),
                )
                .await;
                if !matches!(connected, Ok(Ok(_))) {
                    missing.push(format!(
                        "{name} is not reachable at {address}; start it with {how_to_start}"
                    ));
                }
            }
            assert!(
                missing.is_empty(),
                "integration tests need real servers:\n{}",
                missing.join("\n")
            );
        })
        .await;
}

/// Installs telemetry once per test process; logs only when `TEST_LOG` is set.
pub fn init_test_telemetry() {
    static GUARD: OnceLock<Option<mcr_runtime::telemetry::TelemetryGuard>> = OnceLock::new();
    GUARD.get_or_init(|| {
        let output = if std::env::var_os("TEST_LOG").is_some() {
            mcr_runtime::telemetry::LogOutput::Stdout
        } else {
            mcr_runtime::telemetry::LogOutput::Discard
        };
        let settings = mcr_runtime::settings::TelemetrySettings {
            log_format: mcr_runtime::settings::LogFormat::Human,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
        };
        mcr_runtime::telemetry::init("mcr-test", &settings, output).ok()
    });
}
