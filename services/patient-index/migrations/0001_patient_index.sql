-- The master patient index: persons, the local identifiers linked to them,
-- blocking keys for matching, the review queue, merges and history.

CREATE TABLE persons (
    id           uuid PRIMARY KEY,
    status       text        NOT NULL CHECK (status IN ('active', 'merged')),
    merged_into  uuid REFERENCES persons (id),
    -- The normalised mcr.patient_index.v1.Demographics (prost encoding): the
    -- most recent demographics registered for this person.
    demographics bytea       NOT NULL,
    nhs_number   text,
    nhs_verified boolean     NOT NULL DEFAULT false,
    sensitive    boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX persons_nhs_number ON persons (nhs_number) WHERE nhs_number IS NOT NULL;

-- Every blocking key of every registration linked to a person: a candidate
-- search reads only the persons sharing a key with the query.
CREATE TABLE person_blocking_keys (
    key       text NOT NULL,
    person_id uuid NOT NULL REFERENCES persons (id),
    PRIMARY KEY (key, person_id)
);
CREATE INDEX person_blocking_keys_person ON person_blocking_keys (person_id);

CREATE TABLE local_identifiers (
    organisation_code  text        NOT NULL,
    system             text        NOT NULL,
    value              text        NOT NULL,
    person_id          uuid        NOT NULL REFERENCES persons (id),
    link_method        integer     NOT NULL,
    match_weight       double precision NOT NULL DEFAULT 0,
    -- What this provider last registered (normalised Demographics, prost).
    demographics       bytea       NOT NULL,
    linked_at          timestamptz NOT NULL DEFAULT now(),
    last_registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organisation_code, system, value)
);
CREATE INDEX local_identifiers_person ON local_identifiers (person_id);

CREATE TABLE review_items (
    id                uuid PRIMARY KEY,
    person_id         uuid        NOT NULL REFERENCES persons (id),
    organisation_code text        NOT NULL,
    system            text        NOT NULL,
    value             text        NOT NULL,
    -- Candidate person ids with their match outcome (MatchCandidate, prost, person omitted).
    candidates        jsonb       NOT NULL,
    queued_at         timestamptz NOT NULL DEFAULT now(),
    closed_at         timestamptz,
    close_reason      text
);
CREATE INDEX review_items_open ON review_items (queued_at, id) WHERE closed_at IS NULL;

CREATE TABLE merges (
    id                  uuid PRIMARY KEY,
    surviving_person_id uuid        NOT NULL REFERENCES persons (id),
    merged_person_id    uuid        NOT NULL REFERENCES persons (id),
    -- The identifiers the merged person brought: exactly what an unmerge moves back.
    moved_identifiers   jsonb       NOT NULL,
    reason              text        NOT NULL,
    merged_at           timestamptz NOT NULL DEFAULT now(),
    unmerged_at         timestamptz
);
CREATE INDEX merges_merged_person ON merges (merged_person_id);

CREATE TABLE person_history (
    id              uuid PRIMARY KEY,
    person_id       uuid        NOT NULL REFERENCES persons (id),
    kind            integer     NOT NULL,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    actor           jsonb,
    identifier      jsonb,
    other_person_id uuid,
    merge_id        uuid,
    note            text        NOT NULL DEFAULT ''
);
CREATE INDEX person_history_person ON person_history (person_id, occurred_at);
