//! update, update-as-create and If-Match (http.html#update, #concurrency).

use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(
    update_writes_the_next_version_and_answers_200,
    update_as_create_with_a_client_id_answers_201,
    update_needs_the_body_id_to_match_the_url,
    stale_if_match_is_412_and_writes_nothing,
    matching_if_match_updates,
    an_unchanged_update_keeps_the_current_version,
);
crate::on_both_backends!(with |c| c.update_always_versions = true; every_update_writes_when_the_server_is_told_so);

async fn update_writes_the_next_version_and_answers_200(app: TestApp) {
    let created = app
        .post("Patient", &json!({"resourceType": "Patient", "active": true}))
        .await
        .json();
    let id = created["id"].as_str().unwrap();
    let reply = app
        .put(
            &format!("Patient/{id}"),
            &json!({"resourceType": "Patient", "id": id, "active": false}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
    assert_eq!(reply.json()["meta"]["versionId"], "2");
    assert_eq!(reply.json()["active"], false);
    assert_eq!(app.get(&format!("Patient/{id}")).await.json()["active"], false);
}

async fn update_as_create_with_a_client_id_answers_201(app: TestApp) {
    let reply = app
        .put(
            "Patient/chosen-1",
            &json!({"resourceType": "Patient", "id": "chosen-1"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.header("location").unwrap(),
        app.url("Patient/chosen-1/_history/1")
    );
    assert_eq!(app.get("Patient/chosen-1").await.status, 200);
}

async fn update_needs_the_body_id_to_match_the_url(app: TestApp) {
    let missing = app.put("Patient/p1", &json!({"resourceType": "Patient"})).await;
    let outcome = missing.assert_outcome(400, "required");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.id");
    let different = app
        .put("Patient/p1", &json!({"resourceType": "Patient", "id": "p2"}))
        .await;
    different.assert_outcome(400, "invalid");
    app.put("Patient/bad_id", &json!({"resourceType": "Patient", "id": "bad_id"}))
        .await
        .assert_outcome(400, "invalid");
    // Nothing was written by any of them.
    app.get("Patient/p1").await.assert_outcome(404, "not-found");
    app.get("Patient/p2").await.assert_outcome(404, "not-found");
}

async fn stale_if_match_is_412_and_writes_nothing(app: TestApp) {
    app.put("Patient/m", &json!({"resourceType": "Patient", "id": "m"}))
        .await;
    app.put(
        "Patient/m",
        &json!({"resourceType": "Patient", "id": "m", "active": true}),
    )
    .await;
    let stale = app
        .put_with(
            "Patient/m",
            &json!({"resourceType": "Patient", "id": "m", "active": true}),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    stale.assert_outcome(412, "conflict");
    let current = app.get("Patient/m").await;
    assert_eq!(current.header("etag"), Some("W/\"2\""));
    assert_eq!(current.json()["active"], true);
    let absent = app
        .put_with(
            "Patient/none",
            &json!({"resourceType": "Patient", "id": "none"}),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    absent.assert_outcome(412, "conflict");
    app.get("Patient/none").await.assert_outcome(404, "not-found");
}

async fn matching_if_match_updates(app: TestApp) {
    app.put("Patient/m", &json!({"resourceType": "Patient", "id": "m"}))
        .await;
    let reply = app
        .put_with(
            "Patient/m",
            &json!({"resourceType": "Patient", "id": "m", "active": true}),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
}

async fn an_unchanged_update_keeps_the_current_version(app: TestApp) {
    let patient = json!({"resourceType": "Patient", "id": "same", "active": true, "meta": {"tag": [{"code": "t"}]}});
    assert_eq!(app.put("Patient/same", &patient).await.status, 201);
    let read = app.get("Patient/same").await.json();
    // The same content again, bare or carrying what was read (versionId, lastUpdated).
    for body in [patient.clone(), read.clone()] {
        let reply = app.put("Patient/same", &body).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("etag"), Some("W/\"1\""));
        assert_eq!(reply.json()["meta"]["lastUpdated"], read["meta"]["lastUpdated"]);
    }
    // A stale If-Match is still refused.
    let stale = app.put_with("Patient/same", &patient, &[("if-match", "W/\"7\"")]).await;
    stale.assert_outcome(412, "conflict");
    let history = app.get("Patient/same/_history").await.json();
    assert_eq!(history["entry"].as_array().unwrap().len(), 1, "{history}");
    // A change of anything else, meta included, is a new version.
    let mut changed = patient.clone();
    changed["meta"]["tag"][0]["code"] = json!("u");
    let reply = app.put("Patient/same", &changed).await;
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
}

/// With `--update-always-versions` every update writes, an unchanged one too.
async fn every_update_writes_when_the_server_is_told_so(app: TestApp) {
    let patient = json!({"resourceType": "Patient", "id": "same", "active": true, "meta": {"tag": [{"code": "t"}]}});
    app.put("Patient/same", &patient).await;
    let reply = app.put("Patient/same", &patient).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
}
