-- Following patient-index merges: a merged-away person's facts move to the
-- survivor, and back on unmerge. Each merge remembers exactly which facts it
-- moved so an unmerge restores exactly those.
CREATE TABLE person_merge (
    merge_id uuid PRIMARY KEY,
    surviving_person_id uuid NOT NULL,
    merged_person_id uuid NOT NULL,
    merged_at timestamptz NOT NULL,
    unmerged_at timestamptz
);

CREATE TABLE person_merge_moved (
    merge_id uuid NOT NULL REFERENCES person_merge (merge_id),
    fact_table text NOT NULL,
    fact_id uuid NOT NULL,
    PRIMARY KEY (merge_id, fact_table, fact_id)
);

-- After a merge both persons' opt-outs may be in force on the survivor;
-- any one of them denies. Uniqueness per person is kept by the person row
-- lock every change takes instead.
DROP INDEX opt_out_in_force;
CREATE INDEX opt_out_in_force ON opt_out (person_id) WHERE withdrawn_at IS NULL;
