-- One-time user links (issue 6): an invitation (a new user sets their first password) or
-- an administrator's password reset. Only the keyed hash of the link's token is stored;
-- a link is dead once used (used_at) or past expires_at. Deleting the user deletes them.
CREATE TABLE user_links (
    -- Keyed hash (HMAC-SHA256) of the pcsl_… token, hex.
    hash       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('invite', 'reset')),
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- The organization and role an invitation gives; NULL for a reset.
    org_id     TEXT,
    role       TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX user_links_by_user ON user_links(user_id);
