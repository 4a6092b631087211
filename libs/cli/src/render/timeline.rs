//! A care record as a terminal timeline: the patient banner, the
//! break-glass banner and withheld notices first, then the entries oldest
//! to newest grouped by day, each with its category and source.

use std::fmt::Write;

use mcr_proto::patient_index::v1::Demographics;
use mcr_proto::records::v1::{CareRecordEntry, GetCareRecordResponse};
use mcr_proto::timestamps::offset_date_time;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::person_arg::spaced_nhs_number;
use crate::render::labels::category_label;

const CATEGORY_WIDTH: usize = 17;

/// The whole view as text.
pub fn render(view: &GetCareRecordResponse) -> String {
    let mut out = String::new();
    banner(&mut out, view);
    if !view.break_glass_banner.is_empty() {
        let _ = writeln!(out, "\n!! BREAK GLASS: {}", view.break_glass_banner);
    }
    if !view.withheld.is_empty() || view.sensitive_demographics_withheld {
        out.push('\n');
        for notice in &view.withheld {
            // The service's text already names what is withheld; the label
            // stands in only when it sent none.
            let text = if notice.text.is_empty() {
                format!("{} is not shown", category_label(notice.category))
            } else {
                notice.text.clone()
            };
            let _ = writeln!(out, "Withheld: {text}");
        }
        if view.sensitive_demographics_withheld && view.withheld.is_empty() {
            let _ = writeln!(out, "Withheld: contact details (sensitive record)");
        }
    }
    out.push_str(&days(&view.entries));
    summary(&mut out, view);
    out
}

fn banner(out: &mut String, view: &GetCareRecordResponse) {
    let patient = view.patient.clone().unwrap_or_default();
    let _ = writeln!(out, "{}", patient_line(&patient));
    let _ = writeln!(out, "person {}", view.person_id);
}

/// "SMITH, Jane  NHS 943 476 5919  born 1970-01-02  CM20 1QX"
pub fn patient_line(patient: &Demographics) -> String {
    let name = patient.name.clone().unwrap_or_default();
    let mut line = format!("{}, {}", name.family.to_uppercase(), name.given.join(" "));
    if !patient.nhs_number.is_empty() {
        let _ = write!(line, "  NHS {}", spaced_nhs_number(&patient.nhs_number));
    }
    if !patient.birth_date.is_empty() {
        let _ = write!(line, "  born {}", patient.birth_date);
    }
    if let Some(address) = &patient.address
        && !address.postcode.is_empty()
    {
        let _ = write!(line, "  {}", address.postcode);
    }
    line
}

/// Entries oldest first, one heading per day (UTC).
pub fn days(entries: &[CareRecordEntry]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str("\nNo entries to show.\n");
        return out;
    }
    let mut sorted: Vec<&CareRecordEntry> = entries.iter().collect();
    sorted.sort_by_key(|entry| {
        when(entry)
            .map(OffsetDateTime::unix_timestamp)
            .unwrap_or(i64::MIN)
    });
    let day_format = format_description!("[year]-[month]-[day] [weekday repr:short]");
    let time_format = format_description!("[hour]:[minute]");
    let mut current_day = None;
    for entry in sorted {
        let at = when(entry);
        let day = at.map(OffsetDateTime::date);
        if day != current_day || current_day.is_none() {
            current_day = day;
            let heading = at
                .and_then(|at| at.format(day_format).ok())
                .unwrap_or_else(|| "date unknown".to_owned());
            let _ = writeln!(out, "\n{heading}");
        }
        let clock = at
            .and_then(|at| at.format(time_format).ok())
            .unwrap_or_else(|| "--:--".to_owned());
        let source = entry.source.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "  {clock}  {:<CATEGORY_WIDTH$} {}  [{}]",
            category_label(entry.category),
            entry.display_summary,
            source_name(&source.organisation_name, &source.organisation_code),
        );
        for duplicate in &entry.duplicates {
            let other = duplicate.source.clone().unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:5}  {:<CATEGORY_WIDTH$} also from {}",
                "",
                "",
                source_name(&other.organisation_name, &other.organisation_code)
            );
        }
    }
    out
}

fn summary(out: &mut String, view: &GetCareRecordResponse) {
    let counts: Vec<String> = view
        .category_counts
        .iter()
        .map(|count| format!("{} {}", category_label(count.category), count.count))
        .collect();
    let _ = writeln!(
        out,
        "\n{} entries on this page{}",
        view.entries.len(),
        if counts.is_empty() {
            String::new()
        } else {
            format!("; in the whole view: {}", counts.join(", "))
        }
    );
    for source in &view.sources {
        let at = source
            .last_update_received_at
            .as_ref()
            .and_then(offset_date_time)
            .and_then(|at| {
                at.format(format_description!("[year]-[month]-[day] [hour]:[minute]"))
                    .ok()
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let _ = writeln!(
            out,
            "  from {}: last update {at} UTC",
            source_name(&source.organisation_name, &source.organisation_code)
        );
    }
    let _ = writeln!(
        out,
        "This access is audited (event {}).",
        view.audit_event_id
    );
    if let Some(page) = &view.page
        && !page.next_page_token.is_empty()
    {
        let _ = writeln!(
            out,
            "More entries: add --page-token {}",
            page.next_page_token
        );
    }
}

/// "2026-12-25 22:22 UTC", or "unknown".
pub fn human_time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(offset_date_time)
        .and_then(|at| {
            at.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn when(entry: &CareRecordEntry) -> Option<OffsetDateTime> {
    entry.effective_time.as_ref().and_then(offset_date_time)
}

fn source_name(name: &str, code: &str) -> String {
    if name.is_empty() {
        code.to_owned()
    } else {
        format!("{name} ({code})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcr_proto::common::v1::{Category, HumanName};
    use mcr_proto::consent::v1::WithheldReasonClass;
    use mcr_proto::records::v1::{EntrySource, WithheldNotice};

    fn entry(
        seconds: i64,
        category: Category,
        summary: &str,
        organisation: &str,
    ) -> CareRecordEntry {
        CareRecordEntry {
            entry_id: summary.to_owned(),
            category: category as i32,
            effective_time: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            display_summary: summary.to_owned(),
            source: Some(EntrySource {
                organisation_code: organisation.to_owned(),
                organisation_name: String::new(),
                ..EntrySource::default()
            }),
            ..CareRecordEntry::default()
        }
    }

    #[test]
    fn entries_run_oldest_first_under_one_heading_per_day() {
        // 2026-01-01 09:30 and 14:00, then 2026-01-03 08:00 — given newest first.
        let text = days(&[
            entry(
                1_767_427_200 + 8 * 3600,
                Category::Appointments,
                "Clinic",
                "RQW",
            ),
            entry(
                1_767_225_600 + 14 * 3600,
                Category::TestResults,
                "HbA1c 48",
                "RQW",
            ),
            entry(
                1_767_225_600 + 9 * 3600 + 1800,
                Category::Medications,
                "Metformin",
                "F81601",
            ),
        ]);
        let first_day = text.find("2026-01-01 Thu").unwrap_or(usize::MAX);
        let metformin = text
            .find("09:30  Medications       Metformin  [F81601]")
            .unwrap_or(usize::MAX);
        let result = text
            .find("14:00  Test results      HbA1c 48  [RQW]")
            .unwrap_or(usize::MAX);
        let second_day = text.find("2026-01-03 Sat").unwrap_or(usize::MAX);
        assert!(
            first_day < metformin && metformin < result && result < second_day,
            "{text}"
        );
        assert_eq!(text.matches("2026-01-01").count(), 1, "{text}");
    }

    #[test]
    fn withheld_notices_and_break_glass_come_before_the_entries() {
        let view = GetCareRecordResponse {
            person_id: "p1".to_owned(),
            patient: Some(Demographics {
                nhs_number: "9434765919".to_owned(),
                name: Some(HumanName {
                    given: vec!["Jane".to_owned()],
                    family: "Smith".to_owned(),
                    ..HumanName::default()
                }),
                birth_date: "1970-01-02".to_owned(),
                ..Demographics::default()
            }),
            entries: vec![entry(
                1_767_225_600,
                Category::Medications,
                "Metformin",
                "F81601",
            )],
            withheld: vec![WithheldNotice {
                reason_class: WithheldReasonClass::PersonRequest as i32,
                category: Category::MentalHealth as i32,
                text: "Some information is not shown at the person's request".to_owned(),
            }],
            break_glass_banner: "Emergency access by Dr Who".to_owned(),
            audit_event_id: "a1".to_owned(),
            ..GetCareRecordResponse::default()
        };
        let text = render(&view);
        assert!(
            text.starts_with("SMITH, Jane  NHS 943 476 5919  born 1970-01-02\n"),
            "{text}"
        );
        let glass = text
            .find("!! BREAK GLASS: Emergency access by Dr Who")
            .unwrap_or(usize::MAX);
        let withheld = text
            .find("Withheld: Some information is not shown at the person's request\n")
            .unwrap_or(usize::MAX);
        let metformin = text.find("Metformin").unwrap_or(usize::MAX);
        assert!(glass < withheld && withheld < metformin, "{text}");
        assert!(
            text.contains("This access is audited (event a1)."),
            "{text}"
        );
    }

    #[test]
    fn an_empty_view_says_so() {
        assert!(days(&[]).contains("No entries to show."));
    }
}
