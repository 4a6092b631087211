//! The subject access report: every access to a person's record, in words a
//! person can read, with whom to ask for a copy of what each organisation holds.

use std::collections::BTreeMap;

use mcr_proto::audit::v1::{
    AuditAction, AuditEvent, AuditOutcome, OrganisationContact, SubjectAccessEntry,
};
use mcr_proto::common::v1::{Category, Purpose, Role};
use time::OffsetDateTime;
use time::macros::format_description;

/// The actions that are an access to a person's record.
pub const ACCESS_ACTIONS: &[AuditAction] = &[
    AuditAction::ViewRecord,
    AuditAction::ViewEntry,
    AuditAction::ViewPerson,
    AuditAction::BreakGlass,
];

/// What was done, in words addressed to the person.
pub fn action_description(action: AuditAction) -> &'static str {
    match action {
        AuditAction::ViewRecord => "Viewed your care record",
        AuditAction::ViewEntry => "Viewed an entry in your care record",
        AuditAction::ViewPerson => "Looked up your details",
        AuditAction::BreakGlass => "Used emergency access to your care record",
        AuditAction::Decide => "Checked whether your record may be shown",
        AuditAction::ConsentChange => "Changed your consent settings",
        AuditAction::OptOut => "Recorded or withdrew your opt-out",
        AuditAction::Merge => "Merged duplicate records of you",
        AuditAction::Unmerge => "Separated records of you merged in error",
        AuditAction::SearchPersons => "Searched for you",
        AuditAction::ViewConsent => "Viewed your consent settings",
        AuditAction::LinkIdentifier => "Linked a local record of you",
        _ => "Another action concerning your record",
    }
}

/// A role in words: `ROLE_HEALTH_VISITOR` → "Health visitor".
pub fn role_description(role: Role) -> String {
    if role == Role::Unspecified {
        return "System".to_owned();
    }
    let name = role
        .as_str_name()
        .strip_prefix("ROLE_")
        .unwrap_or_default()
        .replace('_', " ")
        .to_lowercase();
    let mut characters = name.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => name,
    }
}

fn category_description(category: i32) -> String {
    Category::try_from(category)
        .map(|known| {
            known
                .as_str_name()
                .strip_prefix("CATEGORY_")
                .unwrap_or_default()
                .replace('_', " ")
                .to_lowercase()
        })
        .unwrap_or_default()
}

/// One access, from its event; `organisation_name` from identity (the code
/// when identity does not know the organisation).
pub fn entry(event: &AuditEvent, organisation_name: &str) -> SubjectAccessEntry {
    let actor = event.actor.clone().unwrap_or_default();
    let action = AuditAction::try_from(event.action).unwrap_or(AuditAction::Unspecified);
    let role = Role::try_from(actor.role).unwrap_or(Role::Unspecified);
    SubjectAccessEntry {
        event_id: event.event_id.clone(),
        accessed_at: event.occurred_at,
        organisation_code: actor.organisation_code.clone(),
        organisation_name: organisation_name.to_owned(),
        role: actor.role,
        role_description: role_description(role),
        professional_name: actor.display_name.clone(),
        action: event.action,
        action_description: action_description(action).to_owned(),
        purpose: event.purpose,
        outcome: event.outcome,
        categories: event.categories.clone(),
        break_glass: action == AuditAction::BreakGlass || !event.break_glass_grant_id.is_empty(),
    }
}

fn when(entry: &SubjectAccessEntry) -> String {
    let format = format_description!("[day] [month repr:short] [year] at [hour]:[minute] UTC");
    entry
        .accessed_at
        .as_ref()
        .and_then(|at| OffsetDateTime::from_unix_timestamp(at.seconds).ok())
        .and_then(|at| at.format(&format).ok())
        .unwrap_or_else(|| "at an unknown time".to_owned())
}

/// The page as plain text.
pub fn report_text(
    entries: &[SubjectAccessEntry],
    organisations: &[OrganisationContact],
    generated_at: OffsetDateTime,
) -> String {
    let mut text = String::from("Who has looked at your care record\n\n");
    let generated = generated_at
        .format(&format_description!("[day] [month repr:short] [year]"))
        .unwrap_or_default();
    text.push_str(&format!("Produced on {generated}.\n\n"));
    if entries.is_empty() {
        text.push_str("Nobody has looked at your care record in this period.\n");
    }
    for entry in entries {
        let who = if entry.professional_name.is_empty() {
            entry.role_description.clone()
        } else {
            format!("{} ({})", entry.professional_name, entry.role_description)
        };
        let action = AuditAction::try_from(entry.action).unwrap_or(AuditAction::Unspecified);
        let mut line = format!(
            "- {}: {} at {}. {}",
            when(entry),
            who,
            entry.organisation_name,
            action_description(action)
        );
        match Purpose::try_from(entry.purpose) {
            Ok(Purpose::DirectCare) => line.push_str(" to care for you"),
            Ok(Purpose::Emergency) => line.push_str(" in an emergency"),
            _ => {}
        }
        let categories: Vec<String> = entry
            .categories
            .iter()
            .map(|category| category_description(*category))
            .filter(|described| !described.is_empty())
            .collect();
        if !categories.is_empty() {
            line.push_str(&format!(" (seen: {})", categories.join(", ")));
        }
        line.push('.');
        if entry.outcome == AuditOutcome::Denied as i32 {
            line.push_str(" Access was refused.");
        }
        if entry.break_glass {
            line.push_str(
                " This was emergency (break-glass) access and is reviewed by a privacy officer.",
            );
        }
        text.push_str(&line);
        text.push('\n');
    }
    if !organisations.is_empty() {
        text.push_str("\nTo ask an organisation for a copy of what it holds about you, contact:\n");
        let by_code: BTreeMap<&str, &OrganisationContact> = organisations
            .iter()
            .map(|organisation| (organisation.organisation_code.as_str(), organisation))
            .collect();
        for organisation in by_code.values() {
            text.push_str(&format!("- {}", organisation.name));
            if let Some(contact) = &organisation.data_protection_contact {
                text.push_str(&format!(": {}", contact.name));
                if let Some(address) = &contact.postal_address {
                    let mut parts = address.lines.clone();
                    parts.extend(
                        [&address.city, &address.postcode]
                            .into_iter()
                            .filter(|part| !part.is_empty())
                            .cloned(),
                    );
                    text.push_str(&format!(", {}", parts.join(", ")));
                }
                if !contact.phone.is_empty() {
                    text.push_str(&format!(", telephone {}", contact.phone));
                }
                if !contact.email.is_empty() {
                    text.push_str(&format!(", email {}", contact.email));
                }
            }
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::tests::sample_event;
    use mcr_proto::identity::v1::DataProtectionContact;

    #[test]
    fn roles_and_actions_read_as_words() {
        assert_eq!(role_description(Role::HealthVisitor), "Health visitor");
        assert_eq!(role_description(Role::Nurse), "Nurse");
        assert_eq!(
            action_description(AuditAction::ViewRecord),
            "Viewed your care record"
        );
    }

    #[test]
    fn the_report_names_who_when_why_what_and_whom_to_contact() {
        let access = entry(&sample_event(), "Princess Alexandra Hospital");
        assert_eq!(access.role_description, "Nurse");
        assert!(!access.break_glass);
        let contact = OrganisationContact {
            organisation_code: "RQW".to_owned(),
            name: "Princess Alexandra Hospital".to_owned(),
            data_protection_contact: Some(DataProtectionContact {
                name: "Data Protection Officer".to_owned(),
                phone: "01279 444455".to_owned(),
                ..Default::default()
            }),
        };
        let text = report_text(
            &[access],
            &[contact],
            OffsetDateTime::from_unix_timestamp(1_790_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        );
        assert!(
            text.contains("Nurse Jones (Nurse) at Princess Alexandra Hospital"),
            "{text}"
        );
        assert!(
            text.contains("Viewed your care record to care for you"),
            "{text}"
        );
        assert!(text.contains("seen: medications, test results"), "{text}");
        assert!(
            text.contains("Data Protection Officer, telephone 01279 444455"),
            "{text}"
        );
    }

    #[test]
    fn refused_and_emergency_access_are_spelt_out() {
        let mut event = sample_event();
        event.action = AuditAction::BreakGlass as i32;
        event.outcome = AuditOutcome::Denied as i32;
        let access = entry(&event, "RQW");
        assert!(access.break_glass);
        let text = report_text(&[access], &[], OffsetDateTime::UNIX_EPOCH);
        assert!(text.contains("Access was refused."), "{text}");
        assert!(text.contains("break-glass"), "{text}");
    }
}
