-- The versioned resource store (PostgreSQL).
-- Two JSON types on purpose: `resource.content` is jsonb, the current state in a form PostgreSQL
-- can query and index; `resource_history.content` is json, which keeps the exact text the server
-- wrote (element order, and number notation such as 1.0E+245, which jsonb rewrites as 246 digits
-- and so loses a FHIR decimal's precision). Reads and history are served from the json text.

-- The current version of every resource ever written, deleted ones included (so a read can answer 410).
CREATE TABLE resource (
    rid          BIGSERIAL   PRIMARY KEY,      -- surrogate key, used by index tables
    type         TEXT        NOT NULL,
    id           TEXT        NOT NULL,
    version_id   BIGINT      NOT NULL,
    last_updated TIMESTAMPTZ NOT NULL,
    deleted      BOOLEAN     NOT NULL DEFAULT FALSE,
    content      JSONB,                        -- NULL when deleted
    UNIQUE (type, id)
);

-- Every version ever written, including deletes (tombstones with NULL content).
-- `seq` is the global write order: history is served newest first by it, and paging cursors are
-- sequence numbers, so versions written while a client pages never shift the pages it has not read.
CREATE TABLE resource_history (
    seq          BIGSERIAL   PRIMARY KEY,
    type         TEXT        NOT NULL,
    id           TEXT        NOT NULL,
    version_id   BIGINT      NOT NULL,
    last_updated TIMESTAMPTZ NOT NULL,
    method       TEXT        NOT NULL,         -- POST, PUT or DELETE
    content      JSON,                         -- exact served text; NULL for a delete
    UNIQUE (type, id, version_id)
);

-- Type-level history pages (`Patient/_history`) walk this index.
CREATE INDEX resource_history_type_seq ON resource_history (type, seq);
-- `_since` on system history.
CREATE INDEX resource_history_last_updated ON resource_history (last_updated);
