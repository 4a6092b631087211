//! The one place a `RecordUpdate` is judged.
//!
//! Connectors call [`validate_update`] before publishing; the record
//! aggregator calls [`decode_and_validate`] on every message it takes from
//! the stream and dead-letters what it rejects with the [`Rejection`]'s
//! reason and text. Keeping both sides on this module means a connector
//! never publishes what the aggregator would refuse.
//!
//! Pure: no I/O. The only outside fact is the clock, which bounds how far in
//! the future an effective time may lie; [`validate_update_at`] takes it as an
//! argument for tests.
//!
//! Rejection texts name the field and the rule, never the record's content
//! (no NHS Numbers, names or FHIR JSON), because they end up in logs and in
//! the dead-letter stream.

mod fhir;
#[cfg(test)]
mod fhir_tests;
#[cfg(test)]
mod hostile_properties;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use mcr_proto::common::v1::{Category, LocalIdentifier};
use mcr_proto::consent::v1::CareRelationshipType;
use mcr_proto::records::v1::{
    CarriedCareRelationship, DeadLetterReason, RecordOperation, RecordUpdate,
};
use prost::Message;
/// A FHIR resource as validation parsed it: a tree borrowing its strings
/// from the JSON text.
pub use serde_json_borrow::Value as FhirJson;

/// The largest message accepted on the records subjects (1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The prefix of every record update subject (unscoped).
pub const RECORDS_SUBJECT_PREFIX: &str = "mcr.records.v1";
/// Where the aggregator publishes `DeadLetter`s (unscoped).
pub const DEAD_LETTER_SUBJECT: &str = "mcr.records.v1.deadletter";

/// The deepest nesting of objects and arrays accepted in a FHIR resource.
/// Real resources stay under 15; the bound keeps every later reader of the
/// JSON (the aggregator, FHIR clients) far from recursion limits.
pub const MAX_FHIR_JSON_DEPTH: usize = 64;

const MAX_MESSAGE_ID_CHARS: usize = 256;
const MAX_SOURCE_SYSTEM_CHARS: usize = 64;
const MAX_IDENTIFIER_SYSTEM_CHARS: usize = 256;
const MAX_IDENTIFIER_VALUE_CHARS: usize = 128;
const MAX_LOCAL_ENTRY_ID_CHARS: usize = 256;
const MAX_DISPLAY_SUMMARY_CHARS: usize = 500;
const MAX_SOURCE_REFERENCE_CHARS: usize = 256;
const MAX_TEAM_CODE_CHARS: usize = 64;
const MAX_RESOURCE_TYPE_CHARS: usize = 64;

/// 1850-01-01T00:00:00Z: nothing in a care record is older.
const EARLIEST_SECONDS: i64 = -3_786_825_600;
/// How far ahead of now an effective time may lie: appointments and plans
/// are booked ahead, but not by more than about two years.
const MAX_FUTURE_SECONDS: i64 = 2 * 366 * 24 * 60 * 60;

/// Why a message is rejected: the dead-letter reason and a sentence naming
/// the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct Rejection {
    /// The dead-letter reason code.
    pub reason: DeadLetterReason,
    /// What is wrong, naming the field; never the record's content.
    pub text: String,
}

impl Rejection {
    /// A rejection for `reason` with `text`.
    pub fn new(reason: DeadLetterReason, text: impl Into<String>) -> Self {
        Self {
            reason,
            text: text.into(),
        }
    }

    fn field(text: impl Into<String>) -> Self {
        Self::new(DeadLetterReason::InvalidField, text)
    }
}

/// The subject (unscoped) a connector publishes on, e.g.
/// `mcr.records.v1.RQW.medications`: the organisation code in upper case
/// (codes are accepted in any case and stored upper-case) and the category
/// value name without its prefix, lower-case.
pub fn subject_for(organisation_code: &str, category: Category) -> String {
    format!(
        "{RECORDS_SUBJECT_PREFIX}.{}.{}",
        organisation_code.to_ascii_uppercase(),
        category_token(category)
    )
}

/// The subject token of `category`: `medications`, `test_results`, …
pub fn category_token(category: Category) -> String {
    let name = category.as_str_name();
    name.strip_prefix("CATEGORY_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// The category a subject token names; `None` for anything else, including
/// `unspecified` and tokens not in lower case.
pub fn category_from_token(token: &str) -> Option<Category> {
    if token.is_empty() || token.len() > 40 || token.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let category = Category::from_str_name(&format!("CATEGORY_{}", token.to_ascii_uppercase()))?;
    (category != Category::Unspecified).then_some(category)
}

/// The FHIR R4 resource types a category accepts (DESIGN.md); empty for
/// `CATEGORY_UNSPECIFIED`.
pub fn accepted_resource_types(category: Category) -> &'static [&'static str] {
    match category {
        Category::Unspecified => &[],
        Category::Demographics => &["Patient", "RelatedPerson"],
        Category::Medications => &[
            "MedicationStatement",
            "MedicationRequest",
            "MedicationDispense",
        ],
        Category::TestResults => &["Observation", "DiagnosticReport"],
        Category::Correspondence => &["DocumentReference", "Composition"],
        Category::ClinicalHistory => &["Condition", "Procedure", "Encounter"],
        Category::EmergencyCare => &["Encounter", "Procedure", "Observation"],
        Category::Appointments => &["Appointment"],
        Category::PlansAndAlerts => &["CarePlan", "Flag", "AllergyIntolerance"],
        Category::MentalHealth => &["Condition", "Flag", "CarePlan"],
        Category::SocialCare => &["CarePlan", "CareTeam", "EpisodeOfCare"],
    }
}

/// Size check, decode, then the subject's organisation and category must
/// match the update's, then [`validate_update`]. `subject` is the unscoped
/// subject (the aggregator strips its namespace prefix first).
pub fn decode_and_validate(subject: &str, payload: &[u8]) -> Result<RecordUpdate, Rejection> {
    decode_and_validate_with(subject, payload, |_, _| ()).map(|(update, ())| update)
}

/// [`decode_and_validate`], also handing the upsert's resource as validation
/// parsed it (`None` for a delete) to `derive`, so a consumer that needs
/// something from the resource does not parse it a second time. The parsed
/// tree borrows from the update, hence the callback.
pub fn decode_and_validate_with<T>(
    subject: &str,
    payload: &[u8],
    derive: impl FnOnce(&RecordUpdate, Option<&FhirJson<'_>>) -> T,
) -> Result<(RecordUpdate, T), Rejection> {
    if payload.len() > MAX_MESSAGE_BYTES {
        return Err(Rejection::new(
            DeadLetterReason::TooLarge,
            format!(
                "the message is {} bytes; at most {MAX_MESSAGE_BYTES} are accepted",
                payload.len()
            ),
        ));
    }
    let update = RecordUpdate::decode(payload).map_err(|_| {
        Rejection::new(
            DeadLetterReason::Undecodable,
            "the message is not a decodable mcr.records.v1.RecordUpdate",
        )
    })?;
    check_subject(subject, &update)?;
    let resource = validated_resource_at(&update, now_seconds())?;
    let derived = derive(&update, resource.as_ref());
    drop(resource);
    Ok((update, derived))
}

fn check_subject(subject: &str, update: &RecordUpdate) -> Result<(), Rejection> {
    let malformed = || {
        Rejection::field(format!(
            "the subject is not {RECORDS_SUBJECT_PREFIX}.<organisation>.<category>"
        ))
    };
    let tokens = subject
        .strip_prefix(RECORDS_SUBJECT_PREFIX)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or_else(malformed)?;
    let mut parts = tokens.split('.');
    let (Some(organisation), Some(category_token), None) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    if !is_organisation_code(organisation) {
        return Err(Rejection::field(
            "the subject's organisation is not an ODS-style code (3-12 letters and digits)",
        ));
    }
    let Some(subject_category) = category_from_token(category_token) else {
        return Err(Rejection::new(
            DeadLetterReason::UnknownCategory,
            format!(
                "the subject's category {} is not a known category",
                quoted(category_token)
            ),
        ));
    };
    if update.category != subject_category as i32 {
        return Err(Rejection::new(
            DeadLetterReason::UnknownCategory,
            format!(
                "category does not match the subject's category {}",
                category_token
            ),
        ));
    }
    if !update
        .source_organisation_code
        .eq_ignore_ascii_case(organisation)
    {
        return Err(Rejection::field(format!(
            "source_organisation_code does not match the subject's organisation {}",
            organisation.to_ascii_uppercase()
        )));
    }
    Ok(())
}

/// Judges `update` against the contract (see the module docs and the
/// README's table); the first problem found is returned.
pub fn validate_update(update: &RecordUpdate) -> Result<(), Rejection> {
    validate_update_at(update, now_seconds())
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// [`validate_update`] with the clock given: `now_seconds` since the Unix
/// epoch bounds how far ahead an effective time may lie.
pub fn validate_update_at(update: &RecordUpdate, now_seconds: i64) -> Result<(), Rejection> {
    validated_resource_at(update, now_seconds).map(drop)
}

/// [`validate_update_at`], returning an upsert's resource as parsed.
fn validated_resource_at(
    update: &RecordUpdate,
    now_seconds: i64,
) -> Result<Option<FhirJson<'_>>, Rejection> {
    check_text("message_id", &update.message_id, MAX_MESSAGE_ID_CHARS)?;
    if !is_organisation_code(&update.source_organisation_code) {
        return Err(Rejection::field(
            "source_organisation_code is required: an ODS-style code of 3-12 letters and digits",
        ));
    }
    check_text(
        "source_system",
        &update.source_system,
        MAX_SOURCE_SYSTEM_CHARS,
    )?;
    check_patient_identifier(update.patient_identifier.as_ref(), update)?;
    check_text(
        "local_entry_id",
        &update.local_entry_id,
        MAX_LOCAL_ENTRY_ID_CHARS,
    )?;
    if update.version == 0 {
        return Err(Rejection::field(
            "version is required: it must be greater than 0",
        ));
    }
    let category = match Category::try_from(update.category) {
        Ok(Category::Unspecified) => {
            return Err(Rejection::new(
                DeadLetterReason::UnknownCategory,
                "category is required (not CATEGORY_UNSPECIFIED)",
            ));
        }
        Ok(category) => category,
        Err(_) => {
            return Err(Rejection::new(
                DeadLetterReason::UnknownCategory,
                format!("category {} is not a known category", update.category),
            ));
        }
    };
    let operation = match RecordOperation::try_from(update.operation) {
        Ok(RecordOperation::Unspecified) | Err(_) => {
            return Err(Rejection::field(
                "operation is required: RECORD_OPERATION_UPSERT or RECORD_OPERATION_DELETE",
            ));
        }
        Ok(operation) => operation,
    };
    if let Some(demographics) = &update.demographics
        && !demographics.nhs_number.is_empty()
        && let Err(problem) = crate::nhs_number::normalise(&demographics.nhs_number)
    {
        return Err(Rejection::new(
            DeadLetterReason::InvalidNhsNumber,
            format!("demographics.nhs_number {problem}"),
        ));
    }
    if let Some(relationship) = &update.care_relationship {
        check_care_relationship(relationship)?;
    }
    if let Some(source_time) = &update.source_time {
        check_timestamp_form("source_time", source_time)?;
    }
    match operation {
        RecordOperation::Upsert => check_upsert(update, category, now_seconds).map(Some),
        RecordOperation::Delete | RecordOperation::Unspecified => {
            check_delete(update, category, now_seconds).map(|()| None)
        }
    }
}

fn check_patient_identifier(
    identifier: Option<&LocalIdentifier>,
    update: &RecordUpdate,
) -> Result<(), Rejection> {
    let Some(identifier) = identifier else {
        return Err(Rejection::field(
            "patient_identifier is required: the provider's identifier of the person",
        ));
    };
    if !is_organisation_code(&identifier.organisation_code) {
        return Err(Rejection::field(
            "patient_identifier.organisation_code is required: an ODS-style code of 3-12 letters and digits",
        ));
    }
    if !identifier
        .organisation_code
        .eq_ignore_ascii_case(&update.source_organisation_code)
    {
        return Err(Rejection::field(
            "patient_identifier.organisation_code must equal source_organisation_code",
        ));
    }
    check_text(
        "patient_identifier.system",
        &identifier.system,
        MAX_IDENTIFIER_SYSTEM_CHARS,
    )?;
    check_text(
        "patient_identifier.value",
        identifier.value.trim(),
        MAX_IDENTIFIER_VALUE_CHARS,
    )
}

fn check_care_relationship(relationship: &CarriedCareRelationship) -> Result<(), Rejection> {
    match CareRelationshipType::try_from(relationship.relationship_type) {
        Ok(CareRelationshipType::Unspecified) | Err(_) => {
            return Err(Rejection::field(
                "care_relationship.relationship_type is required (not UNSPECIFIED)",
            ));
        }
        Ok(CareRelationshipType::SelfDeclared) => {
            return Err(Rejection::field(
                "care_relationship.relationship_type SELF_DECLARED cannot be carried by a record update",
            ));
        }
        Ok(_) => {}
    }
    check_text(
        "care_relationship.source_reference",
        &relationship.source_reference,
        MAX_SOURCE_REFERENCE_CHARS,
    )?;
    let Some(start) = &relationship.start_time else {
        return Err(Rejection::field("care_relationship.start_time is required"));
    };
    check_timestamp_form("care_relationship.start_time", start)?;
    if let Some(end) = &relationship.end_time {
        check_timestamp_form("care_relationship.end_time", end)?;
        if (end.seconds, end.nanos) <= (start.seconds, start.nanos) {
            return Err(Rejection::field(
                "care_relationship.end_time must be after start_time",
            ));
        }
    }
    if relationship.team_code.chars().count() > MAX_TEAM_CODE_CHARS
        || relationship.team_code.chars().any(char::is_control)
    {
        return Err(Rejection::field(format!(
            "care_relationship.team_code must be at most {MAX_TEAM_CODE_CHARS} printable characters"
        )));
    }
    Ok(())
}

fn check_upsert(
    update: &RecordUpdate,
    category: Category,
    now_seconds: i64,
) -> Result<FhirJson<'_>, Rejection> {
    let Some(effective_time) = &update.effective_time else {
        return Err(Rejection::field("effective_time is required for an upsert"));
    };
    check_effective_time(effective_time, now_seconds)?;
    if update.resource_type.is_empty() {
        return Err(Rejection::new(
            DeadLetterReason::ResourceTypeMismatch,
            "resource_type is required for an upsert",
        ));
    }
    check_resource_type_accepted(&update.resource_type, category)?;
    let resource = fhir::check_resource(&update.resource_type, &update.fhir_resource_json)?;
    check_text(
        "display_summary",
        &update.display_summary,
        MAX_DISPLAY_SUMMARY_CHARS,
    )?;
    Ok(resource)
}

fn check_delete(
    update: &RecordUpdate,
    category: Category,
    now_seconds: i64,
) -> Result<(), Rejection> {
    if !update.fhir_resource_json.is_empty() {
        return Err(Rejection::field(
            "fhir_resource_json must be empty for a delete",
        ));
    }
    // A delete names the entry by its key alone; what else it carries must
    // still be well-formed because the aggregator may show or store it.
    if let Some(effective_time) = &update.effective_time {
        check_effective_time(effective_time, now_seconds)?;
    }
    if !update.resource_type.is_empty() {
        check_resource_type_accepted(&update.resource_type, category)?;
    }
    if update.display_summary.chars().count() > MAX_DISPLAY_SUMMARY_CHARS {
        return Err(Rejection::field(format!(
            "display_summary must be at most {MAX_DISPLAY_SUMMARY_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_resource_type_accepted(resource_type: &str, category: Category) -> Result<(), Rejection> {
    let accepted = accepted_resource_types(category);
    if accepted.contains(&resource_type) {
        return Ok(());
    }
    Err(Rejection::new(
        DeadLetterReason::ResourceTypeMismatch,
        format!(
            "resource_type {} is not accepted for category {} (accepted: {})",
            quoted(resource_type),
            category_token(category),
            accepted.join(", ")
        ),
    ))
}

fn check_effective_time(
    effective_time: &prost_types::Timestamp,
    now_seconds: i64,
) -> Result<(), Rejection> {
    check_timestamp_form("effective_time", effective_time)?;
    if effective_time.seconds < EARLIEST_SECONDS {
        return Err(Rejection::field(
            "effective_time is before 1850; no care record entry is that old",
        ));
    }
    if effective_time.seconds > now_seconds.saturating_add(MAX_FUTURE_SECONDS) {
        return Err(Rejection::field(
            "effective_time is more than two years in the future",
        ));
    }
    Ok(())
}

fn check_timestamp_form(field: &str, timestamp: &prost_types::Timestamp) -> Result<(), Rejection> {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(Rejection::field(format!(
            "{field}.nanos must be between 0 and 999,999,999"
        )));
    }
    // 0001-01-01 to 9999-12-31, the range a Timestamp may hold.
    if !(-62_135_596_800..=253_402_300_799).contains(&timestamp.seconds) {
        return Err(Rejection::field(format!(
            "{field} is outside the years 0001 to 9999"
        )));
    }
    Ok(())
}

/// Required text: 1 to `max_chars` characters, none of them control
/// characters (they would break headers and logs).
fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), Rejection> {
    if value.is_empty() {
        return Err(Rejection::field(format!(
            "{field} is required (1-{max_chars} characters)"
        )));
    }
    let count = value.chars().count();
    if count > max_chars {
        return Err(Rejection::field(format!(
            "{field} must be at most {max_chars} characters, found {count}"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Rejection::field(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// ODS-style code: 3 to 12 ASCII letters and digits, any case.
pub fn is_organisation_code(code: &str) -> bool {
    (3..=12).contains(&code.len()) && code.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

/// An outside value quoted for a message, cut short so a hostile value
/// cannot flood a log line. Only used for codes and type names, never for
/// record content.
fn quoted(value: &str) -> String {
    let short: String = value.chars().take(MAX_RESOURCE_TYPE_CHARS).collect();
    if short.len() < value.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}
