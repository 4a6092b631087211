//! Table-driven decision scenarios over the shipped policy.

use mcr_proto::common::v1::{Category, Role};
use mcr_proto::consent::v1::{ObligationType, ReasonCode};
use time::{Duration, OffsetDateTime, macros::datetime};
use uuid::Uuid;

use super::*;
use crate::domain::{
    GrantFact, OptOutFact, PermissionFact, RelationshipFact, RestrictionFact, ViewerScope,
};

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

fn viewer(role: Role) -> Viewer {
    Viewer {
        user_id: "u-1".to_owned(),
        role_profile_id: "rp-1".to_owned(),
        role,
        organisation_code: "RQW".to_owned(),
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn relationship(start_days_ago: i64, end_days: Option<i64>) -> RelationshipFact {
    RelationshipFact {
        care_relationship_id: id(1),
        start_time: NOW - Duration::days(start_days_ago),
        end_time: end_days.map(|days| NOW + Duration::days(days)),
    }
}

fn permission(expires_in_hours: i64, categories: CategorySet) -> PermissionFact {
    PermissionFact {
        permission_id: id(2),
        user_id: None,
        best_interests: false,
        categories,
        valid_from: NOW - Duration::days(1),
        expires_at: NOW + Duration::hours(expires_in_hours),
        withdrawn_at: None,
    }
}

fn grant(expires_in_minutes: i64) -> GrantFact {
    GrantFact {
        grant_id: id(3),
        expires_at: NOW + Duration::minutes(expires_in_minutes),
    }
}

fn opt_out() -> OptOutFact {
    OptOutFact {
        opt_out_id: id(4),
        effective_from: datetime!(2026-11-20 09:30 UTC),
    }
}

fn restrict_category(category: Category) -> RestrictionFact {
    RestrictionFact {
        restriction_id: id(5),
        target: RestrictionTarget::Category(category),
        viewers: ViewerScope::default(),
        expires_at: None,
    }
}

fn care_facts() -> DecisionFacts {
    DecisionFacts {
        consent_version: 3,
        relationships: vec![relationship(30, None)],
        permissions: vec![permission(24, CategorySet::ALL)],
        ..DecisionFacts::default()
    }
}

struct Scenario {
    name: &'static str,
    role: Role,
    purpose: Purpose,
    facts: DecisionFacts,
    permit: bool,
    first_reason: ReasonCode,
    text_contains: &'static str,
}

fn run(scenario: &Scenario) -> Decision {
    let policy = AccessPolicy::shipped().expect("shipped policy compiles");
    let viewer = viewer(scenario.role);
    let input = DecideInput {
        viewer: &viewer,
        purpose: scenario.purpose,
        requested: CategorySet::ALL,
        now: NOW,
    };
    decide(&input, &scenario.facts, &policy)
}

#[test]
fn scenarios() {
    let scenarios = [
        Scenario {
            name: "opt-out beats relationship and permission",
            role: Role::ClinicalPractitioner,
            purpose: Purpose::DirectCare,
            facts: DecisionFacts {
                opt_out: Some(opt_out()),
                ..care_facts()
            },
            permit: false,
            first_reason: ReasonCode::OptedOut,
            text_contains: "opted out on 2026-11-20",
        },
        Scenario {
            name: "opt-out beats break-glass",
            role: Role::Paramedic,
            purpose: Purpose::Emergency,
            facts: DecisionFacts {
                opt_out: Some(opt_out()),
                grants: vec![grant(60)],
                ..DecisionFacts::default()
            },
            permit: false,
            first_reason: ReasonCode::OptedOut,
            text_contains: "opted out on 2026-11-20",
        },
        Scenario {
            name: "no relationship",
            role: Role::Nurse,
            purpose: Purpose::DirectCare,
            facts: DecisionFacts {
                permissions: vec![permission(24, CategorySet::ALL)],
                ..DecisionFacts::default()
            },
            permit: false,
            first_reason: ReasonCode::NoCareRelationship,
            text_contains: "no care relationship between RQW and this person",
        },
        Scenario {
            name: "relationship but no permission",
            role: Role::Nurse,
            purpose: Purpose::DirectCare,
            facts: DecisionFacts {
                relationships: vec![relationship(3, None)],
                ..DecisionFacts::default()
            },
            permit: false,
            first_reason: ReasonCode::NoPermissionToView,
            text_contains: "no permission to view recorded for RQW",
        },
        Scenario {
            name: "expired permission",
            role: Role::Nurse,
            purpose: Purpose::DirectCare,
            facts: DecisionFacts {
                permissions: vec![permission(-1, CategorySet::ALL)],
                ..care_facts()
            },
            permit: false,
            first_reason: ReasonCode::PermissionExpired,
            text_contains: "expired",
        },
        Scenario {
            name: "relationship ended yesterday",
            role: Role::ClinicalPractitioner,
            purpose: Purpose::DirectCare,
            facts: DecisionFacts {
                relationships: vec![relationship(30, Some(-1))],
                ..care_facts()
            },
            permit: false,
            first_reason: ReasonCode::CareRelationshipEnded,
            text_contains: "ended on 2026-11-24",
        },
        Scenario {
            name: "relationship starting next week is not yet a relationship",
            role: Role::ClinicalPractitioner,
            purpose: Purpose::DirectCare,
            facts: DecisionFacts {
                relationships: vec![relationship(-7, None)],
                ..care_facts()
            },
            permit: false,
            first_reason: ReasonCode::NoCareRelationship,
            text_contains: "no care relationship",
        },
        Scenario {
            name: "relationship and permission",
            role: Role::ClinicalPractitioner,
            purpose: Purpose::DirectCare,
            facts: care_facts(),
            permit: true,
            first_reason: ReasonCode::CareRelationshipAndPermission,
            text_contains: "RQW",
        },
        Scenario {
            name: "emergency without break-glass",
            role: Role::Paramedic,
            purpose: Purpose::Emergency,
            facts: care_facts(),
            permit: false,
            first_reason: ReasonCode::PurposeNotPermitted,
            text_contains: "break-glass",
        },
        Scenario {
            name: "expired break-glass",
            role: Role::Paramedic,
            purpose: Purpose::Emergency,
            facts: DecisionFacts {
                grants: vec![grant(-5)],
                ..DecisionFacts::default()
            },
            permit: false,
            first_reason: ReasonCode::BreakGlassExpired,
            text_contains: "expired",
        },
        Scenario {
            name: "break-glass without relationship or permission",
            role: Role::Paramedic,
            purpose: Purpose::Emergency,
            facts: DecisionFacts {
                grants: vec![grant(60)],
                ..DecisionFacts::default()
            },
            permit: true,
            first_reason: ReasonCode::BreakGlass,
            text_contains: "break-glass grant in force",
        },
        Scenario {
            name: "admin clerk in an emergency",
            role: Role::AdminClerical,
            purpose: Purpose::Emergency,
            facts: DecisionFacts {
                grants: vec![grant(60)],
                ..DecisionFacts::default()
            },
            permit: false,
            first_reason: ReasonCode::BreakGlass,
            text_contains: "",
        },
        Scenario {
            name: "privacy officer sees no record",
            role: Role::PrivacyOfficer,
            purpose: Purpose::DirectCare,
            facts: care_facts(),
            permit: false,
            first_reason: ReasonCode::CareRelationshipAndPermission,
            text_contains: "",
        },
        Scenario {
            name: "unknown person has no facts",
            role: Role::ClinicalPractitioner,
            purpose: Purpose::DirectCare,
            facts: DecisionFacts::default(),
            permit: false,
            first_reason: ReasonCode::NoCareRelationship,
            text_contains: "no care relationship between RQW and this person",
        },
    ];
    for scenario in &scenarios {
        let decision = run(scenario);
        assert_eq!(
            decision.permit, scenario.permit,
            "{}: {decision:?}",
            scenario.name
        );
        assert_eq!(
            decision.reasons[0].code, scenario.first_reason,
            "{}: {decision:?}",
            scenario.name
        );
        assert!(
            decision.reasons[0].text.contains(scenario.text_contains),
            "{}: {:?}",
            scenario.name,
            decision.reasons[0].text
        );
        assert!(
            decision
                .obligations
                .iter()
                .any(|(kind, _)| *kind == ObligationType::Audit),
            "{}: audit obligation always present",
            scenario.name
        );
        if !decision.permit {
            assert!(decision.permitted.is_empty(), "{}", scenario.name);
            assert_eq!(decision.break_glass_grant_id, None, "{}", scenario.name);
        }
    }
}

#[test]
fn break_glass_permits_with_banner_and_grant() {
    let decision = run(&Scenario {
        name: "bg",
        role: Role::Paramedic,
        purpose: Purpose::Emergency,
        facts: DecisionFacts {
            grants: vec![grant(-30), grant(60)],
            ..DecisionFacts::default()
        },
        permit: true,
        first_reason: ReasonCode::BreakGlass,
        text_contains: "",
    });
    assert_eq!(decision.break_glass_grant_id, Some(id(3)));
    assert!(
        decision
            .obligations
            .iter()
            .any(|(kind, text)| *kind == ObligationType::ShowBreakGlassBanner && !text.is_empty())
    );
    assert_eq!(decision.valid_until, Some(NOW + Duration::minutes(60)));
    assert_eq!(decision.permitted, CategorySet::ALL);
}

#[test]
fn restriction_withholds_exactly_that_category() {
    let policy = AccessPolicy::shipped().expect("compiles");
    let viewer = viewer(Role::ClinicalPractitioner);
    let facts = DecisionFacts {
        restrictions: vec![restrict_category(Category::MentalHealth)],
        ..care_facts()
    };
    let input = DecideInput {
        viewer: &viewer,
        purpose: Purpose::DirectCare,
        requested: CategorySet::ALL,
        now: NOW,
    };
    let decision = decide(&input, &facts, &policy);
    assert!(decision.permit);
    let mut expected = CategorySet::ALL;
    expected.remove(Category::MentalHealth);
    assert_eq!(decision.permitted, expected);
    let restricted: Vec<_> = decision
        .reasons
        .iter()
        .filter(|r| r.code == ReasonCode::RestrictedByPerson)
        .collect();
    assert_eq!(restricted.len(), 1);
    assert_eq!(
        restricted[0].text,
        "MENTAL_HEALTH withheld at the person's request"
    );
    assert_eq!(restricted[0].category, Category::MentalHealth);
    assert!(
        decision
            .obligations
            .iter()
            .any(|(kind, _)| *kind == ObligationType::ShowWithheldNotice)
    );
}

#[test]
fn restriction_for_other_viewers_does_not_apply() {
    let policy = AccessPolicy::shipped().expect("compiles");
    let viewer = viewer(Role::ClinicalPractitioner);
    let mut restriction = restrict_category(Category::MentalHealth);
    restriction.viewers = ViewerScope {
        organisation_codes: vec!["ABC12".to_owned()],
        roles: vec![Role::SocialWorker],
        user_ids: vec![],
    };
    let facts = DecisionFacts {
        restrictions: vec![restriction],
        ..care_facts()
    };
    let input = DecideInput {
        viewer: &viewer,
        purpose: Purpose::DirectCare,
        requested: CategorySet::ALL,
        now: NOW,
    };
    assert_eq!(decide(&input, &facts, &policy).permitted, CategorySet::ALL);
}

#[test]
fn organisation_and_entry_restrictions_are_exclusions() {
    let policy = AccessPolicy::shipped().expect("compiles");
    let viewer = viewer(Role::Nurse);
    let facts = DecisionFacts {
        restrictions: vec![
            RestrictionFact {
                restriction_id: id(7),
                target: RestrictionTarget::SourceOrganisation("RAJ".to_owned()),
                viewers: ViewerScope::default(),
                expires_at: Some(NOW + Duration::hours(2)),
            },
            RestrictionFact {
                restriction_id: id(8),
                target: RestrictionTarget::Entries(vec!["e1".to_owned()]),
                viewers: ViewerScope::default(),
                expires_at: None,
            },
        ],
        ..care_facts()
    };
    let input = DecideInput {
        viewer: &viewer,
        purpose: Purpose::DirectCare,
        requested: CategorySet::ALL,
        now: NOW,
    };
    let decision = decide(&input, &facts, &policy);
    assert_eq!(decision.permitted, CategorySet::ALL);
    assert_eq!(
        decision.excluded_source_organisation_codes,
        vec!["RAJ".to_owned()]
    );
    assert_eq!(decision.excluded_entry_ids, vec!["e1".to_owned()]);
    assert_eq!(decision.withholdings.len(), 1, "told once, never how much");
    assert_eq!(decision.valid_until, Some(NOW + Duration::hours(2)));
}

#[test]
fn every_role_gets_exactly_its_policy_categories() {
    let policy = AccessPolicy::shipped().expect("compiles");
    for role in crate::domain::policy::ALL_ROLES {
        let viewer = viewer(role);
        let input = DecideInput {
            viewer: &viewer,
            purpose: Purpose::DirectCare,
            requested: CategorySet::ALL,
            now: NOW,
        };
        let decision = decide(&input, &care_facts(), &policy);
        let expected = policy.categories(role, Purpose::DirectCare);
        assert_eq!(decision.permitted, expected, "{role:?}");
        assert_eq!(decision.permit, !expected.is_empty(), "{role:?}");
        let role_denials = decision
            .reasons
            .iter()
            .filter(|r| r.code == ReasonCode::RoleNotPermitted)
            .count();
        assert_eq!(role_denials, 10 - expected.to_vec().len(), "{role:?}");
    }
}

#[test]
fn permitted_is_a_subset_of_requested_and_permission_categories() {
    let policy = AccessPolicy::shipped().expect("compiles");
    let viewer = viewer(Role::ClinicalPractitioner);
    let facts = DecisionFacts {
        permissions: vec![permission(
            24,
            CategorySet::from_list_or_all(&[Category::Medications, Category::TestResults]),
        )],
        ..care_facts()
    };
    let requested = CategorySet::from_list_or_all(&[Category::Medications, Category::MentalHealth]);
    let input = DecideInput {
        viewer: &viewer,
        purpose: Purpose::DirectCare,
        requested,
        now: NOW,
    };
    let decision = decide(&input, &facts, &policy);
    assert_eq!(decision.permitted.to_vec(), vec![Category::Medications]);
    assert!(
        decision
            .reasons
            .iter()
            .any(|r| r.code == ReasonCode::NoPermissionToView
                && r.category == Category::MentalHealth)
    );
    assert_eq!(decision.valid_until, Some(NOW + Duration::hours(24)));
}

#[test]
fn permission_for_another_professional_does_not_count() {
    let policy = AccessPolicy::shipped().expect("compiles");
    let viewer = viewer(Role::ClinicalPractitioner);
    let mut named = permission(24, CategorySet::ALL);
    named.user_id = Some("someone-else".to_owned());
    let facts = DecisionFacts {
        permissions: vec![named],
        ..care_facts()
    };
    let input = DecideInput {
        viewer: &viewer,
        purpose: Purpose::DirectCare,
        requested: CategorySet::ALL,
        now: NOW,
    };
    let decision = decide(&input, &facts, &policy);
    assert!(!decision.permit);
    assert_eq!(decision.reasons[0].code, ReasonCode::NoPermissionToView);
}

#[test]
fn best_interests_and_sensitive_demographics() {
    let policy = AccessPolicy::shipped().expect("compiles");
    let mut best = permission(24, CategorySet::ALL);
    best.best_interests = true;
    let facts = DecisionFacts {
        permissions: vec![best],
        ..care_facts()
    };
    let clerk = viewer(Role::AdminClerical);
    let input = DecideInput {
        viewer: &clerk,
        purpose: Purpose::DirectCare,
        requested: CategorySet::ALL,
        now: NOW,
    };
    let decision = decide(&input, &facts, &policy);
    assert_eq!(decision.reasons[0].code, ReasonCode::BestInterests);
    assert!(decision.withhold_sensitive_demographics);
    let nurse = viewer(Role::Nurse);
    let input = DecideInput {
        viewer: &nurse,
        purpose: Purpose::DirectCare,
        requested: CategorySet::ALL,
        now: NOW,
    };
    assert!(!decide(&input, &facts, &policy).withhold_sensitive_demographics);
}
