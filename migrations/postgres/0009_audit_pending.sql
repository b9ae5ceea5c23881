-- The audit trail's records not yet stored as AuditEvent resources. With `--audit all` every
-- request makes one, and storing it as an AuditEvent with its search-index rows costs several
-- times what a read by id costs. So the writer appends each batch of records as one row (a JSON
-- array, `audit::Record::to_pending`), a few microseconds a record, and they become AuditEvents
-- later (`interactions::audit_index`): when the server is idle, or before a request reads
-- AuditEvents. `taken` counts the records of the row, from the first, already stored as
-- AuditEvents, in the same transaction as they were (a compare-and-set on `taken`, so of servers
-- sharing the database exactly one stores each record); the row goes with its last one.
CREATE TABLE audit_pending (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    records TEXT   NOT NULL,
    taken   INTEGER NOT NULL DEFAULT 0,
    written BIGINT  NOT NULL              -- when it was appended (microseconds since 1970)
);
