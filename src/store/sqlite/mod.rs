//! The embedded SQLite store: one file, WAL mode, one writer connection and a pool of readers.
//!
//! Why one writer: SQLite serialises writers anyway, and a single connection that takes its lock
//! with `BEGIN IMMEDIATE` never meets `SQLITE_BUSY` half-way through a transaction. Versions are
//! therefore assigned strictly one after another; `writer.rs` also commits writes in groups.
//! Readers never block the writer in WAL mode.
//! `synchronous=FULL` in WAL mode (the default, `StoreOptions::sqlite_durability`) syncs the WAL
//! at every commit, so an acknowledged write survives a power loss; the writer's group commit
//! lets concurrent writes share that sync. `NORMAL`, the opt-out, syncs only at checkpoints: it
//! keeps commits across a process crash, but a power loss can drop the last few.

mod checkpoint;
mod group;
mod writer;

use super::cache::{Lookup, VersionCache};
use super::owners::{self, OwnerBackfill, VersionOwners};
use super::sql::{self, Dialect, Sql, SqlValue};
use super::{
    AuditTaken, BoxFuture, FoundResource, GroupWriteError, HistoryCursor, HistoryEntry, HistoryQuery, HistoryRow,
    PendingAudit, Store, StoredVersion, WriteOp, Written, audit_pending, migrate,
};
use crate::error::{Error, Result};
use crate::model::{Instant, ResourceType, VersionId};
use bytes::Bytes;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Row, Sqlite, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use writer::WriteRequest;

pub struct SqliteStore {
    writer: mpsc::Sender<WriteRequest>,
    readers: SqlitePool,
    cache: Arc<VersionCache>,
    /// Held open for the store's lifetime: its exclusive lock keeps a second server off this file,
    /// which is what makes the version cache safe.
    _owner_lock: Option<std::fs::File>,
    /// The durability settings the writing connections reported when opened.
    durability: Vec<(String, String)>,
}

impl SqliteStore {
    /// Opens (creating when missing, with its directory) the database at `url` (`sqlite:PATH`)
    /// and applies migrations.
    pub async fn open(url: &str, store_options: &super::StoreOptions) -> Result<SqliteStore> {
        let (max_readers, cache_bytes) = (store_options.max_connections, store_options.cache_bytes);
        let synchronous = match store_options.sqlite_durability {
            super::SqliteDurability::Full => SqliteSynchronous::Full,
            super::SqliteDurability::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::internal(format!("bad SQLite URL '{url}': {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536") // 64 MiB page cache per connection
            .pragma("temp_store", "memory");
        let path = options.get_filename().to_owned();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::internal(format!("cannot create {}: {e}", parent.display())))?;
        }
        let owner_lock = lock_for_this_process(&path)?;
        // No ping before each acquire: the database is a local file, and a ping is a round trip
        // to the connection's worker thread on every request.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", checkpoint::WRITER_BACKSTOP_PAGES),
            )
            .await?;
        migrate::run(&writer, migrate::SQLITE, "BEGIN IMMEDIATE", None).await?;
        let mut writer_connection = writer.acquire().await?.detach();
        // Before any reader connects, so every reader plans with statistics from the start.
        refresh_planner_statistics(&mut writer_connection).await;
        let cache = Arc::new(VersionCache::new(cache_bytes));
        let readers = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(max_readers.max(1))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().read_only(true))
            .await?;
        let mut checkpoint_connection = options.connect().await?;
        let durability = vec![
            (
                "synchronous".to_owned(),
                synchronous_name(&mut writer_connection).await?,
            ),
            (
                "checkpoint synchronous".to_owned(),
                synchronous_name(&mut checkpoint_connection).await?,
            ),
            (
                "journal_mode".to_owned(),
                sqlx::query_scalar::<_, String>("PRAGMA journal_mode")
                    .fetch_one(&mut writer_connection)
                    .await?,
            ),
        ];
        let checkpoints = checkpoint::spawn(checkpoint_connection);
        Ok(SqliteStore {
            writer: writer::spawn(writer_connection, cache.clone(), checkpoints),
            readers,
            cache,
            _owner_lock: owner_lock,
            durability,
        })
    }
}

/// `PRAGMA synchronous` of a connection, by name.
async fn synchronous_name(conn: &mut sqlx::SqliteConnection) -> Result<String> {
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await?;
    Ok(match level {
        0 => "OFF",
        1 => "NORMAL",
        2 => "FULL",
        3 => "EXTRA",
        _ => "unknown",
    }
    .to_owned())
}

/// Gathers fresh planner statistics (`sqlite_stat1`) for tables that never had any or whose size
/// changed a lot since. `analysis_limit` makes ANALYZE sample about a thousand rows per index,
/// so this takes milliseconds even on millions of rows. ANALYZE changes the schema version, so
/// the readers pick the new statistics up at their next statement. A failure is only logged:
/// without statistics searches are slower, not wrong.
async fn refresh_planner_statistics(conn: &mut sqlx::SqliteConnection) {
    let started = std::time::Instant::now();
    let result = async {
        sqlx::query("PRAGMA analysis_limit = 1000").execute(&mut *conn).await?;
        // 0x10002: analyze where it would help, looking at every table, not only those the
        // connection has queried.
        sqlx::query("PRAGMA optimize = 0x10002").execute(&mut *conn).await
    }
    .await;
    match result {
        Ok(_) => tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "planner statistics refreshed"
        ),
        Err(e) => tracing::warn!(error = %e, "could not refresh the SQLite planner statistics"),
    }
}

/// Takes an exclusive lock on `PATH.lock` beside the database, or fails when another process has
/// it. In-memory databases need none.
fn lock_for_this_process(path: &std::path::Path) -> Result<Option<std::fs::File>> {
    if path.as_os_str().is_empty() || path.to_string_lossy().starts_with(":memory:") {
        return Ok(None);
    }
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::internal(format!("cannot open {}: {e}", lock_path.to_string_lossy())))?;
    file.try_lock().map_err(|_| {
        Error::internal(format!(
            "{} is in use by another fhir-server process; an SQLite database has one server",
            path.display()
        ))
    })?;
    Ok(Some(file))
}

fn with_binds(sql: &Sql) -> sqlx::query::Query<'_, Sqlite, SqliteArguments> {
    debug_assert_eq!(sql.dialect, Dialect::Sqlite);
    let mut query = sqlx::query(AssertSqlSafe(sql.text.as_str()));
    for value in &sql.binds {
        query = match value {
            SqlValue::Text(text) => query.bind(text.as_str()),
            SqlValue::Int(n) => query.bind(*n),
            SqlValue::Time(t) => query.bind(t.timestamp_micros()),
            SqlValue::Real(x) => query.bind(*x),
            // `Sql::in_list` binds lists as JSON text on SQLite: never one of these.
            SqlValue::Texts(list) => query.bind(serde_json::to_string(list).expect("strings serialise")),
        };
    }
    query
}

/// A row of `sql::history_page`'s columns.
fn history_row(r: sqlx::sqlite::SqliteRow) -> HistoryRow {
    HistoryRow {
        seq: r.get(0),
        resource_type: r.get(1),
        id: r.get(2),
        version_id: r.get(3),
        last_updated: Instant::from_micros(r.get(4)),
        method: r.get(5),
        content: r.get(6),
    }
}

fn stored_version(version_id: i64, last_updated_micros: i64, content: Option<String>) -> StoredVersion {
    StoredVersion {
        version_id,
        last_updated: Instant::from_micros(last_updated_micros),
        content: content.map(Bytes::from),
    }
}

impl SqliteStore {
    /// Sends the writer the request `make` builds around the reply's sender, and waits for the
    /// reply.
    async fn ask<T, E: From<Error>>(
        &self,
        make: impl FnOnce(oneshot::Sender<std::result::Result<T, E>>) -> WriteRequest,
    ) -> std::result::Result<T, E> {
        let (reply, outcome) = oneshot::channel();
        let stopped = || Error::unavailable("the SQLite writer has stopped");
        self.writer.send(make(reply)).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

impl Store for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    fn read<'a>(&'a self, resource_type: ResourceType, id: &'a str) -> BoxFuture<'a, Result<Option<StoredVersion>>> {
        Box::pin(async move {
            let ticket = match self.cache.lookup(resource_type, id) {
                Lookup::Hit(cached) => return Ok(Some(cached)),
                Lookup::Miss(ticket) => ticket,
            };
            let row = sqlx::query("SELECT version_id, last_updated, content FROM resource WHERE type = ?1 AND id = ?2")
                .bind(resource_type.as_str())
                .bind(id)
                .fetch_optional(&self.readers)
                .await?;
            let found = row.map(|r| stored_version(r.get(0), r.get(1), r.get(2)));
            if let Some(version) = &found {
                self.cache.offer_read(resource_type, id, version.clone(), ticket);
            }
            Ok(found)
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
                "SELECT version_id, last_updated, content FROM resource_history \
                 WHERE type = ?1 AND id = ?2 AND version_id = ?3",
            )
            .bind(resource_type.as_str())
            .bind(id)
            .bind(version)
            .fetch_optional(&self.readers)
            .await?;
            Ok(row.map(|r| stored_version(r.get(0), r.get(1), r.get(2))))
        })
    }

    fn write(&self, op: WriteOp) -> BoxFuture<'_, Result<Option<Written>>> {
        Box::pin(async move { self.ask(|reply| WriteRequest::One { op, reply }).await })
    }

    fn write_all(
        &self,
        ops: Vec<WriteOp>,
    ) -> BoxFuture<'_, std::result::Result<Vec<Option<Written>>, GroupWriteError>> {
        Box::pin(async move { self.ask(|reply| WriteRequest::Group { ops, reply }).await })
    }

    fn history<'a>(&'a self, query: &'a HistoryQuery) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        Box::pin(async move {
            // One writer commits in the order of `seq`, so every committed version is final in its place.
            let sql = sql::history_page(Dialect::Sqlite, query, None);
            let rows = with_binds(&sql).fetch_all(&self.readers).await?;
            super::history_entries(rows.into_iter().map(history_row), query.cursor)
        })
    }

    fn history_total<'a>(&'a self, query: &'a HistoryQuery) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let sql = sql::history_total(Dialect::Sqlite, query);
            Ok(with_binds(&sql).fetch_one(&self.readers).await?.get(0))
        })
    }

    fn owner_backfill(&self) -> BoxFuture<'_, Result<Option<OwnerBackfill>>> {
        Box::pin(async move {
            let row: Option<(i64, i64)> = sqlx::query_as(owners::BACKFILL_STATE)
                .fetch_optional(&self.readers)
                .await?;
            Ok(row.map(|(up_to, done)| OwnerBackfill { up_to, done }))
        })
    }

    fn history_between(&self, after: i64, up_to: i64, limit: u32) -> BoxFuture<'_, Result<Vec<HistoryEntry>>> {
        Box::pin(async move {
            let sql = owners::history_between(Dialect::Sqlite, after, up_to, limit);
            let rows = with_binds(&sql).fetch_all(&self.readers).await?;
            super::history_entries(rows.into_iter().map(history_row), HistoryCursor::Newest)
        })
    }

    fn record_owners(&self, versions: Vec<VersionOwners>, through: i64, up_to: i64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let statements = owners::record(Dialect::Sqlite, &versions, through, up_to);
            self.ask(|reply| WriteRequest::Statements { statements, reply }).await
        })
    }

    fn append_audit(&self, records: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let statements = vec![audit_pending::append(Dialect::Sqlite, records)];
            self.ask(|reply| WriteRequest::Statements { statements, reply }).await
        })
    }

    fn newest_pending_audit(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            Ok(sqlx::query_scalar(audit_pending::NEWEST)
                .fetch_one(&self.readers)
                .await?)
        })
    }

    fn oldest_pending_audit_written(&self) -> BoxFuture<'_, Result<Option<Instant>>> {
        Box::pin(async move {
            let written: Option<i64> = sqlx::query_scalar(audit_pending::OLDEST_WRITTEN)
                .fetch_optional(&self.readers)
                .await?;
            Ok(written.map(Instant::from_micros))
        })
    }

    fn oldest_pending_audit(&self, up_to: i64) -> BoxFuture<'_, Result<Option<PendingAudit>>> {
        Box::pin(async move {
            let sql = audit_pending::oldest(Dialect::Sqlite, up_to);
            let row = with_binds(&sql).fetch_optional(&self.readers).await?;
            Ok(row.map(|r| PendingAudit {
                seq: r.get(0),
                records: r.get(1),
                taken: r.get::<i32, _>(2).into(),
            }))
        })
    }

    fn store_pending_audit(&self, taken: AuditTaken, ops: Vec<WriteOp>) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let claim = audit_pending::claim(Dialect::Sqlite, taken);
            let expected = 1;
            self.ask(|reply| WriteRequest::Claimed {
                claim,
                expected,
                ops,
                reply,
            })
            .await
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.readers).await?;
            Ok(())
        })
    }

    fn durability(&self) -> BoxFuture<'_, Result<Vec<(String, String)>>> {
        Box::pin(async move { Ok(self.durability.clone()) })
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn search<'a>(&'a self, sql: &'a Sql) -> BoxFuture<'a, Result<Vec<FoundResource>>> {
        Box::pin(async move {
            let rows = with_binds(sql).fetch_all(&self.readers).await?;
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
        Box::pin(async move { Ok(with_binds(sql).fetch_one(&self.readers).await?.get(0)) })
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    /// Index tables with planner statistics in `sqlite_stat1`.
    async fn tables_with_statistics(path: &std::path::Path) -> Vec<String> {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        let exists: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if exists == 0 {
            return Vec::new();
        }
        sqlx::query_scalar("SELECT DISTINCT tbl FROM sqlite_stat1 WHERE tbl LIKE 'search_%' ORDER BY tbl")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_gathers_planner_statistics_as_data_grows() {
        let dir = std::env::temp_dir().join(format!(
            "fhir-statistics-test-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        ));
        let path = dir.join("fhir.sqlite");
        let url = format!("sqlite:{}", path.display());
        let cx = crate::generate::system_context(&url, 2).await.unwrap();
        assert!(
            tables_with_statistics(&path).await.is_empty(),
            "an empty store has nothing to analyze"
        );
        // About 40 resources per patient: past the first refresh at 1,000 writes.
        let generate = crate::generate::Options {
            patients: 40,
            seed: 3,
            concurrency: 16,
        };
        crate::generate::write_data_set(&cx, &generate, |_, _| {})
            .await
            .unwrap();
        let analyzed = tables_with_statistics(&path).await;
        for table in ["search_date", "search_reference", "search_string", "search_token"] {
            assert!(
                analyzed.iter().any(|t| t == table),
                "{table} not analyzed: {analyzed:?}"
            );
        }
        drop(cx);
        let _ = std::fs::remove_dir_all(dir);
    }
}
