//! The facts as FHIR R4 `Consent` resources, so a FHIR client can read what
//! was recorded. One resource per fact; `status` is `active` while the fact
//! is in force and `inactive` once withdrawn, ended, removed or expired.

use mcr_proto::consent::v1::{
    BreakGlassGrant, CareRelationship, OptOut, PermissionToView, Restriction, restriction,
};
use serde_json::{Value, json};

const CATEGORY_SYSTEM: &str = "https://my-care-record.nhs.uk/fhir/CodeSystem/record-category";
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const USER_SYSTEM: &str = "https://my-care-record.nhs.uk/fhir/Id/user";
const PURPOSE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

fn rfc3339(timestamp: Option<&prost_types::Timestamp>) -> Option<String> {
    let timestamp = timestamp?;
    let nanos = i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn is_future(timestamp: Option<&prost_types::Timestamp>, now_seconds: i64) -> bool {
    timestamp.is_some_and(|at| at.seconds > now_seconds)
}

fn purpose(code: &str) -> Value {
    json!({ "system": PURPOSE_SYSTEM, "code": code })
}

fn period(start: Option<&prost_types::Timestamp>, end: Option<&prost_types::Timestamp>) -> Value {
    let mut period = serde_json::Map::new();
    if let Some(start) = rfc3339(start) {
        period.insert("start".to_owned(), Value::String(start));
    }
    if let Some(end) = rfc3339(end) {
        period.insert("end".to_owned(), Value::String(end));
    }
    Value::Object(period)
}

fn organisation_actor(code: &str, role: &str) -> Value {
    json!({
        "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": role }] },
        "reference": { "identifier": { "system": ODS_SYSTEM, "value": code } }
    })
}

fn user_actor(user_id: &str) -> Value {
    json!({
        "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP" }] },
        "reference": { "identifier": { "system": USER_SYSTEM, "value": user_id } }
    })
}

fn category_classes(categories: &[i32]) -> Vec<Value> {
    categories
        .iter()
        .filter_map(|value| mcr_proto::common::v1::Category::try_from(*value).ok())
        .map(
            |category| json!({ "system": CATEGORY_SYSTEM, "code": super::category_name(category) }),
        )
        .collect()
}

fn consent(
    id: &str,
    status: &str,
    person_id: &str,
    date_time: Option<String>,
    policy_rule: &str,
    provision: Value,
) -> Value {
    let mut resource = json!({
        "resourceType": "Consent",
        "id": id,
        "status": status,
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
        "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent" }] }],
        "patient": { "reference": format!("Patient/{person_id}") },
        "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": policy_rule }] },
        "provision": provision,
    });
    if let (Some(date_time), Some(object)) = (date_time, resource.as_object_mut()) {
        object.insert("dateTime".to_owned(), Value::String(date_time));
    }
    resource
}

/// An opt-out: deny everything, for every purpose.
pub fn opt_out(fact: &OptOut) -> Value {
    let status = if fact.withdrawn_at.is_some() {
        "inactive"
    } else {
        "active"
    };
    consent(
        &fact.opt_out_id,
        status,
        &fact.person_id,
        rfc3339(fact.effective_from.as_ref()),
        "OPTOUT",
        json!({
            "type": "deny",
            "period": period(fact.effective_from.as_ref(), fact.withdrawn_at.as_ref()),
            "purpose": [purpose("TREAT"), purpose("ETREAT")],
        }),
    )
}

/// A permission to view: permit the organisation (or one professional).
pub fn permission(fact: &PermissionToView, now_seconds: i64) -> Value {
    let in_force = fact.withdrawn_at.is_none() && is_future(fact.expires_at.as_ref(), now_seconds);
    let mut actors = vec![organisation_actor(&fact.organisation_code, "IRCP")];
    if !fact.user_id.is_empty() {
        actors.push(user_actor(&fact.user_id));
    }
    let end = fact.withdrawn_at.as_ref().or(fact.expires_at.as_ref());
    let mut provision = json!({
        "type": "permit",
        "period": period(fact.valid_from.as_ref(), end),
        "actor": actors,
        "purpose": [purpose("TREAT")],
    });
    let classes = category_classes(&fact.categories);
    if let (false, Some(object)) = (classes.is_empty(), provision.as_object_mut()) {
        object.insert("class".to_owned(), Value::Array(classes));
    }
    consent(
        &fact.permission_id,
        if in_force { "active" } else { "inactive" },
        &fact.person_id,
        rfc3339(fact.valid_from.as_ref()),
        "OPTIN",
        provision,
    )
}

/// A care relationship: the organisation's legitimate relationship.
pub fn care_relationship(fact: &CareRelationship, now_seconds: i64) -> Value {
    let open = fact.end_time.is_none() || is_future(fact.end_time.as_ref(), now_seconds);
    consent(
        &fact.care_relationship_id,
        if open { "active" } else { "inactive" },
        &fact.person_id,
        rfc3339(fact.start_time.as_ref()),
        "OPTIN",
        json!({
            "type": "permit",
            "period": period(fact.start_time.as_ref(), fact.end_time.as_ref()),
            "actor": [organisation_actor(&fact.organisation_code, "PRCP")],
            "purpose": [purpose("TREAT")],
        }),
    )
}

/// A restriction: deny the target to the viewers named (or everyone).
pub fn restriction(fact: &Restriction, now_seconds: i64) -> Value {
    let in_force = fact.removed_at.is_none()
        && (fact.expires_at.is_none() || is_future(fact.expires_at.as_ref(), now_seconds));
    let mut provision = serde_json::Map::new();
    provision.insert("type".to_owned(), json!("deny"));
    let end = fact.removed_at.as_ref().or(fact.expires_at.as_ref());
    let start = fact.recorded.as_ref().and_then(|r| r.recorded_at.as_ref());
    provision.insert("period".to_owned(), period(start, end));
    match &fact.target {
        Some(restriction::Target::Category(category)) => {
            provision.insert(
                "class".to_owned(),
                Value::Array(category_classes(&[*category])),
            );
        }
        Some(restriction::Target::SourceOrganisationCode(code)) => {
            provision.insert(
                "data".to_owned(),
                json!([{ "meaning": "authoredby", "reference": { "identifier": { "system": ODS_SYSTEM, "value": code } } }]),
            );
        }
        Some(restriction::Target::Entries(entries)) => {
            let data: Vec<Value> = entries
                .entry_ids
                .iter()
                .map(|entry| json!({ "meaning": "instance", "reference": { "identifier": { "value": entry } } }))
                .collect();
            provision.insert("data".to_owned(), Value::Array(data));
        }
        None => {}
    }
    if let Some(viewers) = &fact.viewers {
        let mut actors: Vec<Value> = viewers
            .organisation_codes
            .iter()
            .map(|code| organisation_actor(code, "IRCP"))
            .collect();
        actors.extend(viewers.user_ids.iter().map(|user| user_actor(user)));
        if !actors.is_empty() {
            provision.insert("actor".to_owned(), Value::Array(actors));
        }
    }
    consent(
        &fact.restriction_id,
        if in_force { "active" } else { "inactive" },
        &fact.person_id,
        rfc3339(start),
        "OPTOUT",
        Value::Object(provision),
    )
}

/// A break-glass grant: emergency permit for one professional.
pub fn break_glass(fact: &BreakGlassGrant, now_seconds: i64) -> Value {
    let in_force = is_future(fact.expires_at.as_ref(), now_seconds);
    let user = fact
        .actor
        .as_ref()
        .map(|actor| actor.user_id.as_str())
        .unwrap_or_default();
    consent(
        &fact.grant_id,
        if in_force { "active" } else { "inactive" },
        &fact.person_id,
        rfc3339(fact.granted_at.as_ref()),
        "OPTIN",
        json!({
            "type": "permit",
            "period": period(fact.granted_at.as_ref(), fact.expires_at.as_ref()),
            "actor": [user_actor(user)],
            "purpose": [purpose("ETREAT")],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    #[test]
    fn opt_out_is_an_active_deny_consent() {
        let resource = opt_out(&OptOut {
            opt_out_id: "a".to_owned(),
            person_id: "p".to_owned(),
            effective_from: at(1_700_000_000),
            ..OptOut::default()
        });
        assert_eq!(resource["resourceType"], "Consent");
        assert_eq!(resource["status"], "active");
        assert_eq!(resource["scope"]["coding"][0]["code"], "patient-privacy");
        assert_eq!(resource["category"][0]["coding"][0]["code"], "59284-0");
        assert_eq!(resource["patient"]["reference"], "Patient/p");
        assert_eq!(resource["provision"]["type"], "deny");
        assert_eq!(resource["dateTime"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn expired_permission_is_inactive_and_lists_categories() {
        let resource = permission(
            &PermissionToView {
                permission_id: "x".to_owned(),
                person_id: "p".to_owned(),
                organisation_code: "RQW".to_owned(),
                categories: vec![9],
                valid_from: at(100),
                expires_at: at(200),
                ..PermissionToView::default()
            },
            300,
        );
        assert_eq!(resource["status"], "inactive");
        assert_eq!(resource["provision"]["type"], "permit");
        assert_eq!(resource["provision"]["class"][0]["code"], "MENTAL_HEALTH");
        assert_eq!(resource["provision"]["purpose"][0]["code"], "TREAT");
    }
}
