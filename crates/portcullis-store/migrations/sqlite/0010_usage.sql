-- Usage analytics: gateway decisions, token requests and introspections per app per
-- minute, by what was asked and how it ended. Each node adds its counts (an upsert that
-- adds), so several nodes add up. Not decision data: writes do not feed `changes`. Absent
-- ids are '' (not NULL), so the primary key is the whole key and the upsert needs
-- nothing more. No foreign keys: counts outlive the app, org or resource they name.
CREATE TABLE usage_minute (
    -- Unix seconds of the minute's first second (a multiple of 60).
    minute     INTEGER NOT NULL,
    -- The app's organization (or, without an app, the resource's); '' when unknown.
    org_id     TEXT NOT NULL,
    -- '' for requests without an app the view knows.
    client_id  TEXT NOT NULL,
    -- 'resource' (a gateway check), 'grant' (a token request) or 'introspection'.
    subject    TEXT NOT NULL,
    -- The resource id or the grant's name; '' when none.
    subject_id TEXT NOT NULL,
    -- 'allowed', 'issued', 'active', 'inactive', a gateway code or an OAuth error.
    outcome    TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (minute, org_id, client_id, subject, subject_id, outcome)
) WITHOUT ROWID;
CREATE INDEX usage_minute_by_org ON usage_minute(org_id, minute);
CREATE INDEX usage_minute_by_app ON usage_minute(client_id, minute);
