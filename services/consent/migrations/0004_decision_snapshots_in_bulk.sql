-- The Decide snapshots of many persons in one set-based query. Rebuilding
-- them one person at a time (a function call per row, five subqueries
-- each) was the largest single cost of forwarding care relationships at
-- ingest: about 0.3 ms per person. Built together, each fact table is read
-- once for the whole set: about a third of the time. Same snapshot, same
-- order and caps as 0003.

CREATE FUNCTION consent_decision_facts_of(persons uuid[])
RETURNS TABLE (person_id uuid, facts jsonb)
-- Planned at each call from table statistics; with large fact tables the
-- estimate can pass jit_above_cost, and compiling would cost far more than
-- this query of a batch's persons ever takes.
LANGUAGE sql STABLE SET jit = off AS $$
WITH wanted AS (
  SELECT DISTINCT unnest(persons) AS p
),
opt_outs AS (
  SELECT o.person_id, consent_us(min(o.effective_from)) AS v
  FROM opt_out o
  WHERE o.person_id IN (SELECT p FROM wanted) AND o.withdrawn_at IS NULL
  GROUP BY o.person_id
),
relationships AS (
  SELECT ranked.person_id,
         jsonb_agg(jsonb_build_object(
           'i', ranked.id, 'o', ranked.organisation_code,
           's', consent_us(ranked.start_time), 'e', consent_us(ranked.end_time))
           ORDER BY ranked.n) AS v
  FROM (SELECT r.*, row_number() OVER (
          PARTITION BY r.person_id
          ORDER BY (r.end_time IS NULL OR r.end_time > now()) DESC, r.start_time DESC) AS n
        FROM care_relationship r
        WHERE r.person_id IN (SELECT p FROM wanted)) AS ranked
  WHERE ranked.n <= 200
  GROUP BY ranked.person_id
),
permissions AS (
  SELECT ranked.person_id,
         jsonb_agg(jsonb_build_object(
           'i', ranked.id, 'o', ranked.organisation_code, 'u', ranked.user_id,
           'b', ranked.best_interests, 'c', to_jsonb(ranked.categories),
           'f', consent_us(ranked.valid_from), 'x', consent_us(ranked.expires_at),
           'w', consent_us(ranked.withdrawn_at))
           ORDER BY ranked.n) AS v
  FROM (SELECT m.*, row_number() OVER (
          PARTITION BY m.person_id
          ORDER BY (m.withdrawn_at IS NULL AND m.expires_at > now()) DESC, m.expires_at DESC) AS n
        FROM permission m
        WHERE m.person_id IN (SELECT p FROM wanted)) AS ranked
  WHERE ranked.n <= 200
  GROUP BY ranked.person_id
),
restrictions AS (
  SELECT ranked.person_id,
         jsonb_agg(jsonb_build_object(
           'i', ranked.id, 'c', ranked.category, 's', ranked.source_organisation_code,
           'n', to_jsonb(ranked.entry_ids), 'vo', to_jsonb(ranked.viewer_organisation_codes),
           'vr', to_jsonb(ranked.viewer_roles), 'vu', to_jsonb(ranked.viewer_user_ids),
           'x', consent_us(ranked.expires_at))
           ORDER BY ranked.n) AS v
  FROM (SELECT x.*, row_number() OVER (PARTITION BY x.person_id ORDER BY x.id) AS n
        FROM restriction x
        WHERE x.person_id IN (SELECT p FROM wanted) AND x.removed_at IS NULL) AS ranked
  WHERE ranked.n <= 500
  GROUP BY ranked.person_id
),
grants AS (
  SELECT ranked.person_id,
         jsonb_agg(jsonb_build_object(
           'i', ranked.id, 'u', ranked.user_id, 'rp', ranked.role_profile_id,
           'x', consent_us(ranked.expires_at))
           ORDER BY ranked.n) AS v
  FROM (SELECT g.*, row_number() OVER (
          PARTITION BY g.person_id ORDER BY g.expires_at DESC) AS n
        FROM break_glass_grant g
        WHERE g.person_id IN (SELECT p FROM wanted)) AS ranked
  WHERE ranked.n <= 100
  GROUP BY ranked.person_id
)
SELECT wanted.p,
       jsonb_build_object(
         'o', opt_outs.v,
         'r', COALESCE(relationships.v, '[]'::jsonb),
         'p', COALESCE(permissions.v, '[]'::jsonb),
         'x', COALESCE(restrictions.v, '[]'::jsonb),
         'g', COALESCE(grants.v, '[]'::jsonb))
FROM wanted
LEFT JOIN opt_outs ON opt_outs.person_id = wanted.p
LEFT JOIN relationships ON relationships.person_id = wanted.p
LEFT JOIN permissions ON permissions.person_id = wanted.p
LEFT JOIN restrictions ON restrictions.person_id = wanted.p
LEFT JOIN grants ON grants.person_id = wanted.p
$$;

-- One definition: the single-person form is the bulk form of one.
CREATE OR REPLACE FUNCTION consent_decision_facts(p uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
SELECT facts FROM consent_decision_facts_of(ARRAY[p])
$$;
