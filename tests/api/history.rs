//! history at instance, type and system level (http.html#history).

use crate::harness::TestApp;
use serde_json::{Value, json};

crate::on_both_backends!(
    instance_history_lists_every_version_newest_first_with_request_and_response,
    type_and_system_history_cover_their_scope,
    paging_with_count_neither_repeats_nor_skips_while_writes_arrive,
    since_and_at_select_versions_by_time,
    malformed_history_parameters_are_400,
);

fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().cloned().unwrap_or_default()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .map(|l| l["url"].as_str().unwrap().to_owned())
}

async fn instance_history_lists_every_version_newest_first_with_request_and_response(app: TestApp) {
    let created = app.post("Patient", &json!({"resourceType": "Patient"})).await.json();
    let id = created["id"].as_str().unwrap().to_owned();
    app.put(
        &format!("Patient/{id}"),
        &json!({"resourceType": "Patient", "id": id, "active": true}),
    )
    .await;
    app.delete(&format!("Patient/{id}")).await;
    let reply = app.get(&format!("Patient/{id}/_history")).await;
    assert_eq!(reply.status, 200);
    let bundle = reply.json();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "history");
    assert_eq!(bundle["total"], 3);
    let list = entries(&bundle);
    assert_eq!(list.len(), 3);
    let methods: Vec<&str> = list.iter().map(|e| e["request"]["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["DELETE", "PUT", "POST"]);
    let etags: Vec<&str> = list.iter().map(|e| e["response"]["etag"].as_str().unwrap()).collect();
    assert_eq!(etags, ["W/\"3\"", "W/\"2\"", "W/\"1\""]);
    assert!(list[0].get("resource").is_none(), "a delete has no resource");
    assert_eq!(list[1]["resource"]["active"], true);
    assert_eq!(list[2]["resource"], created);
    assert_eq!(list[2]["request"]["url"], "Patient");
    assert_eq!(list[2]["response"]["status"], "201 Created");
    assert_eq!(list[1]["request"]["url"], format!("Patient/{id}"));
    assert_eq!(list[1]["response"]["status"], "200 OK");
    assert_eq!(list[0]["fullUrl"], app.url(&format!("Patient/{id}")));
    assert!(list[0]["response"]["lastModified"].as_str().is_some());
    assert!(
        link(&bundle, "self")
            .unwrap()
            .starts_with(&app.url(&format!("Patient/{id}/_history")))
    );
    assert!(link(&bundle, "next").is_none());
    app.get("Patient/unknown/_history")
        .await
        .assert_outcome(404, "not-found");
}

async fn type_and_system_history_cover_their_scope(app: TestApp) {
    app.put("Patient/a", &json!({"resourceType": "Patient", "id": "a"}))
        .await;
    app.put(
        "Observation/o",
        &json!({"resourceType": "Observation", "id": "o", "status": "final",
        "code": {"text": "t"}}),
    )
    .await;
    app.put(
        "Patient/a",
        &json!({"resourceType": "Patient", "id": "a", "active": true}),
    )
    .await;
    let patients = app.get("Patient/_history").await.json();
    let urls: Vec<String> = entries(&patients)
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .map(|u| u[u.len() - 9..].to_owned())
        .collect();
    assert_eq!(urls, ["Patient/a", "Patient/a"]);
    let system = app.get("_history").await.json();
    let types: Vec<String> = entries(&system)
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["Patient", "Observation", "Patient"]);
    assert!(
        app.get("Observation/_history").await.json()["entry"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );
    assert!(app.get("Encounter/_history").await.json().get("entry").is_none());
}

async fn paging_with_count_neither_repeats_nor_skips_while_writes_arrive(app: TestApp) {
    for i in 0..7 {
        app.put(
            &format!("Basic/b{i}"),
            &json!({"resourceType": "Basic", "id": format!("b{i}"),
            "code": {"text": "x"}}),
        )
        .await;
    }
    let first = app.get("Basic/_history?_count=3").await.json();
    let mut seen: Vec<String> = entries(&first)
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ["b6", "b5", "b4"]);
    assert!(link(&first, "previous").is_none());
    let mut next = link(&first, "next");
    // New versions written between pages must not shift the pages still to come.
    app.put(
        "Basic/new1",
        &json!({"resourceType": "Basic", "id": "new1", "code": {"text": "x"}}),
    )
    .await;
    let mut previous_of_second = None;
    while let Some(url) = next {
        let page = app.send(app.client.get(&url)).await.json();
        if previous_of_second.is_none() {
            previous_of_second = link(&page, "previous");
        }
        seen.extend(
            entries(&page)
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned()),
        );
        app.put(
            "Basic/new2",
            &json!({"resourceType": "Basic", "id": "new2", "code": {"text": "x"}}),
        )
        .await;
        next = link(&page, "next");
    }
    assert_eq!(seen, ["b6", "b5", "b4", "b3", "b2", "b1", "b0"]);
    // The previous link of page two leads back to exactly page one.
    let back = app.send(app.client.get(previous_of_second.unwrap())).await.json();
    let ids: Vec<String> = entries(&back)
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["b6", "b5", "b4"]);
}

async fn since_and_at_select_versions_by_time(app: TestApp) {
    let v1 = app
        .put("Patient/t", &json!({"resourceType": "Patient", "id": "t"}))
        .await
        .json();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let v2 = app
        .put(
            "Patient/t",
            &json!({"resourceType": "Patient", "id": "t", "active": true}),
        )
        .await
        .json();
    let t1 = v1["meta"]["lastUpdated"].as_str().unwrap();
    let t2 = v2["meta"]["lastUpdated"].as_str().unwrap();
    let since = app
        .get(&format!("Patient/t/_history?_since={}", urlencode(t2)))
        .await
        .json();
    let versions = version_ids(&since);
    assert_eq!(versions, ["2"]);
    let at_v1 = app
        .get(&format!("Patient/t/_history?_at={}", urlencode(t1)))
        .await
        .json();
    let versions = version_ids(&at_v1);
    assert_eq!(versions, ["1"], "at t1 only version 1 was current");
    let everything = app.get("Patient/t/_history?_since=2000").await.json();
    assert_eq!(entries(&everything).len(), 2);
    let nothing = app.get("Patient/t/_history?_at=2000").await.json();
    assert!(nothing.get("entry").is_none());
}

fn version_ids(bundle: &Value) -> Vec<String> {
    entries(bundle)
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap().to_owned())
        .collect()
}

fn urlencode(value: &str) -> String {
    value.replace(':', "%3A").replace('+', "%2B")
}

async fn malformed_history_parameters_are_400(app: TestApp) {
    let outcome = app
        .get("_history?_since=last-week")
        .await
        .assert_outcome(400, "invalid");
    assert_eq!(outcome["issue"][0]["expression"][0], "_since");
    app.get("Patient/_history?_count=many")
        .await
        .assert_outcome(400, "invalid");
    app.get("Patient/x/_history?_at=2020-13")
        .await
        .assert_outcome(400, "invalid");
}
