//! The audit trail's pending records: each batch the writer appends (`audit_pending`) becomes
//! AuditEvents exactly once — before a request that reads AuditEvents, or when the server is
//! idle — and never twice, even when two servers on one PostgreSQL database race for it.

use crate::harness::{Backend, TestApp};
use fhir_server::audit::Record;
use fhir_server::model::{Id, Instant, ResourceType};
use fhir_server::search::extract::index_rows;
use fhir_server::store::{AuditTaken, HistoryCursor, HistoryQuery, HistoryScope, WriteOp};
use serde_json::Value;

crate::on_both_backends!(
    a_pending_record_becomes_exactly_one_audit_event,
    a_search_of_the_trail_stores_what_is_pending_first,
    an_idle_server_stores_what_is_pending,
);

crate::on_postgres!(two_servers_store_each_pending_record_once,);

fn record(n: usize) -> Record {
    Record {
        recorded: Instant::now(),
        subtype: "read",
        action: "R",
        denied: false,
        outcome: "0",
        outcome_text: None,
        client: Some(format!("client-{n}")),
        user: None,
        entities: vec![format!("Observation/o{n}"), "Patient/p1".to_owned()],
    }
}

fn records(count: usize) -> Vec<Record> {
    (0..count).map(record).collect()
}

fn audit_event(record: &Record) -> WriteOp {
    let event = record.to_audit_event("http://test/fhir");
    WriteOp::Create {
        resource_type: ResourceType::parse("AuditEvent").unwrap(),
        id: Id::generate(),
        index: index_rows(&event).unwrap(),
        resource: event.as_object().unwrap().clone(),
    }
}

/// A pending batch as the writer appends it, put in beside the server.
async fn append_beside(app: &TestApp, batch: &[Record]) {
    let text = Record::to_pending(batch).replace('\'', "''");
    let written = Instant::now().as_micros();
    app.execute_sql(&format!(
        "INSERT INTO audit_pending (records, written) VALUES ('{text}', {written})"
    ))
    .await;
}

async fn pending_rows(app: &TestApp) -> i64 {
    app.query_i64("SELECT count(*) FROM audit_pending").await
}

/// The AuditEvents the server finds for `query`, asked once.
async fn count(app: &TestApp, base: &str, query: &str) -> i64 {
    let url = format!("{base}/AuditEvent?{query}&_summary=count");
    let reply = app.send(app.client.get(&url)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["total"].as_i64().unwrap()
}

async fn a_pending_record_becomes_exactly_one_audit_event(app: TestApp) {
    let batch = records(3);
    let (store, _app) = app.into_store().await;
    store.append_audit(Record::to_pending(&batch)).await.unwrap();
    let newest = store.newest_pending_audit().await.unwrap();
    assert!(newest > 0);
    assert!(store.oldest_pending_audit_written().await.unwrap().is_some());
    let pending = store.oldest_pending_audit(newest).await.unwrap().expect("pending");
    assert_eq!(pending.taken, 0);
    let parsed = Record::from_pending(&pending.records).unwrap();
    assert_eq!(parsed, batch.iter().cloned().map(Some).collect::<Vec<_>>());

    let first = AuditTaken {
        seq: pending.seq,
        from: 0,
        to: 2,
        last: false,
    };
    let ops = || batch[..2].iter().map(audit_event).collect::<Vec<_>>();
    assert!(store.store_pending_audit(first, ops()).await.unwrap());
    assert!(
        !store.store_pending_audit(first, ops()).await.unwrap(),
        "the same records again (another server's attempt): refused, nothing written"
    );
    let pending = store.oldest_pending_audit(newest).await.unwrap().expect("one left");
    assert_eq!(pending.taken, 2);
    let rest = AuditTaken {
        seq: pending.seq,
        from: 2,
        to: 3,
        last: true,
    };
    assert!(
        store
            .store_pending_audit(rest, vec![audit_event(&batch[2])])
            .await
            .unwrap()
    );
    assert!(store.oldest_pending_audit(newest).await.unwrap().is_none());
    assert_eq!(store.newest_pending_audit().await.unwrap(), 0);
    assert!(store.oldest_pending_audit_written().await.unwrap().is_none());

    let history = HistoryQuery {
        scope: HistoryScope::Type(ResourceType::parse("AuditEvent").unwrap()),
        since: None,
        at: None,
        cursor: HistoryCursor::Newest,
        count: 10,
        reach: None,
    };
    assert_eq!(
        store.history_total(&history).await.unwrap(),
        3,
        "three records, three AuditEvents"
    );
}

async fn a_search_of_the_trail_stores_what_is_pending_first(app: TestApp) {
    append_beside(&app, &records(300)).await;
    // Asked at once: the idle indexer looks only every second, so this search finds them
    // because it stores what is pending before it runs.
    assert_eq!(count(&app, &app.base, "patient=Patient/p1").await, 300);
    assert_eq!(pending_rows(&app).await, 0);
    let found = app.get("AuditEvent?entity=Observation/o299&_count=5").await.json();
    let event: &Value = &found["entry"][0]["resource"];
    assert_eq!(event["subtype"][0]["code"], "read");
    assert_eq!(event["agent"][0]["who"]["identifier"]["value"], "client-299");
    assert_eq!(event["source"]["observer"]["display"], app.base.as_str());
    assert_eq!(
        count(&app, &app.base, "patient=Patient/p1").await,
        300,
        "and never twice"
    );
}

async fn an_idle_server_stores_what_is_pending(app: TestApp) {
    append_beside(&app, &records(3)).await;
    // No request: the server finds them by itself within a few seconds.
    let mut left = pending_rows(&app).await;
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = pending_rows(&app).await;
    }
    assert_eq!(left, 0, "an idle server stored the pending records");
    assert_eq!(count(&app, &app.base, "patient=Patient/p1").await, 3);
}

async fn two_servers_store_each_pending_record_once(app: TestApp) {
    assert_eq!(app.backend, Backend::Postgres);
    let other = fhir_server::app::start(&app.config).await.unwrap();
    for _ in 0..4 {
        append_beside(&app, &records(400)).await;
    }
    // Both servers store the same pending batches at once, chunk by chunk.
    let (here, there) = tokio::join!(
        count(&app, &app.base, "patient=Patient/p1"),
        count(&app, &other.base_url, "patient=Patient/p1")
    );
    assert_eq!((here, there), (1600, 1600));
    assert_eq!(pending_rows(&app).await, 0);
    other.stop().await.unwrap();
}
