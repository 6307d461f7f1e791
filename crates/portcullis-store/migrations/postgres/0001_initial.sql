-- Portcullis store, PostgreSQL. The same shape as the SQLite schema: records are JSON
-- documents (the serde form of portcullis-core's model types, stored as text so they
-- read back byte for byte) with the columns needed for lookups, ordering and uniqueness
-- beside them. Every write of view data also appends to `changes`, the feed every node's
-- in-memory view follows.
--
-- Ids compare with the "C" collation: listings page in byte order, as on SQLite,
-- whatever the database's default collation is.

CREATE TABLE orgs (
    id  TEXT COLLATE "C" PRIMARY KEY,
    doc TEXT NOT NULL
);

CREATE TABLE apps (
    client_id TEXT COLLATE "C" PRIMARY KEY,
    org_id    TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
    doc       TEXT NOT NULL
);
CREATE INDEX apps_by_org ON apps(org_id, client_id);

CREATE TABLE secrets (
    id           TEXT COLLATE "C" PRIMARY KEY,
    client_id    TEXT COLLATE "C" NOT NULL REFERENCES apps(client_id),
    doc          TEXT NOT NULL,
    -- Updated in batches off the hot path; not part of the change feed.
    last_used_at BIGINT
);
CREATE INDEX secrets_by_app ON secrets(client_id);

CREATE TABLE permission_groups (
    id     TEXT COLLATE "C" PRIMARY KEY,
    org_id TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
    doc    TEXT NOT NULL
);
CREATE INDEX groups_by_org ON permission_groups(org_id, id);

CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    doc           TEXT NOT NULL,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL
);

CREATE TABLE sessions (
    -- Keyed hash of the session token, hex.
    hash       TEXT PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);

CREATE TABLE revocations (
    jti       TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    exp       BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT COLLATE "C" PRIMARY KEY,
    doc TEXT NOT NULL
);

-- Server-wide values: the encrypted secret-hash key, the admin token's hash.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The change feed. `seq` is not a sequence (sequences hand out numbers in call order,
-- not commit order, and leave gaps on rollback): every appending transaction takes the
-- next number from the single row of `change_seq` with an UPDATE, whose row lock it then
-- holds until it commits. See `record` in src/postgres.rs for why that makes the feed
-- safe to follow from several nodes.
CREATE TABLE changes (
    seq  BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    key  TEXT NOT NULL
);

CREATE TABLE change_seq (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq BIGINT NOT NULL
);
INSERT INTO change_seq (one, seq) VALUES (TRUE, 0);
