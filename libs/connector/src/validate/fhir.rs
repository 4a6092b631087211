//! The FHIR R4 checks of an upsert's resource: one JSON object, not nested
//! too deeply, `resourceType` as declared, and the elements R4 requires
//! (cardinality 1..1 or 1..*) present with required-binding codes valid.
//!
//! This is not a full FHIR validator: it checks what the aggregator and the
//! FHIR clients reading its Bundles rely on, so a resource that passes here
//! is one they can use.
//!
//! The resource is parsed into a borrowed tree (strings point into the JSON
//! text): every update on the ingest path is parsed here, and building an
//! owned `serde_json::Value` (a heap string per key and value, a hash map per
//! object) cost more than the rest of its validation.

use mcr_proto::records::v1::DeadLetterReason;
use serde_json_borrow::{ObjectAsVec, Value};

use super::{MAX_FHIR_JSON_DEPTH, Rejection, quoted};

/// How an element must look when it is required.
#[derive(Clone, Copy)]
enum Shape {
    /// A `code` whose binding is required: one of these values.
    Code(&'static [&'static str]),
    /// A complex type (Reference, CodeableConcept, Coding).
    Object,
    /// A non-empty string (string, dateTime).
    Text,
    /// 1..*: a non-empty array of complex values.
    Objects,
}

/// A required element, or a choice of which exactly one must be present
/// (`medication[x]`).
#[derive(Clone, Copy)]
enum Rule {
    Element(&'static str, Shape),
    Choice(&'static str, &'static [&'static str]),
    /// Every item of an array element (when present) needs this element.
    EachItem(&'static str, &'static str, Shape),
}

use Rule::{Choice, EachItem, Element};
use Shape::{Code, Object, Objects, Text};

const MEDICATION_STATEMENT_STATUS: &[&str] = &[
    "active",
    "completed",
    "entered-in-error",
    "intended",
    "stopped",
    "on-hold",
    "unknown",
    "not-taken",
];
const MEDICATION_REQUEST_STATUS: &[&str] = &[
    "active",
    "on-hold",
    "cancelled",
    "completed",
    "entered-in-error",
    "stopped",
    "draft",
    "unknown",
];
const MEDICATION_REQUEST_INTENT: &[&str] = &[
    "proposal",
    "plan",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
];
const MEDICATION_DISPENSE_STATUS: &[&str] = &[
    "preparation",
    "in-progress",
    "cancelled",
    "on-hold",
    "completed",
    "entered-in-error",
    "stopped",
    "declined",
    "unknown",
];
const OBSERVATION_STATUS: &[&str] = &[
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
];
const DIAGNOSTIC_REPORT_STATUS: &[&str] = &[
    "registered",
    "partial",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "appended",
    "cancelled",
    "entered-in-error",
    "unknown",
];
const DOCUMENT_REFERENCE_STATUS: &[&str] = &["current", "superseded", "entered-in-error"];
const COMPOSITION_STATUS: &[&str] = &["preliminary", "final", "amended", "entered-in-error"];
const PROCEDURE_STATUS: &[&str] = &[
    "preparation",
    "in-progress",
    "not-done",
    "on-hold",
    "stopped",
    "completed",
    "entered-in-error",
    "unknown",
];
const ENCOUNTER_STATUS: &[&str] = &[
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
];
const APPOINTMENT_STATUS: &[&str] = &[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
];
const PARTICIPATION_STATUS: &[&str] = &["accepted", "declined", "tentative", "needs-action"];
const CARE_PLAN_STATUS: &[&str] = &[
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
];
const CARE_PLAN_INTENT: &[&str] = &["proposal", "plan", "order", "option"];
const FLAG_STATUS: &[&str] = &["active", "inactive", "entered-in-error"];
const EPISODE_OF_CARE_STATUS: &[&str] = &[
    "planned",
    "waitlist",
    "active",
    "onhold",
    "finished",
    "cancelled",
    "entered-in-error",
];

/// The R4 required elements of each accepted resource type.
fn rules(resource_type: &str) -> &'static [Rule] {
    match resource_type {
        "RelatedPerson" => &[Element("patient", Object)],
        "MedicationStatement" => &[
            Element("status", Code(MEDICATION_STATEMENT_STATUS)),
            Choice(
                "medication[x]",
                &["medicationCodeableConcept", "medicationReference"],
            ),
            Element("subject", Object),
        ],
        "MedicationRequest" => &[
            Element("status", Code(MEDICATION_REQUEST_STATUS)),
            Element("intent", Code(MEDICATION_REQUEST_INTENT)),
            Choice(
                "medication[x]",
                &["medicationCodeableConcept", "medicationReference"],
            ),
            Element("subject", Object),
        ],
        "MedicationDispense" => &[
            Element("status", Code(MEDICATION_DISPENSE_STATUS)),
            Choice(
                "medication[x]",
                &["medicationCodeableConcept", "medicationReference"],
            ),
        ],
        "Observation" => &[
            Element("status", Code(OBSERVATION_STATUS)),
            Element("code", Object),
        ],
        "DiagnosticReport" => &[
            Element("status", Code(DIAGNOSTIC_REPORT_STATUS)),
            Element("code", Object),
        ],
        "DocumentReference" => &[
            Element("status", Code(DOCUMENT_REFERENCE_STATUS)),
            Element("content", Objects),
            EachItem("content", "attachment", Object),
        ],
        "Composition" => &[
            Element("status", Code(COMPOSITION_STATUS)),
            Element("type", Object),
            Element("date", Text),
            Element("author", Objects),
            Element("title", Text),
        ],
        "Condition" => &[Element("subject", Object)],
        "Procedure" => &[
            Element("status", Code(PROCEDURE_STATUS)),
            Element("subject", Object),
        ],
        "Encounter" => &[
            Element("status", Code(ENCOUNTER_STATUS)),
            Element("class", Object),
        ],
        "Appointment" => &[
            Element("status", Code(APPOINTMENT_STATUS)),
            Element("participant", Objects),
            EachItem("participant", "status", Code(PARTICIPATION_STATUS)),
        ],
        "CarePlan" => &[
            Element("status", Code(CARE_PLAN_STATUS)),
            Element("intent", Code(CARE_PLAN_INTENT)),
            Element("subject", Object),
        ],
        "Flag" => &[
            Element("status", Code(FLAG_STATUS)),
            Element("code", Object),
            Element("subject", Object),
        ],
        "AllergyIntolerance" => &[Element("patient", Object)],
        "EpisodeOfCare" => &[
            Element("status", Code(EPISODE_OF_CARE_STATUS)),
            Element("patient", Object),
        ],
        // Patient and CareTeam have no required elements in R4.
        _ => &[],
    }
}

fn invalid(text: impl Into<String>) -> Rejection {
    Rejection::new(DeadLetterReason::InvalidFhirResource, text)
}

/// Checks `json` as one FHIR R4 resource of `resource_type` (already known
/// to be accepted for the update's category); returns it parsed.
pub(super) fn check_resource<'json>(
    resource_type: &str,
    json: &'json str,
) -> Result<Value<'json>, Rejection> {
    if json.is_empty() {
        return Err(invalid("fhir_resource_json is required for an upsert"));
    }
    let value: Value<'json> = serde_json::from_str(json).map_err(describe_json_error)?;
    let Value::Object(resource) = &value else {
        return Err(invalid(
            "fhir_resource_json must be a JSON object (one FHIR resource)",
        ));
    };
    check_structure(&value)?;
    let Some(declared) = resource.get("resourceType") else {
        return Err(invalid("fhir_resource_json has no resourceType"));
    };
    let Some(declared) = declared.as_str() else {
        return Err(invalid("fhir_resource_json resourceType must be a string"));
    };
    if declared != resource_type {
        return Err(Rejection::new(
            DeadLetterReason::ResourceTypeMismatch,
            format!(
                "fhir_resource_json resourceType {} does not match resource_type {}",
                quoted(declared),
                quoted(resource_type)
            ),
        ));
    }
    if let Some(id) = resource.get("id")
        && !is_fhir_id(id)
    {
        return Err(invalid(format!(
            "{resource_type}.id must be 1-64 letters, digits, '-' or '.'"
        )));
    }
    for rule in rules(resource_type) {
        check_rule(resource_type, resource, *rule)?;
    }
    Ok(value)
}

fn check_rule(
    resource_type: &str,
    resource: &ObjectAsVec<'_>,
    rule: Rule,
) -> Result<(), Rejection> {
    match rule {
        Element(name, shape) => check_element(resource_type, name, resource.get(name), shape),
        Choice(name, options) => {
            let present = options
                .iter()
                .filter(|option| resource.contains_key(option))
                .count();
            match present {
                0 => Err(invalid(format!(
                    "{resource_type}.{name} is required ({})",
                    options.join(" or ")
                ))),
                1 => options
                    .iter()
                    .filter_map(|option| resource.get(option).map(|value| (option, value)))
                    .try_for_each(|(option, value)| {
                        check_element(resource_type, option, Some(value), Object)
                    }),
                _ => Err(invalid(format!(
                    "{resource_type}.{name} must be given once ({} together)",
                    options.join(" and ")
                ))),
            }
        }
        EachItem(array, name, shape) => {
            let Some(items) = resource.get(array).and_then(Value::as_array) else {
                return Ok(());
            };
            items.iter().try_for_each(|item| {
                let field = format!("{array}.{name}");
                let value = item.as_object().and_then(|item| item.get(name));
                check_element(resource_type, &field, value, shape)
            })
        }
    }
}

fn check_element(
    resource_type: &str,
    name: &str,
    value: Option<&Value<'_>>,
    shape: Shape,
) -> Result<(), Rejection> {
    let Some(value) = value else {
        return Err(invalid(format!("{resource_type}.{name} is required")));
    };
    let fits = match shape {
        Code(codes) => value.as_str().is_some_and(|code| codes.contains(&code)),
        Object => value.as_object().is_some_and(|object| !object.is_empty()),
        Text => value.as_str().is_some_and(|text| !text.trim().is_empty()),
        Objects => value.as_array().is_some_and(|items| {
            !items.is_empty()
                && items
                    .iter()
                    .all(|item| item.as_object().is_some_and(|o| !o.is_empty()))
        }),
    };
    if fits {
        return Ok(());
    }
    Err(invalid(match shape {
        Code(codes) => format!("{resource_type}.{name} must be one of {}", codes.join(", ")),
        Object => format!("{resource_type}.{name} must be a non-empty JSON object"),
        Text => format!("{resource_type}.{name} must be a non-empty string"),
        Objects => format!("{resource_type}.{name} must be a non-empty array of JSON objects"),
    }))
}

/// FHIR `id`: 1-64 of A-Z, a-z, 0-9, '-' and '.'.
fn is_fhir_id(value: &Value<'_>) -> bool {
    value.as_str().is_some_and(|id| {
        (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.')
    })
}

/// Rejects nesting deeper than [`MAX_FHIR_JSON_DEPTH`] (a flat object is 1
/// level) and an object naming one property twice: JSON parsers disagree on
/// which of two values wins, so a FHIR client could read something other than
/// what was checked here. Iterative, so it never recurses however the input
/// is shaped.
fn check_structure(value: &Value<'_>) -> Result<(), Rejection> {
    let mut pending = vec![(value, 1usize)];
    while let Some((current, level)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value<'_>>> = match current {
            Value::Object(object) => {
                if repeats_a_key(object) {
                    return Err(invalid(
                        "fhir_resource_json has an object that names one property twice",
                    ));
                }
                Box::new(object.values())
            }
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        if level > MAX_FHIR_JSON_DEPTH {
            return Err(invalid(format!(
                "fhir_resource_json nests deeper than {MAX_FHIR_JSON_DEPTH} levels"
            )));
        }
        pending.extend(children.map(|child| (child, level + 1)));
    }
    Ok(())
}

fn repeats_a_key(object: &ObjectAsVec<'_>) -> bool {
    // FHIR objects are small: comparing pairs costs less than allocating,
    // until a (hostile) object is large enough for the square to matter.
    if object.len() <= 32 {
        return object
            .keys()
            .enumerate()
            .any(|(index, key)| object.keys().skip(index + 1).any(|other| other == key));
    }
    let mut keys: Vec<&str> = object.keys().collect();
    keys.sort_unstable();
    keys.windows(2).any(|pair| pair[0] == pair[1])
}

/// A JSON error as a sentence with its position, never the offending text.
fn describe_json_error(error: serde_json::Error) -> Rejection {
    if error.to_string().contains("recursion limit") {
        return invalid(format!(
            "fhir_resource_json nests deeper than {MAX_FHIR_JSON_DEPTH} levels"
        ));
    }
    let problem = match error.classify() {
        serde_json::error::Category::Eof => "ends before the JSON is complete",
        serde_json::error::Category::Syntax => "is not valid JSON",
        serde_json::error::Category::Data | serde_json::error::Category::Io => "is not valid JSON",
    };
    invalid(format!(
        "fhir_resource_json {problem} (line {}, column {})",
        error.line(),
        error.column()
    ))
}
