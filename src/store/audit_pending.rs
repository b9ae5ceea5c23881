//! The audit trail's pending records (`audit_pending`): batches of records as written by
//! `--audit all`, made into AuditEvent resources later by `interactions::audit_index`. The SQL.

use crate::sql::{Dialect, Sql, SqlValue};

/// A batch of records not yet all stored as AuditEvents.
#[derive(Debug, Clone)]
pub struct PendingAudit {
    pub seq: i64,
    /// A JSON array of records (`audit::Record::to_pending`).
    pub records: String,
    /// How many of them, from the first, are stored already.
    pub taken: i64,
}

/// Records `from..to` of batch `seq` now stored; `last` when they are its last ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditTaken {
    pub seq: i64,
    pub from: i64,
    pub to: i64,
    pub last: bool,
}

/// Appends a batch (a JSON array of records), written now.
pub(crate) fn append(dialect: Dialect, records: String) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("INSERT INTO audit_pending (records, written) VALUES (")
        .bind(SqlValue::Text(records))
        .push(", ")
        .bind(SqlValue::Int(crate::model::Instant::now().as_micros()))
        .push(")");
    sql
}

pub(crate) const NEWEST: &str = "SELECT coalesce(max(seq), 0) FROM audit_pending";

/// When the oldest batch was written (microseconds), if any is pending.
pub(crate) const OLDEST_WRITTEN: &str = "SELECT written FROM audit_pending ORDER BY seq LIMIT 1";

/// The oldest batch with `seq` at most `up_to`: `seq, records, taken`.
pub(crate) fn oldest(dialect: Dialect, up_to: i64) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT seq, records, taken FROM audit_pending WHERE seq <= ")
        .bind(SqlValue::Int(up_to))
        .push(" ORDER BY seq LIMIT 1");
    sql
}

/// Marks `taken`'s records as stored, removing the batch with its last ones, provided no one
/// else did so first: it changes one row, or none.
pub(crate) fn claim(dialect: Dialect, taken: AuditTaken) -> Sql {
    let mut sql = Sql::new(dialect);
    if taken.last {
        sql.push("DELETE FROM audit_pending WHERE seq = ");
    } else {
        sql.push("UPDATE audit_pending SET taken = ")
            .bind(SqlValue::Int(taken.to))
            .push(" WHERE seq = ");
    }
    sql.bind(SqlValue::Int(taken.seq))
        .push(" AND taken = ")
        .bind(SqlValue::Int(taken.from));
    sql
}
