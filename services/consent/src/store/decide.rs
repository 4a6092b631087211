//! The one query behind Decide: the person's version and every fact that
//! can matter to one viewer, in a single round trip over indexed lookups.

use mcr_proto::common::v1::{Category, Role};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::Stored;
use crate::domain::{
    CategorySet, DecisionFacts, GrantFact, OptOutFact, PermissionFact, RelationshipFact,
    RestrictionFact, RestrictionTarget, Viewer, ViewerScope,
};
use crate::error::ConsentError;

/// Rows of one shape: `kind` says which fact; unused columns are NULL.
/// Permissions and relationships are capped (newest first) so a person with
/// an unusual history cannot make one decision slow.
const DECISION_FACTS_SQL: &str = "
SELECT 0::int2 AS kind, NULL::uuid AS id, NULL::timestamptz AS t1, NULL::timestamptz AS t2,
       NULL::timestamptz AS t3, NULL::text AS s1, NULL::int2 AS n1, NULL::bool AS b1,
       NULL::int2[] AS smalls, NULL::text[] AS texts, NULL::text[] AS orgs, NULL::text[] AS users,
       consent_version AS version
  FROM consent_person WHERE person_id = $1
UNION ALL
(SELECT 1::int2, id, effective_from, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM opt_out WHERE person_id = $1 AND withdrawn_at IS NULL LIMIT 1)
UNION ALL
(SELECT 2::int2, id, start_time, end_time, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM care_relationship WHERE person_id = $1 AND organisation_code = $2
  ORDER BY start_time DESC LIMIT 50)
UNION ALL
(SELECT 3::int2, id, valid_from, expires_at, withdrawn_at, user_id, NULL, best_interests,
        categories, NULL, NULL, NULL, NULL
  FROM permission WHERE person_id = $1 AND organisation_code = $2 AND user_id IN ('', $3)
  ORDER BY expires_at DESC LIMIT 50)
UNION ALL
(SELECT 4::int2, id, expires_at, NULL, NULL, source_organisation_code, category, NULL,
        viewer_roles, entry_ids, viewer_organisation_codes, viewer_user_ids, NULL
  FROM restriction WHERE person_id = $1 AND removed_at IS NULL)
UNION ALL
(SELECT 5::int2, id, expires_at, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM break_glass_grant WHERE person_id = $1 AND user_id = $3 AND role_profile_id = $4
  ORDER BY expires_at DESC LIMIT 2)
";

/// Everything Decide needs about `person_id` for `viewer`.
#[tracing::instrument(name = "db.decision_facts", skip_all)]
pub async fn decision_facts(
    pool: &PgPool,
    person_id: Uuid,
    viewer: &Viewer,
) -> Stored<DecisionFacts> {
    let rows = sqlx::query(DECISION_FACTS_SQL)
        .bind(person_id)
        .bind(&viewer.organisation_code)
        .bind(&viewer.user_id)
        .bind(&viewer.role_profile_id)
        .fetch_all(pool)
        .await?;
    let mut facts = DecisionFacts::default();
    for row in &rows {
        add_row(&mut facts, row)?;
    }
    Ok(facts)
}

fn id(row: &PgRow) -> Stored<Uuid> {
    Ok(row.try_get("id")?)
}

fn time(row: &PgRow, column: &str) -> Stored<OffsetDateTime> {
    Ok(row.try_get(column)?)
}

fn add_row(facts: &mut DecisionFacts, row: &PgRow) -> Stored<()> {
    let kind: i16 = row.try_get("kind")?;
    match kind {
        0 => {
            let version: i64 = row.try_get("version")?;
            facts.consent_version = u64::try_from(version).unwrap_or(0);
        }
        1 => {
            facts.opt_out = Some(OptOutFact {
                opt_out_id: id(row)?,
                effective_from: time(row, "t1")?,
            });
        }
        2 => facts.relationships.push(RelationshipFact {
            care_relationship_id: id(row)?,
            start_time: time(row, "t1")?,
            end_time: row.try_get("t2")?,
        }),
        3 => {
            let user_id: String = row.try_get("s1")?;
            let categories: Vec<i16> = row.try_get("smalls")?;
            facts.permissions.push(PermissionFact {
                permission_id: id(row)?,
                user_id: (!user_id.is_empty()).then_some(user_id),
                best_interests: row.try_get("b1")?,
                categories: category_set(&categories),
                valid_from: time(row, "t1")?,
                expires_at: time(row, "t2")?,
                withdrawn_at: row.try_get("t3")?,
            });
        }
        4 => facts.restrictions.push(restriction(row)?),
        5 => facts.grants.push(GrantFact {
            grant_id: id(row)?,
            expires_at: time(row, "t1")?,
        }),
        other => {
            return Err(ConsentError::Corrupt(format!(
                "decision facts query returned kind {other}"
            )));
        }
    }
    Ok(())
}

/// Stored categories (empty = all).
pub fn category_set(stored: &[i16]) -> CategorySet {
    let categories: Vec<Category> = stored
        .iter()
        .filter_map(|value| Category::try_from(i32::from(*value)).ok())
        .collect();
    CategorySet::from_list_or_all(&categories)
}

fn restriction(row: &PgRow) -> Stored<RestrictionFact> {
    let category: i16 = row.try_get("n1")?;
    let source_organisation: String = row.try_get("s1")?;
    let entry_ids: Vec<String> = row.try_get("texts")?;
    let target = if category != 0 {
        let category = Category::try_from(i32::from(category))
            .map_err(|_| ConsentError::Corrupt(format!("restriction category {category}")))?;
        RestrictionTarget::Category(category)
    } else if !source_organisation.is_empty() {
        RestrictionTarget::SourceOrganisation(source_organisation)
    } else {
        RestrictionTarget::Entries(entry_ids)
    };
    let roles: Vec<i16> = row.try_get("smalls")?;
    Ok(RestrictionFact {
        restriction_id: id(row)?,
        target,
        viewers: ViewerScope {
            organisation_codes: row.try_get("orgs")?,
            roles: roles
                .iter()
                .filter_map(|value| Role::try_from(i32::from(*value)).ok())
                .collect(),
            user_ids: row.try_get("users")?,
        },
        expires_at: row.try_get("t1")?,
    })
}
