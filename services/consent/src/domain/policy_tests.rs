use mcr_proto::common::v1::{Category, Role};

use super::*;

/// The default policy as the README's table states it (DIRECT_CARE).
fn expected_direct_care(role: Role) -> &'static [Category] {
    use Category::*;
    const CLINICAL: &[Category] = &[
        Demographics,
        Medications,
        TestResults,
        Correspondence,
        ClinicalHistory,
        EmergencyCare,
        Appointments,
        PlansAndAlerts,
        MentalHealth,
        SocialCare,
    ];
    match role {
        Role::ClinicalPractitioner
        | Role::Nurse
        | Role::HealthVisitor
        | Role::Midwife
        | Role::Paramedic => CLINICAL,
        Role::Pharmacist => &[
            Demographics,
            Medications,
            TestResults,
            ClinicalHistory,
            PlansAndAlerts,
        ],
        Role::SocialWorker => &[Demographics, Appointments, PlansAndAlerts, SocialCare],
        Role::AdminClerical => &[Demographics, Appointments],
        Role::PrivacyOfficer | Role::SystemAdministrator | Role::Unspecified => &[],
    }
}

#[test]
fn shipped_policy_matches_the_documented_matrix_for_every_role_and_category() {
    let policy = AccessPolicy::shipped().expect("the shipped policy compiles");
    for role in ALL_ROLES {
        let allowed = policy.categories(role, Purpose::DirectCare);
        for category in crate::domain::ALL_CATEGORIES {
            let expected = expected_direct_care(role).contains(&category);
            assert_eq!(
                allowed.contains(category),
                expected,
                "{role:?} x {category:?} for direct care"
            );
        }
    }
}

#[test]
fn emergency_purpose_is_for_clinical_roles_and_pharmacists_only() {
    let policy = AccessPolicy::shipped().expect("the shipped policy compiles");
    assert_eq!(
        policy.categories(Role::Paramedic, Purpose::Emergency),
        CategorySet::ALL
    );
    assert!(
        policy
            .categories(Role::SocialWorker, Purpose::Emergency)
            .is_empty()
    );
    assert!(
        policy
            .categories(Role::AdminClerical, Purpose::Emergency)
            .is_empty()
    );
    assert!(
        !policy
            .categories(Role::Pharmacist, Purpose::Emergency)
            .contains(Category::MentalHealth)
    );
}

#[test]
fn sensitive_demographics_only_for_clinical_roles() {
    let policy = AccessPolicy::shipped().expect("the shipped policy compiles");
    assert!(policy.sees_sensitive_demographics(Role::Nurse, Purpose::DirectCare));
    assert!(policy.sees_sensitive_demographics(Role::Paramedic, Purpose::Emergency));
    assert!(!policy.sees_sensitive_demographics(Role::AdminClerical, Purpose::DirectCare));
    assert!(!policy.sees_sensitive_demographics(Role::SocialWorker, Purpose::DirectCare));
    assert!(!policy.sees_sensitive_demographics(Role::Unspecified, Purpose::DirectCare));
}

#[test]
fn a_misspelt_category_fails_validation_naming_it() {
    let bad = r#"permit (principal, action == Mcr::Action::"ViewCategory", resource == Mcr::Category::"MENTAL_HEATH");"#;
    let error = AccessPolicy::compile(SHIPPED_SCHEMA, "schema", bad, "bad.cedar").unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PolicyError::Invalid { .. }), "{message}");
    assert!(message.contains("bad.cedar"), "{message}");
    assert!(message.contains("MENTAL_HEATH"), "{message}");
}

#[test]
fn a_syntax_error_fails_parsing() {
    let error = AccessPolicy::compile(
        SHIPPED_SCHEMA,
        "schema",
        "permit (principal",
        "broken.cedar",
    )
    .unwrap_err();
    assert!(matches!(error, PolicyError::Parse { .. }), "{error}");
    assert!(error.to_string().contains("broken.cedar"));
}

#[test]
fn an_unknown_context_attribute_fails_validation() {
    let bad = r#"permit (principal, action == Mcr::Action::"ViewCategory", resource) when { context.organisation_type == "GP" };"#;
    let error = AccessPolicy::compile(SHIPPED_SCHEMA, "schema", bad, "bad.cedar").unwrap_err();
    assert!(matches!(error, PolicyError::Invalid { .. }), "{error}");
}

#[test]
fn policy_version_changes_with_the_text() {
    let shipped = AccessPolicy::shipped().expect("compiles");
    let other = AccessPolicy::compile(
        SHIPPED_SCHEMA,
        "schema",
        &format!("{SHIPPED_POLICY}\n// a comment\n"),
        "default.cedar",
    )
    .expect("compiles");
    assert!(shipped.version().starts_with("cedar-"));
    assert_eq!(shipped.version().len(), "cedar-".len() + 12);
    assert_ne!(shipped.version(), other.version());
}

#[test]
fn empty_policy_permits_nothing() {
    let policy =
        AccessPolicy::compile(SHIPPED_SCHEMA, "schema", "", "empty.cedar").expect("compiles");
    for role in ALL_ROLES {
        assert!(policy.categories(role, Purpose::DirectCare).is_empty());
    }
}
