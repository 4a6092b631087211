//! The one query behind Decide: the person's row — version and a snapshot
//! of every fact that can matter to any viewer (see migration 0003) — by
//! primary key, then narrowed to this viewer in Rust.

use mcr_proto::common::v1::{Category, Role};
use serde::Deserialize;
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::Stored;
use crate::domain::{
    CategorySet, DecisionFacts, GrantFact, OptOutFact, PermissionFact, RelationshipFact,
    RestrictionFact, RestrictionTarget, Viewer, ViewerScope,
};
use crate::error::ConsentError;

/// The snapshot as `consent_decision_facts()` builds it (times in µs).
#[derive(Debug, Default, Deserialize)]
struct Snapshot {
    #[serde(default)]
    o: Option<i64>,
    #[serde(default)]
    r: Vec<SnapshotRelationship>,
    #[serde(default)]
    p: Vec<SnapshotPermission>,
    #[serde(default)]
    x: Vec<SnapshotRestriction>,
    #[serde(default)]
    g: Vec<SnapshotGrant>,
}

#[derive(Debug, Deserialize)]
struct SnapshotRelationship {
    i: Uuid,
    o: String,
    s: i64,
    e: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct SnapshotPermission {
    i: Uuid,
    o: String,
    u: String,
    b: bool,
    c: Vec<i16>,
    f: i64,
    x: i64,
    w: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct SnapshotRestriction {
    i: Uuid,
    c: i16,
    s: String,
    n: Vec<String>,
    vo: Vec<String>,
    vr: Vec<i16>,
    vu: Vec<String>,
    x: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct SnapshotGrant {
    i: Uuid,
    u: String,
    rp: String,
    x: i64,
}

fn instant(micros: i64) -> Stored<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| ConsentError::Corrupt(format!("snapshot time {micros} out of range")))
}

fn optional_instant(micros: Option<i64>) -> Stored<Option<OffsetDateTime>> {
    micros.map(instant).transpose()
}

/// Everything Decide needs about `person_id` for `viewer`: one primary-key
/// lookup. An unknown person has no row and no facts.
#[tracing::instrument(name = "db.decision_facts", skip_all)]
pub async fn decision_facts(
    pool: &PgPool,
    person_id: Uuid,
    viewer: &Viewer,
) -> Stored<DecisionFacts> {
    let row = sqlx::query(
        "SELECT consent_version, decision_facts FROM consent_person WHERE person_id = $1",
    )
    .bind(person_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(DecisionFacts::default());
    };
    let version: i64 = row.try_get(0)?;
    let Json(snapshot): Json<Snapshot> = row.try_get(1)?;
    for_viewer(u64::try_from(version).unwrap_or(0), snapshot, viewer)
}

fn for_viewer(consent_version: u64, snapshot: Snapshot, viewer: &Viewer) -> Stored<DecisionFacts> {
    let mut facts = DecisionFacts {
        consent_version,
        ..DecisionFacts::default()
    };
    if let Some(effective_from) = snapshot.o {
        facts.opt_out = Some(OptOutFact {
            opt_out_id: Uuid::nil(),
            effective_from: instant(effective_from)?,
        });
    }
    for relationship in snapshot
        .r
        .into_iter()
        .filter(|r| r.o == viewer.organisation_code)
    {
        facts.relationships.push(RelationshipFact {
            care_relationship_id: relationship.i,
            start_time: instant(relationship.s)?,
            end_time: optional_instant(relationship.e)?,
        });
    }
    let mine = |permission: &SnapshotPermission| {
        permission.o == viewer.organisation_code
            && (permission.u.is_empty() || permission.u == viewer.user_id)
    };
    for permission in snapshot.p.into_iter().filter(mine) {
        facts.permissions.push(PermissionFact {
            permission_id: permission.i,
            user_id: (!permission.u.is_empty()).then_some(permission.u),
            best_interests: permission.b,
            categories: category_set(&permission.c),
            valid_from: instant(permission.f)?,
            expires_at: instant(permission.x)?,
            withdrawn_at: optional_instant(permission.w)?,
        });
    }
    for restriction in snapshot.x {
        facts.restrictions.push(restriction_fact(restriction)?);
    }
    for grant in snapshot
        .g
        .into_iter()
        .filter(|g| g.u == viewer.user_id && g.rp == viewer.role_profile_id)
    {
        facts.grants.push(GrantFact {
            grant_id: grant.i,
            expires_at: instant(grant.x)?,
        });
    }
    Ok(facts)
}

/// Stored categories (empty = all).
pub fn category_set(stored: &[i16]) -> CategorySet {
    let categories: Vec<Category> = stored
        .iter()
        .filter_map(|value| Category::try_from(i32::from(*value)).ok())
        .collect();
    CategorySet::from_list_or_all(&categories)
}

fn restriction_fact(restriction: SnapshotRestriction) -> Stored<RestrictionFact> {
    let target = if restriction.c != 0 {
        let category = Category::try_from(i32::from(restriction.c)).map_err(|_| {
            ConsentError::Corrupt(format!("restriction category {}", restriction.c))
        })?;
        RestrictionTarget::Category(category)
    } else if !restriction.s.is_empty() {
        RestrictionTarget::SourceOrganisation(restriction.s)
    } else {
        RestrictionTarget::Entries(restriction.n)
    };
    Ok(RestrictionFact {
        restriction_id: restriction.i,
        target,
        viewers: ViewerScope {
            organisation_codes: restriction.vo,
            roles: restriction
                .vr
                .iter()
                .filter_map(|value| Role::try_from(i32::from(*value)).ok())
                .collect(),
            user_ids: restriction.vu,
        },
        expires_at: optional_instant(restriction.x)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> Viewer {
        Viewer {
            user_id: "u1".to_owned(),
            role_profile_id: "rp1".to_owned(),
            role: Role::Nurse,
            organisation_code: "RQW".to_owned(),
        }
    }

    #[test]
    fn the_snapshot_is_narrowed_to_the_viewer() {
        let snapshot: Snapshot = serde_json::from_value(serde_json::json!({
            "o": 1_764_000_000_000_000_i64,
            "r": [
                {"i": Uuid::from_u128(1), "o": "RQW", "s": 1_700_000_000_000_000_i64, "e": null},
                {"i": Uuid::from_u128(2), "o": "RAJ", "s": 1_700_000_000_000_000_i64, "e": null}
            ],
            "p": [
                {"i": Uuid::from_u128(3), "o": "RQW", "u": "", "b": false, "c": [], "f": 1, "x": 2, "w": null},
                {"i": Uuid::from_u128(4), "o": "RQW", "u": "someone-else", "b": false, "c": [9], "f": 1, "x": 2, "w": null},
                {"i": Uuid::from_u128(5), "o": "RAJ", "u": "", "b": true, "c": [], "f": 1, "x": 2, "w": 3}
            ],
            "x": [
                {"i": Uuid::from_u128(6), "c": 9, "s": "", "n": [], "vo": [], "vr": [7], "vu": [], "x": null}
            ],
            "g": [
                {"i": Uuid::from_u128(7), "u": "u1", "rp": "rp1", "x": 5},
                {"i": Uuid::from_u128(8), "u": "u1", "rp": "another-profile", "x": 5}
            ]
        }))
        .expect("a snapshot as the SQL function writes it");
        let facts = for_viewer(4, snapshot, &viewer()).expect("facts");
        assert_eq!(facts.consent_version, 4);
        assert!(facts.opt_out.is_some());
        assert_eq!(facts.relationships.len(), 1);
        assert_eq!(
            facts.relationships[0].care_relationship_id,
            Uuid::from_u128(1)
        );
        assert_eq!(
            facts.permissions.len(),
            1,
            "other organisations' and other professionals' permissions are dropped"
        );
        assert_eq!(facts.permissions[0].categories, CategorySet::ALL);
        assert_eq!(facts.restrictions.len(), 1);
        assert_eq!(
            facts.restrictions[0].target,
            RestrictionTarget::Category(Category::MentalHealth)
        );
        assert_eq!(
            facts.restrictions[0].viewers.roles,
            vec![Role::SocialWorker]
        );
        assert_eq!(
            facts.grants.len(),
            1,
            "only this role profile's grants count"
        );
        assert_eq!(facts.grants[0].grant_id, Uuid::from_u128(7));
    }

    #[test]
    fn an_empty_snapshot_has_no_facts() {
        let snapshot: Snapshot = serde_json::from_str("{}").expect("empty snapshot");
        let facts = for_viewer(1, snapshot, &viewer()).expect("facts");
        assert_eq!(
            facts,
            DecisionFacts {
                consent_version: 1,
                ..DecisionFacts::default()
            }
        );
    }
}
