//! SearchParameter resources created at run time: indexed on write, existing resources re-indexed
//! by a background job, listed in the CapabilityStatement, kept across restarts; `$reindex`.

use crate::harness::TestApp;
use serde_json::{Value, json};
use std::time::Duration;

crate::on_both_backends!(
    a_stored_search_parameter_becomes_searchable_for_old_and_new_resources,
    search_parameters_the_server_cannot_search_by_are_refused,
    reindex_operation_runs_a_job_and_reports_progress,
);

fn patient(id: &str, colour: &str) -> Value {
    json!({"resourceType": "Patient", "id": id,
        "extension": [{"url": "http://example.org/eye-colour", "valueCode": colour}]})
}

fn eye_colour() -> Value {
    json!({"resourceType": "SearchParameter", "id": "eye-colour", "url": "http://example.org/SearchParameter/eye-colour",
        "name": "EyeColour", "status": "active", "description": "A patient's eye colour", "code": "eye-colour",
        "base": ["Patient"], "type": "token",
        "expression": "Patient.extension.where(url = 'http://example.org/eye-colour').value"})
}

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let reply = app.get(query).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.text);
    let mut ids: Vec<String> = reply.json()["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The jobs of `GET $reindex` once none is running (a test waits at most 30 s).
async fn finished_jobs(app: &TestApp) -> Vec<Value> {
    for _ in 0..300 {
        let reply = app.get("$reindex").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let body = reply.json();
        let jobs: Vec<Value> = body["parameter"].as_array().cloned().unwrap_or_default();
        let running = jobs.iter().any(|job| part(job, "status") == "running");
        if !running {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("re-index jobs did not finish");
}

fn part(job: &Value, name: &str) -> Value {
    let part = job["part"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap();
    ["valueString", "valueCode", "valueInteger", "valueDecimal"]
        .iter()
        .find_map(|k| part.get(*k).cloned())
        .unwrap()
}

async fn a_stored_search_parameter_becomes_searchable_for_old_and_new_resources(mut app: TestApp) {
    for (id, colour) in [("blue-1", "blue"), ("brown-1", "brown"), ("blue-2", "blue")] {
        assert_eq!(
            app.put(&format!("Patient/{id}"), &patient(id, colour)).await.status,
            201
        );
    }
    let strict = [("prefer", "handling=strict")];
    let unknown = app
        .send(
            app.client
                .get(app.url("Patient?eye-colour=blue"))
                .header(strict[0].0, strict[0].1),
        )
        .await;
    unknown.assert_outcome(400, "invalid");

    let reply = app.put("SearchParameter/eye-colour", &eye_colour()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let jobs = finished_jobs(&app).await;
    assert_eq!(jobs.len(), 1, "creating the parameter started a re-index of Patient");
    assert_eq!(part(&jobs[0], "status"), "completed");
    assert_eq!(part(&jobs[0], "reindexed"), 3);
    assert_eq!(part(&jobs[0], "type"), "Patient");

    assert_eq!(
        ids(&app, "Patient?eye-colour=blue").await,
        vec!["blue-1", "blue-2"],
        "old resources re-indexed"
    );
    assert_eq!(app.put("Patient/blue-3", &patient("blue-3", "blue")).await.status, 201);
    assert_eq!(
        ids(&app, "Patient?eye-colour=blue").await,
        vec!["blue-1", "blue-2", "blue-3"],
        "new writes are indexed"
    );
    assert_eq!(ids(&app, "Patient?eye-colour:not=blue").await, vec!["brown-1"]);

    let metadata = app.get("metadata").await.json();
    let patient_entry = metadata["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    assert!(
        patient_entry["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "eye-colour"
                && p["type"] == "token"
                && p["definition"] == "http://example.org/SearchParameter/eye-colour"),
        "the CapabilityStatement lists the new parameter"
    );

    app.restart().await;
    assert_eq!(
        ids(&app, "Patient?eye-colour=blue").await,
        vec!["blue-1", "blue-2", "blue-3"],
        "stored parameters are loaded at start-up"
    );

    assert_eq!(app.delete("SearchParameter/eye-colour").await.status, 204);
    let gone = app
        .send(
            app.client
                .get(app.url("Patient?eye-colour=blue"))
                .header(strict[0].0, strict[0].1),
        )
        .await;
    gone.assert_outcome(400, "invalid");
}

async fn search_parameters_the_server_cannot_search_by_are_refused(app: TestApp) {
    let mut broken = eye_colour();
    broken["expression"] = json!("Patient.extension.where(");
    let reply = app.put("SearchParameter/eye-colour", &broken).await;
    let outcome = reply.assert_outcome(400, "invalid");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("cannot search")
    );
    let mut special = eye_colour();
    special["type"] = json!("special");
    app.post("SearchParameter", &special)
        .await
        .assert_outcome(400, "invalid");
    assert_eq!(
        app.get("SearchParameter/eye-colour").await.status,
        404,
        "nothing was stored"
    );
    let reply = app.get("$reindex").await;
    assert!(
        reply.json()["parameter"].is_null(),
        "no job was started: {}",
        reply.text
    );
}

async fn reindex_operation_runs_a_job_and_reports_progress(app: TestApp) {
    for n in 0..25 {
        let id = format!("p{n}");
        assert_eq!(
            app.put(&format!("Patient/{id}"), &patient(&id, "green")).await.status,
            201
        );
    }
    let reply = app
        .post("Patient/$reindex", &json!({"resourceType": "Parameters"}))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert!(reply.header("content-location").unwrap().ends_with("/$reindex"));
    let jobs = finished_jobs(&app).await;
    assert_eq!(part(&jobs[0], "status"), "completed");
    assert_eq!(part(&jobs[0], "reindexed"), 25);
    assert_eq!(ids(&app, "Patient?_id=p7").await, vec!["p7"]);
    app.post("Nonsense/$reindex", &json!({"resourceType": "Parameters"}))
        .await
        .assert_outcome(404, "not-supported");
}
