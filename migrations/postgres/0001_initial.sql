-- The versioned resource store (PostgreSQL). `content` is jsonb: PostgreSQL keeps numbers as
-- numeric (so 1.50 stays 1.50) and the store serves it back as text.

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
    content      JSONB,
    UNIQUE (type, id, version_id)
);

-- Type-level history pages (`Patient/_history`) walk this index.
CREATE INDEX resource_history_type_seq ON resource_history (type, seq);
-- `_since` on system history.
CREATE INDEX resource_history_last_updated ON resource_history (last_updated);
