-- The audit trail's records not yet stored as AuditEvent resources. With `--audit all` every
-- request makes one, and storing it as an AuditEvent with its search-index rows costs several
-- times what a read by id costs. So the writer appends each batch of records as one row (a JSON
-- array, `audit::Record::to_pending`), a few microseconds a record, and they become AuditEvents
-- later (`interactions::audit_index`): when the server is idle, or before a request reads
-- AuditEvents. `taken` counts the records of the row, from the first, already stored as
-- AuditEvents, in the same transaction as they were; the row goes with its last one.
CREATE TABLE audit_pending (
    seq     INTEGER PRIMARY KEY,            -- the order batches were written in
    records TEXT    NOT NULL,               -- a JSON array of records
    taken   INTEGER NOT NULL DEFAULT 0,
    written BIGINT  NOT NULL              -- when it was appended (microseconds since 1970)
);
