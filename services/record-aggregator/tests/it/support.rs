//! Fixtures: persons as providers know them, updates as connectors publish
//! them, and reading back what the aggregator put on NATS.

use std::time::Duration;

use mcr_connector::builder::RecordUpdateBuilder;
use mcr_proto::audit::v1::AuditEvent;
use mcr_proto::common::v1::{Address, Category, HumanName, PersonReference, Purpose};
use mcr_proto::patient_index::v1::{Demographics, Sex};
use mcr_proto::records::v1::{
    DeadLetter, GetCareRecordRequest, GetCareRecordResponse, RecordUpdate,
};
use mcr_testkit_identity::with_token;
use mcr_testkit_platform::Platform;
use prost::Message;
use serde_json::json;

pub const GP: &str = "A81001";
pub const HOSPITAL: &str = "RQW";
pub const TIME: Duration = Duration::from_secs(20);

/// A person as a provider registers them.
pub fn demographics(nhs_number: &str, family: &str, birth_date: &str) -> Demographics {
    Demographics {
        nhs_number: nhs_number.to_owned(),
        name: Some(HumanName {
            prefix: String::new(),
            given: vec!["Alex".to_owned()],
            family: family.to_owned(),
            suffix: String::new(),
        }),
        birth_date: birth_date.to_owned(),
        sex: Sex::Female as i32,
        address: Some(Address {
            lines: vec!["1 Market Street".to_owned()],
            city: "Harlow".to_owned(),
            district: String::new(),
            postcode: "CM20 1AA".to_owned(),
            country: "GB".to_owned(),
        }),
        phone: "07700 900123".to_owned(),
        ..Default::default()
    }
}

/// `seconds` after 2026-01-01, as a protobuf timestamp.
pub fn at(day: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 1_767_225_600 + day * 86_400,
        nanos: 0,
    }
}

/// A coded medication statement.
pub fn medication(
    organisation: &str,
    patient: &str,
    entry: &str,
    version: u64,
    day: i64,
    summary: &str,
) -> RecordUpdateBuilder {
    RecordUpdateBuilder::upsert(organisation, "EPR", Category::Medications)
        .patient("EPR", patient)
        .entry(entry, version)
        .effective_time(at(day))
        .resource(&json!({
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "323510009"}]},
            "subject": {"reference": "Patient/example"}
        }))
        .display_summary(summary)
}

/// A test result.
pub fn observation(
    organisation: &str,
    patient: &str,
    entry: &str,
    day: i64,
    summary: &str,
) -> RecordUpdateBuilder {
    RecordUpdateBuilder::upsert(organisation, "EPR", Category::TestResults)
        .patient("EPR", patient)
        .entry(entry, 1)
        .effective_time(at(day))
        .resource(&json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": summary}
        }))
        .display_summary(summary)
}

/// Publishes `updates` and waits until the aggregator acked them all.
pub async fn ingest(platform: &Platform, updates: Vec<RecordUpdate>) {
    let publisher = platform.publisher();
    for update in updates {
        publisher
            .publish(&update)
            .await
            .expect("JetStream takes the update");
    }
    platform.wait_for_ingest(TIME).await;
}

/// GetCareRecord for direct care, with resources.
pub async fn read(
    platform: &Platform,
    token: &str,
    person: &PersonReference,
) -> Result<GetCareRecordResponse, tonic::Status> {
    platform
        .records()
        .await
        .get_care_record(with_token(
            GetCareRecordRequest {
                person: Some(person.clone()),
                purpose: Purpose::DirectCare as i32,
                include_resources: true,
                ..Default::default()
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The summaries of a view, in order.
pub fn summaries(view: &GetCareRecordResponse) -> Vec<&str> {
    view.entries
        .iter()
        .map(|entry| entry.display_summary.as_str())
        .collect()
}

/// Every message of the namespaced stream `stream`, decoded as `M`.
pub async fn stream_messages<M: Message + Default>(platform: &Platform, stream: &str) -> Vec<M> {
    let name = format!("{}_{stream}", platform.environment().id);
    let Ok(mut stream) = platform.jetstream().get_stream(&name).await else {
        return Vec::new();
    };
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let mut messages = Vec::new();
    for sequence in 1..=last {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            messages.push(M::decode(message.payload.as_ref()).expect("a decodable message"));
        }
    }
    messages
}

/// The audit events published so far.
pub async fn audit_events(platform: &Platform) -> Vec<AuditEvent> {
    stream_messages(platform, "MCR_AUDIT").await
}

/// The dead letters published so far.
pub async fn dead_letters(platform: &Platform) -> Vec<DeadLetter> {
    stream_messages(platform, "MCR_RECORDS_DEADLETTER").await
}

/// Publishes raw bytes on `subject` (unscoped), bypassing the connector's checks.
pub async fn publish_raw(platform: &Platform, subject: &str, payload: Vec<u8>) {
    platform
        .jetstream()
        .publish(platform.environment().subject(subject), payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Patient-index's person id for the local identifier (`organisation`,
/// `EPR`, `value`), asked with a service token as the aggregator asks.
pub async fn resolve_local(
    platform: &Platform,
    organisation: &str,
    value: &str,
) -> Result<String, tonic::Status> {
    let service = platform.service_token().await;
    let request = mcr_proto::patient_index::v1::ResolveLocalIdentifierRequest {
        local_identifier: Some(mcr_proto::common::v1::LocalIdentifier {
            organisation_code: organisation.to_owned(),
            system: "EPR".to_owned(),
            value: value.to_owned(),
        }),
    };
    let response = platform
        .index_client()
        .await
        .resolve_local_identifier(with_token(request, &service))
        .await?;
    Ok(response.into_inner().person_id)
}
