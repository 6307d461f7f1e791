-- The audit trail: every admin change, credential creation and deletion, and failed
-- authentication, with who (actor), what (action, target), when (at), from where
-- (address). Append-only: the triggers below refuse every UPDATE and DELETE, so not even
-- a bug in Portcullis (or a careless script on the file) rewrites history through SQL.
-- No foreign keys: an entry outlives the org, app or user it names. Not decision data, so
-- appends do not feed `changes`.
CREATE TABLE audit (
    -- Grows with every append: id order is the order entries were written.
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Unix seconds, when it happened.
    at       INTEGER NOT NULL,
    -- 'admin-token:<id>', 'user:<id>', 'app:<client id>', 'client:<claimed client id>',
    -- 'email:<address>', 'cli', 'anonymous'.
    actor    TEXT NOT NULL,
    -- 'apps.create', 'apps.secrets.delete', 'auth.failed', …
    action   TEXT NOT NULL,
    -- The record acted on ('' when none).
    target   TEXT NOT NULL,
    -- 'success' or 'failure'.
    outcome  TEXT NOT NULL,
    -- The organization the entry concerns, when there is one (who may read it).
    org_id   TEXT,
    -- The client's address (honouring --trusted-proxy), when known.
    address  TEXT,
    -- A JSON object; never a secret.
    details  TEXT NOT NULL
);
CREATE INDEX audit_by_actor ON audit(actor, id);
CREATE INDEX audit_by_action ON audit(action, id);
CREATE INDEX audit_by_target ON audit(target, id);
CREATE INDEX audit_by_org ON audit(org_id, id);
CREATE INDEX audit_by_time ON audit(at, id);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
