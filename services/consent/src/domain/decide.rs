//! Decide: may this viewer see this person's record now, which categories,
//! and why. Deny by default — every missing fact is a DENY with its reason.
//!
//! Order (each step can only narrow what the previous allowed):
//! 1. an opt-out in force denies everything, break-glass included — told as
//!    `OPTED_OUT` only to a viewer connected to the person (a live care
//!    relationship, permission to view or break-glass grant); anyone else
//!    gets the answer they would get had the person not opted out, so the
//!    opt-out does not tell a stranger that the person exists;
//! 2. EMERGENCY needs a live break-glass grant of this user and role
//!    profile; DIRECT_CARE needs a live care relationship of the viewer's
//!    organisation and a live permission to view (or best-interests
//!    decision) for it;
//! 3. the access policy (Cedar) narrows the categories by role and purpose;
//! 4. the person's restrictions withhold categories, organisations, entries.

use mcr_proto::common::v1::Category;
use mcr_proto::consent::v1::{ObligationType, ReasonCode, WithheldReasonClass};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AccessPolicy, CategorySet, DecisionFacts, Purpose, RestrictionTarget, Viewer, category_name,
    date_text,
};

/// What is asked.
#[derive(Debug, Clone)]
pub struct DecideInput<'a> {
    pub viewer: &'a Viewer,
    pub purpose: Purpose,
    /// Requested categories (already expanded: empty request = all).
    pub requested: CategorySet,
    pub now: OffsetDateTime,
}

/// One reason for the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    pub text: String,
    /// `Unspecified` when the reason is not about one category.
    pub category: Category,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub permit: bool,
    pub permitted: CategorySet,
    pub reasons: Vec<Reason>,
    pub obligations: Vec<(ObligationType, String)>,
    pub withholdings: Vec<(WithheldReasonClass, Category, String)>,
    pub excluded_source_organisation_codes: Vec<String>,
    pub excluded_entry_ids: Vec<String>,
    pub withhold_sensitive_demographics: bool,
    pub break_glass_grant_id: Option<Uuid>,
    pub valid_until: Option<OffsetDateTime>,
}

/// Banner the client shows while a break-glass grant is used.
pub const BREAK_GLASS_BANNER: &str = "Emergency access (break-glass): this access is recorded and will be reviewed by a privacy officer";
const WITHHELD_NOTICE: &str = "Some information is not shown";

impl Decision {
    fn deny(code: ReasonCode, text: String) -> Self {
        Self {
            permit: false,
            permitted: CategorySet::EMPTY,
            reasons: vec![Reason {
                code,
                text,
                category: Category::Unspecified,
            }],
            obligations: vec![(ObligationType::Audit, String::new())],
            withholdings: Vec::new(),
            excluded_source_organisation_codes: Vec::new(),
            excluded_entry_ids: Vec::new(),
            withhold_sensitive_demographics: false,
            break_glass_grant_id: None,
            valid_until: None,
        }
    }
}

fn earliest(
    current: Option<OffsetDateTime>,
    candidate: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    match (current, candidate) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Why no basis for access was found.
struct Denial(ReasonCode, String);

/// The basis found for access before policy and restrictions apply.
struct Basis {
    categories: CategorySet,
    reason: Reason,
    grant_id: Option<Uuid>,
    valid_until: Option<OffsetDateTime>,
}

/// Decides over `facts` (fetched for `input.viewer`) with `policy`.
pub fn decide(input: &DecideInput<'_>, facts: &DecisionFacts, policy: &AccessPolicy) -> Decision {
    let organisation = input.viewer.organisation_code.as_str();
    let basis = match input.purpose {
        Purpose::Emergency => emergency_basis(input, facts),
        Purpose::DirectCare => direct_care_basis(input, facts, organisation),
    };
    // The guard catches every basis found, so an opt-out never permits.
    let basis = match (basis, &facts.opt_out) {
        (basis, Some(opt_out)) if basis.is_ok() || connected(input, facts) => {
            return Decision::deny(
                ReasonCode::OptedOut,
                format!("opted out on {}", date_text(opt_out.effective_from)),
            );
        }
        (Ok(basis), _) => basis,
        (Err(Denial(code, text)), _) => return Decision::deny(code, text),
    };
    let mut decision = Decision::deny(basis.reason.code, String::new());
    decision.reasons.clear();
    decision.reasons.push(basis.reason);
    decision.break_glass_grant_id = basis.grant_id;
    decision.valid_until = basis.valid_until;
    if basis.grant_id.is_some() {
        decision.obligations.push((
            ObligationType::ShowBreakGlassBanner,
            BREAK_GLASS_BANNER.to_owned(),
        ));
    }

    let mut permitted = input.requested;
    for category in input.requested.to_vec() {
        if !basis.categories.contains(category) {
            permitted.remove(category);
            decision.reasons.push(Reason {
                code: ReasonCode::NoPermissionToView,
                text: format!(
                    "{} is not covered by the person's permission to view",
                    category_name(category)
                ),
                category,
            });
            decision.withholdings.push((
                WithheldReasonClass::PersonRequest,
                category,
                format!(
                    "{} is not shown: not covered by the person's permission",
                    category_name(category)
                ),
            ));
        }
    }
    let role_categories = policy.categories(input.viewer.role, input.purpose);
    for category in permitted.to_vec() {
        if !role_categories.contains(category) {
            permitted.remove(category);
            decision.reasons.push(Reason {
                code: ReasonCode::RoleNotPermitted,
                text: format!(
                    "{} is not available to the {} role under the access policy",
                    category_name(category),
                    role_name(input.viewer.role)
                ),
                category,
            });
            decision.withholdings.push((
                WithheldReasonClass::AccessPolicy,
                category,
                format!("{} is not available to your role", category_name(category)),
            ));
        }
    }
    apply_restrictions(input, facts, &mut permitted, &mut decision);

    decision.withhold_sensitive_demographics =
        !policy.sees_sensitive_demographics(input.viewer.role, input.purpose);
    if !decision.withholdings.is_empty() {
        decision.obligations.push((
            ObligationType::ShowWithheldNotice,
            WITHHELD_NOTICE.to_owned(),
        ));
    }
    decision.permitted = permitted;
    decision.permit = !permitted.is_empty();
    if !decision.permit {
        decision.reasons.push(Reason {
            code: ReasonCode::NoPolicyPermits,
            text: "none of the requested categories may be shown".to_owned(),
            category: Category::Unspecified,
        });
        decision.valid_until = None;
        decision.break_glass_grant_id = None;
        decision.excluded_entry_ids.clear();
        decision.excluded_source_organisation_codes.clear();
    }
    decision
}

/// Whether the viewer has a live reason to know the person: a care
/// relationship of their organisation, a permission to view covering them,
/// or a break-glass grant of theirs. Facts that have ended do not count: a
/// former carer gets the answer a stranger would (which may say the
/// relationship ended, but not that the person opted out).
fn connected(input: &DecideInput<'_>, facts: &DecisionFacts) -> bool {
    let now = input.now;
    facts
        .relationships
        .iter()
        .any(|relationship| relationship.is_live(now))
        || facts.permissions.iter().any(|permission| {
            permission.covers_user(&input.viewer.user_id) && permission.is_live(now)
        })
        || facts.grants.iter().any(|grant| grant.expires_at > now)
}

fn role_name(role: mcr_proto::common::v1::Role) -> &'static str {
    let name = role.as_str_name();
    name.strip_prefix("ROLE_").unwrap_or(name)
}

fn emergency_basis(input: &DecideInput<'_>, facts: &DecisionFacts) -> Result<Basis, Denial> {
    let live = facts
        .grants
        .iter()
        .filter(|grant| grant.expires_at > input.now)
        .max_by_key(|grant| grant.expires_at);
    match live {
        Some(grant) => Ok(Basis {
            categories: CategorySet::ALL,
            reason: Reason {
                code: ReasonCode::BreakGlass,
                text: format!(
                    "break-glass grant in force until {}",
                    grant
                        .expires_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                ),
                category: Category::Unspecified,
            },
            grant_id: Some(grant.grant_id),
            valid_until: Some(grant.expires_at),
        }),
        None if !facts.grants.is_empty() => Err(Denial(
            ReasonCode::BreakGlassExpired,
            "the break-glass grant for this person has expired; break glass again if still needed"
                .to_owned(),
        )),
        None => Err(Denial(
            ReasonCode::PurposeNotPermitted,
            "emergency access needs a break-glass grant for this person".to_owned(),
        )),
    }
}

fn direct_care_basis(
    input: &DecideInput<'_>,
    facts: &DecisionFacts,
    organisation: &str,
) -> Result<Basis, Denial> {
    let now = input.now;
    let live_relationships: Vec<_> = facts
        .relationships
        .iter()
        .filter(|relationship| relationship.is_live(now))
        .collect();
    if live_relationships.is_empty() {
        let last_ended = facts
            .relationships
            .iter()
            .filter_map(|relationship| relationship.end_time.filter(|end| *end <= now))
            .max();
        return Err(match last_ended {
            Some(ended) => Denial(
                ReasonCode::CareRelationshipEnded,
                format!(
                    "the care relationship between {organisation} and this person ended on {}",
                    date_text(ended)
                ),
            ),
            None => Denial(
                ReasonCode::NoCareRelationship,
                format!("no care relationship between {organisation} and this person"),
            ),
        });
    }
    // An open relationship never ends the decision; otherwise the latest end.
    let relationship_until = if live_relationships.iter().any(|r| r.end_time.is_none()) {
        None
    } else {
        live_relationships.iter().filter_map(|r| r.end_time).max()
    };
    let user_id = input.viewer.user_id.as_str();
    let permissions: Vec<_> = facts
        .permissions
        .iter()
        .filter(|permission| permission.covers_user(user_id))
        .collect();
    let live: Vec<_> = permissions
        .iter()
        .filter(|permission| permission.is_live(now))
        .collect();
    if live.is_empty() {
        return Err(if permissions.iter().any(|p| p.valid_from <= now) {
            Denial(
                ReasonCode::PermissionExpired,
                format!(
                    "the permission to view given to {organisation} has expired or was withdrawn"
                ),
            )
        } else {
            Denial(
                ReasonCode::NoPermissionToView,
                format!("no permission to view recorded for {organisation}"),
            )
        });
    }
    let categories = live.iter().fold(CategorySet::EMPTY, |set, permission| {
        set.union(permission.categories)
    });
    let permission_until = live.iter().map(|permission| permission.expires_at).max();
    let reason = if live.iter().all(|permission| permission.best_interests) {
        Reason {
            code: ReasonCode::BestInterests,
            text: format!(
                "care relationship between {organisation} and this person and a best-interests decision"
            ),
            category: Category::Unspecified,
        }
    } else {
        Reason {
            code: ReasonCode::CareRelationshipAndPermission,
            text: format!(
                "care relationship between {organisation} and this person and the person's permission to view"
            ),
            category: Category::Unspecified,
        }
    };
    Ok(Basis {
        categories,
        reason,
        grant_id: None,
        valid_until: earliest(relationship_until, permission_until),
    })
}

fn apply_restrictions(
    input: &DecideInput<'_>,
    facts: &DecisionFacts,
    permitted: &mut CategorySet,
    decision: &mut Decision,
) {
    let applicable = facts.restrictions.iter().filter(|restriction| {
        restriction
            .expires_at
            .is_none_or(|expiry| expiry > input.now)
            && restriction.viewers.applies_to(input.viewer)
    });
    for restriction in applicable {
        match &restriction.target {
            RestrictionTarget::Category(category) => {
                if !permitted.contains(*category) {
                    continue;
                }
                permitted.remove(*category);
                decision.reasons.push(Reason {
                    code: ReasonCode::RestrictedByPerson,
                    text: format!(
                        "{} withheld at the person's request",
                        category_name(*category)
                    ),
                    category: *category,
                });
                decision.withholdings.push((
                    WithheldReasonClass::PersonRequest,
                    *category,
                    format!(
                        "{} is not shown at the person's request",
                        category_name(*category)
                    ),
                ));
            }
            RestrictionTarget::SourceOrganisation(code) => {
                if !decision.excluded_source_organisation_codes.contains(code) {
                    decision
                        .excluded_source_organisation_codes
                        .push(code.clone());
                }
                push_entry_level_withholding(decision);
            }
            RestrictionTarget::Entries(entry_ids) => {
                for entry_id in entry_ids {
                    if !decision.excluded_entry_ids.contains(entry_id) {
                        decision.excluded_entry_ids.push(entry_id.clone());
                    }
                }
                push_entry_level_withholding(decision);
            }
        }
        // A restriction that lapses changes the answer.
        decision.valid_until = earliest(decision.valid_until, restriction.expires_at);
    }
}

/// Organisation- and entry-level restrictions are told once, without
/// saying how much or from where.
fn push_entry_level_withholding(decision: &mut Decision) {
    let already = decision.reasons.iter().any(|reason| {
        reason.code == ReasonCode::RestrictedByPerson && reason.category == Category::Unspecified
    });
    if already {
        return;
    }
    decision.reasons.push(Reason {
        code: ReasonCode::RestrictedByPerson,
        text: "some entries withheld at the person's request".to_owned(),
        category: Category::Unspecified,
    });
    decision.withholdings.push((
        WithheldReasonClass::PersonRequest,
        Category::Unspecified,
        "Some information is not shown at the person's request".to_owned(),
    ));
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "decide_opt_out_tests.rs"]
mod opt_out_tests;
