//! The versioned resource store: the `Store` trait and its two implementations, SQLite (the
//! embedded default) and PostgreSQL (production). It owns the tables `resource` (current version)
//! and `resource_history` (every version, deletes included) and writes both in one SQL transaction.
//! It never sees a user, a scope or an HTTP request; it stamps `id`/`meta` but does not validate.

mod audit_pending;
pub use audit_pending::{AuditTaken, PendingAudit};
mod cache;
mod group;
mod index;
mod migrate;
pub mod owners;
pub mod postgres;
pub mod rules;
pub mod sql;
pub mod sqlite;

use crate::error::Result;
use crate::model::{Id, Instant, InstantRange, ResourceType, VersionId};
use crate::search::IndexRow;
use crate::sql::{Dialect, Sql};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One version of a resource as stored: `content` is the exact JSON served, `None` for a delete.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub version_id: VersionId,
    pub last_updated: Instant,
    pub content: Option<Bytes>,
}

impl StoredVersion {
    pub fn is_deleted(&self) -> bool {
        self.content.is_none()
    }
}

/// How a version came to be, recorded with it for history entries' `request.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    pub fn parse(value: &str) -> Option<Method> {
        match value {
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }
}

/// A write, as data. The store applies it in one SQL transaction (`Store::write`), or a group of
/// them in one (`Store::write_all`, for transaction Bundles).
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// A new resource with a server-assigned id.
    Create {
        resource_type: ResourceType,
        id: Id,
        resource: Map<String, Value>,
        /// The search-index rows of `resource`, written in the same transaction.
        index: Vec<IndexRow>,
    },
    /// A new version of `id`, creating it when absent (or reviving it when deleted).
    /// With `if_match`, the current version must be exactly that one.
    Update {
        resource_type: ResourceType,
        id: Id,
        resource: Map<String, Value>,
        index: Vec<IndexRow>,
        if_match: Option<VersionId>,
    },
    /// A tombstone version, when the resource exists and is not already deleted; its index rows go.
    /// With `if_match`, the current version must be exactly that one.
    Delete {
        resource_type: ResourceType,
        id: Id,
        if_match: Option<VersionId>,
    },
    /// New index rows for the current version, when it is still `version_id` (a re-index after
    /// the search parameters changed). No new version; `Ok(None)` when the resource has moved on
    /// or been deleted meanwhile, since that write indexed it already.
    Reindex {
        resource_type: ResourceType,
        id: Id,
        version_id: VersionId,
        index: Vec<IndexRow>,
    },
}

impl WriteOp {
    /// The resource the write is to.
    pub fn target(&self) -> (ResourceType, &Id) {
        match self {
            WriteOp::Create { resource_type, id, .. }
            | WriteOp::Update { resource_type, id, .. }
            | WriteOp::Delete { resource_type, id, .. }
            | WriteOp::Reindex { resource_type, id, .. } => (*resource_type, id),
        }
    }
}

/// What a write stored; made only by `rules`' constructors, from what `rules::decide` decided.
#[derive(Debug, Clone)]
pub struct Written {
    pub resource_type: ResourceType,
    pub id: Id,
    pub version_id: VersionId,
    pub last_updated: Instant,
    /// True when this version brought the resource into existence (create, update-as-create, revival).
    pub created: bool,
    /// The stored JSON; `None` for a delete.
    pub content: Option<Bytes>,
}

/// Why a group of writes (`Store::write_all`) failed, and so wrote nothing.
#[derive(Debug)]
pub struct GroupWriteError {
    /// The position in the group of the write that failed; `None` when the group as a whole
    /// failed (the database went away, the commit failed).
    pub index: Option<usize>,
    pub error: crate::error::Error,
}

impl From<crate::error::Error> for GroupWriteError {
    fn from(error: crate::error::Error) -> Self {
        GroupWriteError { index: None, error }
    }
}

impl From<sqlx::Error> for GroupWriteError {
    fn from(error: sqlx::Error) -> Self {
        GroupWriteError {
            index: None,
            error: error.into(),
        }
    }
}

/// Which versions a history request covers.
#[derive(Debug, Clone)]
pub enum HistoryScope {
    System,
    Type(ResourceType),
    Instance(ResourceType, Id),
}

/// Where a history page starts. History is ordered newest first by a global write sequence, so a
/// cursor stays valid while new versions arrive: they land before the first page, never inside one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCursor {
    Newest,
    /// Entries older than this sequence number (the next page).
    OlderThan(i64),
    /// Entries newer than this sequence number (the previous page).
    NewerThan(i64),
}

#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// `_since`: versions written at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// `_at`: versions that were current at some point during this range.
    pub at: Option<InstantRange>,
    pub cursor: HistoryCursor,
    /// Page size; the store returns up to `count + 1` entries so the caller knows whether more follow.
    pub count: u32,
    /// Only the versions a restricted caller may see (`None`: every version).
    pub reach: Option<HistoryReach>,
}

/// The versions a caller restricted by authorization may see in a history: every version of
/// `open_types`, and for each patient the versions of its types (none listed: of every type) that
/// belonged to that patient then (its compartment at that version, from the owners recorded
/// with each version, and the Patient's own versions).
///
/// Consents narrow further: versions that belonged to one of `hidden_patients` are left out,
/// and with `only_patients`, those that belonged to any other patient (audit records aside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryReach {
    /// The scopes restrict nothing: every type is open.
    pub everything: bool,
    pub open_types: Vec<String>,
    pub patients: Vec<(Id, Vec<String>)>,
    pub hidden_patients: Vec<String>,
    pub only_patients: Option<Vec<String>>,
}

impl HistoryReach {
    /// The versions that belonged to `patient`, of any type.
    pub fn patient(patient: Id) -> HistoryReach {
        HistoryReach {
            patients: vec![(patient, Vec::new())],
            ..HistoryReach::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub seq: i64,
    pub resource_type: String,
    pub id: String,
    pub version_id: VersionId,
    pub last_updated: Instant,
    pub method: Method,
    pub content: Option<Bytes>,
}

/// A lock held in the database (see `Store::lock_creates`); released when dropped.
pub struct DatabaseLock {
    /// Only held, for its `Drop`.
    _guard: Option<Box<dyn Send + Sync>>,
}

impl DatabaseLock {
    pub fn none() -> DatabaseLock {
        DatabaseLock { _guard: None }
    }

    pub fn held(guard: impl Send + Sync + 'static) -> DatabaseLock {
        DatabaseLock {
            _guard: Some(Box::new(guard)),
        }
    }
}

/// The storage backend. Methods are object-safe (boxed futures) so the app holds an `Arc<dyn Store>`.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgresql`, for logs and the CapabilityStatement.
    fn backend_name(&self) -> &'static str;

    /// The current version (possibly a delete), or `None` when the resource never existed.
    fn read<'a>(&'a self, resource_type: ResourceType, id: &'a str) -> BoxFuture<'a, Result<Option<StoredVersion>>>;

    fn vread<'a>(
        &'a self,
        resource_type: ResourceType,
        id: &'a str,
        version: VersionId,
    ) -> BoxFuture<'a, Result<Option<StoredVersion>>>;

    /// Applies one write atomically. `Ok(None)` means a delete found nothing to delete.
    fn write(&self, op: WriteOp) -> BoxFuture<'_, Result<Option<Written>>>;

    /// Applies every write in `ops`, in order, in one SQL transaction: all of them or none. The
    /// results are in the order of `ops`. A later write sees the earlier ones.
    fn write_all(&self, ops: Vec<WriteOp>)
    -> BoxFuture<'_, std::result::Result<Vec<Option<Written>>, GroupWriteError>>;

    /// Up to `count + 1` history entries, newest first.
    fn history<'a>(&'a self, query: &'a HistoryQuery) -> BoxFuture<'a, Result<Vec<HistoryEntry>>>;

    /// How many versions the query's scope and filters cover (ignoring the cursor).
    fn history_total<'a>(&'a self, query: &'a HistoryQuery) -> BoxFuture<'a, Result<i64>>;

    /// Locks shared by every server process on this database for conditional creates of
    /// `types` (see `interactions::conditional::CreateLocks`), held until the guard drops.
    /// Nothing by default: a SQLite database has one server process, whose own locks suffice.
    fn lock_creates<'a>(&'a self, types: &'a [ResourceType]) -> BoxFuture<'a, Result<DatabaseLock>> {
        let _ = types;
        Box::pin(async { Ok(DatabaseLock::none()) })
    }

    /// The back-fill of owners still to do on a database written by an older server (see
    /// `owners`), if any.
    fn owner_backfill(&self) -> BoxFuture<'_, Result<Option<owners::OwnerBackfill>>>;

    /// Up to `limit` versions after `seq` `after` up to `up_to`, oldest first.
    fn history_between(&self, after: i64, up_to: i64, limit: u32) -> BoxFuture<'_, Result<Vec<HistoryEntry>>>;

    /// Records the owners of `versions` and that the back-fill has come `through` that `seq`,
    /// ending it at `up_to`, in one transaction (`owners::record`).
    fn record_owners(
        &self,
        versions: Vec<owners::VersionOwners>,
        through: i64,
        up_to: i64,
    ) -> BoxFuture<'_, Result<()>>;

    /// Appends a batch of audit records (`audit::Record::to_pending`, a JSON array) to those
    /// pending (`audit_pending`).
    fn append_audit(&self, records: String) -> BoxFuture<'_, Result<()>>;

    /// The `seq` of the newest pending batch of audit records; 0 when none is pending.
    fn newest_pending_audit(&self) -> BoxFuture<'_, Result<i64>>;

    /// When the oldest pending batch of audit records was written, if any is pending.
    fn oldest_pending_audit_written(&self) -> BoxFuture<'_, Result<Option<Instant>>>;

    /// The oldest pending batch of audit records with `seq` at most `up_to`.
    fn oldest_pending_audit(&self, up_to: i64) -> BoxFuture<'_, Result<Option<PendingAudit>>>;

    /// Applies `ops` (the AuditEvents made from the records `taken`) and marks those records
    /// stored, in one transaction: each record becomes exactly one AuditEvent. `Ok(false)`, with
    /// nothing written, when another server on the database stored them first.
    fn store_pending_audit(&self, taken: AuditTaken, ops: Vec<WriteOp>) -> BoxFuture<'_, Result<bool>>;

    /// Succeeds when the database answers.
    fn ping(&self) -> BoxFuture<'_, Result<()>>;

    /// The settings that decide what an acknowledged write survives, as the database reports
    /// them (SQLite: `synchronous` of the writer and of the checkpointer, `journal_mode`;
    /// PostgreSQL: `fsync`, `synchronous_commit`).
    fn durability(&self) -> BoxFuture<'_, Result<Vec<(String, String)>>>;

    /// The SQL dialect that `search::compile` must produce for this store.
    fn dialect(&self) -> Dialect;

    /// Runs a query from `search::compile` with the columns `rid, type, id, version_id, content[, cursor]`.
    fn search<'a>(&'a self, sql: &'a Sql) -> BoxFuture<'a, Result<Vec<FoundResource>>>;

    /// Runs a `SELECT count(*)` from `search::compile`.
    fn count<'a>(&'a self, sql: &'a Sql) -> BoxFuture<'a, Result<i64>>;
}

/// A resource found by a search: its current version's served JSON, and the page cursor of its row.
#[derive(Debug, Clone)]
pub struct FoundResource {
    pub rid: i64,
    pub resource_type: String,
    pub id: String,
    pub version_id: VersionId,
    pub content: Bytes,
    pub cursor: Option<String>,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL pool size, or the number of SQLite reader connections.
    pub max_connections: u32,
    /// SQLite only: bytes of current versions kept in memory for reads by id (0 disables it).
    pub cache_bytes: usize,
    /// SQLite only: whether a commit waits for the disk (PostgreSQL's durability is the
    /// database's own configuration: `fsync` and `synchronous_commit`).
    pub sqlite_durability: SqliteDurability,
}

/// What an acknowledged write survives on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteDurability {
    /// `synchronous=FULL` in WAL mode: every commit is synced before it is acknowledged, so it
    /// survives a power loss or an operating-system crash.
    #[default]
    Full,
    /// `synchronous=NORMAL` in WAL mode: commits survive a crash of the process, but a power loss
    /// may drop the last ones (the WAL is synced at checkpoints only).
    Normal,
}

/// Opens the store named by `database_url` (`sqlite:…` or `postgres://…`) and applies migrations.
pub async fn open(database_url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PostgresStore::open(database_url, options.max_connections).await?,
        ))
    } else if database_url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(database_url, options).await?))
    } else {
        Err(crate::error::Error::internal(format!(
            "unsupported database URL '{database_url}': use sqlite:PATH or postgres://…"
        )))
    }
}

/// Stored content as text, for binding to a text or JSON column (it is always serde_json's UTF-8).
pub(crate) fn content_text(content: &Bytes) -> &str {
    std::str::from_utf8(content).expect("serde_json writes UTF-8")
}

/// Stamps `resource` as version `version` and serialises it: the bytes the store keeps and serves.
pub(crate) fn stamp_and_serialise(
    mut resource: Map<String, Value>,
    id: &Id,
    version: VersionId,
    last_updated: Instant,
) -> Bytes {
    crate::model::meta::stamp(&mut resource, id, version, last_updated);
    Bytes::from(serde_json::to_vec(&resource).expect("a JSON object always serialises"))
}

/// A `resource_history` row as a backend reads it (`sql::history_page`'s columns).
pub(crate) struct HistoryRow {
    pub seq: i64,
    pub resource_type: String,
    pub id: String,
    pub version_id: VersionId,
    pub last_updated: Instant,
    pub method: String,
    pub content: Option<String>,
}

/// Turns the rows of a history page into entries, newest first (a previous-page query reads
/// oldest first, so its rows are put back in order).
pub(crate) fn history_entries(
    rows: impl Iterator<Item = HistoryRow>,
    cursor: HistoryCursor,
) -> Result<Vec<HistoryEntry>> {
    let mut entries = rows
        .map(|row| {
            let method = Method::parse(&row.method)
                .ok_or_else(|| crate::error::Error::internal(format!("unknown history method {}", row.method)))?;
            Ok(HistoryEntry {
                seq: row.seq,
                resource_type: row.resource_type,
                id: row.id,
                version_id: row.version_id,
                last_updated: row.last_updated,
                method,
                content: row.content.map(Bytes::from),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if matches!(cursor, HistoryCursor::NewerThan(_)) {
        entries.reverse();
    }
    Ok(entries)
}
