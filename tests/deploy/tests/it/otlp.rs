//! One GetCareRecord, issued from inside a client span, produces ONE trace
//! that an OTLP collector receives: the client's span, the aggregator's RPC
//! with its Redis and PostgreSQL child spans, the calls into patient-index
//! and consent, the NATS publish of the audit event and audit's consumption
//! of it, every span's parent inside the trace.
//!
//! The services run in this one process, which has one tracer (telemetry is
//! process-wide), so every span carries the same resource; spans are told
//! apart by `rpc.service` and by name. Each binary exports under its own
//! `service.name` in a deployment.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcr_connector::builder::RecordUpdateBuilder;
use mcr_proto::common::v1::{Category, HumanName, Purpose, Role};
use mcr_proto::patient_index::v1::{Demographics, Sex};
use mcr_proto::records::v1::GetCareRecordRequest;
use mcr_runtime::settings::{LogFormat, TelemetrySettings};
use mcr_runtime::telemetry::{self, LogOutput};
use mcr_testkit_identity::with_token;
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
const PATIENCE: Duration = Duration::from_secs(30);

/// An OTLP/gRPC trace collector that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
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
        format!("http://{address}")
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

fn update() -> mcr_proto::records::v1::RecordUpdate {
    RecordUpdateBuilder::upsert(HOSPITAL, "EPR", Category::Medications)
        .patient("EPR", "T1")
        .entry("med-1", 1)
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
            nhs_number: "9434765919".to_owned(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_care_record_read_is_one_trace_across_every_service_and_the_audit_stream() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    // Before the platform starts: the first telemetry set-up in a process
    // is the one that stays (the test kit's own is then a no-op).
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
    platform.publisher().publish(&update()).await.unwrap();
    platform.wait_for_ingest(PATIENCE).await;
    let person = local_person(HOSPITAL, "EPR", "T1");
    let clinician = platform
        .professional("dr.trace", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;

    // The client: a root span, its context in the call's metadata.
    let root = tracing::info_span!("mcr record show", otel.kind = "client");
    let trace_id = root
        .context()
        .span()
        .span_context()
        .trace_id()
        .to_bytes()
        .to_vec();
    let mut records = platform.records().await;
    async {
        let mut request = with_token(
            GetCareRecordRequest {
                person: Some(person),
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

    // Audit consumes the event asynchronously, and the exporter sends its
    // batch every few seconds: wait for audit's span to arrive.
    let deadline = Instant::now() + PATIENCE;
    loop {
        if collector
            .trace(&trace_id)
            .iter()
            .any(|span| span.name == "audit.ingest")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no audit.ingest span in the trace after {PATIENCE:?}:\n{}",
            describe(&collector.trace(&trace_id))
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Export whatever is still batched (shutdown blocks: off the runtime).
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();

    let spans = collector.trace(&trace_id);
    let listing = describe(&spans);
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|span| span.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root:\n{listing}");
    assert_eq!(roots[0].name, "mcr record show");
    let ids: HashSet<&[u8]> = spans.iter().map(|span| span.span_id.as_slice()).collect();
    for span in &spans {
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
    let named = |name: &str, key: &str, value: &str| {
        spans
            .iter()
            .any(|span| span.name == name && attribute(span, key).as_deref() == Some(value))
    };
    assert!(
        named("audit.publish", "messaging.system", "nats"),
        "{listing}"
    );
    assert!(
        spans.iter().any(|span| span.name.starts_with("redis.")
            && attribute(span, "db.system").as_deref() == Some("redis")),
        "no Redis span:\n{listing}"
    );
    assert!(
        spans.iter().any(|span| span.name.starts_with("db.")
            && attribute(span, "db.system").as_deref() == Some("postgresql")),
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
