-- Retention: events past `audit.retention_seconds` are removed from the
-- oldest end, as an audited and checkpointed operation. Each removal is
-- recorded here with the hash of the last event removed, which anchors the
-- chain that remains (VerifyChain starts from it).
CREATE TABLE retention_purges (
    up_to_sequence bigint      PRIMARY KEY,
    anchor_hash    bytea       NOT NULL CHECK (length(anchor_hash) = 32),
    events_removed bigint      NOT NULL,
    purged_at      timestamptz NOT NULL DEFAULT now(),
    -- The RETENTION_PURGE audit event announcing this removal.
    event_id       uuid        NOT NULL
);

-- Events may now be deleted, but only by a purge: inside a transaction that
-- set `mcr.audit_purge` and only up to a recorded purge's sequence. Updates,
-- truncation and any other delete are still refused.
CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_events'
       AND current_setting('mcr.audit_purge', true) = 'on'
       AND OLD.sequence <= (SELECT coalesce(max(up_to_sequence), 0) FROM retention_purges) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% on % is not allowed: the audit log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER retention_purges_append_only BEFORE UPDATE OR DELETE ON retention_purges
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
