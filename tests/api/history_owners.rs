//! The owner record: every version is stored with the patients whose compartments it was in then,
//! so a history can be narrowed to one patient's versions though the resource has since moved to
//! another patient or been deleted. Written by single writes, by transaction Bundles (in bulk),
//! and back-filled by `$reindex` for versions an older server wrote.

use crate::harness::TestApp;
use fhir_server::model::{Id, ResourceType};
use fhir_server::store::{HistoryCursor, HistoryQuery, HistoryReach, HistoryScope, Store};
use serde_json::{Value, json};

crate::on_both_backends!(
    a_patients_history_holds_each_version_it_owned_then,
    reindex_records_the_owners_of_versions_an_older_server_wrote,
);

fn observation(id: &str, subject: &str, performer: Option<&str>) -> Value {
    let mut observation = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"text": "weight"}, "subject": {"reference": subject}});
    if let Some(performer) = performer {
        observation["performer"] = json!([{"reference": performer}]);
    }
    observation
}

/// `(type/id, version)` of the versions in `scope` that belonged to `patient`, newest first.
async fn owned(store: &dyn Store, scope: HistoryScope, patient: &str) -> Vec<(String, i64)> {
    let query = HistoryQuery {
        scope,
        since: None,
        at: None,
        cursor: HistoryCursor::Newest,
        count: 100,
        reach: Some(HistoryReach::patient(Id::parse(patient).unwrap())),
    };
    store
        .history(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (format!("{}/{}", e.resource_type, e.id), e.version_id))
        .collect()
}

fn versions(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(r, v)| ((*r).to_owned(), *v)).collect()
}

/// Writes, over every write path, versions that move between patients p1 and p2.
async fn write_moving_versions(app: &TestApp) {
    for id in ["p1", "p2"] {
        app.put(&format!("Patient/{id}"), &json!({"resourceType": "Patient", "id": id}))
            .await;
    }
    // Single writes: o1 is p1's, then moves to p2, then is both's, then is deleted.
    app.put("Observation/o1", &observation("o1", "Patient/p1", None)).await;
    app.put("Observation/o1", &observation("o1", "Patient/p2", None)).await;
    app.put("Observation/o1", &observation("o1", "Patient/p2", Some("Patient/p1")))
        .await;
    assert_eq!(app.delete("Observation/o1").await.status, 204);
    // A transaction (written in bulk): o2 is p1's, then moves to p2 and is deleted in another.
    let transaction = |entries: Value| json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let first = transaction(json!([
        {"resource": observation("o2", "Patient/p1", None), "request": {"method": "PUT", "url": "Observation/o2"}},
        {"resource": {"resourceType": "Patient", "id": "p3"}, "request": {"method": "PUT", "url": "Patient/p3"}}
    ]));
    assert_eq!(app.post("", &first).await.status, 200);
    let second = transaction(json!([
        {"resource": observation("o2", "Patient/p2", None), "request": {"method": "PUT", "url": "Observation/o2"}}
    ]));
    assert_eq!(app.post("", &second).await.status, 200);
    let third = transaction(json!([{"request": {"method": "DELETE", "url": "Observation/o2"}}]));
    assert_eq!(app.post("", &third).await.status, 200);
}

async fn a_patients_history_holds_each_version_it_owned_then(app: TestApp) {
    write_moving_versions(&app).await;
    let (store, _app) = app.into_store().await;
    let observations = || HistoryScope::Type(ResourceType::parse("Observation").unwrap());
    assert_eq!(
        owned(store.as_ref(), observations(), "p1").await,
        versions(&[
            ("Observation/o2", 1),
            ("Observation/o1", 4),
            ("Observation/o1", 3),
            ("Observation/o1", 1)
        ]),
        "p1: o1 before it moved, again as performer, its delete; o2 before it moved"
    );
    assert_eq!(
        owned(store.as_ref(), observations(), "p2").await,
        versions(&[
            ("Observation/o2", 3),
            ("Observation/o2", 2),
            ("Observation/o1", 4),
            ("Observation/o1", 3),
            ("Observation/o1", 2)
        ]),
        "p2: each version since it moved there, the deletes included"
    );
    assert_eq!(
        owned(store.as_ref(), HistoryScope::System, "p3").await,
        versions(&[("Patient/p3", 1)]),
        "a Patient is in its own compartment"
    );
    let instance = HistoryScope::Instance(ResourceType::parse("Observation").unwrap(), Id::parse("o1").unwrap());
    assert_eq!(owned(store.as_ref(), instance, "p2").await.len(), 3);
    assert!(owned(store.as_ref(), HistoryScope::System, "nobody").await.is_empty());
}

async fn reindex_records_the_owners_of_versions_an_older_server_wrote(app: TestApp) {
    write_moving_versions(&app).await;
    app.put("Observation/o3", &observation("o3", "Patient/p1", None)).await;
    // What a database of an older server looks like after the migration: no owners yet, and the
    // back-fill to do up to its last version.
    app.execute_sql(
        "DELETE FROM history_owner; \
         INSERT INTO history_owner_backfill SELECT max(seq), 0 FROM resource_history",
    )
    .await;
    // A delete written after the upgrade, of a version written before it.
    assert_eq!(app.delete("Observation/o3").await.status, 204);

    let started = app.send(app.client.post(app.url("$reindex"))).await;
    assert_eq!(started.status, 202, "{}", started.text);
    let mut status = Value::Null;
    for _ in 0..200 {
        status = app.get("$reindex").await.json();
        let state = status["parameter"][0]["part"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "status")
            .unwrap()["valueCode"]
            .clone();
        if state != "running" {
            assert_eq!(state, "completed", "{status}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (store, app) = app.into_store().await;
    let observations = || HistoryScope::Type(ResourceType::parse("Observation").unwrap());
    assert_eq!(
        owned(store.as_ref(), observations(), "p1").await,
        versions(&[
            ("Observation/o3", 2),
            ("Observation/o3", 1),
            ("Observation/o2", 1),
            ("Observation/o1", 4),
            ("Observation/o1", 3),
            ("Observation/o1", 1)
        ]),
        "back-filled from each version's content; deletes take the owners of what they deleted: {status}"
    );
    assert_eq!(owned(store.as_ref(), observations(), "p2").await.len(), 5);
    assert!(store.owner_backfill().await.unwrap().is_none(), "the back-fill is done");
    drop(app);
}
