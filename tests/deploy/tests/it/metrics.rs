//! After a little traffic (an ingest, an invalid update, record reads, an
//! invalid call), every service's `/metrics` answers with the RPC series and
//! the domain series an SRE graphs: ingest, dead letters, cache, audit chain.
//!
//! The services run in one process here and so share one Prometheus
//! registry; each admin port is still scraped, and each must show its own
//! service's RPC series.

use std::time::{Duration, Instant};

use mcr_connector::builder::RecordUpdateBuilder;
use mcr_connector::validate::subject_for;
use mcr_proto::common::v1::{Category, HumanName, PersonReference, Purpose, Role};
use mcr_proto::patient_index::v1::{Demographics, Sex};
use mcr_proto::records::v1::GetCareRecordRequest;
use mcr_runtime::service::McrService;
use mcr_testkit::grpc::admin_get;
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::{Options, Platform, local_person};
use serde_json::json;

const HOSPITAL: &str = "RQW";
const PATIENCE: Duration = Duration::from_secs(30);

fn medication() -> mcr_proto::records::v1::RecordUpdate {
    RecordUpdateBuilder::upsert(HOSPITAL, "EPR", Category::Medications)
        .patient("EPR", "M1")
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
        // The ingest lag is measured from the source system's change time.
        .source_time(prost_types::Timestamp {
            seconds: time_now_seconds() - 5,
            nanos: 0,
        })
        .demographics(Demographics {
            nhs_number: "9434765919".to_owned(),
            name: Some(HumanName {
                given: vec!["Sam".to_owned()],
                family: "Metric".to_owned(),
                ..Default::default()
            }),
            birth_date: "1980-03-03".to_owned(),
            sex: Sex::Female as i32,
            ..Default::default()
        })
        .build()
        .unwrap()
}

fn time_now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

async fn read(platform: &Platform, token: &str, person: Option<PersonReference>) -> tonic::Code {
    let request = GetCareRecordRequest {
        person,
        purpose: Purpose::DirectCare as i32,
        ..Default::default()
    };
    match platform
        .records()
        .await
        .get_care_record(with_token(request, token))
        .await
    {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}

async fn scrape(admin_port: u16) -> String {
    let (status, body) = admin_get(admin_port, "/metrics").await.unwrap();
    assert_eq!(status, 200, "/metrics on {admin_port}: {body:.200}");
    body
}

/// Series lines (not `# HELP`/`# TYPE`) of `metric`.
fn series<'a>(body: &'a str, metric: &str) -> Vec<&'a str> {
    body.lines()
        .filter(|line| !line.starts_with('#') && line.starts_with(metric))
        .collect()
}

#[tokio::test]
async fn every_service_exports_rpc_and_domain_metrics_after_traffic() {
    let platform = Platform::start_with(Options {
        with_audit: true,
        ..Options::default()
    })
    .await;

    // An ingest, and an update no one can decode (a dead letter).
    platform.publisher().publish(&medication()).await.unwrap();
    platform
        .jetstream()
        .publish(
            platform
                .environment()
                .subject(&subject_for(HOSPITAL, Category::Medications)),
            b"\xff\x00 not a RecordUpdate".to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    platform.wait_for_ingest(PATIENCE).await;

    // Reads: the first builds the view (cache miss), the second is a hit;
    // a call without a person is INVALID_ARGUMENT.
    let person = local_person(HOSPITAL, "EPR", "M1");
    let clinician = platform
        .professional("dr.metrics", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    assert_eq!(
        read(&platform, &clinician, Some(person.clone())).await,
        tonic::Code::Ok
    );
    assert_eq!(
        read(&platform, &clinician, Some(person)).await,
        tonic::Code::Ok
    );
    assert_eq!(
        read(&platform, &clinician, None).await,
        tonic::Code::InvalidArgument
    );

    let audit = platform.audit.as_ref().unwrap();
    // Audit stores asynchronously (JetStream consumer): wait for the chain head.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let body = scrape(audit.admin_port).await;
        if series(&body, "mcr_audit_chain_head_sequence")
            .iter()
            .any(|line| !line.ends_with(" 0"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no audit chain head after {PATIENCE:?}:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let services = [
        (
            mcr_identity::IdentityService::SPEC,
            platform.identity.service.admin_port,
        ),
        (
            mcr_patient_index::PatientIndexService::SPEC,
            platform.patient_index.admin_port,
        ),
        (
            mcr_consent::ConsentService::SPEC,
            platform.consent.admin_port,
        ),
        (
            mcr_record_aggregator::RecordAggregatorService::SPEC,
            platform.aggregator.admin_port,
        ),
        (mcr_audit::AuditService::SPEC, audit.admin_port),
    ];
    for (spec, admin_port) in services {
        let body = scrape(admin_port).await;
        let own = format!("service=\"{}\"", spec.grpc_service_name);
        let requests = series(&body, "mcr_rpc_server_requests_total");
        let durations = series(&body, "mcr_rpc_server_duration_seconds_bucket");
        if spec.name != "audit" {
            // Audit answers no call in this traffic (it only consumes).
            assert!(
                requests
                    .iter()
                    .any(|line| line.contains(&own) && line.contains("code=\"OK\"")),
                "{}: no OK request series for {own}:\n{}",
                spec.name,
                requests.join("\n")
            );
            assert!(
                durations.iter().any(|line| line.contains(&own)),
                "{}: no latency histogram for {own}",
                spec.name
            );
        }
        assert!(
            requests
                .iter()
                .any(|line| line.contains("method=\"GetCareRecord\"")
                    && line.contains("code=\"INVALID_ARGUMENT\"")),
            "{}: errors are not counted by status code:\n{}",
            spec.name,
            requests.join("\n")
        );
    }

    let body = scrape(platform.aggregator.admin_port).await;
    for (metric, label) in [
        ("mcr_records_ingested_total", ""),
        ("mcr_records_ingest_lag_seconds_bucket", ""),
        (
            "mcr_records_dead_letters_total",
            "reason=\"DEAD_LETTER_REASON_UNDECODABLE\"",
        ),
        ("mcr_records_view_cache_total", "result=\"miss\""),
        // The repeat read: the aggregator still holds the record in memory.
        ("mcr_records_view_cache_total", "result=\"memory\""),
        ("mcr_audit_events_stored_total", ""),
        ("mcr_audit_chain_head_sequence", ""),
    ] {
        assert!(
            series(&body, metric)
                .iter()
                .any(|line| line.contains(label)),
            "no {metric} {label} series:\n{}",
            series(&body, "mcr_").join("\n")
        );
    }
}
