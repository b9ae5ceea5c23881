//! The SQLite writer: one connection owned by one task, with group commit.
//!
//! Writes arrive on a channel. The task takes every write waiting (up to `MAX_BATCH`) and applies
//! them in one `BEGIN IMMEDIATE … COMMIT`, so a burst of N writes costs one commit, not N. Each
//! write's SQL is one round trip to SQLite's connection thread where it can be (both rows in one
//! multi-statement query). A write refused by a FHIR rule (`If-Match`) is decided before it writes
//! anything, so it does not disturb the batch; any other failure rolls the batch back and retries
//! each write in its own transaction, so one bad write never fails its neighbours. A group of
//! writes (a transaction Bundle) is committed in a transaction of its own, and rolled back whole
//! when one of its writes fails. (Not inside the batch's transaction under a savepoint: with a
//! savepoint open, SQLite spent four fifths of a large group's time in savepoint bookkeeping.)
//! Because the task outlives any request, a client that disconnects cannot cut a write in half.

use super::super::cache::VersionCache;
use super::super::group::{self, BulkFailure};
use super::super::index::{INDEX_TABLES, IndexPayload, insert_rows_sql};
use super::super::rules::{self, CurrentRow, Decision, Owners};
use super::super::{GroupWriteError, Method, StoredVersion, WriteOp, Written, content_text, stamp_and_serialise};
use super::group as sqlite_group;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Id, Instant, ResourceType, VersionId};
use crate::sql::{Dialect, Sql};
use bytes::Bytes;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};
use std::sync::{Arc, LazyLock};
use tokio::sync::{mpsc, oneshot};

/// Most writes committed together.
const MAX_BATCH: usize = 256;
/// Writes that may wait for the writer before senders are made to wait (back-pressure).
const QUEUE: usize = 4096;

pub(super) enum WriteRequest {
    One {
        op: WriteOp,
        reply: oneshot::Sender<Result<Option<Written>>>,
    },
    /// Writes applied all together or not at all.
    Group {
        ops: Vec<WriteOp>,
        reply: oneshot::Sender<GroupResult>,
    },
    /// Statements run together in a transaction of their own (the back-fill of owners, the
    /// audit trail's pending records).
    Statements {
        statements: Vec<Sql>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Writes applied together in a transaction that first runs `claim`, a statement that must
    /// change exactly `expected` rows (`Store::store_pending_audit`); `Ok(false)`, with nothing
    /// written, when it changes fewer.
    Claimed {
        claim: Sql,
        expected: u64,
        ops: Vec<WriteOp>,
        reply: oneshot::Sender<Result<bool>>,
    },
}

pub(super) type GroupResult = std::result::Result<Vec<Option<Written>>, GroupWriteError>;

/// The outcome of one request, before it is sent back.
enum Outcome {
    One(Result<Option<Written>>),
    Group(GroupResult),
    Statements(Result<()>),
    /// What a claimed group wrote (`None`: the claim failed, nothing was written).
    Claimed(Result<Option<Vec<Option<Written>>>>),
}

impl Outcome {
    /// The versions written, for the cache.
    fn written(&self) -> Vec<&Written> {
        match self {
            Outcome::One(Ok(Some(w))) => vec![w],
            Outcome::Group(Ok(all)) | Outcome::Claimed(Ok(Some(all))) => all.iter().flatten().collect(),
            _ => Vec::new(),
        }
    }
}

/// Starts the writer task; it ends when every sender is dropped.
/// `checkpoints` is told after every commit (see `checkpoint`).
pub(super) fn spawn(
    conn: SqliteConnection,
    cache: Arc<VersionCache>,
    checkpoints: mpsc::Sender<()>,
) -> mpsc::Sender<WriteRequest> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(conn, rx, cache, checkpoints));
    tx
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<WriteRequest>,
    cache: Arc<VersionCache>,
    checkpoints: mpsc::Sender<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut statistics = StatisticsSchedule::default();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = commit_batch(&mut conn, &batch).await;
        super::checkpoint::request(&checkpoints);
        let writes = batch
            .iter()
            .map(|r| match r {
                WriteRequest::One { .. } => 1,
                WriteRequest::Group { ops, .. } => ops.len(),
                WriteRequest::Statements { statements, .. } => statements.len(),
                WriteRequest::Claimed { ops, .. } => ops.len(),
            })
            .sum();
        if statistics.wrote(writes) {
            super::refresh_planner_statistics(&mut conn).await;
        }
        for (request, outcome) in batch.drain(..).zip(results) {
            for w in outcome.written() {
                let version = StoredVersion {
                    version_id: w.version_id,
                    last_updated: w.last_updated,
                    content: w.content.clone(),
                };
                cache.publish(w.resource_type, w.id.as_str(), version);
            }
            // The requester may have gone (client disconnected); the write stands regardless.
            match (request, outcome) {
                (WriteRequest::One { reply, .. }, Outcome::One(result)) => {
                    let _ = reply.send(result);
                }
                (WriteRequest::Group { reply, .. }, Outcome::Group(result)) => {
                    let _ = reply.send(result);
                }
                (WriteRequest::Statements { reply, .. }, Outcome::Statements(result)) => {
                    let _ = reply.send(result);
                }
                (WriteRequest::Claimed { reply, .. }, Outcome::Claimed(result)) => {
                    let _ = reply.send(result.map(|written| written.is_some()));
                }
                _ => unreachable!("each request gets an outcome of its own kind"),
            }
        }
    }
}

/// When the writer refreshes the planner's statistics: after 1,000 writes, then after twice as
/// many each time up to every 100,000. SQLite gathers none on its own, and without them it picks
/// poor join orders for chains and sorts once tables grow (seconds instead of milliseconds at
/// fifty thousand resources). Doubling keeps a bulk load from paying for it often, and
/// `PRAGMA optimize` itself re-analyzes only tables whose size changed a lot.
struct StatisticsSchedule {
    since_last: usize,
    interval: usize,
}

impl Default for StatisticsSchedule {
    fn default() -> Self {
        StatisticsSchedule {
            since_last: 0,
            interval: 1_000,
        }
    }
}

impl StatisticsSchedule {
    /// Counts `writes`; true when it is time to refresh.
    fn wrote(&mut self, writes: usize) -> bool {
        self.since_last += writes;
        if self.since_last < self.interval {
            return false;
        }
        self.since_last = 0;
        self.interval = (self.interval * 2).min(100_000);
        true
    }
}

/// Commits the requests of `batch`: runs of single writes together, each group (and each set of
/// statements) in a transaction of its own.
async fn commit_batch(conn: &mut SqliteConnection, batch: &[WriteRequest]) -> Vec<Outcome> {
    let mut results = Vec::with_capacity(batch.len());
    let mut start = 0;
    let alone = |r: &WriteRequest| !matches!(r, WriteRequest::One { .. });
    while start < batch.len() {
        if alone(&batch[start]) {
            results.push(write_alone(conn, &batch[start]).await);
            start += 1;
            continue;
        }
        let end = batch[start..].iter().position(alone).map_or(batch.len(), |n| start + n);
        results.extend(commit_singles(conn, &batch[start..end]).await);
        start = end;
    }
    results
}

/// Single writes in one transaction; when it fails as a whole, each again in its own.
async fn commit_singles(conn: &mut SqliteConnection, batch: &[WriteRequest]) -> Vec<Outcome> {
    match try_singles(conn, batch).await {
        Ok(results) => results,
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            if batch.len() == 1 {
                return vec![Outcome::One(Err(e))];
            }
            let mut results = Vec::with_capacity(batch.len());
            for request in batch {
                results.push(write_alone(conn, request).await);
            }
            results
        }
    }
}

async fn try_singles(conn: &mut SqliteConnection, batch: &[WriteRequest]) -> Result<Vec<Outcome>> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        let WriteRequest::One { op, .. } = request else {
            unreachable!("groups are committed on their own")
        };
        match apply(conn, op).await {
            Ok(written) => results.push(Outcome::One(Ok(written))),
            Err(e) if e.kind == ErrorKind::PreconditionFailed => results.push(Outcome::One(Err(e))),
            Err(e) => return Err(e),
        }
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(results)
}

/// Applies every write of a group inside the open transaction, stopping at the first failure.
async fn apply_group(conn: &mut SqliteConnection, ops: &[WriteOp]) -> GroupResult {
    let mut all = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let written = apply(conn, op).await.map_err(|error| GroupWriteError {
            index: Some(index),
            error,
        })?;
        all.push(written);
    }
    Ok(all)
}

/// A request in a transaction of its own: what a batch falls back to when it fails as a whole.
async fn write_alone(conn: &mut SqliteConnection, request: &WriteRequest) -> Outcome {
    match request {
        WriteRequest::One { op, .. } => {
            if let Err(e) = begin(conn).await {
                return Outcome::One(Err(e.into()));
            }
            let result = apply(conn, op).await;
            Outcome::One(finish(conn, result).await)
        }
        WriteRequest::Group { ops, .. } => Outcome::Group(write_group(conn, ops).await),
        WriteRequest::Statements { statements, .. } => {
            if let Err(e) = begin(conn).await {
                return Outcome::Statements(Err(e.into()));
            }
            let mut result = Ok(());
            for statement in statements {
                if let Err(e) = super::with_binds(statement).execute(&mut *conn).await {
                    result = Err(e.into());
                    break;
                }
            }
            Outcome::Statements(finish(conn, result).await)
        }
        WriteRequest::Claimed {
            claim, expected, ops, ..
        } => Outcome::Claimed(write_claimed(conn, claim, *expected, ops).await),
    }
}

/// `ops` in a transaction that first runs `claim`, which must change `expected` rows: in bulk
/// when it can be, one by one when it cannot or when the bulk write fails in the database.
async fn write_claimed(
    conn: &mut SqliteConnection,
    claim: &Sql,
    expected: u64,
    ops: &[WriteOp],
) -> Result<Option<Vec<Option<Written>>>> {
    let claimed = async |conn: &mut SqliteConnection| -> Result<bool> {
        begin(conn).await?;
        let changed = super::with_binds(claim).execute(&mut *conn).await?.rows_affected();
        if changed != expected {
            sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            return Ok(false);
        }
        Ok(true)
    };
    if !claimed(conn).await? {
        return Ok(None);
    }
    if group::can_write_in_bulk(ops) {
        match sqlite_group::write(conn, ops).await {
            Ok(all) => return finish(conn, Ok(Some(all))).await,
            Err(BulkFailure::Refused(e)) => return finish(conn, Err(e.error)).await,
            Err(BulkFailure::Database(e)) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                tracing::debug!(error = %e, "bulk write of audit records failed; writing them one by one");
                if !claimed(conn).await? {
                    return Ok(None);
                }
            }
            Err(BulkFailure::Restart) => unreachable!("one writer: a SQLite group never waits for another"),
        }
    }
    let result = apply_group(conn, ops).await.map(Some).map_err(|e| e.error);
    finish(conn, result).await
}

/// A group in a transaction of its own: in bulk when it can be (`store::group`), one by one when
/// it cannot or when the bulk write fails in the database.
async fn write_group(conn: &mut SqliteConnection, ops: &[WriteOp]) -> GroupResult {
    if group::can_write_in_bulk(ops) {
        begin(conn).await?;
        match sqlite_group::write(conn, ops).await {
            Ok(all) => return finish(conn, Ok(all)).await,
            Err(BulkFailure::Refused(e)) => return finish(conn, Err(e)).await,
            Err(BulkFailure::Database(e)) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                tracing::debug!(error = %e, "bulk write of a group failed; writing it one by one");
            }
            Err(BulkFailure::Restart) => unreachable!("one writer: a SQLite group never waits for another"),
        }
    }
    begin(conn).await?;
    let result = apply_group(conn, ops).await;
    finish(conn, result).await
}

async fn begin(conn: &mut SqliteConnection) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.map(|_| ())
}

/// Ends the open transaction: commits after a success (a failed commit becomes the result), rolls
/// back after a failure.
async fn finish<T, E: From<sqlx::Error>>(
    conn: &mut SqliteConnection,
    result: std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    match result {
        Ok(value) => match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => Ok(value),
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}

/// Applies one write inside the open transaction, as `rules::decide` decides. `now` is taken
/// here, inside the write lock, so `last_updated` never runs backwards along the history sequence.
async fn apply(conn: &mut SqliteConnection, op: &WriteOp) -> Result<Option<Written>> {
    let now = Instant::now();
    let (resource_type, id) = op.target();
    // A create has a new id: it reads nothing, and should the id be taken after all, its insert
    // fails on the unique key.
    let current = match op {
        WriteOp::Create { .. } => None,
        _ => current_version(conn, resource_type, id).await?,
    };
    match rules::decide(op, current)? {
        Decision::Write(version) => {
            let (resource, index) = match op {
                WriteOp::Create { resource, index, .. } | WriteOp::Update { resource, index, .. } => {
                    (Some(resource), index.as_slice())
                }
                WriteOp::Delete { .. } | WriteOp::Reindex { .. } => (None, [].as_slice()),
            };
            let content = resource.map(|r| stamp_and_serialise(r.clone(), id, version.version_id, now));
            let rows = VersionRows {
                payload: IndexPayload::from_rows(index),
                version_id: version.version_id,
                owners: rules::owners(op),
            };
            match current {
                // Only a create or an update decides a first version, and both carry a resource.
                None => {
                    let content = content.as_ref().expect("a first version has content");
                    insert_first_version(conn, resource_type, id, now, version.method, content, &rows).await?
                }
                Some(_) => {
                    write_next_version(conn, resource_type, id, now, version.method, content.as_ref(), &rows).await?
                }
            }
            Ok(Some(Written::new(resource_type, id.clone(), version, now, content)))
        }
        Decision::Reindex => {
            let WriteOp::Reindex { version_id, index, .. } = op else {
                unreachable!("only a re-index is decided so")
            };
            write_index_rows(conn, resource_type, id, &IndexPayload::from_rows(index), None).await?;
            Ok(Some(Written::reindexed(resource_type, id.clone(), *version_id, now)))
        }
        Decision::NothingToDelete | Decision::Stale => Ok(None),
    }
}

/// What a new version writes besides its resource and history rows: its index rows, and whose
/// it is.
struct VersionRows {
    payload: IndexPayload,
    version_id: VersionId,
    owners: Owners,
}

/// Version 1 of a resource: its row, its history row, its index rows and its owners.
async fn insert_first_version(
    conn: &mut SqliteConnection,
    resource_type: ResourceType,
    id: &Id,
    now: Instant,
    method: Method,
    content: &Bytes,
    rows: &VersionRows,
) -> Result<()> {
    // Both rows in one round trip; the parameters are shared by number.
    sqlx::query(
        "INSERT INTO resource (type, id, version_id, last_updated, deleted, content) VALUES (?1, ?2, 1, ?3, 0, ?4); \
         INSERT INTO resource_history (type, id, version_id, last_updated, method, content) \
         VALUES (?1, ?2, 1, ?3, ?5, ?4)",
    )
    .bind(resource_type.as_str())
    .bind(id.as_str())
    .bind(now.as_micros())
    .bind(content_text(content))
    .bind(method.as_str())
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_violation_as_conflict(e, resource_type, id))?;
    write_index_rows(conn, resource_type, id, &rows.payload, Some((false, rows))).await
}

async fn current_version(
    conn: &mut SqliteConnection,
    resource_type: ResourceType,
    id: &Id,
) -> Result<Option<CurrentRow>> {
    let row = sqlx::query("SELECT version_id, deleted FROM resource WHERE type = ?1 AND id = ?2")
        .bind(resource_type.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| CurrentRow {
        version_id: r.get(0),
        deleted: r.get::<i64, _>(1) != 0,
    }))
}

/// The rows that follow a version's resource and history rows, in one round trip and one bound
/// parameter (`?1`, a JSON document with the resource's type, id and version, its owners, and one
/// array of index rows per index table): its owners, then its index rows, replacing any the
/// resource had. One parameter, not one per table, because sqlx's SQLite binding of a
/// multi-statement query mis-binds numbered parameters that a statement skips.
///
/// The owners come first, because their `seq` is `last_insert_rowid()`: the history row is the
/// last row this connection inserted (its statement just ran), and `history_owner` has no rowid
/// for its own inserts to change it. A version with no owners skips that statement, and no
/// version has its history row looked up again.
static FIRST_VERSION_ROWS: LazyLock<String> = LazyLock::new(|| follow_up_sql(false, OwnerSql::None));
static FIRST_VERSION_ROWS_OWNED: LazyLock<String> = LazyLock::new(|| follow_up_sql(false, OwnerSql::Listed));
static NEXT_VERSION_ROWS: LazyLock<String> = LazyLock::new(|| follow_up_sql(true, OwnerSql::None));
static NEXT_VERSION_ROWS_OWNED: LazyLock<String> = LazyLock::new(|| follow_up_sql(true, OwnerSql::Listed));
static TOMBSTONE_ROWS: LazyLock<String> = LazyLock::new(|| follow_up_sql(true, OwnerSql::Inherited));
/// A re-index: new index rows for the current version, which has its owners already.
static REINDEX_ROWS: LazyLock<String> = LazyLock::new(|| follow_up_sql(true, OwnerSql::None));

/// How a version's owners are written (see `rules::Owners`).
enum OwnerSql {
    /// None to write.
    None,
    /// The patients listed in the document.
    Listed,
    /// A delete's: those of the version before it.
    Inherited,
}

fn follow_up_sql(replace: bool, owners: OwnerSql) -> String {
    let mut sql = String::new();
    match owners {
        OwnerSql::None => {}
        OwnerSql::Listed => sql.push_str(
            "INSERT INTO history_owner (patient, seq) SELECT o.value, last_insert_rowid() \
             FROM json_each(?1, '$.owners') o; ",
        ),
        OwnerSql::Inherited => sql.push_str(
            "INSERT INTO history_owner (patient, seq) SELECT o.patient, last_insert_rowid() \
             FROM resource_history p JOIN history_owner o ON o.seq = p.seq \
             WHERE p.type = ?1 ->> '$.type' AND p.id = ?1 ->> '$.id' AND p.version_id = (?1 ->> '$.version') - 1; ",
        ),
    }
    let rid = "SELECT rid FROM resource WHERE type = ?1 ->> '$.type' AND id = ?1 ->> '$.id'";
    for table in INDEX_TABLES.iter().filter(|_| replace) {
        sql.push_str(&format!("DELETE FROM {} WHERE rid = ({rid}); ", table.name));
    }
    for (i, table) in INDEX_TABLES.iter().enumerate() {
        let payload = format!("?1, '$.tables[{i}]'");
        sql.push_str(&insert_rows_sql(
            Dialect::Sqlite,
            table,
            &format!("({rid}) src"),
            &payload,
        ));
        sql.push_str("; ");
    }
    sql
}

/// Writes `payload` as the index rows of `resource_type/id` and, for a new version just written
/// (`version`: whether it replaces an earlier one, and its rows), the version's owners.
async fn write_index_rows(
    conn: &mut SqliteConnection,
    resource_type: ResourceType,
    id: &Id,
    payload: &IndexPayload,
    version: Option<(bool, &VersionRows)>,
) -> Result<()> {
    let (version_id, owners) = match version {
        Some((_, rows)) => match &rows.owners {
            Owners::Patients(patients) => (rows.version_id, patients.as_slice()),
            Owners::OfDeletedVersion => (rows.version_id, [].as_slice()),
        },
        None => (0, [].as_slice()),
    };
    let document = format!(
        r#"{{"type":{},"id":{},"version":{version_id},"owners":{},"tables":[{}]}}"#,
        serde_json::Value::from(resource_type.as_str()),
        serde_json::Value::from(id.as_str()),
        serde_json::Value::from(owners),
        payload.tables.join(",")
    );
    let sql = match version.map(|(replace, rows)| (replace, &rows.owners)) {
        None => &REINDEX_ROWS,
        Some((true, Owners::OfDeletedVersion)) => &TOMBSTONE_ROWS,
        Some((replace, Owners::Patients(patients))) => match (replace, patients.is_empty()) {
            (false, true) => &FIRST_VERSION_ROWS,
            (false, false) => &FIRST_VERSION_ROWS_OWNED,
            (true, true) => &NEXT_VERSION_ROWS,
            (true, false) => &NEXT_VERSION_ROWS_OWNED,
        },
        Some((false, Owners::OfDeletedVersion)) => unreachable!("a delete is never a first version"),
    };
    sqlx::query(AssertSqlSafe(sql.as_str()))
        .bind(document)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Replaces the current row and its index rows, appends the history row (content `None` for a
/// delete, with an empty payload) and records the version's owners.
async fn write_next_version(
    conn: &mut SqliteConnection,
    resource_type: ResourceType,
    id: &Id,
    now: Instant,
    method: Method,
    content: Option<&Bytes>,
    rows: &VersionRows,
) -> Result<()> {
    sqlx::query(
        "UPDATE resource SET version_id = ?3, last_updated = ?4, deleted = ?5, content = ?6 \
         WHERE type = ?1 AND id = ?2; \
         INSERT INTO resource_history (type, id, version_id, last_updated, method, content) \
         VALUES (?1, ?2, ?3, ?4, ?7, ?6)",
    )
    .bind(resource_type.as_str())
    .bind(id.as_str())
    .bind(rows.version_id)
    .bind(now.as_micros())
    .bind(i64::from(content.is_none()))
    .bind(content.map(content_text))
    .bind(method.as_str())
    .execute(&mut *conn)
    .await?;
    write_index_rows(conn, resource_type, id, &rows.payload, Some((true, rows))).await
}

fn unique_violation_as_conflict(e: sqlx::Error, resource_type: ResourceType, id: &Id) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::conflict(format!("{resource_type}/{id} already exists"))
        }
        _ => e.into(),
    }
}
