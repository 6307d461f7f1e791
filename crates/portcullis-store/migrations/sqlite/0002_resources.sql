-- Protected resources (datastreams): what the gateway decision checks requests against.
CREATE TABLE resources (
    id     TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    doc    TEXT NOT NULL
);
CREATE INDEX resources_by_org ON resources(org_id, id);
