//! The $validate operation (resource-operation-validate.html).

use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(
    a_valid_resource_gets_an_information_outcome,
    an_invalid_resource_gets_every_problem_and_nothing_is_written,
    parameters_bodies_with_mode_and_profile,
    delete_mode_checks_the_resource_exists,
    a_reference_of_another_form_is_a_warning_and_is_stored,
);

/// R4 recommends `Type/id` references without requiring them: a TestScript's fixtures name files.
/// `$validate` warns; a write succeeds, the resource reads back unchanged, and search indexing
/// stores what it can: the reference's text, as for another server's URL, but no local target.
async fn a_reference_of_another_form_is_a_warning_and_is_stored(app: TestApp) {
    let observation = json!({"resourceType": "Observation", "id": "file-ref", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "fixtures/patient.json"}});
    let outcome = app.post("Observation/$validate", &observation).await.json();
    let severities = issue_severities(&outcome);
    assert_eq!(severities, ["information", "warning"], "{outcome}");
    assert_eq!(outcome["issue"][1]["expression"][0], "Observation.subject.reference");
    let stored = app.put("Observation/file-ref", &observation).await;
    assert_eq!(stored.status, 201, "{}", stored.text);
    let read = app.get("Observation/file-ref").await.json();
    assert_eq!(read["subject"], observation["subject"]);
    let found = app.get("Observation?subject=fixtures/patient.json").await.json();
    assert_eq!(found["total"], 1, "the reference's text is indexed: {found}");
    let included = app
        .get("Observation?_id=file-ref&_include=Observation:subject")
        .await
        .json();
    assert_eq!(
        included["entry"].as_array().unwrap().len(),
        1,
        "no local target: {included}"
    );
    assert_eq!(
        app.get("Observation?subject:Patient=patient.json").await.json()["total"],
        0
    );
    assert_eq!(app.get("Observation?code:text=x").await.json()["total"], 1);
    // An invalid resource gets its errors and the warning too.
    let mut invalid = observation.clone();
    invalid["status"] = json!("nope");
    let outcome = app.post("Observation/$validate", &invalid).await.json();
    let severities = issue_severities(&outcome);
    assert_eq!(severities, ["error", "warning"], "{outcome}");
}

async fn a_valid_resource_gets_an_information_outcome(app: TestApp) {
    let reply = app
        .post("Patient/$validate", &json!({"resourceType": "Patient", "active": true}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let outcome = reply.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["severity"], "information");
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>"#;
    let xml_reply = app
        .send(
            app.client
                .post(app.url("Patient/$validate"))
                .header("content-type", "application/fhir+xml")
                .body(xml),
        )
        .await;
    assert_eq!(xml_reply.json()["issue"][0]["severity"], "information");
}

async fn an_invalid_resource_gets_every_problem_and_nothing_is_written(app: TestApp) {
    let reply = app
        .post(
            "Patient/$validate",
            &json!({"resourceType": "Patient", "active": 1, "gender": "x"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let outcome = reply.json();
    let issues = outcome["issue"].as_array().unwrap();
    assert!(issues.iter().all(|i| i["severity"] == "error"));
    let at: Vec<&str> = issues
        .iter()
        .map(|i| i["expression"][0].as_str().unwrap_or_default())
        .collect();
    assert!(
        at.contains(&"Patient.active") && at.contains(&"Patient.gender"),
        "{at:?}"
    );
    let wrong_type = app
        .post("Patient/$validate", &json!({"resourceType": "Observation"}))
        .await;
    assert_eq!(wrong_type.json()["issue"][0]["expression"][0], "resourceType");
    assert!(
        app.get("_history").await.json().get("entry").is_none(),
        "$validate writes nothing"
    );
}

async fn parameters_bodies_with_mode_and_profile(app: TestApp) {
    let wrapped = |mode: &str, resource: serde_json::Value| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": resource},
            {"name": "mode", "valueCode": mode},
            {"name": "profile", "valueUri": "http://hl7.org/fhir/StructureDefinition/Patient"}]})
    };
    let create = app
        .post(
            "Patient/$validate",
            &wrapped("create", json!({"resourceType": "Patient"})),
        )
        .await;
    assert_eq!(create.json()["issue"][0]["severity"], "information", "{}", create.text);
    let update = app
        .post(
            "Patient/p1/$validate",
            &wrapped("update", json!({"resourceType": "Patient", "id": "p2"})),
        )
        .await;
    assert_eq!(update.json()["issue"][0]["severity"], "error");
    assert_eq!(update.json()["issue"][0]["expression"][0], "Patient.id");
    let other_profile = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient"}},
        {"name": "profile", "valueUri": "http://example.org/StructureDefinition/my-patient"}]});
    app.post("Patient/$validate", &other_profile)
        .await
        .assert_outcome(400, "not-supported");
    let bad_mode = json!({"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "merge"}]});
    app.post("Patient/$validate", &bad_mode)
        .await
        .assert_outcome(400, "invalid");
}

async fn delete_mode_checks_the_resource_exists(app: TestApp) {
    app.put("Patient/d1", &json!({"resourceType": "Patient", "id": "d1"}))
        .await;
    let delete = |id: &str| {
        (
            format!("Patient/{id}/$validate"),
            json!({"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]}),
        )
    };
    let (path, body) = delete("d1");
    assert_eq!(
        app.post(&path, &body).await.json()["issue"][0]["severity"],
        "information"
    );
    let (path, body) = delete("missing");
    let missing = app.post(&path, &body).await.json();
    assert_eq!(missing["issue"][0]["code"], "not-found");
    assert_eq!(app.get("Patient/d1").await.status, 200, "validation deletes nothing");
}

/// Each issue's severity of an OperationOutcome.
fn issue_severities(outcome: &serde_json::Value) -> Vec<&str> {
    outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["severity"].as_str().unwrap())
        .collect()
}
