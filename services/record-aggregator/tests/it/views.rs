//! Views: consent decides, audit records, and only then does data leave —
//! filtered, grouped and with what is withheld said out loud.

use mcr_proto::audit::v1::{AuditAction, AuditOutcome};
use mcr_proto::common::v1::{Category, Purpose, Role};
use mcr_proto::consent::v1::{
    RecordRestrictionRequest, WithheldReasonClass, record_restriction_request,
};
use mcr_proto::records::v1::{
    BundleType, GetCareRecordBundleRequest, GetCareRecordRequest, GetEntryRequest,
};
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::{Options, Platform, local_person};
use serde_json::json;

use crate::support::*;

/// A platform holding one person known to the GP and the hospital (same NHS
/// Number), with the same medication reported by both and a test result.
async fn shared_record(options: Options) -> (Platform, mcr_proto::common::v1::PersonReference) {
    let platform = Platform::start_with(options).await;
    let person = demographics("9434765919", "Lane", "1972-02-14");
    ingest(
        &platform,
        vec![
            medication(GP, "G1", "gp-med-1", 1, 30, "Amoxicillin 500mg capsules")
                .demographics(person.clone())
                .build()
                .unwrap(),
            medication(
                HOSPITAL,
                "H1",
                "rqw-med-1",
                1,
                30,
                "Amoxicillin (discharge)",
            )
            .demographics(person)
            .build()
            .unwrap(),
            observation(HOSPITAL, "H1", "rqw-obs-1", 31, "CRP 12 mg/L")
                .build()
                .unwrap(),
        ],
    )
    .await;
    (platform, local_person(HOSPITAL, "EPR", "H1"))
}

#[tokio::test]
async fn a_permitted_view_groups_copies_counts_sources_and_is_audited_before_it_returns() {
    let (platform, person) = shared_record(Options::default()).await;
    let clinician = platform
        .professional("dr.view", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    let view = read(&platform, &clinician, &person)
        .await
        .expect("a permitted view");

    assert_eq!(
        view.entries.len(),
        2,
        "the two copies of one medication are one item"
    );
    assert_eq!(view.entries[0].display_summary, "CRP 12 mg/L");
    let medication = &view.entries[1];
    assert_eq!(medication.duplicates.len(), 1);
    let organisations = [
        medication
            .source
            .as_ref()
            .unwrap()
            .organisation_code
            .as_str(),
        medication.duplicates[0]
            .source
            .as_ref()
            .unwrap()
            .organisation_code
            .as_str(),
    ];
    assert!(
        organisations.contains(&GP) && organisations.contains(&HOSPITAL),
        "{organisations:?}"
    );
    let counts: Vec<(i32, u32)> = view
        .category_counts
        .iter()
        .map(|c| (c.category, c.count))
        .collect();
    assert_eq!(
        counts,
        [
            (Category::Medications as i32, 1),
            (Category::TestResults as i32, 1)
        ]
    );
    let sources: Vec<&str> = view
        .sources
        .iter()
        .map(|s| s.organisation_code.as_str())
        .collect();
    assert_eq!(sources, [GP, HOSPITAL]);
    assert!(view.withheld.is_empty());
    assert!(
        view.entries[0]
            .fhir_resource_json
            .contains("\"Observation\"")
    );

    let events = audit_events(&platform).await;
    let event = events
        .iter()
        .find(|event| event.event_id == view.audit_event_id)
        .expect("the access is on the audit stream");
    assert_eq!(event.action(), AuditAction::ViewRecord);
    assert_eq!(event.outcome(), AuditOutcome::Permitted);
    assert_eq!(event.decision_id, view.decision_id);
    assert_eq!(event.person_id, view.person_id);
    assert_eq!(event.entry_count, 2);
    assert_eq!(event.purpose_of_use_code, "TREAT");
}

#[tokio::test]
async fn a_clinician_without_a_relationship_gets_no_entry_and_the_denial_is_audited() {
    let (platform, person) = shared_record(Options::default()).await;
    let stranger = platform
        .professional("dr.elsewhere", "RGT", Role::ClinicalPractitioner)
        .await;
    let denied = read(&platform, &stranger, &person)
        .await
        .expect_err("no relationship, no record");
    assert_eq!(
        denied.code(),
        tonic::Code::PermissionDenied,
        "{}",
        denied.message()
    );
    assert!(
        !denied.message().contains("CRP"),
        "no content in the refusal"
    );
    let codes = denied
        .metadata()
        .get("mcr-reason-codes")
        .expect("reason codes")
        .to_str()
        .unwrap();
    assert!(
        codes.contains("REASON_CODE_NO_CARE_RELATIONSHIP"),
        "{codes}"
    );
    let decision_id = denied
        .metadata()
        .get("mcr-decision-id")
        .expect("decision id")
        .to_str()
        .unwrap();
    let events = audit_events(&platform).await;
    let event = events
        .iter()
        .find(|event| event.decision_id == decision_id)
        .expect("the denial is audited");
    assert_eq!(event.outcome(), AuditOutcome::Denied);
    assert_eq!(event.entry_count, 0);
    assert!(
        event
            .reasons
            .iter()
            .any(|reason| reason.code == "REASON_CODE_NO_CARE_RELATIONSHIP")
    );
}

#[tokio::test]
async fn a_restricted_category_is_withheld_with_a_notice_and_no_trace_in_counts_or_sources() {
    let (platform, person) = shared_record(Options::default()).await;
    let clinician = platform
        .professional("dr.restrict", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    let before = read(&platform, &clinician, &person).await.unwrap();
    platform
        .consent_client()
        .await
        .record_restriction(with_token(
            RecordRestrictionRequest {
                person: Some(person.clone()),
                target: Some(record_restriction_request::Target::Category(
                    Category::Medications as i32,
                )),
                viewers: None,
                expires_at: None,
                note: String::new(),
            },
            &clinician,
        ))
        .await
        .expect("recording the restriction");
    let view = read(&platform, &clinician, &person).await.unwrap();
    assert_eq!(summaries(&view), ["CRP 12 mg/L"]);
    assert_eq!(view.category_counts.len(), 1);
    // The ConsentChanged event voids the cached view as well.
    let deadline = tokio::time::Instant::now() + TIME;
    while read(&platform, &clinician, &person)
        .await
        .unwrap()
        .view_version
        <= before.view_version
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consent change never bumped the view"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let notice = view.withheld.first().expect("a withheld notice");
    assert_eq!(notice.reason_class(), WithheldReasonClass::PersonRequest);
    assert!(
        !view
            .permitted_categories
            .contains(&(Category::Medications as i32))
    );
    let sources: Vec<&str> = view
        .sources
        .iter()
        .map(|s| s.organisation_code.as_str())
        .collect();
    assert_eq!(
        sources,
        [HOSPITAL],
        "the GP contributed only withheld entries"
    );
}

#[tokio::test]
async fn with_redis_unreachable_views_are_served_from_postgresql() {
    let options = Options {
        aggregator_overrides: vec![(
            "MCR_REDIS__URL".to_owned(),
            "redis://127.0.0.1:1".to_owned(),
        )],
        with_audit: false,
    };
    let (platform, person) = shared_record(options).await;
    let clinician = platform
        .professional("dr.noredis", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    for _ in 0..2 {
        let view = read(&platform, &clinician, &person)
            .await
            .expect("served without Redis");
        assert_eq!(view.entries.len(), 2);
    }
}

#[tokio::test]
async fn with_the_audit_stream_gone_reads_fail_unavailable_and_return_nothing() {
    let (platform, person) = shared_record(Options::default()).await;
    let clinician = platform
        .professional("dr.noaudit", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    read(&platform, &clinician, &person)
        .await
        .expect("audited while the stream exists");
    platform
        .jetstream()
        .delete_stream(format!("{}_MCR_AUDIT", platform.environment().id))
        .await
        .expect("deleting the audit stream");
    let refused = read(&platform, &clinician, &person)
        .await
        .expect_err("no audit, no data");
    assert_eq!(
        refused.code(),
        tonic::Code::Unavailable,
        "{}",
        refused.message()
    );
    assert!(refused.message().contains("audit"), "{}", refused.message());
}

#[tokio::test]
async fn sensitive_contact_details_are_withheld_from_banner_entries_and_bundle() {
    let platform = Platform::start().await;
    let mut sensitive = demographics("9434765919", "Vale", "1985-05-05");
    sensitive.sensitive = true;
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Vale"}],
        "address": [{"line": ["7 Hidden Lane"], "postalCode": "CM20 9ZZ"}],
        "telecom": [{"system": "phone", "value": "07700 900999"}]});
    let update =
        mcr_connector::builder::RecordUpdateBuilder::upsert(GP, "EPR", Category::Demographics)
            .patient("EPR", "G9")
            .entry("patient-1", 1)
            .effective_time(at(1))
            .resource(&patient)
            .display_summary("Vale, 7 Hidden Lane")
            .demographics(sensitive)
            .build()
            .unwrap();
    ingest(&platform, vec![update]).await;
    let person = local_person(GP, "EPR", "G9");
    let pharmacist = platform
        .professional("pharm.sens", GP, Role::Pharmacist)
        .await;
    platform.allow(&person, GP, &pharmacist).await;
    let view = read(&platform, &pharmacist, &person).await.unwrap();
    assert!(view.sensitive_demographics_withheld);
    let banner = view.patient.as_ref().expect("a banner");
    assert!(banner.address.is_none() && banner.phone.is_empty());
    let entry = &view.entries[0];
    assert!(
        !entry.fhir_resource_json.contains("Hidden") && !entry.fhir_resource_json.contains("07700")
    );
    assert!(
        !entry.display_summary.contains("Hidden"),
        "{}",
        entry.display_summary
    );
    assert!(
        view.withheld
            .iter()
            .any(|n| n.reason_class() == WithheldReasonClass::SensitiveDemographics)
    );
    let bundle = platform
        .records()
        .await
        .get_care_record_bundle(with_token(
            GetCareRecordBundleRequest {
                person: Some(person.clone()),
                purpose: Purpose::DirectCare as i32,
                ..Default::default()
            },
            &pharmacist,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!bundle.bundle_json.contains("Hidden") && !bundle.bundle_json.contains("07700"));

    // A clinician may reach the person, so sees the address.
    let clinician = platform
        .professional("dr.sens", GP, Role::ClinicalPractitioner)
        .await;
    let view = read(&platform, &clinician, &person).await.unwrap();
    assert!(!view.sensitive_demographics_withheld);
    assert!(view.entries[0].fhir_resource_json.contains("Hidden Lane"));
}

#[tokio::test]
async fn the_bundle_is_fhir_r4_a_fhir_library_accepts() {
    let (platform, person) = shared_record(Options::default()).await;
    let clinician = platform
        .professional("dr.bundle", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    for bundle_type in [BundleType::Searchset, BundleType::Collection] {
        let bundle = platform
            .records()
            .await
            .get_care_record_bundle(with_token(
                GetCareRecordBundleRequest {
                    person: Some(person.clone()),
                    purpose: Purpose::DirectCare as i32,
                    bundle_type: bundle_type as i32,
                    ..Default::default()
                },
                &clinician,
            ))
            .await
            .expect("a Bundle")
            .into_inner();
        crate::fhir::assert_valid_r4_bundle(&bundle.bundle_json, 3);
    }
}

#[tokio::test]
async fn get_entry_returns_one_entry_under_the_same_checks() {
    let (platform, person) = shared_record(Options::default()).await;
    let clinician = platform
        .professional("dr.entry", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    let view = read(&platform, &clinician, &person).await.unwrap();
    let entry_id = view.entries[0].entry_id.clone();
    let mut records = platform.records().await;
    let entry = records
        .get_entry(with_token(
            GetEntryRequest {
                entry_id: entry_id.clone(),
                purpose: Purpose::DirectCare as i32,
            },
            &clinician,
        ))
        .await
        .expect("the entry")
        .into_inner();
    assert_eq!(entry.entry.as_ref().unwrap().display_summary, "CRP 12 mg/L");
    assert!(
        entry
            .entry
            .as_ref()
            .unwrap()
            .fhir_resource_json
            .contains("Observation")
    );
    let events = audit_events(&platform).await;
    let event = events
        .iter()
        .find(|e| e.event_id == entry.audit_event_id)
        .expect("audited");
    assert_eq!(
        (event.action(), event.entry_id.as_str()),
        (AuditAction::ViewEntry, entry_id.as_str())
    );

    let stranger = platform
        .professional("dr.noentry", "RGT", Role::ClinicalPractitioner)
        .await;
    let denied = records
        .get_entry(with_token(
            GetEntryRequest {
                entry_id,
                purpose: Purpose::DirectCare as i32,
            },
            &stranger,
        ))
        .await
        .expect_err("no relationship");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let missing = records
        .get_entry(with_token(
            GetEntryRequest {
                entry_id: uuid::Uuid::new_v4().to_string(),
                purpose: Purpose::DirectCare as i32,
            },
            &clinician,
        ))
        .await
        .expect_err("no such entry");
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_field_and_tokens_are_required() {
    let platform = Platform::start().await;
    let clinician = platform
        .professional("dr.bad", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    let mut records = platform.records().await;
    let person = local_person(HOSPITAL, "EPR", "H1");
    let cases = [
        (
            GetCareRecordRequest {
                purpose: Purpose::DirectCare as i32,
                ..Default::default()
            },
            "person",
        ),
        (
            GetCareRecordRequest {
                person: Some(person.clone()),
                ..Default::default()
            },
            "purpose",
        ),
        (
            GetCareRecordRequest {
                person: Some(person.clone()),
                purpose: Purpose::DirectCare as i32,
                categories: vec![0],
                ..Default::default()
            },
            "categories",
        ),
        (
            GetCareRecordRequest {
                person: Some(person.clone()),
                purpose: Purpose::DirectCare as i32,
                page: Some(mcr_proto::common::v1::PageRequest {
                    page_size: 100_000,
                    page_token: String::new(),
                }),
                ..Default::default()
            },
            "page",
        ),
    ];
    for (request, field) in cases {
        let refused = records
            .get_care_record(with_token(request, &clinician))
            .await
            .expect_err(field);
        assert_eq!(
            refused.code(),
            tonic::Code::InvalidArgument,
            "{}",
            refused.message()
        );
        assert!(
            refused.message().starts_with(field),
            "{field}: {}",
            refused.message()
        );
    }
    let anonymous = records
        .get_care_record(GetCareRecordRequest {
            person: Some(person.clone()),
            purpose: Purpose::DirectCare as i32,
            ..Default::default()
        })
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let service = platform.service_token().await;
    let as_service = records
        .get_care_record(with_token(
            GetCareRecordRequest {
                person: Some(person),
                purpose: Purpose::DirectCare as i32,
                ..Default::default()
            },
            &service,
        ))
        .await
        .expect_err("a service token is not a professional");
    assert_eq!(as_service.code(), tonic::Code::PermissionDenied);
}

/// The value of the counter `name` on the aggregator's `/metrics`.
async fn counter(platform: &Platform, name: &str) -> f64 {
    let (_, body) = mcr_testkit::grpc::admin_get(platform.aggregator.admin_port, "/metrics")
        .await
        .unwrap();
    body.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn concurrent_misses_for_one_person_build_the_view_once() {
    let (platform, person) = shared_record(Options::default()).await;
    let clinician = platform
        .professional("dr.many", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    read(&platform, &clinician, &person).await.unwrap();
    // A new version: the cached view no longer applies.
    ingest(
        &platform,
        vec![
            observation(HOSPITAL, "H1", "rqw-obs-2", 40, "Urea 5.1")
                .build()
                .unwrap(),
        ],
    )
    .await;
    let builds_before = counter(&platform, "mcr_records_view_builds_total").await;
    let reads = (0..16).map(|_| read(&platform, &clinician, &person));
    for view in futures::future::join_all(reads).await {
        assert_eq!(view.unwrap().entries.len(), 3);
    }
    let builds = counter(&platform, "mcr_records_view_builds_total").await - builds_before;
    assert_eq!(
        builds, 1.0,
        "sixteen concurrent misses built the view {builds} times"
    );
}

#[tokio::test]
async fn repeat_reads_come_from_memory_and_an_acked_update_is_seen_at_once() {
    let (platform, person) = shared_record(Options::default()).await;
    let clinician = platform
        .professional("dr.repeat", HOSPITAL, Role::ClinicalPractitioner)
        .await;
    platform.allow(&person, HOSPITAL, &clinician).await;
    assert_eq!(
        read(&platform, &clinician, &person)
            .await
            .unwrap()
            .entries
            .len(),
        2
    );
    let memory = "mcr_records_view_cache_total{result=\"memory\"}";
    let served_before = counter(&platform, memory).await;
    let builds_before = counter(&platform, "mcr_records_view_builds_total").await;
    for _ in 0..3 {
        let view = read(&platform, &clinician, &person).await.unwrap();
        assert_eq!(view.entries.len(), 2);
    }
    assert_eq!(
        counter(&platform, memory).await - served_before,
        3.0,
        "repeat reads are served from the aggregator's memory"
    );
    assert_eq!(
        counter(&platform, "mcr_records_view_builds_total").await,
        builds_before,
        "and nothing is assembled again"
    );

    ingest(
        &platform,
        vec![
            observation(HOSPITAL, "H1", "rqw-obs-3", 41, "Sodium 139")
                .build()
                .unwrap(),
        ],
    )
    .await;
    let view = read(&platform, &clinician, &person).await.unwrap();
    assert_eq!(
        view.entries.len(),
        3,
        "the acked update is shown, not the remembered view"
    );
    assert!(
        view.entries
            .iter()
            .any(|entry| entry.display_summary == "Sodium 139")
    );
}
