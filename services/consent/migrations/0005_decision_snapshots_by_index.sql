-- The Decide snapshots of many persons, one index probe per person and fact
-- table. 0004 built them set-based, but the planner cannot know how many
-- persons a batch names (unnest() is estimated at ten), so it hashed them and
-- scanned every fact table whole: at ingest, forwarding each batch's care
-- relationships cost time in proportion to every relationship ever stored
-- (31 ms a batch at 60,000 relationships, growing). Correlated subqueries on
-- each table's person index cost the same for the ten-thousandth batch as
-- for the first (7 ms there). Same snapshot, same order and caps as 0003.
CREATE OR REPLACE FUNCTION consent_decision_facts_of(persons uuid[])
RETURNS TABLE (person_id uuid, facts jsonb)
LANGUAGE sql STABLE SET jit = off AS $$
SELECT wanted.p,
       jsonb_build_object(
         'o', (SELECT consent_us(min(o.effective_from))
               FROM opt_out o
               WHERE o.person_id = wanted.p AND o.withdrawn_at IS NULL),
         'r', COALESCE((
               SELECT jsonb_agg(jsonb_build_object(
                        'i', r.id, 'o', r.organisation_code,
                        's', consent_us(r.start_time), 'e', consent_us(r.end_time))
                        ORDER BY r.in_force DESC, r.start_time DESC)
               FROM (SELECT r.*, (r.end_time IS NULL OR r.end_time > now()) AS in_force
                     FROM care_relationship r
                     WHERE r.person_id = wanted.p
                     ORDER BY in_force DESC, r.start_time DESC
                     LIMIT 200) AS r), '[]'::jsonb),
         'p', COALESCE((
               SELECT jsonb_agg(jsonb_build_object(
                        'i', m.id, 'o', m.organisation_code, 'u', m.user_id,
                        'b', m.best_interests, 'c', to_jsonb(m.categories),
                        'f', consent_us(m.valid_from), 'x', consent_us(m.expires_at),
                        'w', consent_us(m.withdrawn_at))
                        ORDER BY m.in_force DESC, m.expires_at DESC)
               FROM (SELECT m.*, (m.withdrawn_at IS NULL AND m.expires_at > now()) AS in_force
                     FROM permission m
                     WHERE m.person_id = wanted.p
                     ORDER BY in_force DESC, m.expires_at DESC
                     LIMIT 200) AS m), '[]'::jsonb),
         'x', COALESCE((
               SELECT jsonb_agg(jsonb_build_object(
                        'i', x.id, 'c', x.category, 's', x.source_organisation_code,
                        'n', to_jsonb(x.entry_ids), 'vo', to_jsonb(x.viewer_organisation_codes),
                        'vr', to_jsonb(x.viewer_roles), 'vu', to_jsonb(x.viewer_user_ids),
                        'x', consent_us(x.expires_at))
                        ORDER BY x.id)
               FROM (SELECT x.*
                     FROM restriction x
                     WHERE x.person_id = wanted.p AND x.removed_at IS NULL
                     ORDER BY x.id
                     LIMIT 500) AS x), '[]'::jsonb),
         'g', COALESCE((
               SELECT jsonb_agg(jsonb_build_object(
                        'i', g.id, 'u', g.user_id, 'rp', g.role_profile_id,
                        'x', consent_us(g.expires_at))
                        ORDER BY g.expires_at DESC)
               FROM (SELECT g.*
                     FROM break_glass_grant g
                     WHERE g.person_id = wanted.p
                     ORDER BY g.expires_at DESC
                     LIMIT 100) AS g), '[]'::jsonb))
FROM (SELECT DISTINCT unnest(persons) AS p) AS wanted
$$;
