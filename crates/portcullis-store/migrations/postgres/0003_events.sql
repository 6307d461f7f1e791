-- Events accepted by the Edge intake (seed 001's interact / collect). Append-only: rows
-- are inserted and never updated; they go only with their resource (ON DELETE CASCADE,
-- which also covers deleting the resource's org). Not decision data, so writes here do
-- not feed `changes`.
CREATE TABLE events (
    -- Grows with every append. With several writers, ids are in the order appends
    -- began, which is the acceptance order up to appends made at the same moment.
    id            BIGSERIAL PRIMARY KEY,
    resource_id   TEXT COLLATE "C" NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    -- Unix seconds.
    received_at   BIGINT NOT NULL,
    authenticated BOOLEAN NOT NULL,
    client_id     TEXT,
    -- The event object as JSON text.
    event         TEXT NOT NULL
);
CREATE INDEX events_by_resource ON events(resource_id, id);
