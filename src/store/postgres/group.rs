//! Bulk group writes on PostgreSQL (see `store::group`), inside the group's transaction: each
//! table's rows travel as one array per column and are unpacked by `unnest`, so a Bundle of
//! thousands of entries is a handful of statements, not thousands.
//!
//! Concurrent writers: the current rows of the resources the group updates or deletes are read
//! `FOR UPDATE`, so their versions cannot move before the group commits (the compare-and-set of
//! the one-by-one path, held for the whole transaction). New resources take rids from the
//! table's sequence, new versions positions in the transaction (see "History positions" in
//! `store::postgres`). A create that meets a row another writer inserted meanwhile fails with a
//! unique violation, and the group is written again one by one, which handles that race. A row
//! whose current version a later transaction wrote (it committed while this one waited for its
//! lock) cannot be replaced by this one: the group restarts in a new transaction.

use super::super::group::{self, BulkFailure, Current, CurrentVersions, GroupPlan};
use super::super::index::{Cell, INDEX_TABLES, IndexTable, fold_cells};
use super::super::{WriteOp, Written, content_text};
use super::TRANSACTION_ID;
use crate::model::Instant;
use crate::search::IndexRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

/// Writes `ops` (which `group::can_write_in_bulk`) inside the open transaction on `conn`.
pub(super) async fn write(conn: &mut PgConnection, ops: &[WriteOp]) -> Result<Vec<Option<Written>>, BulkFailure> {
    let current = read_current(conn, ops).await?;
    let new_rids: Vec<i64> = match group::new_resource_count(ops, &current) {
        0 => Vec::new(),
        count => {
            sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('resource', 'rid')) FROM generate_series(1, $1)")
                .bind(count as i64)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    // A bulk write is the first of its transaction (it runs alone in one), so its versions take
    // places 0, 1, 2, … (see "History positions").
    let first_position: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "WITH tx AS ({TRANSACTION_ID}) SELECT tx.xid << 20 FROM tx"
    )))
    .fetch_one(&mut *conn)
    .await?;
    let plan = group::plan(
        ops,
        &current,
        &mut new_rids.into_iter(),
        &mut (first_position..),
        Instant::now(),
    )
    .map_err(BulkFailure::Refused)?;
    write_versions(conn, &plan).await?;
    if !plan.replaced.is_empty() {
        for table in &INDEX_TABLES {
            let sql = format!("DELETE FROM {} WHERE rid = ANY($1::bigint[])", table.name);
            sqlx::query(AssertSqlSafe(sql))
                .bind(&plan.replaced)
                .execute(&mut *conn)
                .await?;
        }
    }
    for (table, rows) in INDEX_TABLES.iter().zip(&plan.index) {
        insert_index_rows(conn, table, rows).await?;
    }
    write_owners(conn, &plan).await?;
    Ok(plan.outcomes)
}

async fn read_current(conn: &mut PgConnection, ops: &[WriteOp]) -> Result<CurrentVersions, BulkFailure> {
    let (types, ids): (Vec<&str>, Vec<&str>) = group::to_read(ops)
        .map(|(resource_type, id)| (resource_type.as_str(), id.as_str()))
        .unzip();
    let mut current = CurrentVersions::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(current);
    }
    // Locked in rid order, so two groups locking some of the same rows wait rather than deadlock.
    let rows = sqlx::query(
        "SELECT r.rid, r.type, r.id, r.version_id, r.deleted \
         FROM unnest($1::text[], $2::text[]) AS k(type, id) \
         JOIN resource r ON r.type = k.type AND r.id = k.id \
         ORDER BY r.rid FOR UPDATE OF r",
    )
    .bind(&types)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let found = Current {
            rid: row.get(0),
            version_id: row.get(3),
            deleted: row.get(4),
        };
        group::record_current(&mut current, row.get(1), row.get(2), found);
    }
    Ok(current)
}

/// The `resource` rows (a new rid inserted, an existing one replaced, each stamped with the
/// transaction) and the history rows at their positions, in one statement. A replaced row whose
/// current version a later transaction wrote is left alone, and the group restarts.
async fn write_versions(conn: &mut PgConnection, plan: &GroupPlan<'_>) -> Result<(), BulkFailure> {
    let versions = &plan.versions;
    let rids: Vec<i64> = versions.iter().map(|v| v.rid).collect();
    let seqs: Vec<i64> = versions.iter().map(|v| v.seq).collect();
    let types: Vec<&str> = versions.iter().map(|v| v.resource_type.as_str()).collect();
    let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
    let version_ids: Vec<i64> = versions.iter().map(|v| v.version_id).collect();
    let methods: Vec<&str> = versions.iter().map(|v| v.method.as_str()).collect();
    let contents: Vec<Option<&str>> = versions.iter().map(|v| v.content.as_ref().map(content_text)).collect();
    let written: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "WITH tx AS ({TRANSACTION_ID}), \
         v AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], \
             $7::text[]) AS v(rid, seq, type, id, version_id, method, content)), \
         current AS (INSERT INTO resource (rid, type, id, version_id, last_updated, deleted, content, txid) \
             SELECT rid, type, id, version_id, $8, content IS NULL, content::jsonb, tx.xid FROM v, tx \
             ON CONFLICT (rid) DO UPDATE SET version_id = EXCLUDED.version_id, \
             last_updated = EXCLUDED.last_updated, deleted = EXCLUDED.deleted, content = EXCLUDED.content, \
             txid = EXCLUDED.txid WHERE resource.txid <= EXCLUDED.txid RETURNING 1), \
         history AS (INSERT INTO resource_history (seq, type, id, version_id, last_updated, method, content) \
             SELECT seq, type, id, version_id, $8, method, content::json FROM v) \
         SELECT count(*) FROM current"
    )))
    .bind(&rids)
    .bind(&seqs)
    .bind(&types)
    .bind(&ids)
    .bind(&version_ids)
    .bind(&methods)
    .bind(&contents)
    .bind(plan.now.datetime())
    .fetch_one(&mut *conn)
    .await?;
    if written != versions.len() as i64 {
        return Err(BulkFailure::Restart);
    }
    Ok(())
}

/// The owners of the new versions: those listed, and for each delete those of the version it
/// deletes.
async fn write_owners(conn: &mut PgConnection, plan: &GroupPlan<'_>) -> Result<(), BulkFailure> {
    if !plan.owners.is_empty() {
        let (patients, seqs): (Vec<&str>, Vec<i64>) = plan.owners.iter().map(|(p, seq)| (p.as_str(), *seq)).unzip();
        sqlx::query("INSERT INTO history_owner (patient, seq) SELECT unnest($1::text[]), unnest($2::bigint[])")
            .bind(&patients)
            .bind(&seqs)
            .execute(&mut *conn)
            .await?;
    }
    if !plan.inherited_owners.is_empty() {
        let seqs: Vec<i64> = plan.inherited_owners.iter().map(|o| o.0).collect();
        let types: Vec<&str> = plan.inherited_owners.iter().map(|o| o.1.as_str()).collect();
        let ids: Vec<&str> = plan.inherited_owners.iter().map(|o| o.2.as_str()).collect();
        let versions: Vec<i64> = plan.inherited_owners.iter().map(|o| o.3).collect();
        sqlx::query(
            "INSERT INTO history_owner (patient, seq) SELECT o.patient, d.seq \
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS d(seq, type, id, version_id) \
             JOIN resource_history p ON p.type = d.type AND p.id = d.id AND p.version_id = d.version_id \
             JOIN history_owner o ON o.seq = p.seq",
        )
        .bind(&seqs)
        .bind(&types)
        .bind(&ids)
        .bind(&versions)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A column of index values, bound as one PostgreSQL array.
enum Column<'a> {
    Text(Vec<Option<&'a str>>),
    Int(Vec<i64>),
    Real(Vec<f64>),
}

async fn insert_index_rows(
    conn: &mut PgConnection,
    table: &IndexTable,
    rows: &[(i64, &IndexRow)],
) -> Result<(), BulkFailure> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut columns: Vec<Column> = table
        .columns
        .iter()
        .map(|(_, pg_type)| match *pg_type {
            "text" => Column::Text(Vec::with_capacity(rows.len())),
            "bigint" => Column::Int(Vec::with_capacity(rows.len())),
            _ => Column::Real(Vec::with_capacity(rows.len())),
        })
        .collect();
    for (_, row) in rows {
        fold_cells(&row.value, 0, |i, cell| {
            match (&mut columns[i], cell) {
                (Column::Text(values), Cell::Text(text)) => values.push(text),
                (Column::Int(values), Cell::Int(n)) => values.push(n),
                (Column::Real(values), Cell::Real(x)) => values.push(x),
                _ => unreachable!("a value's cells have its table's column types"),
            }
            i + 1
        });
    }
    let rids: Vec<i64> = rows.iter().map(|(rid, _)| *rid).collect();
    let params: Vec<i64> = rows.iter().map(|(_, row)| row.param_id).collect();
    let groups: Vec<Option<i32>> = rows
        .iter()
        .map(|(_, row)| row.group.map(|g| i32::try_from(g).unwrap_or(i32::MAX)))
        .collect();
    let names: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
    let arrays: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, pg_type))| format!("unnest(${}::{pg_type}[])", i + 3))
        .collect();
    // `unnest` in the select list streams the rows; in FROM it would first copy them all into a
    // tuple store.
    let sql = format!(
        "INSERT INTO {} (rid, param, {}, grp) \
         SELECT unnest($1::bigint[]), unnest($2::bigint[]), {}, unnest(${}::integer[])",
        table.name,
        names.join(", "),
        arrays.join(", "),
        table.columns.len() + 3
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(&rids).bind(&params);
    for column in &columns {
        query = match column {
            Column::Text(values) => query.bind(values),
            Column::Int(values) => query.bind(values),
            Column::Real(values) => query.bind(values),
        };
    }
    query.bind(&groups).execute(&mut *conn).await?;
    Ok(())
}
