//! Conditional create, update and delete over REST (http.html#ccreate, #cond-update, #cdelete).

use crate::harness::{Reply, TestApp};
use serde_json::{Value, json};

crate::on_both_backends!(
    conditional_create_creates_once_then_answers_with_the_match,
    conditional_update_updates_the_match_or_creates,
    conditional_delete_removes_the_one_match,
    delete_honours_if_match,
);
crate::on_both_backends!(
    with |c| c.conditional_delete_multiple = true;
    conditional_delete_of_several_when_the_server_allows_it,
);

const SYSTEM: &str = "http://example.org/mrn";

fn patient(mrn: &str) -> Value {
    json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": mrn}]})
}

/// How many Patients carry `mrn`.
async fn count_with(app: &TestApp, mrn: &str) -> i64 {
    let reply = app
        .get(&format!("Patient?identifier={SYSTEM}|{mrn}&_summary=count"))
        .await;
    reply.json()["total"].as_i64().unwrap()
}

async fn delete_with_condition(app: &TestApp, query: &str) -> Reply {
    app.delete(&format!("Patient?{query}")).await
}

async fn conditional_create_creates_once_then_answers_with_the_match(app: TestApp) {
    let condition = format!("identifier={SYSTEM}|c1");
    let first = app
        .post_with("Patient", &patient("c1"), &[("if-none-exist", &condition)])
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let id = first.json()["id"].as_str().unwrap().to_owned();

    let again = app
        .post_with("Patient", &patient("c1"), &[("if-none-exist", &condition)])
        .await;
    assert_eq!(again.status, 200, "a match is the answer: {}", again.text);
    assert_eq!(again.json()["id"], id.as_str());
    assert_eq!(again.header("etag"), Some("W/\"1\""));
    assert_eq!(count_with(&app, "c1").await, 1, "nothing more was written");

    // A second resource with the same identifier makes the condition ambiguous.
    assert_eq!(app.post("Patient", &patient("c1")).await.status, 201);
    app.post_with("Patient", &patient("c1"), &[("if-none-exist", &condition)])
        .await
        .assert_outcome(412, "conflict");
    assert_eq!(count_with(&app, "c1").await, 2);

    // An unknown parameter would widen the match: refused, nothing written.
    app.post_with("Patient", &patient("c2"), &[("if-none-exist", "no-such-param=1")])
        .await
        .assert_outcome(400, "invalid");
    assert_eq!(count_with(&app, "c2").await, 0);
}

async fn conditional_update_updates_the_match_or_creates(app: TestApp) {
    let url = format!("Patient?identifier={SYSTEM}|u1");
    let created = app.put(&url, &patient("u1")).await;
    assert_eq!(created.status, 201, "no match creates: {}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();

    let mut changed = patient("u1");
    changed["active"] = json!(true);
    let updated = app.put(&url, &changed).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json()["id"], id.as_str());
    assert_eq!(updated.header("etag"), Some("W/\"2\""));
    assert_eq!(app.get(&format!("Patient/{id}")).await.json()["active"], true);

    // A body id that is not the match's is refused.
    let mut other_id = changed.clone();
    other_id["id"] = json!("someone-else");
    app.put(&url, &other_id).await.assert_outcome(400, "invalid");

    // No match, with a body id: created at that id.
    let mut chosen = patient("u2");
    chosen["id"] = json!("chosen-u2");
    let at_id = app.put(&format!("Patient?identifier={SYSTEM}|u2"), &chosen).await;
    assert_eq!(at_id.status, 201, "{}", at_id.text);
    assert_eq!(at_id.json()["id"], "chosen-u2");

    // Two matches: 412, neither changes.
    app.post("Patient", &patient("u1")).await;
    let mut again = patient("u1");
    again["gender"] = json!("other");
    app.put(&url, &again).await.assert_outcome(412, "conflict");
    assert_eq!(app.get(&format!("Patient/{id}")).await.json()["meta"]["versionId"], "2");

    // A condition without criteria would match every Patient.
    app.put("Patient?_count=5", &patient("u3"))
        .await
        .assert_outcome(400, "invalid");
}

async fn conditional_delete_removes_the_one_match(app: TestApp) {
    let id = app.post("Patient", &patient("d1")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = delete_with_condition(&app, &format!("identifier={SYSTEM}|d1")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(deleted.header("etag"), Some("W/\"2\""));
    app.get(&format!("Patient/{id}")).await.assert_outcome(410, "deleted");

    // No match: nothing to do, still a success.
    let none = delete_with_condition(&app, &format!("identifier={SYSTEM}|nobody")).await;
    assert_eq!(none.status, 204);

    // Several matches: 412 by default, and nothing is deleted.
    app.post("Patient", &patient("d2")).await;
    app.post("Patient", &patient("d2")).await;
    delete_with_condition(&app, &format!("identifier={SYSTEM}|d2"))
        .await
        .assert_outcome(412, "conflict");
    assert_eq!(count_with(&app, "d2").await, 2);

    let statement = app.get("metadata").await.json();
    let patient_rest = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    assert_eq!(patient_rest["conditionalDelete"], "single");
    assert_eq!(patient_rest["conditionalCreate"], true);
    assert_eq!(patient_rest["conditionalUpdate"], true);
}

async fn conditional_delete_of_several_when_the_server_allows_it(app: TestApp) {
    for _ in 0..3 {
        app.post("Patient", &patient("m1")).await;
    }
    app.post("Patient", &patient("keep")).await;
    let deleted = delete_with_condition(&app, &format!("identifier={SYSTEM}|m1")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(count_with(&app, "m1").await, 0);
    assert_eq!(count_with(&app, "keep").await, 1);
    let statement = app.get("metadata").await.json();
    assert_eq!(statement["rest"][0]["resource"][0]["conditionalDelete"], "multiple");
}

async fn delete_honours_if_match(app: TestApp) {
    app.put("Patient/dm", &json!({"resourceType": "Patient", "id": "dm"}))
        .await;
    app.put(
        "Patient/dm",
        &json!({"resourceType": "Patient", "id": "dm", "active": true}),
    )
    .await;
    let stale = app
        .send(app.client.delete(app.url("Patient/dm")).header("if-match", "W/\"1\""))
        .await;
    stale.assert_outcome(412, "conflict");
    assert_eq!(app.get("Patient/dm").await.status, 200);
    let current = app
        .send(app.client.delete(app.url("Patient/dm")).header("if-match", "W/\"2\""))
        .await;
    assert_eq!(current.status, 204, "{}", current.text);
    app.get("Patient/dm").await.assert_outcome(410, "deleted");
}
