//! Bulk group writes on SQLite (see `store::group`): inside the writer's open transaction, one
//! query reads the current rows of the resources the group updates or deletes, and each table's
//! rows go in multi-row `INSERT … VALUES` statements of up to `ROWS_PER_STATEMENT` rows.
//!
//! Rids and history `seq`s are assigned here, counting up from the largest stored: the writer
//! connection is the only writer and holds the write lock, and rows of `resource` and
//! `resource_history` are never removed, so these are the numbers SQLite itself would have chosen;
//! knowing them, the owners of each version go in with plain multi-row inserts too.
//!
//! The statements are `INSERT OR FAIL`. With the default (`ABORT`), SQLite keeps a statement
//! journal so it can undo half a statement, copying every page a statement first touches; that
//! was a fifth of the writer's time. Undoing half a statement is never needed here: any failure
//! rolls the whole transaction back.

use super::super::group::{self, BulkFailure, Current, CurrentVersions, GroupPlan, VersionRow};
use super::super::index::{Cell, INDEX_TABLES, IndexTable, fold_cells};
use super::super::{WriteOp, Written, content_text};
use crate::model::Instant;
use crate::search::IndexRow;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection};

/// Rows per multi-row statement: few enough statements for a Bundle of thousands (seven values a
/// row at most, so 3,500 bound parameters, far below SQLite's limit), and the SQL text of a full
/// statement is prepared once and reused.
const ROWS_PER_STATEMENT: usize = 500;

/// Writes `ops` (which `group::can_write_in_bulk`) inside the open transaction.
pub(super) async fn write(conn: &mut SqliteConnection, ops: &[WriteOp]) -> Result<Vec<Option<Written>>, BulkFailure> {
    let current = read_current(conn, ops).await?;
    let (first_rid, first_seq): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT coalesce(max(rid), 0) + 1 FROM resource), \
         (SELECT coalesce(max(seq), 0) + 1 FROM resource_history)",
    )
    .fetch_one(&mut *conn)
    .await?;
    // Taken inside the write lock, so times never run backwards along the history sequence.
    let now = Instant::now();
    let plan = group::plan(ops, &current, &mut (first_rid..), &mut (first_seq..), now).map_err(BulkFailure::Refused)?;
    let statements = version_statements(&plan)
        .chain(removal_statements(&plan.replaced))
        .chain(
            INDEX_TABLES
                .iter()
                .zip(&plan.index)
                .flat_map(|(table, rows)| index_statements(table, rows)),
        )
        .chain(owner_statements(&plan));
    run_pipelined(conn, statements).await?;
    Ok(plan.outcomes)
}

async fn read_current(conn: &mut SqliteConnection, ops: &[WriteOp]) -> Result<CurrentVersions, BulkFailure> {
    let keys: Vec<_> = group::to_read(ops).collect();
    let mut current = CurrentVersions::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        // `CROSS JOIN` keeps the keys as the outer loop: one probe of the (type, id) index each.
        let sql = format!(
            "SELECT r.rid, r.type, r.id, r.version_id, r.deleted FROM (VALUES {}) k \
             CROSS JOIN resource r ON r.type = k.column1 AND r.id = k.column2",
            placeholders(chunk.len(), 2)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == ROWS_PER_STATEMENT);
        for (resource_type, id) in chunk {
            query = query.bind(resource_type.as_str()).bind(id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let found = Current {
                rid: row.get(0),
                version_id: row.get(3),
                deleted: row.get::<i64, _>(4) != 0,
            };
            group::record_current(&mut current, row.get(1), row.get(2), found);
        }
    }
    Ok(current)
}

/// Runs `statements` in order, binding each next statement while SQLite runs the one before:
/// the connection's worker thread executes statement n while this task builds statement n + 1
/// (binding a Bundle's values took a third as long as executing them).
async fn run_pipelined(
    conn: &mut SqliteConnection,
    mut statements: impl Iterator<Item = SqliteQuery>,
) -> Result<(), BulkFailure> {
    let mut next = statements.next();
    while let Some(statement) = next.take() {
        // `join!` polls the execution first, which hands the statement to the worker thread.
        let (executed, built) = tokio::join!(statement.execute(&mut *conn), async { statements.next() });
        executed?;
        next = built;
    }
    Ok(())
}

/// The `resource` rows (a new rid is inserted, an existing one replaced), then the history rows.
fn version_statements<'a>(plan: &'a GroupPlan<'a>) -> impl Iterator<Item = SqliteQuery> + 'a {
    let now = plan.now.as_micros();
    let current = chunked_inserts(
        "INSERT OR FAIL INTO resource (rid, type, id, version_id, last_updated, deleted, content)".into(),
        7,
        " ON CONFLICT (rid) DO UPDATE SET version_id = excluded.version_id, \
         last_updated = excluded.last_updated, deleted = excluded.deleted, content = excluded.content",
        &plan.versions,
        move |query, v: &VersionRow<'_>| {
            query
                .bind(v.rid)
                .bind(v.resource_type.as_str())
                .bind(v.id.as_str())
                .bind(v.version_id)
                .bind(now)
                .bind(i64::from(v.content.is_none()))
                .bind(v.content.as_ref().map(content_text))
        },
    );
    let history = chunked_inserts(
        "INSERT OR FAIL INTO resource_history (seq, type, id, version_id, last_updated, method, content)".into(),
        7,
        "",
        &plan.versions,
        move |query, v: &VersionRow<'_>| {
            query
                .bind(v.seq)
                .bind(v.resource_type.as_str())
                .bind(v.id.as_str())
                .bind(v.version_id)
                .bind(now)
                .bind(v.method.as_str())
                .bind(v.content.as_ref().map(content_text))
        },
    );
    current.chain(history)
}

/// The owners of the new versions: listed, and for deletes those of the version deleted.
fn owner_statements<'a>(plan: &'a GroupPlan<'a>) -> impl Iterator<Item = SqliteQuery> + 'a {
    let listed = chunked_inserts(
        "INSERT OR FAIL INTO history_owner (patient, seq)".into(),
        2,
        "",
        &plan.owners,
        |query, (patient, seq): &(String, i64)| query.bind(patient.as_str()).bind(*seq),
    );
    let inherited = plan.inherited_owners.chunks(ROWS_PER_STATEMENT).map(|chunk| {
        let sql = format!(
            "INSERT OR FAIL INTO history_owner (patient, seq) SELECT o.patient, d.column1 FROM (VALUES {}) d \
             CROSS JOIN resource_history p ON p.type = d.column2 AND p.id = d.column3 AND p.version_id = d.column4 \
             JOIN history_owner o ON o.seq = p.seq",
            placeholders(chunk.len(), 4)
        );
        let query = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == ROWS_PER_STATEMENT);
        chunk
            .iter()
            .fold(query, |query, (seq, resource_type, id, deleted_version)| {
                query
                    .bind(*seq)
                    .bind(resource_type.as_str())
                    .bind(id.as_str())
                    .bind(*deleted_version)
            })
    });
    listed.chain(inherited)
}

/// Deletes of the old index rows of `rids`, from every index table.
fn removal_statements(rids: &[i64]) -> impl Iterator<Item = SqliteQuery> + '_ {
    rids.chunks(ROWS_PER_STATEMENT).flat_map(|chunk| {
        let list = vec!["?"; chunk.len()].join(", ");
        INDEX_TABLES.iter().map(move |table| {
            let sql = format!("DELETE FROM {} WHERE rid IN ({list})", table.name);
            let query = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == ROWS_PER_STATEMENT);
            chunk.iter().fold(query, |query, rid| query.bind(*rid))
        })
    })
}

fn index_statements<'a>(
    table: &'static IndexTable,
    rows: &'a [(i64, &'a IndexRow)],
) -> impl Iterator<Item = SqliteQuery> + 'a {
    let columns: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
    let head = format!(
        "INSERT OR FAIL INTO {} (rid, param, {}, grp)",
        table.name,
        columns.join(", ")
    );
    let bind = |query: SqliteQuery, (rid, row): &(i64, &IndexRow)| {
        let query = query.bind(*rid).bind(row.param_id);
        let query = fold_cells(&row.value, query, |query, cell| match cell {
            Cell::Text(text) => query.bind(text),
            Cell::Int(n) => query.bind(n),
            Cell::Real(x) => query.bind(x),
        });
        query.bind(row.group.map(i64::from))
    };
    chunked_inserts(head, columns.len() + 3, "", rows, bind)
}

/// A query whose text it owns (the SQL is built here), so it borrows nothing.
type SqliteQuery = Query<'static, Sqlite, SqliteArguments>;

/// `head VALUES (…), (…) tail` over `rows`, `ROWS_PER_STATEMENT` at a time, `bind` binding the
/// `width` values of one row; each statement is built when the iterator reaches it.
fn chunked_inserts<'a, T>(
    head: String,
    width: usize,
    tail: &'static str,
    rows: &'a [T],
    bind: impl Fn(SqliteQuery, &'a T) -> SqliteQuery + 'a,
) -> impl Iterator<Item = SqliteQuery> + 'a {
    rows.chunks(ROWS_PER_STATEMENT).map(move |chunk| {
        let sql = format!("{head} VALUES {}{tail}", placeholders(chunk.len(), width));
        // A full chunk's text recurs and stays prepared; a last, shorter one is prepared once.
        let query = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == ROWS_PER_STATEMENT);
        chunk.iter().fold(query, &bind)
    })
}

/// `(?, ?), (?, ?), …`: `rows` tuples of `width` placeholders.
fn placeholders(rows: usize, width: usize) -> String {
    let tuple = format!("({})", vec!["?"; width].join(", "));
    vec![tuple.as_str(); rows].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_make_rows_of_tuples() {
        assert_eq!(placeholders(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(placeholders(1, 1), "(?)");
    }
}
