//! The facts Decide reads: only what the decision needs, as fetched in one
//! query for one person and one viewer.

use mcr_proto::common::v1::{Category, Role};
use time::OffsetDateTime;
use uuid::Uuid;

use super::CategorySet;

/// Who wants to see the record (verified claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// User id.
    pub user_id: String,
    /// Role profile the session acts in.
    pub role_profile_id: String,
    /// Role of that profile.
    pub role: Role,
    /// Organisation acted for (upper case).
    pub organisation_code: String,
}

/// An opt-out in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOutFact {
    pub opt_out_id: Uuid,
    pub effective_from: OffsetDateTime,
}

/// A care relationship of the viewer's organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipFact {
    pub care_relationship_id: Uuid,
    pub start_time: OffsetDateTime,
    pub end_time: Option<OffsetDateTime>,
}

impl RelationshipFact {
    /// Started and not ended at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.start_time <= now && self.end_time.is_none_or(|end| end > now)
    }
}

/// A permission to view given to the viewer's organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionFact {
    pub permission_id: Uuid,
    /// Named professional; `None` means anyone of the organisation.
    pub user_id: Option<String>,
    pub best_interests: bool,
    pub categories: CategorySet,
    pub valid_from: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub withdrawn_at: Option<OffsetDateTime>,
}

impl PermissionFact {
    /// Whether it names `user_id` or nobody.
    pub fn covers_user(&self, user_id: &str) -> bool {
        self.user_id.as_deref().is_none_or(|named| named == user_id)
    }

    /// In force at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.withdrawn_at.is_none() && self.valid_from <= now && self.expires_at > now
    }
}

/// What a restriction withholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestrictionTarget {
    /// A whole category.
    Category(Category),
    /// Every entry from one organisation.
    SourceOrganisation(String),
    /// Specific entries.
    Entries(Vec<String>),
}

/// From whom; all empty means every viewer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ViewerScope {
    pub organisation_codes: Vec<String>,
    pub roles: Vec<Role>,
    pub user_ids: Vec<String>,
}

impl ViewerScope {
    /// Whether `viewer` is restricted (the lists combine with OR).
    pub fn applies_to(&self, viewer: &Viewer) -> bool {
        if self.organisation_codes.is_empty() && self.roles.is_empty() && self.user_ids.is_empty() {
            return true;
        }
        self.organisation_codes.contains(&viewer.organisation_code)
            || self.roles.contains(&viewer.role)
            || self.user_ids.contains(&viewer.user_id)
    }
}

/// A restriction not removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestrictionFact {
    pub restriction_id: Uuid,
    pub target: RestrictionTarget,
    pub viewers: ViewerScope,
    pub expires_at: Option<OffsetDateTime>,
}

/// A break-glass grant of the viewer (user and role profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFact {
    pub grant_id: Uuid,
    pub expires_at: OffsetDateTime,
}

/// Everything Decide needs about one person for one viewer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionFacts {
    /// Version of the person's facts (0 when nothing was ever recorded).
    pub consent_version: u64,
    pub opt_out: Option<OptOutFact>,
    /// Relationships of the viewer's organisation.
    pub relationships: Vec<RelationshipFact>,
    /// Permissions given to the viewer's organisation.
    pub permissions: Vec<PermissionFact>,
    /// Restrictions not removed.
    pub restrictions: Vec<RestrictionFact>,
    /// The viewer's grants for the person.
    pub grants: Vec<GrantFact>,
}
