-- Public keys applications prove themselves with: uploaded X.509 certificates and key
-- pairs the server generated (the private half was shown once and never stored). Only
-- the public half is kept, as a JWK inside `doc`. They belong to the app's view entry, so
-- their writes feed `changes` as the app's. (Numbered as on SQLite.)
CREATE TABLE app_keys (
    id        TEXT COLLATE "C" PRIMARY KEY,
    client_id TEXT COLLATE "C" NOT NULL REFERENCES apps(client_id),
    doc       TEXT NOT NULL
);
CREATE INDEX app_keys_by_app ON app_keys(client_id, id);
