//! Makes the audit trail's pending records (`audit_pending`, written by `audit_writer`) into
//! AuditEvent resources with their search-index rows.
//!
//! Why later and not at once: with `--audit all` every request makes a record, and storing an
//! AuditEvent with its index rows costs several times what a read by id costs; the pending row
//! costs a few microseconds. So records are made AuditEvents
//! - when the server is idle (no new request for a moment), in chunks; under constant load, once
//!   they have waited a minute, whatever that costs the requests, so the backlog stays bounded;
//! - and, whatever the load, before a request that may read AuditEvents (`may_read_trail`):
//!   everything pending when it arrived is stored first, so a search never misses a record
//!   written before it.
//!
//! Each chunk is stored in the transaction that removes its pending rows, so a record becomes
//! exactly one AuditEvent, even with several servers on one PostgreSQL database.

use super::Services;
use super::body;
use super::request::{HistoryTarget, Request, SearchScope};
use crate::audit::Record;
use crate::error::Result;
use crate::model::{Id, Instant, ResourceType};
use crate::store::{AuditTaken, WriteOp};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;

/// The most records stored in one transaction.
const CHUNK: usize = 250;
/// How often the idle indexer looks for records (other servers' too) when nobody tells it.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How long a record waits for a moment without requests; after that it is stored anyway, so
/// under constant load records become AuditEvents about this late, and a burst of load is
/// absorbed without the cost.
const MOST_DELAY: Duration = Duration::from_secs(60);
/// How long without a new request counts as idle.
const QUIET: Duration = Duration::from_millis(50);

/// The indexer's state, shared by the requests (which say when they run) and its task.
#[derive(Default)]
pub struct AuditIndex {
    /// One chunk at a time in this process.
    storing: Mutex<()>,
    /// Requests being dispatched now.
    in_flight: AtomicUsize,
    /// Requests dispatched since the start: unchanged over a while, the server was idle.
    started: AtomicU64,
    /// Told when records were appended.
    appended: Notify,
}

/// A request being dispatched; counted until dropped.
pub struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AuditIndex {
    /// Counts a request as running until the guard drops.
    pub fn running(&self) -> Running<'_> {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Running(&self.in_flight)
    }

    /// Wakes the idle indexer: records were appended.
    pub fn appended(&self) {
        self.appended.notify_one();
    }

    /// How many requests have started, for `idle_since`.
    fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// True when no request started since `started()` said `then`, and none is running. (A
    /// moment without a request running is not enough: between a busy server's requests, parsing
    /// and sending, there are many.)
    fn idle_since(&self, then: u64) -> bool {
        self.started() == then && self.in_flight.load(Ordering::Relaxed) == 0
    }
}

/// Whether `request` may read AuditEvents, and so needs the pending records stored first: any
/// interaction on the AuditEvent type, searches and histories across types, compartments, and
/// searches naming AuditEvent in a parameter (`_revinclude=AuditEvent:…`, `_has:AuditEvent:…`) or
/// including every reference (`*`). A Bundle's entries are dispatched, and checked, one by one.
pub fn may_read_trail(request: &Request) -> bool {
    let audit = |t: &ResourceType| t.as_str() == "AuditEvent";
    match request {
        Request::Read { resource_type, .. } | Request::Vread { resource_type, .. } => audit(resource_type),
        Request::Search { scope, query, .. } => match scope {
            SearchScope::Type(t) => {
                audit(t)
                    || query.iter().any(|(name, value)| {
                        name.contains("AuditEvent") || value.contains("AuditEvent") || value == "*"
                    })
            }
            SearchScope::System | SearchScope::Compartment { .. } => true,
        },
        Request::History { target, .. } => match target {
            HistoryTarget::System => true,
            HistoryTarget::Type(t) | HistoryTarget::Instance(t, _) => audit(t),
        },
        Request::Create { resource_type, .. } => audit(resource_type),
        Request::Update { resource_type, .. }
        | Request::Patch { resource_type, .. }
        | Request::Delete { resource_type, .. } => audit(resource_type),
        Request::UpdateConditional { condition, .. }
        | Request::PatchConditional { condition, .. }
        | Request::DeleteConditional { condition } => audit(&condition.resource_type),
        _ => false,
    }
}

/// Stores every record pending now as an AuditEvent (before a request that may read them). A
/// failure is logged and the request goes on: it sees what was stored.
pub async fn catch_up(services: &Services) {
    let stored = async || -> Result<()> {
        let newest = services.store.newest_pending_audit().await?;
        while newest > 0 && store_chunk(services, newest).await? > 0 {}
        Ok(())
    };
    if let Err(e) = stored().await {
        tracing::error!(error = %e, "pending audit records could not be stored as AuditEvents");
    }
}

/// Starts the idle indexer; it ends with the server: it holds the services only while it stores
/// a chunk or looks for one, so that a stopped server's store closes (a SQLite file is opened by
/// one server at a time).
pub fn spawn(services: &Arc<Services>) -> JoinHandle<()> {
    let index = services.audit_index.clone();
    let services = Arc::downgrade(services);
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(LOOK_EVERY, index.appended.notified()).await;
            // Appends come in bursts: one look for all of them.
            tokio::time::sleep(QUIET).await;
            match store_when_idle(&services).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(error = %e, "pending audit records could not be stored as AuditEvents");
                    tokio::time::sleep(LOOK_EVERY).await;
                }
            }
        }
    })
}

/// Stores the records pending now: a chunk whenever no request started for `QUIET`, and without
/// waiting once the oldest has waited `MOST_DELAY`. False when the server has gone.
async fn store_when_idle(services: &Weak<Services>) -> Result<bool> {
    let newest = match services.upgrade() {
        Some(services) => services.store.newest_pending_audit().await?,
        None => return Ok(false),
    };
    if newest == 0 {
        return Ok(true);
    }
    let mut then = None;
    loop {
        let Some(services) = services.upgrade() else {
            return Ok(false);
        };
        let index = &services.audit_index;
        let Some(written) = services.store.oldest_pending_audit_written().await? else {
            return Ok(true);
        };
        let overdue = Instant::now().as_micros() - written.as_micros() > MOST_DELAY.as_micros() as i64;
        let idle = then.is_some_and(|then| index.idle_since(then));
        then = Some(index.started());
        if !overdue && !idle {
            drop(services);
            tokio::time::sleep(QUIET).await;
            continue;
        }
        if store_chunk(&services, newest).await? == 0 {
            return Ok(true);
        }
    }
}

/// Stores up to `CHUNK` of the oldest pending records with a batch `seq` at most `up_to`; how
/// many it found (0: none is left).
async fn store_chunk(services: &Services, up_to: i64) -> Result<usize> {
    let _alone = services.audit_index.storing.lock().await;
    let Some(batch) = services.store.oldest_pending_audit(up_to).await? else {
        return Ok(0);
    };
    let records = Record::from_pending(&batch.records).unwrap_or_default();
    let from = usize::try_from(batch.taken).unwrap_or(usize::MAX).min(records.len());
    let to = (from + CHUNK).min(records.len());
    let chunk = &records[from..to];
    let unreadable = chunk.iter().filter(|r| r.is_none()).count() + usize::from(records.is_empty());
    if unreadable > 0 {
        services.audit.lost(unreadable as u64);
        tracing::error!(unreadable, "pending audit records could not be read; they are dropped");
    }
    let registry = services.search_parameters.current();
    let ops: Vec<WriteOp> = chunk
        .iter()
        .flatten()
        .filter_map(|r| audit_event(services, &registry, r))
        .collect();
    let taken = AuditTaken {
        seq: batch.seq,
        from: batch.taken,
        to: to as i64,
        last: to == records.len(),
    };
    // Another server may have stored them meanwhile: then the next chunk is read afresh.
    services.store.store_pending_audit(taken, ops).await?;
    Ok(chunk.len().max(1))
}

/// The write storing `record` as an AuditEvent.
fn audit_event(services: &Services, registry: &crate::search::Registry, record: &Record) -> Option<WriteOp> {
    let Value::Object(event) = record.to_audit_event(&services.base_url) else {
        return None;
    };
    let (resource, index) = body::with_index_rows(registry, &services.base_url, event);
    Some(WriteOp::Create {
        resource_type: ResourceType::parse("AuditEvent").expect("a type"),
        id: Id::generate(),
        resource,
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::request::ReadConditions;

    fn search(scope: SearchScope, query: &[(&str, &str)]) -> Request {
        Request::Search {
            scope,
            query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            strict: false,
        }
    }

    #[test]
    fn the_trail_is_stored_first_only_for_requests_that_may_read_it() {
        let t = |name: &str| ResourceType::parse(name).unwrap();
        let read = |name: &str| Request::Read {
            resource_type: t(name),
            id: "x".into(),
            conditions: ReadConditions::default(),
        };
        assert!(may_read_trail(&read("AuditEvent")));
        assert!(
            !may_read_trail(&read("Patient")),
            "the read by id the trail must not slow"
        );
        assert!(may_read_trail(&search(SearchScope::Type(t("AuditEvent")), &[])));
        assert!(!may_read_trail(&search(
            SearchScope::Type(t("Patient")),
            &[("name", "x")]
        )));
        for query in [
            ("_revinclude", "AuditEvent:patient"),
            ("_has:AuditEvent:patient:outcome", "4"),
            ("_revinclude", "*"),
        ] {
            assert!(
                may_read_trail(&search(SearchScope::Type(t("Patient")), &[query])),
                "{query:?}"
            );
        }
        assert!(may_read_trail(&search(SearchScope::System, &[])));
        let compartment = SearchScope::Compartment {
            compartment: t("Patient"),
            id: "p".into(),
            target: None,
        };
        assert!(may_read_trail(&search(compartment, &[])));
        let history = |target| Request::History {
            target,
            query: Vec::new(),
        };
        assert!(may_read_trail(&history(HistoryTarget::System)));
        assert!(may_read_trail(&history(HistoryTarget::Type(t("AuditEvent")))));
        assert!(!may_read_trail(&history(HistoryTarget::Type(t("Observation")))));
    }
}
