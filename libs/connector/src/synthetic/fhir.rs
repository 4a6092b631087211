//! FHIR R4 resources of the synthetic region, and the clinical codes they
//! use (SNOMED CT, dm+d and LOINC codes chosen to look right; this is test
//! data, not a terminology reference).

use serde_json::{Value, json};

use super::calendar::{iso_date, iso_date_time};
use super::people::Person;

const SNOMED: &str = "http://snomed.info/sct";
const DM_D: &str = "https://dmd.nhs.uk";
const LOINC: &str = "http://loinc.org";
const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// A coded thing with a display text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Code {
    pub(crate) code: &'static str,
    pub(crate) display: &'static str,
}

const fn code(code: &'static str, display: &'static str) -> Code {
    Code { code, display }
}

/// A long-term condition and the medicine usually prescribed for it.
pub(crate) const LONG_TERM_CONDITIONS: &[(Code, Code)] = &[
    (
        code("59621000", "Essential hypertension"),
        code("319283006", "Amlodipine 5mg tablets"),
    ),
    (
        code("44054006", "Type 2 diabetes mellitus"),
        code("325278007", "Metformin 500mg tablets"),
    ),
    (
        code("195967001", "Asthma"),
        code("320176004", "Salbutamol 100micrograms/dose inhaler"),
    ),
    (
        code("40930008", "Hypothyroidism"),
        code("376988009", "Levothyroxine 50microgram tablets"),
    ),
    (
        code("49436004", "Atrial fibrillation"),
        code("716047004", "Apixaban 5mg tablets"),
    ),
    (
        code("13645005", "Chronic obstructive lung disease"),
        code(
            "320205002",
            "Tiotropium 18microgram inhalation powder capsules",
        ),
    ),
    (
        code("239873007", "Osteoarthritis of knee"),
        code("322236009", "Paracetamol 500mg tablets"),
    ),
    (
        code("433144002", "Chronic kidney disease stage 3"),
        code("408051007", "Ramipril 5mg capsules"),
    ),
];

pub(crate) const SHORT_COURSES: &[Code] = &[
    code("323509004", "Amoxicillin 500mg capsules"),
    code("317335000", "Omeprazole 20mg gastro-resistant capsules"),
    code("322280009", "Ibuprofen 400mg tablets"),
];

pub(crate) const MENTAL_HEALTH_CONDITIONS: &[Code] = &[
    code("35489007", "Depressive disorder"),
    code("21897009", "Generalized anxiety disorder"),
    code("13746004", "Bipolar disorder"),
    code("47505003", "Post-traumatic stress disorder"),
];

pub(crate) const ALLERGENS: &[Code] = &[
    code("764146007", "Penicillin"),
    code("762952008", "Peanut"),
    code("111088007", "Latex"),
];

pub(crate) const PROCEDURES: &[Code] = &[
    code("80146002", "Appendicectomy"),
    code("54885007", "Cataract extraction"),
    code("52734007", "Total hip replacement"),
    code("73761001", "Colonoscopy"),
];

pub(crate) const PRESENTING_COMPLAINTS: &[Code] = &[
    code("29857009", "Chest pain"),
    code("1912002", "Fall"),
    code("267036007", "Shortness of breath"),
    code("21522001", "Abdominal pain"),
    code("82271004", "Head injury"),
];

/// A measurement: LOINC code, display, unit and a plausible range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measure {
    pub(crate) code: Code,
    pub(crate) unit: &'static str,
    pub(crate) low: i64,
    pub(crate) high: i64,
}

const fn measure(code: Code, unit: &'static str, low: i64, high: i64) -> Measure {
    Measure {
        code,
        unit,
        low,
        high,
    }
}

pub(crate) const GP_MEASURES: &[Measure] = &[
    measure(
        code("8480-6", "Systolic blood pressure"),
        "mm[Hg]",
        105,
        170,
    ),
    measure(code("59261-8", "HbA1c (IFCC)"), "mmol/mol", 35, 80),
    measure(code("29463-7", "Body weight"), "kg", 50, 110),
];
pub(crate) const LAB_MEASURES: &[Measure] = &[
    measure(code("718-7", "Haemoglobin"), "g/L", 95, 165),
    measure(code("14682-9", "Creatinine"), "umol/L", 50, 160),
];
pub(crate) const VITAL_SIGNS: &[Measure] = &[
    measure(code("8867-4", "Heart rate"), "/min", 55, 130),
    measure(code("59408-5", "Oxygen saturation"), "%", 88, 100),
];

fn concept(system: &str, code: Code) -> Value {
    json!({"coding": [{"system": system, "code": code.code, "display": code.display}], "text": code.display})
}

fn subject(person: &Person, local_value: &str) -> Value {
    json!({
        "reference": format!("Patient/{local_value}"),
        "identifier": {"system": NHS_NUMBER_SYSTEM, "value": person.nhs_number},
        "display": person.display_name()
    })
}

/// The organisation's Patient resource for the person.
pub(crate) fn patient(person: &Person, local_value: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": local_value,
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": person.nhs_number}],
        "name": [{"use": "official", "family": person.family, "given": [person.given]}],
        "gender": if person.sex == mcr_proto::patient_index::v1::Sex::Female { "female" } else { "male" },
        "birthDate": person.birth_date(),
        "address": [{"line": [person.address_line], "city": person.city, "district": person.county, "postalCode": person.postcode, "country": "GB"}],
        "telecom": [{"system": "phone", "value": person.phone, "use": "mobile"}]
    })
}

pub(crate) fn medication_statement(
    id: &str,
    person: &Person,
    local: &str,
    medicine: Code,
    started: i64,
    status: &str,
) -> Value {
    json!({
        "resourceType": "MedicationStatement",
        "id": id,
        "status": status,
        "medicationCodeableConcept": concept(DM_D, medicine),
        "subject": subject(person, local),
        "effectiveDateTime": iso_date(started),
        "dateAsserted": iso_date(started)
    })
}

pub(crate) fn condition(
    id: &str,
    person: &Person,
    local: &str,
    problem: Code,
    onset: i64,
) -> Value {
    json!({
        "resourceType": "Condition",
        "id": id,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
        "code": concept(SNOMED, problem),
        "subject": subject(person, local),
        "onsetDateTime": iso_date(onset)
    })
}

pub(crate) fn observation(
    id: &str,
    person: &Person,
    local: &str,
    measured: Measure,
    value: i64,
    at: i64,
    category: &str,
) -> Value {
    json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
        "code": concept(LOINC, measured.code),
        "subject": subject(person, local),
        "effectiveDateTime": iso_date_time(at),
        "valueQuantity": {"value": value, "unit": measured.unit, "system": "http://unitsofmeasure.org", "code": measured.unit}
    })
}

pub(crate) fn diagnostic_report(
    id: &str,
    person: &Person,
    local: &str,
    title: Code,
    at: i64,
    result_ids: &[String],
) -> Value {
    let results: Vec<Value> = result_ids
        .iter()
        .map(|result| json!({"reference": format!("Observation/{result}")}))
        .collect();
    json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "status": "final",
        "code": concept(LOINC, title),
        "subject": subject(person, local),
        "effectiveDateTime": iso_date_time(at),
        "issued": iso_date_time(at + 3_600),
        "result": results
    })
}

pub(crate) fn encounter(
    id: &str,
    person: &Person,
    local: &str,
    class: (&str, &str),
    reason: Code,
    start: i64,
    end: i64,
) -> Value {
    json!({
        "resourceType": "Encounter",
        "id": id,
        "status": "finished",
        "class": {"system": ACT_CODE, "code": class.0, "display": class.1},
        "reasonCode": [concept(SNOMED, reason)],
        "subject": subject(person, local),
        "period": {"start": iso_date_time(start), "end": iso_date_time(end)}
    })
}

pub(crate) fn procedure(id: &str, person: &Person, local: &str, performed: Code, at: i64) -> Value {
    json!({
        "resourceType": "Procedure",
        "id": id,
        "status": "completed",
        "code": concept(SNOMED, performed),
        "subject": subject(person, local),
        "performedDateTime": iso_date_time(at)
    })
}

pub(crate) fn appointment(
    id: &str,
    person: &Person,
    local: &str,
    description: &str,
    start: i64,
    minutes: i64,
    status: &str,
) -> Value {
    json!({
        "resourceType": "Appointment",
        "id": id,
        "status": status,
        "description": description,
        "start": iso_date_time(start),
        "end": iso_date_time(start + minutes * 60),
        "participant": [{"actor": subject(person, local), "status": "accepted"}]
    })
}

pub(crate) fn allergy(
    id: &str,
    person: &Person,
    local: &str,
    allergen: Code,
    recorded: i64,
) -> Value {
    json!({
        "resourceType": "AllergyIntolerance",
        "id": id,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
        "code": concept(SNOMED, allergen),
        "patient": subject(person, local),
        "recordedDate": iso_date(recorded)
    })
}

pub(crate) fn care_plan(id: &str, person: &Person, local: &str, title: &str, start: i64) -> Value {
    json!({
        "resourceType": "CarePlan",
        "id": id,
        "status": "active",
        "intent": "plan",
        "title": title,
        "subject": subject(person, local),
        "period": {"start": iso_date(start)}
    })
}

pub(crate) fn flag(id: &str, person: &Person, local: &str, text: &str, start: i64) -> Value {
    json!({
        "resourceType": "Flag",
        "id": id,
        "status": "active",
        "code": {"text": text},
        "subject": subject(person, local),
        "period": {"start": iso_date(start)}
    })
}

pub(crate) fn composition(
    id: &str,
    person: &Person,
    local: &str,
    author: &str,
    title: &str,
    at: i64,
) -> Value {
    json!({
        "resourceType": "Composition",
        "id": id,
        "status": "final",
        "type": concept(SNOMED, code("373942005", "Discharge summary")),
        "subject": subject(person, local),
        "date": iso_date_time(at),
        "author": [{"display": author}],
        "title": title
    })
}

pub(crate) fn document_reference(
    id: &str,
    person: &Person,
    local: &str,
    title: &str,
    at: i64,
) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "id": id,
        "status": "current",
        "type": concept(SNOMED, code("371531000", "Report of clinical encounter")),
        "subject": subject(person, local),
        "date": iso_date_time(at),
        "content": [{"attachment": {"contentType": "application/pdf", "title": title, "creation": iso_date_time(at)}}]
    })
}

pub(crate) fn care_team(id: &str, person: &Person, local: &str, name: &str, lead: &str) -> Value {
    json!({
        "resourceType": "CareTeam",
        "id": id,
        "status": "active",
        "name": name,
        "subject": subject(person, local),
        "participant": [{"role": [{"text": "Lead co-ordinator"}], "member": {"display": lead}}]
    })
}

pub(crate) fn episode_of_care(id: &str, person: &Person, local: &str, start: i64) -> Value {
    json!({
        "resourceType": "EpisodeOfCare",
        "id": id,
        "status": "active",
        "patient": subject(person, local),
        "period": {"start": iso_date(start)}
    })
}
