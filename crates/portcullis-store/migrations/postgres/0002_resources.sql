-- Protected resources (datastreams): what the gateway decision checks requests against.
CREATE TABLE resources (
    id     TEXT COLLATE "C" PRIMARY KEY,
    org_id TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
    doc    TEXT NOT NULL
);
CREATE INDEX resources_by_org ON resources(org_id, id);
