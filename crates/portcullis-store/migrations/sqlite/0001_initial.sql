-- Portcullis store, SQLite. Records are JSON documents (the serde form of
-- portcullis-core's model types) with the columns needed for lookups and ordering
-- beside them. Every write also appends to `changes`, the feed the in-memory view
-- follows (in-process, and by polling for writes made by another process).

CREATE TABLE orgs (
    id  TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);

CREATE TABLE apps (
    client_id TEXT PRIMARY KEY,
    org_id    TEXT NOT NULL REFERENCES orgs(id),
    doc       TEXT NOT NULL
);
CREATE INDEX apps_by_org ON apps(org_id, client_id);

CREATE TABLE secrets (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES apps(client_id),
    doc          TEXT NOT NULL,
    -- Updated in batches off the hot path; not part of the change feed.
    last_used_at INTEGER
);
CREATE INDEX secrets_by_app ON secrets(client_id);

CREATE TABLE permission_groups (
    id     TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    doc    TEXT NOT NULL
);
CREATE INDEX groups_by_org ON permission_groups(org_id, id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    doc           TEXT NOT NULL,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL
);

CREATE TABLE sessions (
    -- Keyed hash of the session token, hex.
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);

CREATE TABLE revocations (
    jti       TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    exp       INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);

-- Server-wide values: the encrypted secret-hash key, the admin token's hash.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE changes (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key  TEXT NOT NULL
);
