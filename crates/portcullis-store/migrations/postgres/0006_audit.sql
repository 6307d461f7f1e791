-- The audit trail: every admin change, credential creation and deletion, and failed
-- authentication, with who (actor), what (action, target), when (at), from where
-- (address). Append-only: the trigger below refuses every UPDATE and DELETE (and
-- TRUNCATE), so not even a bug in Portcullis rewrites history through SQL. No foreign
-- keys: an entry outlives the org, app or user it names. Not decision data, so appends
-- do not feed `changes`. (Numbered as on SQLite; columns as there.)
CREATE TABLE audit (
    -- Grows with every append. With several writers, ids are in the order appends
    -- began.
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    TEXT COLLATE "C" NOT NULL,
    action   TEXT COLLATE "C" NOT NULL,
    target   TEXT COLLATE "C" NOT NULL,
    outcome  TEXT NOT NULL,
    org_id   TEXT COLLATE "C",
    address  TEXT,
    details  TEXT NOT NULL
);
CREATE INDEX audit_by_actor ON audit(actor, id);
CREATE INDEX audit_by_action ON audit(action, id);
CREATE INDEX audit_by_target ON audit(target, id);
CREATE INDEX audit_by_org ON audit(org_id, id);
CREATE INDEX audit_by_time ON audit(at, id);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
