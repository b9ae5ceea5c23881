//! The embedded SQLite store: one file, WAL mode, one writer connection and a pool of readers.
//!
//! Why one writer: SQLite serialises writers anyway, and a single connection that takes its lock
//! with `BEGIN IMMEDIATE` never meets `SQLITE_BUSY` half-way through a transaction. Versions are
//! therefore assigned strictly one after another. Readers never block the writer in WAL mode.
//! `synchronous=NORMAL` in WAL mode keeps every committed write across a process crash; only a
//! power loss can drop the last few commits — the usual trade for an embedded store.

use super::cache::VersionCache;
use super::sql::{self, Dialect, Sql, SqlValue};
use super::{
    BoxFuture, HistoryEntry, HistoryQuery, Method, Store, StoredVersion, WriteOp, Written, migrate, stamp_and_serialise,
};
use crate::error::{Error, Result};
use crate::model::{Id, Instant, ResourceType, VersionId};
use bytes::Bytes;
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    cache: VersionCache,
    /// Held open for the store's lifetime: its exclusive lock keeps a second server off this file,
    /// which is what makes the version cache safe.
    _owner_lock: Option<std::fs::File>,
}

impl SqliteStore {
    /// Opens (creating when missing, with its directory) the database at `url` (`sqlite:PATH`)
    /// and applies migrations.
    pub async fn open(url: &str, max_readers: u32, cache_bytes: usize) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::internal(format!("bad SQLite URL '{url}': {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
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
            .connect_with(options.clone())
            .await?;
        migrate::run(&writer, migrate::SQLITE, "BEGIN IMMEDIATE", None).await?;
        let readers = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(max_readers.max(1))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore {
            writer,
            readers,
            cache: VersionCache::new(cache_bytes),
            _owner_lock: owner_lock,
        })
    }

    async fn write_in_transaction(&self, op: WriteOp) -> Result<Option<Written>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // Stamped inside the write lock, so last_updated never runs backwards along `seq`.
        let now = Instant::now();
        let written = apply(&mut tx, op, now).await?;
        tx.commit().await?;
        if let Some(w) = &written {
            let version = StoredVersion {
                version_id: w.version_id,
                last_updated: w.last_updated,
                content: w.content.clone(),
            };
            self.cache.offer(w.resource_type, w.id.as_str(), version);
        }
        Ok(written)
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

/// Applies one write inside an open transaction.
async fn apply(conn: &mut SqliteConnection, op: WriteOp, now: Instant) -> Result<Option<Written>> {
    match op {
        WriteOp::Create {
            resource_type,
            id,
            resource,
        } => Ok(Some(
            insert_first_version(conn, resource_type, id, resource, Method::Post, now).await?,
        )),
        WriteOp::Update {
            resource_type,
            id,
            resource,
            if_match,
        } => {
            let current = current_version(conn, resource_type, &id).await?;
            super::check_if_match(resource_type, &id, current, if_match)?;
            match current {
                None => Ok(Some(
                    insert_first_version(conn, resource_type, id, resource, Method::Put, now).await?,
                )),
                Some((version, deleted)) => {
                    let next = version + 1;
                    let content = stamp_and_serialise(resource, &id, next, now);
                    replace_current(conn, resource_type, &id, next, now, Some(&content)).await?;
                    insert_history(conn, resource_type, &id, next, now, Method::Put, Some(&content)).await?;
                    Ok(Some(Written {
                        resource_type,
                        id,
                        version_id: next,
                        last_updated: now,
                        created: deleted,
                        content: Some(content),
                    }))
                }
            }
        }
        WriteOp::Delete { resource_type, id } => match current_version(conn, resource_type, &id).await? {
            None | Some((_, true)) => Ok(None),
            Some((version, false)) => {
                let next = version + 1;
                replace_current(conn, resource_type, &id, next, now, None).await?;
                insert_history(conn, resource_type, &id, next, now, Method::Delete, None).await?;
                Ok(Some(Written {
                    resource_type,
                    id,
                    version_id: next,
                    last_updated: now,
                    created: false,
                    content: None,
                }))
            }
        },
    }
}

async fn insert_first_version(
    conn: &mut SqliteConnection,
    resource_type: ResourceType,
    id: Id,
    resource: Map<String, Value>,
    method: Method,
    now: Instant,
) -> Result<Written> {
    let content = stamp_and_serialise(resource, &id, 1, now);
    let text = utf8(&content);
    sqlx::query(
        "INSERT INTO resource (type, id, version_id, last_updated, deleted, content) VALUES (?1, ?2, 1, ?3, 0, ?4)",
    )
    .bind(resource_type.as_str())
    .bind(id.as_str())
    .bind(now.as_micros())
    .bind(text)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_violation_as_conflict(e, resource_type, &id))?;
    insert_history(conn, resource_type, &id, 1, now, method, Some(&content)).await?;
    Ok(Written {
        resource_type,
        id,
        version_id: 1,
        last_updated: now,
        created: true,
        content: Some(content),
    })
}

async fn current_version(
    conn: &mut SqliteConnection,
    resource_type: ResourceType,
    id: &Id,
) -> Result<Option<(VersionId, bool)>> {
    let row = sqlx::query("SELECT version_id, deleted FROM resource WHERE type = ?1 AND id = ?2")
        .bind(resource_type.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1) != 0)))
}

async fn replace_current(
    conn: &mut SqliteConnection,
    resource_type: ResourceType,
    id: &Id,
    version: VersionId,
    now: Instant,
    content: Option<&Bytes>,
) -> Result<()> {
    sqlx::query(
        "UPDATE resource SET version_id = ?3, last_updated = ?4, deleted = ?5, content = ?6 WHERE type = ?1 AND id = ?2",
    )
    .bind(resource_type.as_str())
    .bind(id.as_str())
    .bind(version)
    .bind(now.as_micros())
    .bind(i64::from(content.is_none()))
    .bind(content.map(utf8))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_history(
    conn: &mut SqliteConnection,
    resource_type: ResourceType,
    id: &Id,
    version: VersionId,
    now: Instant,
    method: Method,
    content: Option<&Bytes>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO resource_history (type, id, version_id, last_updated, method, content) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(resource_type.as_str())
    .bind(id.as_str())
    .bind(version)
    .bind(now.as_micros())
    .bind(method.as_str())
    .bind(content.map(utf8))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn utf8(content: &Bytes) -> &str {
    std::str::from_utf8(content).expect("serde_json writes UTF-8")
}

fn unique_violation_as_conflict(e: sqlx::Error, resource_type: ResourceType, id: &Id) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::conflict(format!("{resource_type}/{id} already exists"))
        }
        _ => e.into(),
    }
}

fn with_binds(sql: &Sql) -> sqlx::query::Query<'_, Sqlite, SqliteArguments> {
    debug_assert_eq!(sql.dialect, Dialect::Sqlite);
    let mut query = sqlx::query(AssertSqlSafe(sql.text.as_str()));
    for value in &sql.binds {
        query = match value {
            SqlValue::Text(text) => query.bind(text.as_str()),
            SqlValue::Int(n) => query.bind(*n),
            SqlValue::Time(t) => query.bind(t.timestamp_micros()),
        };
    }
    query
}

fn stored_version(version_id: i64, last_updated_micros: i64, content: Option<String>) -> StoredVersion {
    StoredVersion {
        version_id,
        last_updated: Instant::from_micros(last_updated_micros),
        content: content.map(Bytes::from),
    }
}

impl Store for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    fn read<'a>(&'a self, resource_type: ResourceType, id: &'a str) -> BoxFuture<'a, Result<Option<StoredVersion>>> {
        Box::pin(async move {
            if let Some(cached) = self.cache.get(resource_type, id) {
                return Ok(Some(cached));
            }
            let row = sqlx::query("SELECT version_id, last_updated, content FROM resource WHERE type = ?1 AND id = ?2")
                .bind(resource_type.as_str())
                .bind(id)
                .fetch_optional(&self.readers)
                .await?;
            let found = row.map(|r| stored_version(r.get(0), r.get(1), r.get(2)));
            if let Some(version) = &found {
                self.cache.offer(resource_type, id, version.clone());
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
        Box::pin(self.write_in_transaction(op))
    }

    fn history<'a>(&'a self, query: &'a HistoryQuery) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        Box::pin(async move {
            let sql = sql::history_page(Dialect::Sqlite, query);
            let rows = with_binds(&sql).fetch_all(&self.readers).await?;
            let mut entries = rows
                .into_iter()
                .map(|r| {
                    let method: String = r.get(5);
                    Ok(HistoryEntry {
                        seq: r.get(0),
                        resource_type: r.get(1),
                        id: r.get(2),
                        version_id: r.get(3),
                        last_updated: Instant::from_micros(r.get(4)),
                        method: Method::parse(&method)
                            .ok_or_else(|| Error::internal(format!("unknown history method {method}")))?,
                        content: r.get::<Option<String>, _>(6).map(Bytes::from),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            super::newest_first(&mut entries, query.cursor);
            Ok(entries)
        })
    }

    fn history_total<'a>(&'a self, query: &'a HistoryQuery) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let sql = sql::history_total(Dialect::Sqlite, query);
            Ok(with_binds(&sql).fetch_one(&self.readers).await?.get(0))
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.readers).await?;
            Ok(())
        })
    }
}
