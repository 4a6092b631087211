-- Decide reads one row: the person's version and a snapshot of every fact
-- that can matter to any viewer, rebuilt by consent_decision_facts() in the
-- same transaction as every change (so it is never stale on any replica).
-- Times are microseconds since the epoch; lists are capped, facts still in
-- force first, so one person's long history cannot make a decision slow.

CREATE FUNCTION consent_us(at timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT (extract(epoch FROM at) * 1000000)::bigint $$;

CREATE FUNCTION consent_decision_facts(p uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
SELECT jsonb_build_object(
  'o', (SELECT consent_us(min(effective_from)) FROM opt_out
         WHERE person_id = p AND withdrawn_at IS NULL),
  'r', COALESCE((SELECT jsonb_agg(jsonb_build_object(
           'i', id, 'o', organisation_code, 's', consent_us(start_time), 'e', consent_us(end_time)))
         FROM (SELECT * FROM care_relationship WHERE person_id = p
               ORDER BY (end_time IS NULL OR end_time > now()) DESC, start_time DESC
               LIMIT 200) AS relationship), '[]'::jsonb),
  'p', COALESCE((SELECT jsonb_agg(jsonb_build_object(
           'i', id, 'o', organisation_code, 'u', user_id, 'b', best_interests,
           'c', to_jsonb(categories), 'f', consent_us(valid_from), 'x', consent_us(expires_at),
           'w', consent_us(withdrawn_at)))
         FROM (SELECT * FROM permission WHERE person_id = p
               ORDER BY (withdrawn_at IS NULL AND expires_at > now()) DESC, expires_at DESC
               LIMIT 200) AS permission_row), '[]'::jsonb),
  'x', COALESCE((SELECT jsonb_agg(jsonb_build_object(
           'i', id, 'c', category, 's', source_organisation_code, 'n', to_jsonb(entry_ids),
           'vo', to_jsonb(viewer_organisation_codes), 'vr', to_jsonb(viewer_roles),
           'vu', to_jsonb(viewer_user_ids), 'x', consent_us(expires_at)))
         FROM (SELECT * FROM restriction WHERE person_id = p AND removed_at IS NULL
               ORDER BY id LIMIT 500) AS restriction_row), '[]'::jsonb),
  'g', COALESCE((SELECT jsonb_agg(jsonb_build_object(
           'i', id, 'u', user_id, 'rp', role_profile_id, 'x', consent_us(expires_at)))
         FROM (SELECT * FROM break_glass_grant WHERE person_id = p
               ORDER BY expires_at DESC LIMIT 100) AS grant_row), '[]'::jsonb)
)
$$;

ALTER TABLE consent_person ADD COLUMN decision_facts jsonb;
UPDATE consent_person SET decision_facts = consent_decision_facts(person_id);
ALTER TABLE consent_person ALTER COLUMN decision_facts SET NOT NULL;
