-- The versioned resource store (SQLite). Times are integer microseconds since the Unix epoch (UTC),
-- so they compare and sort as numbers. `content` is the exact JSON text served on read.

-- The current version of every resource ever written, deleted ones included (so a read can answer 410).
CREATE TABLE resource (
    rid          INTEGER PRIMARY KEY,          -- surrogate key, used by index tables
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,   -- 1 when the current version is a delete
    content      TEXT,                         -- NULL when deleted
    UNIQUE (type, id)
);

-- Every version ever written, including deletes (tombstones with NULL content).
-- `seq` is the global write order: history is served newest first by it, and paging cursors are
-- sequence numbers, so versions written while a client pages never shift the pages it has not read.
CREATE TABLE resource_history (
    seq          INTEGER PRIMARY KEY,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    method       TEXT    NOT NULL,             -- POST, PUT or DELETE
    content      TEXT,
    UNIQUE (type, id, version_id)
);

-- Type-level history pages (`Patient/_history`) walk this index.
CREATE INDEX resource_history_type_seq ON resource_history (type, seq);
-- `_since` on system history.
CREATE INDEX resource_history_last_updated ON resource_history (last_updated);
