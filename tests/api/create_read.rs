//! create, read, vread and HEAD (http.html#create, #read, #vread).

use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(
    create_assigns_an_id_and_answers_201_with_location_etag_and_last_modified,
    read_returns_what_was_stored_with_version_headers,
    head_answers_like_get_without_a_body,
    vread_serves_each_version_and_404_for_unknown_versions,
    read_of_an_unknown_resource_is_404_not_found,
    decimals_unicode_and_element_order_are_kept,
    prefer_return_minimal_and_operation_outcome,
);

async fn create_assigns_an_id_and_answers_201_with_location_etag_and_last_modified(app: TestApp) {
    let sent = json!({"resourceType": "Patient", "id": "client-chosen", "meta": {"versionId": "7"}, "active": true});
    let reply = app.post("Patient", &sent).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let body = reply.json();
    let id = body["id"].as_str().unwrap();
    assert_ne!(id, "client-chosen", "the server assigns the id on create");
    assert_eq!(body["meta"]["versionId"], "1", "a client versionId is ignored");
    assert_eq!(body["active"], true);
    assert!(body["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        reply.header("location").unwrap(),
        app.url(&format!("Patient/{id}/_history/1"))
    );
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert!(reply.header("last-modified").unwrap().ends_with(" GMT"));
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );
}

async fn read_returns_what_was_stored_with_version_headers(app: TestApp) {
    let created = app
        .post("Patient", &json!({"resourceType": "Patient", "gender": "female"}))
        .await
        .json();
    let id = created["id"].as_str().unwrap();
    let reply = app.get(&format!("Patient/{id}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), created);
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert!(reply.header("last-modified").is_some());
}

async fn head_answers_like_get_without_a_body(app: TestApp) {
    let created = app
        .post(
            "Observation",
            &json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "x"}}),
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap();
    let reply = app.send(app.client.head(app.url(&format!("Observation/{id}")))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert!(reply.text.is_empty());
    let missing = app.send(app.client.head(app.url("Observation/nope"))).await;
    assert_eq!(missing.status, 404);
}

async fn vread_serves_each_version_and_404_for_unknown_versions(app: TestApp) {
    let v1 = app
        .put(
            "Patient/vr",
            &json!({"resourceType": "Patient", "id": "vr", "active": true}),
        )
        .await
        .json();
    let v2 = app
        .put(
            "Patient/vr",
            &json!({"resourceType": "Patient", "id": "vr", "active": false}),
        )
        .await
        .json();
    let r1 = app.get("Patient/vr/_history/1").await;
    assert_eq!(r1.status, 200);
    assert_eq!(r1.json(), v1);
    assert_eq!(r1.header("etag"), Some("W/\"1\""));
    assert_eq!(app.get("Patient/vr/_history/2").await.json(), v2);
    app.get("Patient/vr/_history/3").await.assert_outcome(404, "not-found");
    app.get("Patient/vr/_history/abc")
        .await
        .assert_outcome(404, "not-found");
    app.get("Patient/other/_history/1")
        .await
        .assert_outcome(404, "not-found");
}

async fn read_of_an_unknown_resource_is_404_not_found(app: TestApp) {
    let outcome = app.get("Patient/does-not-exist").await.assert_outcome(404, "not-found");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Patient/does-not-exist")
    );
}

async fn decimals_unicode_and_element_order_are_kept(app: TestApp) {
    // Written as text so that the decimal's precision is exactly what a client sent.
    let body = r#"{"resourceType":"Observation","status":"final","code":{"text":"Größe 身長 🩺 \"q\" \\ end"},
        "valueQuantity":{"value":1.50,"unit":"m"},"component":[{"code":{"text":"a"},"valueQuantity":{"value":0.000100}}]}"#;
    let reply = app
        .send(
            app.client
                .post(app.url("Observation"))
                .header("content-type", "application/fhir+json")
                .body(body),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let read = app.get(&format!("Observation/{id}")).await;
    assert!(
        read.text.contains(r#""value":1.50"#),
        "decimal precision lost: {}",
        read.text
    );
    assert!(
        read.text.contains(r#""value":0.000100"#),
        "decimal precision lost: {}",
        read.text
    );
    let value = read.json();
    assert_eq!(value["code"]["text"], "Größe 身長 🩺 \"q\" \\ end");
    // Element order does not matter to equality: the same elements in another order compare equal.
    let sent: serde_json::Value = serde_json::from_str(body).unwrap();
    let mut back = value.clone();
    back.as_object_mut().unwrap().remove("id");
    back.as_object_mut().unwrap().remove("meta");
    assert_eq!(back, sent);
}

async fn prefer_return_minimal_and_operation_outcome(app: TestApp) {
    let patient = json!({"resourceType": "Patient"});
    let minimal = app
        .post_with("Patient", &patient, &[("prefer", "return=minimal")])
        .await;
    assert_eq!(minimal.status, 201);
    assert!(minimal.text.is_empty());
    assert!(minimal.header("location").is_some());
    let outcome = app
        .post_with("Patient", &patient, &[("prefer", "return=OperationOutcome")])
        .await;
    assert_eq!(outcome.status, 201);
    assert_eq!(outcome.json()["resourceType"], "OperationOutcome");
    assert_eq!(outcome.json()["issue"][0]["severity"], "information");
}
