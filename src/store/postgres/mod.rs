//! The PostgreSQL store: current content as `jsonb`, every version's exact text as `json`, times
//! as `timestamptz`, a connection pool.
//!
//! Versions stay contiguous under concurrency because a new version is written only by a
//! compare-and-set on the current one (`UPDATE … WHERE version_id = n`): of concurrent writers of
//! one resource exactly one moves it from n to n+1, and the others read again and retry. Two
//! creates racing on one client-chosen id meet in `INSERT … ON CONFLICT DO NOTHING`; the loser
//! retries as an update. Each write is a single statement that updates `resource`, appends to
//! `resource_history` and replaces the search-index rows together (data-modifying CTEs), so it is
//! atomic without an explicit transaction. The CTEs share one snapshot, so the DELETE of old index
//! rows cannot see, and so never removes, the rows the same statement inserts.
//!
//! History positions. A history page must never be passed by a version that commits later with
//! a smaller number: a client paging through `_history` (or following it for changes) would miss
//! that version for good. Numbers from a sequence do not give that, since transactions take them
//! in one order and commit in another. So a version's `seq` is a position: the id of the
//! transaction that wrote it (`pg_current_xact_id()`, an xid8) times 2^20, plus its place in that
//! transaction (`position`: 0 for a single write, counted by a group). A page of type or system
//! history shows only positions below every transaction still writing to this database
//! (`COMMITTED_BOUND`, read before the page in a statement of its own), so whatever commits later
//! lands after it. And a resource's versions keep their order: a version is written only by a
//! transaction later than the one that wrote the version it replaces (`resource.txid`); a group
//! whose transaction began before that one committed (it took its id locking other rows first) is
//! run again in a new transaction.

mod group;

use super::group::{self as store_group, BulkFailure};
use super::index::{INDEX_TABLES, IndexPayload, insert_rows_sql};
use super::owners::{self, OwnerBackfill, VersionOwners};
use super::rules::{self, CurrentRow, Decision, Owners};
use super::sql::{self, Dialect, Sql, SqlValue};
use super::{
    AuditTaken, BoxFuture, DatabaseLock, FoundResource, GroupWriteError, HistoryCursor, HistoryEntry, HistoryQuery,
    HistoryRow, HistoryScope, Method, PendingAudit, Store, StoredVersion, WriteOp, Written, audit_pending,
    content_text, migrate, stamp_and_serialise,
};
use crate::error::{Error, Result};
use crate::model::{Id, Instant, ResourceType, VersionId};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Row};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

/// Key of the advisory lock that serialises migrations between servers starting together.
const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(4242004001)";

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str, max_connections: u32) -> Result<PostgresStore> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::internal(format!("bad PostgreSQL URL: {e}")))?
            .application_name("fhir-server")
            // A search's SQL is prepared once and run with many values. After five runs
            // PostgreSQL may switch to a generic plan that ignores the values, and a plan that
            // does not know `Patient` is a small type or a date range is narrow can be several
            // times slower (a bounded count went from 7 to 20 ms). Planning each run costs well
            // under a millisecond. JIT compilation pays off only for long analytic queries; for
            // these it adds latency whenever a cost estimate crosses its threshold.
            .options([("plan_cache_mode", "force_custom_plan"), ("jit", "off")]);
        // No ping before each acquire (a network round trip per request): a broken connection
        // fails its query, which answers 503, and the pool replaces it.
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        migrate::run(&pool, migrate::POSTGRES, "BEGIN", Some(MIGRATION_LOCK)).await?;
        Ok(PostgresStore { pool })
    }
}

/// Why `apply` stopped without an answer.
enum ApplyError {
    Failed(Error),
    /// In a group: the resource's current version was written by a transaction later than the
    /// group's own, so the group must run again in a new transaction (see "History positions").
    Restart,
}

impl From<Error> for ApplyError {
    fn from(e: Error) -> Self {
        ApplyError::Failed(e)
    }
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Failed(e.into())
    }
}

/// Applies one write on `conn`, as `rules::decide` decides. Each statement is atomic on its own
/// (autocommit), so a single write needs no explicit transaction: a create is one statement; an
/// update or delete reads the current version and then compare-and-sets it, deciding again when
/// another writer got there first. A group of writes runs the same statements inside one
/// transaction (`write_all`), each at its `place` in it (`None`: a single write); at READ
/// COMMITTED each statement sees the latest committed versions, so the retries work there too.
async fn apply(
    conn: &mut PgConnection,
    op: &WriteOp,
    place: Option<i64>,
) -> std::result::Result<Option<Written>, ApplyError> {
    let in_group = place.is_some();
    let place = place.unwrap_or(0);
    let (resource_type, id) = op.target();
    let id = id.clone();
    if let WriteOp::Reindex { version_id, index, .. } = op {
        // The rule (`Decision::Reindex` when the version is still current and not deleted) is
        // checked by the statement itself, where it locks the row.
        return Ok(reindex(conn, resource_type, &id, *version_id, index).await?);
    }
    let owners = rules::owners(op);
    let owner_sql = OwnerSql::of(&owners);
    let owners = match owners {
        Owners::Patients(patients) => serde_json::Value::from(patients).to_string(),
        Owners::OfDeletedVersion => String::new(),
    };
    let mut failed_on = None;
    let (resource, index) = match op {
        WriteOp::Create { resource, index, .. } | WriteOp::Update { resource, index, .. } => {
            (Some(resource), index.as_slice())
        }
        WriteOp::Delete { .. } | WriteOp::Reindex { .. } => (None, [].as_slice()),
    };
    let payload = IndexPayload::from_rows(index);
    for _ in 0..MAX_ATTEMPTS {
        // A create has a new id: it reads nothing, and meets a taken id in its insert.
        let current = match op {
            WriteOp::Create { .. } => None,
            _ => current_version(conn, resource_type, &id).await?,
        };
        if in_group && current.is_some_and(|row| Some(row.version_id) == failed_on) {
            // The version did not move, so the compare-and-set failed on the position: this
            // transaction is older than the one that wrote the current version.
            return Err(ApplyError::Restart);
        }
        let version = match rules::decide(op, current)? {
            Decision::Write(version) => version,
            Decision::NothingToDelete | Decision::Reindex | Decision::Stale => return Ok(None),
        };
        let now = Instant::now();
        let content = resource.map(|r| stamp_and_serialise(r.clone(), &id, version.version_id, now));
        let rows = VersionRows {
            payload: &payload,
            owners: (owner_sql, &owners),
            place,
        };
        let written = match current {
            // Only a create or an update decides a first version, and both carry a resource.
            None => {
                let content = content.as_ref().expect("a first version has content");
                insert_first_version(conn, resource_type, &id, now, content, &rows, version.method).await?
            }
            Some(row) => {
                failed_on = Some(row.version_id);
                let next = (row.version_id, version.version_id);
                compare_and_set(
                    conn,
                    resource_type,
                    &id,
                    next,
                    now,
                    version.method,
                    content.as_ref(),
                    &rows,
                )
                .await?
            }
        };
        if written {
            return Ok(Some(Written::new(resource_type, id, version, now, content)));
        }
        if let WriteOp::Create { .. } = op {
            return Err(Error::conflict(format!("{resource_type}/{id} already exists")).into());
        }
        // Another writer moved first (or created the resource meanwhile): decide again.
    }
    Err(too_much_contention(resource_type, &id).into())
}

/// New index rows for the current version `version_id` of `resource_type/id`, if it still is.
async fn reindex(
    conn: &mut PgConnection,
    resource_type: ResourceType,
    id: &Id,
    version_id: VersionId,
    index: &[crate::search::IndexRow],
) -> Result<Option<Written>> {
    let mut query = sqlx::query(AssertSqlSafe(REINDEX.as_str()))
        .bind(resource_type.as_str())
        .bind(id.as_str())
        .bind(version_id);
    for table in &IndexPayload::from_rows(index).tables {
        query = query.bind(table.as_str());
    }
    let reindexed: i64 = query.fetch_one(&mut *conn).await?.get(0);
    Ok((reindexed == 1).then(|| Written::reindexed(resource_type, id.clone(), version_id, Instant::now())))
}

/// Every failed attempt means another write to the same resource succeeded, so the system as a
/// whole always progresses; this bound only keeps one unlucky request from waiting forever.
const MAX_ATTEMPTS: usize = 1000;

fn too_much_contention(resource_type: ResourceType, id: &Id) -> Error {
    Error::conflict(format!(
        "{resource_type}/{id} is being written by many clients at once; try again"
    ))
}

/// The writing transaction's id as a bigint, for the `tx` CTE (see "History positions").
const TRANSACTION_ID: &str = "SELECT pg_current_xact_id()::text::bigint AS xid";

/// The position of a version the transaction `tx` writes, `place` (a placeholder) being how many
/// versions it wrote before: its id times 2^20, plus that place. A single write is a transaction
/// of its own, at place 0; a group's writes count their places. Each transaction writes at most
/// 2^20 versions (`app` keeps Bundles and conditional deletes below that).
fn position(place: &str) -> String {
    format!("(tx.xid << 20) + {place}")
}

/// How a version's owners are written (see `rules::Owners`).
#[derive(Clone, Copy)]
enum OwnerSql {
    /// None to write: the statement has no such part.
    None,
    /// The patients in a JSON array bound last.
    Listed,
    /// A delete's: those of the version it deletes.
    Inherited,
}

impl OwnerSql {
    fn of(owners: &Owners) -> OwnerSql {
        match owners {
            Owners::Patients(patients) if patients.is_empty() => OwnerSql::None,
            Owners::Patients(_) => OwnerSql::Listed,
            Owners::OfDeletedVersion => OwnerSql::Inherited,
        }
    }
}

/// Version 1: $1 type, $2 id, $3 time, $4 content, $5 method, $6 its place in the transaction,
/// $7… one JSON payload per index table, and (`OwnerSql::Listed`) the owners (a JSON array of
/// patient ids) last. $4 is bound as text and cast twice: jsonb for the current row, json (exact
/// text) for history. Answers how many resources it created (0 when the id was taken).
fn insert_first_version_sql(owners: OwnerSql) -> String {
    let position = position("$6");
    let mut sql = format!(
        "WITH tx AS ({TRANSACTION_ID}), \
         current AS ( \
             INSERT INTO resource (type, id, version_id, last_updated, deleted, content, txid) \
             SELECT $1, $2, 1, $3, FALSE, $4::jsonb, tx.xid FROM tx ON CONFLICT (type, id) DO NOTHING RETURNING rid), \
         history AS (INSERT INTO resource_history (seq, type, id, version_id, last_updated, method, content) \
             SELECT {position}, $1, $2, 1, $3, $5, $4::json FROM current, tx RETURNING seq)"
    );
    append_index_inserts(&mut sql, 7);
    if let OwnerSql::Listed = owners {
        let owners = 7 + INDEX_TABLES.len();
        sql.push_str(&format!(
            ", owners AS (INSERT INTO history_owner (patient, seq) \
             SELECT o, history.seq FROM history, json_array_elements_text(${owners}::json) o)"
        ));
    }
    sql.push_str(" SELECT count(*) FROM current");
    sql
}

static INSERT_FIRST_VERSION: LazyLock<String> = LazyLock::new(|| insert_first_version_sql(OwnerSql::None));
static INSERT_FIRST_VERSION_OWNED: LazyLock<String> = LazyLock::new(|| insert_first_version_sql(OwnerSql::Listed));

/// Version `$8` if `$3` is still current and was written by an earlier transaction: $1 type, $2
/// id, $4 time, $5 deleted, $6 content (NULL for a delete), $7 method, $9 its place in the
/// transaction, $10… one JSON payload per index table, and (`OwnerSql::Listed`) the owners last;
/// a delete (`OwnerSql::Inherited`) takes those of version $3.
fn compare_and_set_sql(owners: OwnerSql) -> String {
    let position = position("$9");
    let mut sql = format!(
        "WITH tx AS ({TRANSACTION_ID}), \
         current AS ( \
             UPDATE resource SET version_id = $8, last_updated = $4, deleted = $5, content = $6::jsonb, txid = tx.xid \
             FROM tx WHERE type = $1 AND id = $2 AND version_id = $3 AND resource.txid <= tx.xid RETURNING rid), \
         history AS (INSERT INTO resource_history (seq, type, id, version_id, last_updated, method, content) \
             SELECT {position}, $1, $2, $8, $4, $7, $6::json FROM current, tx RETURNING seq)"
    );
    append_index_deletes(&mut sql);
    append_index_inserts(&mut sql, 10);
    match owners {
        OwnerSql::None => {}
        OwnerSql::Listed => {
            let owners = 10 + INDEX_TABLES.len();
            sql.push_str(&format!(
                ", owners AS (INSERT INTO history_owner (patient, seq) \
                 SELECT o, history.seq FROM history, json_array_elements_text(${owners}::json) o)"
            ));
        }
        OwnerSql::Inherited => sql.push_str(
            ", owners AS (INSERT INTO history_owner (patient, seq) \
             SELECT p_owner.patient, history.seq FROM history, resource_history p \
             JOIN history_owner p_owner ON p_owner.seq = p.seq \
             WHERE p.type = $1 AND p.id = $2 AND p.version_id = $3)",
        ),
    }
    sql.push_str(" SELECT count(*) FROM current");
    sql
}

static COMPARE_AND_SET: LazyLock<String> = LazyLock::new(|| compare_and_set_sql(OwnerSql::None));
static COMPARE_AND_SET_OWNED: LazyLock<String> = LazyLock::new(|| compare_and_set_sql(OwnerSql::Listed));
static COMPARE_AND_SET_TOMBSTONE: LazyLock<String> = LazyLock::new(|| compare_and_set_sql(OwnerSql::Inherited));

/// New index rows for `$1/$2` if its current version is still `$3` and not deleted; $4… one JSON
/// payload per index table. Answers 1 when it re-indexed, 0 when the resource moved on.
static REINDEX: LazyLock<String> = LazyLock::new(|| {
    let mut sql = String::from(
        "WITH current AS (SELECT rid FROM resource WHERE type = $1 AND id = $2 AND version_id = $3 \
         AND NOT deleted FOR UPDATE)",
    );
    append_index_deletes(&mut sql);
    append_index_inserts(&mut sql, 4);
    sql.push_str(" SELECT count(*) FROM current");
    sql
});

/// CTEs deleting the index rows of the resource selected by the `current` CTE.
fn append_index_deletes(sql: &mut String) {
    for (i, table) in INDEX_TABLES.iter().enumerate() {
        sql.push_str(&format!(
            ", old{i} AS (DELETE FROM {} WHERE rid IN (SELECT rid FROM current))",
            table.name
        ));
    }
}

fn append_index_inserts(sql: &mut String, first_placeholder: usize) {
    for (i, table) in INDEX_TABLES.iter().enumerate() {
        let payload = format!("${}", first_placeholder + i);
        let insert = insert_rows_sql(Dialect::Postgres, table, "current src", &payload);
        sql.push_str(&format!(", new{i} AS ({insert})"));
    }
}

/// Inserts version 1 with its history and index rows in one statement; false when (type, id)
/// already exists.
/// What a new version writes besides its resource and history rows, and where it goes in its
/// transaction.
struct VersionRows<'a> {
    payload: &'a IndexPayload,
    /// How the version's owners are written, and (`OwnerSql::Listed`) a JSON array of them.
    owners: (OwnerSql, &'a str),
    /// How many versions the transaction wrote before this one.
    place: i64,
}

async fn insert_first_version(
    conn: &mut PgConnection,
    resource_type: ResourceType,
    id: &Id,
    now: Instant,
    content: &Bytes,
    rows: &VersionRows<'_>,
    method: Method,
) -> Result<bool> {
    let sql = match rows.owners.0 {
        OwnerSql::Listed => &INSERT_FIRST_VERSION_OWNED,
        OwnerSql::None | OwnerSql::Inherited => &INSERT_FIRST_VERSION,
    };
    let mut query = sqlx::query(AssertSqlSafe(sql.as_str()))
        .bind(resource_type.as_str())
        .bind(id.as_str())
        .bind(now.datetime())
        .bind(content_text(content))
        .bind(method.as_str())
        .bind(rows.place);
    for table in &rows.payload.tables {
        query = query.bind(table.as_str());
    }
    if let OwnerSql::Listed = rows.owners.0 {
        query = query.bind(rows.owners.1);
    }
    let created: i64 = query.fetch_one(&mut *conn).await?.get(0);
    Ok(created == 1)
}

async fn current_version(conn: &mut PgConnection, resource_type: ResourceType, id: &Id) -> Result<Option<CurrentRow>> {
    let row = sqlx::query("SELECT version_id, deleted FROM resource WHERE type = $1 AND id = $2")
        .bind(resource_type.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| CurrentRow {
        version_id: r.get(0),
        deleted: r.get(1),
    }))
}

/// Writes version `next.1` (content `None` for a delete) only if `next.0` is still current:
/// current row, history row and index rows in one statement. False when another writer moved first.
#[allow(clippy::too_many_arguments)]
async fn compare_and_set(
    conn: &mut PgConnection,
    resource_type: ResourceType,
    id: &Id,
    next: (VersionId, VersionId),
    now: Instant,
    method: Method,
    content: Option<&Bytes>,
    rows: &VersionRows<'_>,
) -> Result<bool> {
    let (expected, version_id) = next;
    let sql = match rows.owners.0 {
        OwnerSql::None => &COMPARE_AND_SET,
        OwnerSql::Listed => &COMPARE_AND_SET_OWNED,
        OwnerSql::Inherited => &COMPARE_AND_SET_TOMBSTONE,
    };
    let mut query = sqlx::query(AssertSqlSafe(sql.as_str()))
        .bind(resource_type.as_str())
        .bind(id.as_str())
        .bind(expected)
        .bind(now.datetime())
        .bind(content.is_none())
        .bind(content.map(content_text))
        .bind(method.as_str())
        .bind(version_id)
        .bind(rows.place);
    for table in &rows.payload.tables {
        query = query.bind(table.as_str());
    }
    if let OwnerSql::Listed = rows.owners.0 {
        query = query.bind(rows.owners.1);
    }
    let written: i64 = query.fetch_one(&mut *conn).await?.get(0);
    Ok(written == 1)
}

fn with_binds(sql: &Sql) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    debug_assert_eq!(sql.dialect, Dialect::Postgres);
    let mut query = sqlx::query(AssertSqlSafe(sql.text.as_str())).persistent(sql.reusable);
    for value in &sql.binds {
        query = match value {
            SqlValue::Text(text) => query.bind(text.as_str()),
            SqlValue::Int(n) => query.bind(*n),
            SqlValue::Time(t) => query.bind(*t),
            SqlValue::Real(x) => query.bind(*x),
            SqlValue::Texts(list) => query.bind(list.as_slice()),
        };
    }
    query
}

fn stored_version(version_id: i64, last_updated: DateTime<Utc>, content: Option<String>) -> StoredVersion {
    StoredVersion {
        version_id,
        last_updated: Instant::from_datetime(last_updated),
        content: content.map(Bytes::from),
    }
}

/// The first position a history page may not show yet: that of the oldest transaction still
/// writing to this database (or, when none is, of the next transaction). Every version below it
/// has committed, and nothing can be written below it any more. Run in a statement of its own
/// before the page is read, so the page's snapshot is later: a transaction that ended in between
/// is visible to it. Transactions of other databases in the cluster do not hold it back.
async fn committed_bound(pool: &PgPool) -> Result<i64> {
    let oldest: i64 = sqlx::query_scalar(COMMITTED_BOUND).fetch_one(pool).await?;
    Ok(oldest << 20)
}

/// The smallest id (xid8) of a transaction of this database that holds one, or the next id to be
/// given. `pg_stat_activity` shows 32-bit ids: they take the epoch of the snapshot's next id, one
/// less when that would put them after it.
const COMMITTED_BOUND: &str = "\
    WITH s AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next), \
    a AS (SELECT backend_xid::text::bigint AS xid FROM pg_stat_activity \
          WHERE datname = current_database() AND backend_xid IS NOT NULL) \
    SELECT LEAST(s.next, COALESCE(min(CASE \
        WHEN (s.next & ~4294967295::bigint) + a.xid > s.next THEN (s.next & ~4294967295::bigint) + a.xid - 4294967296 \
        ELSE (s.next & ~4294967295::bigint) + a.xid END), s.next)) \
    FROM s LEFT JOIN a ON TRUE GROUP BY s.next";

/// A row of `sql::history_page`'s columns.
fn history_row(r: sqlx::postgres::PgRow) -> HistoryRow {
    HistoryRow {
        seq: r.get(0),
        resource_type: r.get(1),
        id: r.get(2),
        version_id: r.get(3),
        last_updated: Instant::from_datetime(r.get(4)),
        method: r.get(5),
        content: r.get(6),
    }
}

/// Session-level advisory locks held by one pooled connection. Dropping releases them: the
/// connection unlocks on a task of its own and goes back to the pool; if unlocking fails it is
/// closed instead, and the session's end releases the locks.
struct AdvisoryLocks(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl Drop for AdvisoryLocks {
    fn drop(&mut self) {
        let Some(mut conn) = self.0.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to unlock on: close the session, which releases its locks.
            drop(conn.detach());
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut *conn).await {
                tracing::warn!(error = %e, "could not release advisory locks; closing their connection");
                drop(conn.detach());
            }
        });
    }
}

/// The advisory lock key of conditional creates of `resource_type`: a stable 64-bit hash
/// (FNV-1a) of a name of our own, so that it is the same in every server process.
fn create_lock_key(resource_type: ResourceType) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "fhir-server conditional create "
        .bytes()
        .chain(resource_type.as_str().bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// How one attempt at a group failed.
enum GroupAttempt {
    Failed(GroupWriteError),
    /// Its transaction began before one whose versions it replaces committed (see "History
    /// positions"): a new transaction will succeed.
    Restart,
    /// Its claim changed fewer rows than expected: nothing was written.
    NotClaimed,
}

impl From<sqlx::Error> for GroupAttempt {
    fn from(e: sqlx::Error) -> Self {
        GroupAttempt::Failed(e.into())
    }
}

/// A statement a group's transaction runs first, which must change `expected` rows: the pending
/// audit records the group's AuditEvents are made from (`Store::store_pending_audit`).
struct Claim<'a> {
    sql: &'a Sql,
    expected: u64,
}

/// Runs `claim`, if any, in `tx`; false when it changed fewer rows than expected (another server
/// took some of them).
async fn claimed(tx: &mut PgConnection, claim: Option<&Claim<'_>>) -> std::result::Result<bool, GroupAttempt> {
    match claim {
        None => Ok(true),
        Some(claim) => Ok(with_binds(claim.sql).execute(&mut *tx).await?.rows_affected() == claim.expected),
    }
}

/// One attempt at writing `ops` in one transaction: in bulk when it can be (`store::group`), one
/// by one when it cannot or when the bulk write fails in the database.
async fn write_group(
    pool: &PgPool,
    ops: &[WriteOp],
    claim: Option<&Claim<'_>>,
) -> std::result::Result<Vec<Option<Written>>, GroupAttempt> {
    if store_group::can_write_in_bulk(ops) {
        let mut tx = pool.begin().await?;
        if !claimed(&mut tx, claim).await? {
            return Err(GroupAttempt::NotClaimed);
        }
        match group::write(&mut tx, ops).await {
            Ok(all) => {
                tx.commit().await?;
                return Ok(all);
            }
            // Dropping `tx` rolls it back.
            Err(BulkFailure::Refused(e)) => return Err(GroupAttempt::Failed(e)),
            Err(BulkFailure::Restart) => return Err(GroupAttempt::Restart),
            Err(BulkFailure::Database(e)) => {
                drop(tx);
                tracing::debug!(error = %e, "bulk write of a group failed; writing it one by one");
            }
        }
    }
    let mut tx = pool.begin().await?;
    if !claimed(&mut tx, claim).await? {
        return Err(GroupAttempt::NotClaimed);
    }
    let mut all = Vec::with_capacity(ops.len());
    // How many versions this transaction has written: the place of the next.
    let mut place = 0;
    for (index, op) in ops.iter().enumerate() {
        // On failure `tx` is dropped, which rolls every earlier write back.
        match apply(&mut tx, op, Some(place)).await {
            Ok(written) => {
                if written.is_some() && !matches!(op, WriteOp::Reindex { .. }) {
                    place += 1;
                }
                all.push(written);
            }
            Err(ApplyError::Restart) => return Err(GroupAttempt::Restart),
            Err(ApplyError::Failed(error)) => {
                return Err(GroupAttempt::Failed(GroupWriteError {
                    index: Some(index),
                    error,
                }));
            }
        }
    }
    tx.commit().await?;
    Ok(all)
}

impl Store for PostgresStore {
    fn backend_name(&self) -> &'static str {
        "postgresql"
    }

    fn read<'a>(&'a self, resource_type: ResourceType, id: &'a str) -> BoxFuture<'a, Result<Option<StoredVersion>>> {
        Box::pin(async move {
            // The newest history row is the current version, in its exact text (see the migration).
            let row = sqlx::query(
                "SELECT version_id, last_updated, content::text FROM resource_history \
                 WHERE type = $1 AND id = $2 ORDER BY version_id DESC LIMIT 1",
            )
            .bind(resource_type.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|r| stored_version(r.get(0), r.get(1), r.get(2))))
        })
    }

    fn vread<'a>(
        &'a self,
        resource_type: ResourceType,
        id: &'a str,
        version: VersionId,
    ) -> BoxFuture<'a, Result<Option<StoredVersion>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT version_id, last_updated, content::text FROM resource_history \
                 WHERE type = $1 AND id = $2 AND version_id = $3",
            )
            .bind(resource_type.as_str())
            .bind(id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|r| stored_version(r.get(0), r.get(1), r.get(2))))
        })
    }

    fn write(&self, op: WriteOp) -> BoxFuture<'_, Result<Option<Written>>> {
        // In its own task, so a client that disconnects cannot cancel a write half-way.
        let pool = self.pool.clone();
        Box::pin(async move {
            tokio::spawn(async move {
                let mut conn = pool.acquire().await?;
                match apply(&mut conn, &op, None).await {
                    Ok(written) => Ok(written),
                    Err(ApplyError::Failed(e)) => Err(e),
                    Err(ApplyError::Restart) => unreachable!("a single write is never asked to restart"),
                }
            })
            .await
            .map_err(|e| Error::internal(format!("write task failed: {e}")))?
        })
    }

    fn write_all(
        &self,
        ops: Vec<WriteOp>,
    ) -> BoxFuture<'_, std::result::Result<Vec<Option<Written>>, GroupWriteError>> {
        let pool = self.pool.clone();
        Box::pin(async move {
            tokio::spawn(async move {
                for _ in 0..MAX_ATTEMPTS {
                    match write_group(&pool, &ops, None).await {
                        Err(GroupAttempt::Restart) => continue,
                        Err(GroupAttempt::Failed(e)) => return Err(e),
                        Err(GroupAttempt::NotClaimed) => unreachable!("no claim"),
                        Ok(all) => return Ok(all),
                    }
                }
                Err(GroupWriteError::from(Error::conflict(
                    "the resources of this transaction are being written by many clients at once; try again",
                )))
            })
            .await
            .map_err(|e| GroupWriteError::from(Error::internal(format!("write task failed: {e}"))))?
        })
    }

    fn history<'a>(&'a self, query: &'a HistoryQuery) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        Box::pin(async move {
            // Instance history needs no bound: a version still being written lands after every
            // committed version of its resource (see "History positions").
            let before = match query.scope {
                HistoryScope::Instance(..) => None,
                HistoryScope::Type(_) | HistoryScope::System => Some(committed_bound(&self.pool).await?),
            };
            let sql = sql::history_page(Dialect::Postgres, query, before);
            let rows = with_binds(&sql).fetch_all(&self.pool).await?;
            super::history_entries(rows.into_iter().map(history_row), query.cursor)
        })
    }

    fn history_total<'a>(&'a self, query: &'a HistoryQuery) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let sql = sql::history_total(Dialect::Postgres, query);
            Ok(with_binds(&sql).fetch_one(&self.pool).await?.get(0))
        })
    }

    fn lock_creates<'a>(&'a self, types: &'a [ResourceType]) -> BoxFuture<'a, Result<DatabaseLock>> {
        Box::pin(async move {
            if types.is_empty() {
                return Ok(DatabaseLock::none());
            }
            let mut conn = self.pool.acquire().await?;
            // In the order given (the caller sorts), so two holders of several cannot deadlock.
            for resource_type in types {
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(create_lock_key(*resource_type))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(DatabaseLock::held(AdvisoryLocks(Some(conn))))
        })
    }

    fn owner_backfill(&self) -> BoxFuture<'_, Result<Option<OwnerBackfill>>> {
        Box::pin(async move {
            let row: Option<(i64, i64)> = sqlx::query_as(owners::BACKFILL_STATE)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|(up_to, done)| OwnerBackfill { up_to, done }))
        })
    }

    fn history_between(&self, after: i64, up_to: i64, limit: u32) -> BoxFuture<'_, Result<Vec<HistoryEntry>>> {
        Box::pin(async move {
            let sql = owners::history_between(Dialect::Postgres, after, up_to, limit);
            let rows = with_binds(&sql).fetch_all(&self.pool).await?;
            super::history_entries(rows.into_iter().map(history_row), HistoryCursor::Newest)
        })
    }

    fn record_owners(&self, versions: Vec<VersionOwners>, through: i64, up_to: i64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            for statement in owners::record(Dialect::Postgres, &versions, through, up_to) {
                with_binds(&statement).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn append_audit(&self, records: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            with_binds(&audit_pending::append(Dialect::Postgres, records))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn newest_pending_audit(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move { Ok(sqlx::query_scalar(audit_pending::NEWEST).fetch_one(&self.pool).await?) })
    }

    fn oldest_pending_audit_written(&self) -> BoxFuture<'_, Result<Option<Instant>>> {
        Box::pin(async move {
            let written: Option<i64> = sqlx::query_scalar(audit_pending::OLDEST_WRITTEN)
                .fetch_optional(&self.pool)
                .await?;
            Ok(written.map(Instant::from_micros))
        })
    }

    fn oldest_pending_audit(&self, up_to: i64) -> BoxFuture<'_, Result<Option<PendingAudit>>> {
        Box::pin(async move {
            let sql = audit_pending::oldest(Dialect::Postgres, up_to);
            let row = with_binds(&sql).fetch_optional(&self.pool).await?;
            Ok(row.map(|r| PendingAudit {
                seq: r.get(0),
                records: r.get(1),
                taken: r.get::<i32, _>(2).into(),
            }))
        })
    }

    fn store_pending_audit(&self, taken: AuditTaken, ops: Vec<WriteOp>) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let sql = audit_pending::claim(Dialect::Postgres, taken);
            let claim = Claim { sql: &sql, expected: 1 };
            for _ in 0..MAX_ATTEMPTS {
                match write_group(&self.pool, &ops, Some(&claim)).await {
                    Ok(_) => return Ok(true),
                    Err(GroupAttempt::NotClaimed) => return Ok(false),
                    Err(GroupAttempt::Restart) => continue,
                    Err(GroupAttempt::Failed(e)) => return Err(e.error),
                }
            }
            Err(Error::conflict(
                "the audit records could not be stored for contention; they stay pending",
            ))
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
    }

    /// The database's own settings: the server never changes them (see the README's Reliability).
    fn durability(&self) -> BoxFuture<'_, Result<Vec<(String, String)>>> {
        Box::pin(async move {
            let mut settings = Vec::new();
            for name in ["fsync", "synchronous_commit"] {
                let value: String = sqlx::query_scalar(AssertSqlSafe(format!("SHOW {name}")))
                    .fetch_one(&self.pool)
                    .await?;
                settings.push((name.to_owned(), value));
            }
            Ok(settings)
        })
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn search<'a>(&'a self, sql: &'a Sql) -> BoxFuture<'a, Result<Vec<FoundResource>>> {
        Box::pin(async move {
            let rows = with_binds(sql).fetch_all(&self.pool).await?;
            Ok(rows
                .into_iter()
                .map(|r| FoundResource {
                    rid: r.get(0),
                    resource_type: r.get(1),
                    id: r.get(2),
                    version_id: r.get(3),
                    content: Bytes::from(r.get::<String, _>(4)),
                    cursor: (r.len() > 5).then(|| r.get(5)),
                })
                .collect())
        })
    }

    fn count<'a>(&'a self, sql: &'a Sql) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move { Ok(with_binds(sql).fetch_one(&self.pool).await?.get(0)) })
    }
}
