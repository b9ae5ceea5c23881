//! Writes the audit trail's records (`audit::Trail`) to the database, off the request path: a
//! task drains the queue and appends what has gathered — up to `BATCH` records — to the pending
//! records (`audit_pending`) as one row, a microsecond or two a record. They become
//! AuditEvent resources afterwards (`audit_index`), which costs many times more. At shutdown
//! the queue is closed and the task writes what is left before ending.

use super::Services;
use crate::audit::Record;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The most records written in one transaction.
const BATCH: usize = 1000;
/// How long a small batch waits for more records to share its commit.
const GATHER: Duration = Duration::from_millis(20);
/// How often a batch the database refused is tried again before its records count as lost.
const ATTEMPTS: usize = 3;

/// Starts the writer for the records of `receiver`; it ends once the queue is closed and empty.
pub fn spawn(services: Arc<Services>, mut receiver: mpsc::Receiver<Record>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while receiver.recv_many(&mut batch, BATCH).await > 0 {
            if batch.len() < BATCH {
                tokio::time::sleep(GATHER).await;
                while batch.len() < BATCH
                    && let Ok(record) = receiver.try_recv()
                {
                    batch.push(record);
                }
            }
            write(&services, std::mem::take(&mut batch)).await;
            services.audit_index.appended();
        }
    })
}

async fn write(services: &Services, records: Vec<Record>) {
    let count = records.len();
    let pending = Record::to_pending(&records);
    let mut failure = None;
    for attempt in 0..ATTEMPTS {
        match services.store.append_audit(pending.clone()).await {
            Ok(()) => return,
            Err(e) => failure = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
    services.audit.lost(count as u64);
    if let Some(e) = failure {
        tracing::error!(error = %e, lost = count, "audit records could not be written");
    }
}
