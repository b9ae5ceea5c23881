//! Bulk group writes on SQLite (see `store::group`): inside the writer's open transaction, one
//! query reads the current rows of the resources the group updates or deletes, and each table's
//! rows go in multi-row `INSERT … VALUES` statements of up to `ROWS_PER_STATEMENT` rows.
//!
//! Rids are assigned here, counting up from the largest stored: the writer connection is the only
//! writer and holds the write lock, and rows of `resource` are never removed, so this is the rid
//! SQLite itself would have chosen.
//!
//! The statements are `INSERT OR FAIL`. With the default (`ABORT`), SQLite keeps a statement
//! journal so it can undo half a statement, copying every page a statement first touches; that
//! was a fifth of the writer's time. Undoing half a statement is never needed here: any failure
//! rolls the whole transaction back.

use super::super::group::{self, BulkFailure, Current, CurrentVersions, GroupPlan, VersionRow};
use super::super::index::{Cell, INDEX_TABLES, IndexTable, fold_cells};
use super::super::{WriteOp, Written, content_text};
use crate::model::{Instant, ResourceType};
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
    let first_rid: i64 = sqlx::query_scalar("SELECT coalesce(max(rid), 0) + 1 FROM resource")
        .fetch_one(&mut *conn)
        .await?;
    // Taken inside the write lock, so times never run backwards along the history sequence.
    let now = Instant::now();
    let plan = group::plan(ops, &current, &mut (first_rid..), now).map_err(BulkFailure::Refused)?;
    write_versions(conn, &plan).await?;
    remove_index_rows(conn, &plan.replaced).await?;
    for (table, rows) in INDEX_TABLES.iter().zip(&plan.index) {
        insert_index_rows(conn, table, rows).await?;
    }
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
            let type_name: String = row.get(1);
            let Some(resource_type) = ResourceType::parse(&type_name) else {
                continue;
            };
            current.insert(
                (resource_type, row.get(2)),
                Current {
                    rid: row.get(0),
                    version_id: row.get(3),
                    deleted: row.get::<i64, _>(4) != 0,
                },
            );
        }
    }
    Ok(current)
}

/// The `resource` rows (a new rid is inserted, an existing one replaced) and the history rows.
async fn write_versions(conn: &mut SqliteConnection, plan: &GroupPlan<'_>) -> Result<(), BulkFailure> {
    let now = plan.now.as_micros();
    let bind_current = |query: SqliteQuery, v: &VersionRow<'_>| {
        query
            .bind(v.rid)
            .bind(v.resource_type.as_str())
            .bind(v.id.as_str())
            .bind(v.version_id)
            .bind(now)
            .bind(i64::from(v.content.is_none()))
            .bind(v.content.as_ref().map(content_text))
    };
    insert_rows(
        conn,
        "INSERT OR FAIL INTO resource (rid, type, id, version_id, last_updated, deleted, content)",
        7,
        " ON CONFLICT (rid) DO UPDATE SET version_id = excluded.version_id, \
         last_updated = excluded.last_updated, deleted = excluded.deleted, content = excluded.content",
        &plan.versions,
        bind_current,
    )
    .await?;
    let bind_history = |query: SqliteQuery, v: &VersionRow<'_>| {
        query
            .bind(v.resource_type.as_str())
            .bind(v.id.as_str())
            .bind(v.version_id)
            .bind(now)
            .bind(v.method.as_str())
            .bind(v.content.as_ref().map(content_text))
    };
    insert_rows(
        conn,
        "INSERT OR FAIL INTO resource_history (type, id, version_id, last_updated, method, content)",
        6,
        "",
        &plan.versions,
        bind_history,
    )
    .await
}

async fn remove_index_rows(conn: &mut SqliteConnection, rids: &[i64]) -> Result<(), BulkFailure> {
    for chunk in rids.chunks(ROWS_PER_STATEMENT) {
        let list = vec!["?"; chunk.len()].join(", ");
        for table in &INDEX_TABLES {
            let sql = format!("DELETE FROM {} WHERE rid IN ({list})", table.name);
            let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for rid in chunk {
                query = query.bind(*rid);
            }
            query.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

async fn insert_index_rows(
    conn: &mut SqliteConnection,
    table: &IndexTable,
    rows: &[(i64, &IndexRow)],
) -> Result<(), BulkFailure> {
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
    insert_rows(conn, &head, columns.len() + 3, "", rows, bind).await
}

/// A query whose text it owns (the SQL is built here), so it borrows nothing.
type SqliteQuery = Query<'static, Sqlite, SqliteArguments>;

/// Runs `head VALUES (…), (…) tail` over `rows`, `ROWS_PER_STATEMENT` at a time, `bind` binding
/// the `width` values of one row.
async fn insert_rows<'q, T>(
    conn: &mut SqliteConnection,
    head: &str,
    width: usize,
    tail: &str,
    rows: &'q [T],
    bind: impl Fn(SqliteQuery, &'q T) -> SqliteQuery,
) -> Result<(), BulkFailure> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!("{head} VALUES {}{tail}", placeholders(chunk.len(), width));
        // A full chunk's text recurs and stays prepared; a last, shorter one is prepared once.
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == ROWS_PER_STATEMENT);
        for row in chunk {
            query = bind(query, row);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
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
