-- Usage analytics by the hour: the same counts as usage_minute, added at the same time
-- (in the same transaction), summed per hour. Minute counts are kept for a short window
-- (two days by default) and hour counts for a long one (90 days by default), so a long
-- range is read from few rows and the minute table stays small.
-- (Numbered and shaped as on SQLite.)
CREATE TABLE usage_hour (
    hour       BIGINT NOT NULL,
    org_id     TEXT COLLATE "C" NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    subject_id TEXT COLLATE "C" NOT NULL,
    outcome    TEXT COLLATE "C" NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (hour, org_id, client_id, subject, subject_id, outcome)
);
CREATE INDEX usage_hour_by_org ON usage_hour(org_id, hour);
CREATE INDEX usage_hour_by_app ON usage_hour(client_id, hour);
-- What the minute table already holds, so hour reads cover the time before this version.
INSERT INTO usage_hour (hour, org_id, client_id, subject, subject_id, outcome, count)
SELECT (minute / 3600) * 3600, org_id, client_id, subject, subject_id, outcome, CAST(SUM(count) AS BIGINT)
FROM usage_minute GROUP BY 1, 2, 3, 4, 5, 6;
