-- Consent facts. Each fact row is kept for ever: withdrawing, ending or
-- removing sets the closing columns (and closing provenance in `body`),
-- never deletes. `body` is the fact's proto message (mcr.consent.v1) as
-- last written; the indexed columns beside it are what Decide filters on.
-- `consent_change` is the append-only history of every change (who, when,
-- from where, note, the fact as changed) and the outbox of ConsentChanged.

-- One row per person with facts; consent_version increases with every change.
CREATE TABLE consent_person (
    person_id uuid PRIMARY KEY,
    consent_version bigint NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE opt_out (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL,
    effective_from timestamptz NOT NULL,
    withdrawn_at timestamptz,
    body bytea NOT NULL
);
-- At most one opt-out in force per person.
CREATE UNIQUE INDEX opt_out_in_force ON opt_out (person_id) WHERE withdrawn_at IS NULL;
CREATE INDEX opt_out_person ON opt_out (person_id);

CREATE TABLE permission (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL,
    organisation_code text NOT NULL,
    user_id text NOT NULL,             -- '' = anyone of the organisation
    best_interests boolean NOT NULL,
    categories smallint[] NOT NULL,    -- empty = all
    valid_from timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    withdrawn_at timestamptz,
    body bytea NOT NULL
);
CREATE INDEX permission_person_organisation ON permission (person_id, organisation_code);

CREATE TABLE care_relationship (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL,
    organisation_code text NOT NULL,
    source_system text NOT NULL,       -- '' for self-declared
    source_reference text NOT NULL,
    start_time timestamptz NOT NULL,
    end_time timestamptz,
    body bytea NOT NULL
);
CREATE INDEX care_relationship_person_organisation ON care_relationship (person_id, organisation_code);
-- The providers' idempotency key.
CREATE UNIQUE INDEX care_relationship_source_key
    ON care_relationship (organisation_code, source_system, source_reference)
    WHERE source_system <> '';

CREATE TABLE restriction (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL,
    category smallint NOT NULL,        -- 0 unless the target is a category
    source_organisation_code text NOT NULL,
    entry_ids text[] NOT NULL,
    viewer_organisation_codes text[] NOT NULL,
    viewer_roles smallint[] NOT NULL,
    viewer_user_ids text[] NOT NULL,
    expires_at timestamptz,
    removed_at timestamptz,
    body bytea NOT NULL
);
CREATE INDEX restriction_person_in_force ON restriction (person_id) WHERE removed_at IS NULL;
CREATE INDEX restriction_person ON restriction (person_id);

CREATE TABLE break_glass_grant (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL,
    user_id text NOT NULL,
    role_profile_id text NOT NULL,
    granted_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX break_glass_grant_person_user ON break_glass_grant (person_id, user_id, expires_at DESC);

-- Break-glass grants and self-declared relationships awaiting (or past)
-- a privacy officer's review. `body` is the ReviewItem without its subject.
CREATE TABLE review_item (
    id uuid PRIMARY KEY,
    kind smallint NOT NULL,
    person_id uuid NOT NULL,
    subject_id uuid NOT NULL,
    raised_by_user_id text NOT NULL,
    raised_by_organisation_code text NOT NULL,
    queued_at timestamptz NOT NULL,
    outcome smallint NOT NULL DEFAULT 0,
    body bytea NOT NULL
);
CREATE INDEX review_item_queue ON review_item (queued_at, id) WHERE outcome = 0;
CREATE INDEX review_item_all ON review_item (queued_at, id);

-- History and outbox: one row per change, written in the change's
-- transaction. `event` is the ConsentChanged to publish; `published_at` is
-- set once JetStream acknowledged it (the relay publishes rows left unset).
CREATE TABLE consent_change (
    event_id uuid PRIMARY KEY,
    person_id uuid NOT NULL,
    change_kind smallint NOT NULL,
    fact_id uuid NOT NULL,
    consent_version bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor_user_id text NOT NULL,
    actor_organisation_code text NOT NULL,
    source_system text NOT NULL,
    note text NOT NULL,
    fact bytea NOT NULL,
    event bytea NOT NULL,
    published_at timestamptz
);
CREATE INDEX consent_change_person ON consent_change (person_id, consent_version);
CREATE INDEX consent_change_unpublished ON consent_change (occurred_at) WHERE published_at IS NULL;
