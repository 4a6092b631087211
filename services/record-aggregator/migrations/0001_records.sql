-- Which person each provider's local identifier belongs to, as patient-index
-- last said. Ingest resolves through it (one query per batch instead of one
-- RPC per update); merge, unmerge and relink events rewrite it, which moves
-- every entry of the identifier at once.
CREATE TABLE patient_links (
    organisation_code text NOT NULL,
    system            text NOT NULL,
    value             text NOT NULL,
    person_id         uuid NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organisation_code, system, value)
);
CREATE INDEX patient_links_person ON patient_links (person_id);

-- One row per provider entry (a reflection of the provider's record, never
-- the master copy). entry_id is derived from the source key (organisation,
-- system, local entry id), so it is also the upsert key. A delete keeps the
-- row as a tombstone with its version, so a late, older upsert cannot bring
-- the entry back.
CREATE TABLE entries (
    entry_id          uuid PRIMARY KEY,
    organisation_code text NOT NULL,
    source_system     text NOT NULL,
    local_entry_id    text NOT NULL,
    patient_system    text NOT NULL,
    patient_value     text NOT NULL,
    version           bigint NOT NULL,
    deleted           boolean NOT NULL,
    category          smallint NOT NULL,
    effective_time    timestamptz,
    resource_type     text NOT NULL,
    fhir_resource     text NOT NULL,
    display_summary   text NOT NULL,
    group_key         text NOT NULL,
    last_updated      timestamptz NOT NULL
);
CREATE INDEX entries_patient ON entries (organisation_code, patient_system, patient_value)
    WHERE NOT deleted;

-- The version of each person's assembled view: bumped in the same
-- transaction as every change to the person's entries or links, and by
-- consent changes, so a cached view keyed by it is never served stale.
CREATE TABLE person_views (
    person_id    uuid PRIMARY KEY,
    view_version bigint NOT NULL
);
