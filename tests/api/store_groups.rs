//! Groups of writes (`Store::write_all`) straight against the store, on both backends: the bulk
//! path (`store::group`) with every kind of write at once, a refused `If-Match`, and a group whose
//! bulk write fails in the database and is written again one by one. What the groups stored is
//! then checked through a server on the same database: reads, history and searches (so the index
//! rows were replaced, not added to).

use crate::harness::TestApp;
use crate::on_both_backends;
use fhir_server::error::ErrorKind;
use fhir_server::model::{Id, ResourceType};
use fhir_server::search::extract::index_rows;
use fhir_server::store::{Store, StoreOptions, WriteOp};
use serde_json::{Value, json};
use std::sync::Arc;

fn patient(id: &str, family: &str, gender: &str) -> (ResourceType, Id, serde_json::Map<String, Value>, Value) {
    let resource = json!({"resourceType": "Patient", "id": id, "gender": gender, "name": [{"family": family}]});
    (
        ResourceType::parse("Patient").unwrap(),
        Id::parse(id).unwrap(),
        resource.as_object().unwrap().clone(),
        resource,
    )
}

fn create(id: &str, family: &str, gender: &str) -> WriteOp {
    let (resource_type, id, resource, value) = patient(id, family, gender);
    WriteOp::Create {
        resource_type,
        id,
        resource,
        index: index_rows(&value).unwrap(),
    }
}

fn update(id: &str, family: &str, gender: &str, if_match: Option<i64>) -> WriteOp {
    let (resource_type, id, resource, value) = patient(id, family, gender);
    WriteOp::Update {
        resource_type,
        id,
        resource,
        index: index_rows(&value).unwrap(),
        if_match,
    }
}

fn delete(id: &str) -> WriteOp {
    WriteOp::Delete {
        resource_type: ResourceType::parse("Patient").unwrap(),
        id: Id::parse(id).unwrap(),
        if_match: None,
    }
}

async fn open(app: &TestApp) -> Arc<dyn Store> {
    let options = StoreOptions {
        max_connections: 2,
        cache_bytes: 0,
        sqlite_durability: Default::default(),
    };
    app.open_store(&options).await
}

/// Ids of the Patients a search finds, sorted.
async fn found(app: &TestApp, query: &str) -> Vec<String> {
    let bundle = app.get(&format!("Patient?{query}&_count=100")).await.json();
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

async fn a_group_writes_every_kind_of_write_at_once(mut app: TestApp) {
    for (id, family) in [("kept", "Old"), ("revived", "Gone"), ("removed", "Removed")] {
        let body = json!({"resourceType": "Patient", "id": id, "gender": "male", "name": [{"family": family}]});
        assert_eq!(app.put(&format!("Patient/{id}"), &body).await.status, 201);
    }
    assert_eq!(
        app.client
            .delete(app.url("Patient/revived"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    app.stop_server().await;

    let store = open(&app).await;
    let written = store
        .write_all(vec![
            create("fresh", "Fresh", "female"),
            update("kept", "New", "female", Some(1)),
            update("revived", "Back", "female", None),
            update("brand-new", "Put", "female", None),
            delete("removed"),
            delete("never-there"),
        ])
        .await
        .map_err(|e| e.error)
        .unwrap();
    let summary: Vec<Option<(String, i64, bool)>> = written
        .iter()
        .map(|w| w.as_ref().map(|w| (w.id.as_str().to_owned(), w.version_id, w.created)))
        .collect();
    assert_eq!(
        summary,
        vec![
            Some(("fresh".into(), 1, true)),
            Some(("kept".into(), 2, false)),
            Some(("revived".into(), 3, true)),
            Some(("brand-new".into(), 1, true)),
            Some(("removed".into(), 2, false)),
            None,
        ]
    );
    drop(store);
    app.start_server().await;

    let kept = app.get("Patient/kept").await;
    assert_eq!(kept.status, 200);
    assert_eq!(kept.json()["meta"]["versionId"], "2");
    assert_eq!(kept.json()["name"][0]["family"], "New");
    assert_eq!(app.get("Patient/revived").await.json()["meta"]["versionId"], "3");
    assert_eq!(app.get("Patient/removed").await.status, 410);
    assert_eq!(app.get("Patient/never-there").await.status, 404);
    let history = app.get("Patient/kept/_history").await.json();
    assert_eq!(history["total"], 2);

    // The index rows follow the versions: old values are gone, new ones found.
    assert_eq!(found(&app, "family=old").await, Vec::<String>::new());
    assert_eq!(found(&app, "family=removed").await, Vec::<String>::new());
    assert_eq!(found(&app, "gender=male").await, Vec::<String>::new());
    assert_eq!(
        found(&app, "gender=female").await,
        vec!["brand-new", "fresh", "kept", "revived"]
    );
    assert_eq!(found(&app, "family=new").await, vec!["kept"]);

    // New rids do not collide with the old ones: each resource keeps its own rows.
    let created = app
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"family": "Later"}]}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(found(&app, "family=later").await.len(), 1);
    assert_eq!(found(&app, "family=fresh").await, vec!["fresh"]);
}

async fn a_refused_or_failing_group_writes_nothing(mut app: TestApp) {
    let body = json!({"resourceType": "Patient", "id": "taken", "gender": "male"});
    assert_eq!(app.put("Patient/taken", &body).await.status, 201);
    app.stop_server().await;
    let store = open(&app).await;

    // A stale If-Match: refused while planning, naming its write.
    let refused = store
        .write_all(vec![
            create("first", "First", "female"),
            update("taken", "X", "female", Some(7)),
        ])
        .await
        .expect_err("a stale If-Match fails the group");
    assert_eq!(refused.index, Some(1));
    assert_eq!(refused.error.kind, ErrorKind::PreconditionFailed);

    // A create of an id that exists fails in the database; written again one by one, the
    // failure names that write.
    let failed = store
        .write_all(vec![
            create("second", "Second", "female"),
            create("taken", "Y", "female"),
        ])
        .await
        .expect_err("a create of an existing id fails the group");
    assert_eq!(failed.index, Some(1));
    assert_eq!(failed.error.kind, ErrorKind::Conflict);
    drop(store);
    app.start_server().await;

    assert_eq!(app.get("Patient/first").await.status, 404);
    assert_eq!(app.get("Patient/second").await.status, 404);
    let taken = app.get("Patient/taken").await.json();
    assert_eq!(taken["meta"]["versionId"], "1");
    assert_eq!(taken["gender"], "male");
    assert_eq!(found(&app, "gender=female").await, Vec::<String>::new());
}

/// A group that writes one resource more than once cannot be planned in bulk; written one by one
/// in one transaction, each version takes its own place in history, in order.
async fn a_group_that_writes_a_resource_twice_keeps_each_version_in_order(mut app: TestApp) {
    app.stop_server().await;
    let store = open(&app).await;
    let written = store
        .write_all(vec![
            create("twice", "First", "female"),
            update("other", "Other", "male", None),
            update("twice", "Second", "female", None),
            delete("twice"),
        ])
        .await
        .expect("the group is written");
    let versions: Vec<(String, i64)> = written
        .iter()
        .flatten()
        .map(|w| (w.id.as_str().to_owned(), w.version_id))
        .collect();
    assert_eq!(
        versions,
        [
            ("twice".into(), 1),
            ("other".into(), 1),
            ("twice".into(), 2),
            ("twice".into(), 3)
        ]
    );
    drop(store);
    app.start_server().await;
    let history = app.get("_history").await.json();
    let order: Vec<(String, String)> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let id = e["fullUrl"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
            (id, e["response"]["etag"].as_str().unwrap().to_owned())
        })
        .collect();
    let expected = [("twice", 3), ("twice", 2), ("other", 1), ("twice", 1)]
        .map(|(id, version)| (id.to_owned(), format!("W/\"{version}\"")));
    assert_eq!(order, expected, "newest first, in the order written");
}

on_both_backends!(
    a_group_writes_every_kind_of_write_at_once,
    a_refused_or_failing_group_writes_nothing,
    a_group_that_writes_a_resource_twice_keeps_each_version_in_order,
);
