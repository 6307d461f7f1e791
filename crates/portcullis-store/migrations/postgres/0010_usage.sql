-- Usage analytics: gateway decisions, token requests and introspections per app per
-- minute, by what was asked and how it ended. Each node adds its counts (an upsert that
-- adds), so several nodes add up. Not decision data: writes do not feed `changes`. Absent
-- ids are '' (not NULL), so the primary key is the whole key and the upsert needs
-- nothing more. No foreign keys: counts outlive the app, org or resource they name.
-- (Numbered and shaped as on SQLite.)
CREATE TABLE usage_minute (
    minute     BIGINT NOT NULL,
    org_id     TEXT COLLATE "C" NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    subject_id TEXT COLLATE "C" NOT NULL,
    outcome    TEXT COLLATE "C" NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (minute, org_id, client_id, subject, subject_id, outcome)
);
CREATE INDEX usage_minute_by_org ON usage_minute(org_id, minute);
CREATE INDEX usage_minute_by_app ON usage_minute(client_id, minute);
