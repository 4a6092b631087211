//! Enum values in words.

use mcr_proto::common::v1::{Category, Role};

/// A category as a heading, e.g. "Test results".
pub fn category_label(value: i32) -> &'static str {
    match Category::try_from(value).unwrap_or_default() {
        Category::Unspecified => "Other",
        Category::Demographics => "Demographics",
        Category::Medications => "Medications",
        Category::TestResults => "Test results",
        Category::Correspondence => "Correspondence",
        Category::ClinicalHistory => "Clinical history",
        Category::EmergencyCare => "Emergency care",
        Category::Appointments => "Appointments",
        Category::PlansAndAlerts => "Plans and alerts",
        Category::MentalHealth => "Mental health",
        Category::SocialCare => "Social care",
    }
}

/// A role in words.
pub fn role_label(value: i32) -> &'static str {
    match Role::try_from(value).unwrap_or_default() {
        Role::Unspecified => "service",
        Role::ClinicalPractitioner => "clinical practitioner",
        Role::Nurse => "nurse",
        Role::HealthVisitor => "health visitor",
        Role::Midwife => "midwife",
        Role::Paramedic => "paramedic",
        Role::Pharmacist => "pharmacist",
        Role::SocialWorker => "social worker",
        Role::AdminClerical => "admin/clerical",
        Role::PrivacyOfficer => "privacy officer",
        Role::SystemAdministrator => "system administrator",
    }
}

/// A category from what a person types: `test-results`, `test_results`,
/// `Test results`.
pub fn parse_category(text: &str) -> Option<Category> {
    let token = text.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    let category = Category::from_str_name(&format!("CATEGORY_{token}"))?;
    (category != Category::Unspecified).then_some(category)
}

/// A role from what a person types: `nurse`, `clinical-practitioner`.
pub fn parse_role(text: &str) -> Option<Role> {
    let token = text.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    let role = Role::from_str_name(&format!("ROLE_{token}"))?;
    (role != Role::Unspecified).then_some(role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_names_parse() {
        assert_eq!(parse_category("test-results"), Some(Category::TestResults));
        assert_eq!(
            parse_category("Mental health"),
            Some(Category::MentalHealth)
        );
        assert_eq!(parse_category("unspecified"), None);
        assert_eq!(parse_role("admin-clerical"), Some(Role::AdminClerical));
        assert_eq!(parse_role("wizard"), None);
    }

    #[test]
    fn every_category_has_a_label() {
        for value in 0..=10 {
            assert!(!category_label(value).is_empty());
        }
        assert_eq!(category_label(Category::TestResults as i32), "Test results");
    }
}
