//! Writes the audit trail's records (`audit::Trail`) as AuditEvent resources, off the request
//! path: a task drains the queue and stores what has gathered — up to `BATCH` records — in one
//! transaction. At shutdown the queue is closed and the task writes what is left before ending.

use super::{Services, body};
use crate::audit::Record;
use crate::model::{Id, ResourceType};
use crate::store::WriteOp;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The most records written in one transaction.
const BATCH: usize = 500;

/// Starts the writer for the records of `receiver`; it ends once the queue is closed and empty.
pub fn spawn(services: Arc<Services>, mut receiver: mpsc::Receiver<Record>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while receiver.recv_many(&mut batch, BATCH).await > 0 {
            write(&services, std::mem::take(&mut batch)).await;
        }
    })
}

async fn write(services: &Services, records: Vec<Record>) {
    let audit_event = ResourceType::parse("AuditEvent").expect("a type");
    let registry = services.search_parameters.current();
    let count = records.len();
    let ops = records
        .iter()
        .filter_map(|record| match record.to_audit_event() {
            Value::Object(event) => Some(event),
            _ => None,
        })
        .map(|event| {
            let (resource, index) = body::with_index_rows(&registry, &services.base_url, event);
            WriteOp::Create {
                resource_type: audit_event,
                id: Id::generate(),
                resource,
                index,
            }
        })
        .collect();
    if services.store.write_all(ops).await.is_ok() {
        return;
    }
    // One record the database refuses must not take the others with it: each on its own.
    let mut lost = 0;
    for record in &records {
        let Value::Object(event) = record.to_audit_event() else {
            continue;
        };
        let (resource, index) = body::with_index_rows(&registry, &services.base_url, event);
        let op = WriteOp::Create {
            resource_type: audit_event,
            id: Id::generate(),
            resource,
            index,
        };
        if let Err(e) = services.store.write(op).await {
            lost += 1;
            tracing::error!(error = %e, "an audit record could not be written");
        }
    }
    if lost > 0 {
        services.audit.lost(lost);
        tracing::error!(lost, of = count, "audit records could not be written");
    }
}
