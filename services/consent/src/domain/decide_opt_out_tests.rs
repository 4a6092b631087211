//! An opt-out is told only to viewers connected to the person: everyone else
//! gets exactly the answer they would get had the person not opted out —
//! the same as for a person who does not exist — so a stranger cannot tell
//! that an opted-out person exists.

use mcr_proto::common::v1::{Category, Role};
use mcr_proto::consent::v1::ReasonCode;
use time::{Duration, OffsetDateTime, macros::datetime};
use uuid::Uuid;

use super::*;
use crate::domain::{
    GrantFact, OptOutFact, PermissionFact, RelationshipFact, RestrictionFact, ViewerScope,
};

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);
const OPTED_OUT_TEXT: &str = "opted out on 2026-11-20";

fn viewer() -> Viewer {
    Viewer {
        user_id: "u-1".to_owned(),
        role_profile_id: "rp-1".to_owned(),
        role: Role::ClinicalPractitioner,
        organisation_code: "RQW".to_owned(),
    }
}

fn opt_out() -> Option<OptOutFact> {
    Some(OptOutFact {
        opt_out_id: Uuid::from_u128(4),
        effective_from: datetime!(2026-11-20 09:30 UTC),
    })
}

fn relationship(start_days_ago: i64, end_in_days: Option<i64>) -> RelationshipFact {
    RelationshipFact {
        care_relationship_id: Uuid::from_u128(1),
        start_time: NOW - Duration::days(start_days_ago),
        end_time: end_in_days.map(|days| NOW + Duration::days(days)),
    }
}

fn permission(user_id: Option<&str>, expires_in_hours: i64, withdrawn: bool) -> PermissionFact {
    PermissionFact {
        permission_id: Uuid::from_u128(2),
        user_id: user_id.map(str::to_owned),
        best_interests: false,
        categories: CategorySet::ALL,
        valid_from: NOW - Duration::days(10),
        expires_at: NOW + Duration::hours(expires_in_hours),
        withdrawn_at: withdrawn.then_some(NOW - Duration::days(1)),
    }
}

fn grant(expires_in_minutes: i64) -> GrantFact {
    GrantFact {
        grant_id: Uuid::from_u128(3),
        expires_at: NOW + Duration::minutes(expires_in_minutes),
    }
}

fn decide_for(facts: &DecisionFacts, purpose: Purpose) -> Decision {
    let policy = AccessPolicy::shipped().expect("shipped policy compiles");
    let viewer = viewer();
    let input = DecideInput {
        viewer: &viewer,
        purpose,
        requested: CategorySet::ALL,
        now: NOW,
    };
    decide(&input, facts, &policy)
}

/// Every combination of facts that gives the viewer no live connection:
/// nothing, or only relationships, permissions and grants that have ended,
/// not started, or are someone else's; restrictions are the person's, not
/// a connection, so some combinations carry one.
fn stranger_facts() -> Vec<(String, DecisionFacts)> {
    let relationships = [
        ("no relationship", vec![]),
        ("relationship ended", vec![relationship(30, Some(-1))]),
        ("relationship not yet started", vec![relationship(-7, None)]),
    ];
    let permissions = [
        ("no permission", vec![]),
        ("permission expired", vec![permission(None, -1, false)]),
        ("permission withdrawn", vec![permission(None, 24, true)]),
        (
            "permission named for another professional",
            vec![permission(Some("u-2"), 24, false)],
        ),
    ];
    let grants = [("no grant", vec![]), ("grant expired", vec![grant(-5)])];
    let mut all = Vec::new();
    for (relationship_name, relationships) in &relationships {
        for (permission_name, permissions) in &permissions {
            for (index, (grant_name, grants)) in grants.iter().enumerate() {
                let restrictions = if index == 0 {
                    vec![RestrictionFact {
                        restriction_id: Uuid::from_u128(5),
                        target: RestrictionTarget::Category(Category::MentalHealth),
                        viewers: ViewerScope::default(),
                        expires_at: None,
                    }]
                } else {
                    vec![]
                };
                all.push((
                    format!("{relationship_name}, {permission_name}, {grant_name}"),
                    DecisionFacts {
                        consent_version: 7,
                        opt_out: None,
                        relationships: relationships.clone(),
                        permissions: permissions.clone(),
                        restrictions,
                        grants: grants.clone(),
                    },
                ));
            }
        }
    }
    all
}

#[test]
fn a_viewer_without_a_live_connection_never_learns_of_the_opt_out() {
    let cases = stranger_facts();
    assert_eq!(cases.len(), 24);
    for (name, facts) in cases {
        for purpose in [Purpose::DirectCare, Purpose::Emergency] {
            let opted_out = DecisionFacts {
                opt_out: opt_out(),
                ..facts.clone()
            };
            let answer = decide_for(&opted_out, purpose);
            assert!(!answer.permit, "{name} ({purpose:?})");
            assert!(
                answer.reasons.iter().all(|reason| {
                    reason.code != ReasonCode::OptedOut && !reason.text.contains("opted out")
                }),
                "{name} ({purpose:?}) was told of the opt-out: {:?}",
                answer.reasons
            );
            assert_eq!(
                answer,
                decide_for(&facts, purpose),
                "{name} ({purpose:?}): the same answer as had the person not opted out"
            );
        }
    }
}

#[test]
fn a_stranger_gets_the_answer_for_a_person_who_does_not_exist() {
    // An unknown person id has no facts at all.
    let nobody = DecisionFacts::default();
    let opted_out_stranger = DecisionFacts {
        consent_version: 12,
        opt_out: opt_out(),
        ..DecisionFacts::default()
    };
    for purpose in [Purpose::DirectCare, Purpose::Emergency] {
        assert_eq!(
            decide_for(&opted_out_stranger, purpose),
            decide_for(&nobody, purpose),
            "{purpose:?}"
        );
    }
    let direct = decide_for(&opted_out_stranger, Purpose::DirectCare);
    assert_eq!(direct.reasons.len(), 1);
    assert_eq!(direct.reasons[0].code, ReasonCode::NoCareRelationship);
    assert_eq!(
        direct.reasons[0].text,
        "no care relationship between RQW and this person"
    );
    let emergency = decide_for(&opted_out_stranger, Purpose::Emergency);
    assert_eq!(emergency.reasons[0].code, ReasonCode::PurposeNotPermitted);
}

#[test]
fn a_connected_viewer_is_still_told_the_person_opted_out() {
    let connections = [
        (
            "live relationship, no permission",
            DecisionFacts {
                relationships: vec![relationship(3, None)],
                ..DecisionFacts::default()
            },
        ),
        (
            "live relationship and permission",
            DecisionFacts {
                relationships: vec![relationship(3, Some(10))],
                permissions: vec![permission(None, 24, false)],
                ..DecisionFacts::default()
            },
        ),
        (
            "live permission after the relationship ended",
            DecisionFacts {
                relationships: vec![relationship(30, Some(-1))],
                permissions: vec![permission(None, 24, false)],
                ..DecisionFacts::default()
            },
        ),
        (
            "permission naming this professional",
            DecisionFacts {
                permissions: vec![permission(Some("u-1"), 24, false)],
                ..DecisionFacts::default()
            },
        ),
        (
            "live break-glass grant only",
            DecisionFacts {
                grants: vec![grant(60)],
                ..DecisionFacts::default()
            },
        ),
    ];
    for (name, facts) in connections {
        for purpose in [Purpose::DirectCare, Purpose::Emergency] {
            let answer = decide_for(
                &DecisionFacts {
                    opt_out: opt_out(),
                    ..facts.clone()
                },
                purpose,
            );
            assert!(!answer.permit, "{name} ({purpose:?})");
            assert_eq!(answer.permitted, CategorySet::EMPTY, "{name}");
            assert_eq!(answer.reasons.len(), 1, "{name} ({purpose:?})");
            assert_eq!(
                answer.reasons[0].code,
                ReasonCode::OptedOut,
                "{name} ({purpose:?})"
            );
            assert_eq!(answer.reasons[0].text, OPTED_OUT_TEXT, "{name}");
            assert_eq!(answer.break_glass_grant_id, None, "{name}");
        }
    }
}
