//! One care record read produces ONE trace that an OTLP collector receives:
//! the client's root span, the aggregator's RPC with its Redis and
//! PostgreSQL child spans, the calls into patient-index and consent, the NATS
//! publish of the audit event and audit's consumption of it, every span's
//! parent inside the trace. Once from a client span in this test, once from
//! the real `mcr record show` binary exporting its own spans. And an update
//! published inside a trace is ingested inside it; the event follower's
//! batch that applies a consent change links to the change's trace.
//!
//! The services run in this one process, which has one tracer (telemetry is
//! process-wide), so their spans carry the same resource; they are told
//! apart by `rpc.service` and by name. Each binary exports under its own
//! `service.name` in a deployment.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcr_connector::builder::RecordUpdateBuilder;
use mcr_proto::common::v1::{Category, HumanName, Purpose, Role};
use mcr_proto::consent::v1::{PermissionBasis, RecordPermissionToViewRequest};
use mcr_proto::patient_index::v1::{Demographics, Sex};
use mcr_proto::records::v1::GetCareRecordRequest;
use mcr_proto::timestamps::timestamp;
use mcr_runtime::settings::{LogFormat, TelemetrySettings};
use mcr_runtime::telemetry::{self, LogOutput, TelemetryGuard};
use mcr_testkit_identity::{PASSWORD, with_token};
use mcr_testkit_platform::{Options, Platform, local_person};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const HOSPITAL: &str = "RQW";
const NHS_NUMBER: &str = "9434765919";
const PATIENCE: Duration = Duration::from_secs(30);

/// An OTLP/gRPC trace collector that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    endpoint: Arc<Mutex<String>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves on a free local port; returns its `http://` endpoint.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
        });
        let endpoint = format!("http://{address}");
        *self.endpoint.lock().unwrap() = endpoint.clone();
        endpoint
    }

    fn endpoint(&self) -> String {
        self.endpoint.lock().unwrap().clone()
    }

    /// The trace of the first span named `name` with attribute `key` = `value`.
    fn trace_of(&self, name: &str, key: &str, value: &str) -> Option<Vec<u8>> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .find(|span| span.name == name && attribute(span, key).as_deref() == Some(value))
            .map(|span| span.trace_id.clone())
    }

    fn trace(&self, trace_id: &[u8]) -> Vec<Span> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|attribute| attribute.key == key)?;
    match value.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(text) => Some(text.clone()),
        AnyValue::IntValue(number) => Some(number.to_string()),
        AnyValue::BoolValue(flag) => Some(flag.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// The OpenTelemetry trace id of a span made in this process, as OTLP sends it.
fn trace_id_of(span: &tracing::Span) -> Vec<u8> {
    span.context()
        .span()
        .span_context()
        .trace_id()
        .to_bytes()
        .to_vec()
}

fn describe(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|span| {
            let service = attribute(span, "rpc.service").unwrap_or_default();
            format!("{} {service}", span.name)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn update(entry: &str) -> mcr_proto::records::v1::RecordUpdate {
    RecordUpdateBuilder::upsert(HOSPITAL, "EPR", Category::Medications)
        .patient("EPR", "T1")
        .entry(entry, 1)
        .effective_time(prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 0,
        })
        .resource(&json!({
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {"text": "Aspirin 75mg"},
            "subject": {"reference": "Patient/example"}
        }))
        .display_summary("Aspirin 75mg")
        .demographics(Demographics {
            nhs_number: NHS_NUMBER.to_owned(),
            name: Some(HumanName {
                given: vec!["Tara".to_owned()],
                family: "Trace".to_owned(),
                ..Default::default()
            }),
            birth_date: "1975-07-07".to_owned(),
            sex: Sex::Female as i32,
            ..Default::default()
        })
        .build()
        .unwrap()
}

/// Telemetry exporting to a new collector (before the platform starts: the
/// first set-up in a process is the one that stays, the test kit's own is
/// then a no-op), the platform with audit, one person's entry ingested, and
/// `username` at the hospital allowed to see it. Returns the access token.
async fn traced_platform(username: &str) -> (Collector, TelemetryGuard, Platform, String) {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let guard = telemetry::init(
        "mcr-otlp-test",
        &TelemetrySettings {
            log_format: LogFormat::Human,
            log_filter: "info".to_owned(),
            otlp_endpoint: Some(endpoint),
        },
        LogOutput::Discard,
    )
    .unwrap();
    let platform = Platform::start_with(Options {
        with_audit: true,
        ..Options::default()
    })
    .await;
    platform
        .publisher()
        .publish(&update("med-1"))
        .await
        .unwrap();
    platform.wait_for_ingest(PATIENCE).await;
    let token = platform
        .professional(username, HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform
        .allow(&local_person(HOSPITAL, "EPR", "T1"), HOSPITAL, &token)
        .await;
    (collector, guard, platform, token)
}

/// Waits until the trace holds audit's consumption (audit consumes
/// asynchronously, the exporters send batches every few seconds), then
/// flushes this process's exporter and returns the trace.
async fn complete_trace(
    collector: &Collector,
    trace_id: &[u8],
    guard: TelemetryGuard,
) -> Vec<Span> {
    let deadline = Instant::now() + PATIENCE;
    while !collector
        .trace(trace_id)
        .iter()
        .any(|span| span.name == "audit.ingest")
    {
        assert!(
            Instant::now() < deadline,
            "no audit.ingest span in the trace after {PATIENCE:?}:\n{}",
            describe(&collector.trace(trace_id))
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Shutdown blocks until exported: off the runtime's threads.
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();
    collector.trace(trace_id)
}

/// One tree under `root`, with every hop of a care record read in it.
fn assert_span_tree(spans: &[Span], root: &str) {
    let listing = describe(spans);
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|span| span.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root:\n{listing}");
    assert_eq!(roots[0].name, root, "{listing}");
    let ids: HashSet<&[u8]> = spans.iter().map(|span| span.span_id.as_slice()).collect();
    for span in spans {
        assert!(
            span.parent_span_id.is_empty() || ids.contains(span.parent_span_id.as_slice()),
            "{} has a parent outside the trace:\n{listing}",
            span.name
        );
    }

    let server_of = |service: &str| {
        spans.iter().any(|span| {
            span.name.starts_with(service)
                && attribute(span, "rpc.service").as_deref() == Some(service)
        })
    };
    for service in [
        "mcr.records.v1.RecordAggregator",
        "mcr.consent.v1.Consent",
        "mcr.patient_index.v1.PatientIndex",
    ] {
        assert!(
            server_of(service),
            "no server span of {service}:\n{listing}"
        );
    }
    let with = |prefix: &str, key: &str, value: &str| {
        spans.iter().any(|span| {
            span.name.starts_with(prefix) && attribute(span, key).as_deref() == Some(value)
        })
    };
    assert!(
        with("audit.publish", "messaging.system", "nats"),
        "no NATS publish:\n{listing}"
    );
    assert!(
        with("redis.", "db.system", "redis"),
        "no Redis span:\n{listing}"
    );
    assert!(
        with("db.", "db.system", "postgresql"),
        "no PostgreSQL span:\n{listing}"
    );

    // Audit's consumption hangs below the aggregator's publish.
    let by_id: HashMap<&[u8], &Span> = spans
        .iter()
        .map(|span| (span.span_id.as_slice(), span))
        .collect();
    let consumed = spans
        .iter()
        .find(|span| span.name == "audit.ingest")
        .unwrap();
    let mut ancestor = by_id.get(consumed.parent_span_id.as_slice()).copied();
    let mut below_publish = false;
    while let Some(span) = ancestor {
        below_publish |= span.name == "audit.publish";
        ancestor = by_id.get(span.parent_span_id.as_slice()).copied();
    }
    assert!(
        below_publish,
        "audit.ingest is not below audit.publish:\n{listing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_from_a_client_span_is_one_trace_across_every_service_and_the_audit_stream() {
    let (collector, guard, platform, clinician) = traced_platform("dr.trace").await;

    // The client: a root span, its context in the call's metadata.
    let root = tracing::info_span!("client GetCareRecord", otel.kind = "client");
    let trace_id = trace_id_of(&root);
    let mut records = platform.records().await;
    async {
        let mut request = with_token(
            GetCareRecordRequest {
                person: Some(local_person(HOSPITAL, "EPR", "T1")),
                purpose: Purpose::DirectCare as i32,
                ..Default::default()
            },
            &clinician,
        );
        mcr_runtime::propagation::inject_current_into_grpc(request.metadata_mut());
        records.get_care_record(request).await.unwrap();
    }
    .instrument(root.clone())
    .await;
    drop(root);

    let spans = complete_trace(&collector, &trace_id, guard).await;
    assert_span_tree(&spans, "client GetCareRecord");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_published_in_a_trace_is_ingested_in_that_trace_and_an_untraced_one_adds_none() {
    // `traced_platform` publishes its update outside any span.
    let (collector, guard, platform, _) = traced_platform("dr.ingest").await;

    let root = tracing::info_span!("connector publish", otel.kind = "producer");
    let root_context = root.context().span().span_context().clone();
    let publisher = platform.publisher();
    publisher
        .publish(&update("med-2"))
        .instrument(root.clone())
        .await
        .unwrap();
    drop(root);
    platform.wait_for_ingest(PATIENCE).await;
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();

    let trace = collector.trace(&root_context.trace_id().to_bytes());
    let ingested = trace
        .iter()
        .find(|span| span.name == "records.ingest")
        .unwrap_or_else(|| {
            panic!(
                "no records.ingest in the publisher's trace:\n{}",
                describe(&trace)
            )
        });
    assert_eq!(
        ingested.parent_span_id,
        root_context.span_id().to_bytes(),
        "the aggregator's span is a child of the publish"
    );
    let spans = collector.spans.lock().unwrap();
    let per_update = spans
        .iter()
        .filter(|span| span.name == "records.ingest")
        .count();
    assert_eq!(per_update, 1, "the untraced update made no span of its own");
    let batches = spans
        .iter()
        .filter(|span| span.name == "records.ingest_batch")
        .count();
    assert!(
        batches >= 2,
        "each update was ingested in a batch span ({batches})"
    );
}

/// The `mcr` binary: built with the workspace (`cargo nextest run
/// --workspace`, as CI runs), else built now.
fn mcr_binary() -> PathBuf {
    let test_binary = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-<hash> → target/<profile>/mcr
    let profile = test_binary.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile.join("mcr");
    if !binary.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let built = std::process::Command::new(cargo)
            .args(["build", "-p", "mcr-cli", "--bin", "mcr"])
            .current_dir(mcr_deploy_tests::workspace_root())
            .status()
            .unwrap();
        assert!(built.success(), "building the mcr binary failed");
    }
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcr_record_show_is_one_trace_from_the_cli_to_the_audit_store() {
    let (collector, guard, platform, _) = traced_platform("dr.cli").await;
    let home = std::env::temp_dir().join(format!("mcr-otlp-{}", platform.environment().id));
    let credentials = home.join("credentials.json");
    let binary = mcr_binary();
    let run = |arguments: &[&str]| {
        let mut command = tokio::process::Command::new(&binary);
        command
            .args(arguments)
            .arg("--credentials")
            .arg(&credentials)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("MCR_PASSWORD", PASSWORD)
            .env("MCR_IDENTITY_URL", platform.identity.identity_url())
            .env(
                "MCR_PATIENT_INDEX_URL",
                platform.patient_index.grpc_endpoint(),
            )
            .env("MCR_CONSENT_URL", platform.consent.grpc_endpoint())
            .env(
                "MCR_RECORD_AGGREGATOR_URL",
                platform.aggregator.grpc_endpoint(),
            )
            .env("MCR_TELEMETRY__OTLP_ENDPOINT", collector.endpoint())
            .stdin(std::process::Stdio::null());
        command.output()
    };
    let login = run(&["login", "--username", "dr.cli"]).await.unwrap();
    assert!(login.status.success(), "{login:?}");
    let shown = run(&["record", "show", NHS_NUMBER]).await.unwrap();
    assert!(shown.status.success(), "{shown:?}");
    assert!(String::from_utf8_lossy(&shown.stdout).contains("Aspirin 75mg"));
    let _ = std::fs::remove_dir_all(&home);

    // The binary flushed its spans before exiting; its root span is "mcr".
    let trace_id = collector
        .trace_of("mcr", "command", "record")
        .unwrap_or_else(|| panic!("no span of `mcr record` received"));
    let spans = complete_trace(&collector, &trace_id, guard).await;
    assert_span_tree(&spans, "mcr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_batch_that_applies_a_consent_change_links_to_the_changes_trace() {
    let (collector, guard, platform, clinician) = traced_platform("dr.links").await;

    let root = tracing::info_span!("client RecordPermissionToView", otel.kind = "client");
    let trace_id = trace_id_of(&root);
    let mut consent = platform.consent_client().await;
    async {
        let now = time::OffsetDateTime::now_utc();
        let mut request = with_token(
            RecordPermissionToViewRequest {
                person: Some(local_person(HOSPITAL, "EPR", "T1")),
                organisation_code: HOSPITAL.to_owned(),
                basis: PermissionBasis::PersonConsented as i32,
                expires_at: Some(timestamp(now + time::Duration::days(2))),
                note: "traced".to_owned(),
                ..Default::default()
            },
            &clinician,
        );
        mcr_runtime::propagation::inject_current_into_grpc(request.metadata_mut());
        consent.record_permission_to_view(request).await.unwrap();
    }
    .instrument(root.clone())
    .await;
    drop(root);

    // The exporter sends batches every few seconds: wait for the follower's
    // span that links into the change's trace.
    let links_into_trace = |span: &Span| {
        span.name == "records.invalidate" && span.links.iter().any(|link| link.trace_id == trace_id)
    };
    let deadline = Instant::now() + PATIENCE;
    while !collector.spans.lock().unwrap().iter().any(links_into_trace) {
        assert!(
            Instant::now() < deadline,
            "no records.invalidate span links to the consent change's trace after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();

    let change = collector.trace(&trace_id);
    let publish = change
        .iter()
        .find(|span| span.name == "nats.publish_consent_changed")
        .unwrap_or_else(|| panic!("no publish in the change's trace:\n{}", describe(&change)));
    let spans = collector.spans.lock().unwrap();
    let batch = spans.iter().find(|span| links_into_trace(span)).unwrap();
    assert!(
        batch
            .links
            .iter()
            .any(|link| link.trace_id == trace_id && link.span_id == publish.span_id),
        "the batch links to the span that published the change"
    );
    assert_ne!(
        batch.trace_id, trace_id,
        "a batch serves many traces: it links to them, it is no one's child"
    );
}
