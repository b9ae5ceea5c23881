//! The patch interaction (http.html#patch): JSON Patch and FHIRPath Patch over REST, conditional
//! patch, If-Match, refusals that change nothing, and PATCH entries in transactions and batches.

use crate::harness::TestApp;
use serde_json::{Value, json};

crate::on_both_backends!(
    json_patch_writes_a_new_version,
    fhirpath_patch_in_json_and_xml,
    patch_honours_if_match_and_refuses_without_writing,
    conditional_patch_patches_the_one_match,
    patch_entries_in_transactions_and_batches,
    concurrent_patches_without_if_match_all_land,
);

const JSON_PATCH: &str = "application/json-patch+json";
const FHIR_JSON: &str = "application/fhir+json";

async fn create_patient(app: &TestApp) -> String {
    let patient = json!({"resourceType": "Patient", "active": true, "gender": "male",
        "identifier": [{"system": "http://example.org/mrn", "value": "p-1"}],
        "name": [{"family": "Chalmers", "given": ["Peter"]}]});
    let created = app.post("Patient", &patient).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json()["id"].as_str().unwrap().to_owned()
}

fn replace_gender(value: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "Patient.gender"},
        {"name": "value", "valueCode": value}]}]})
}

async fn json_patch_writes_a_new_version(app: TestApp) {
    let id = create_patient(&app).await;
    let body = r#"[{"op": "test", "path": "/gender", "value": "male"},
                  {"op": "replace", "path": "/gender", "value": "female"},
                  {"op": "add", "path": "/name/0/given/-", "value": "James"},
                  {"op": "remove", "path": "/active"}]"#;
    let patched = app.patch(&format!("Patient/{id}"), JSON_PATCH, body, &[]).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.header("etag"), Some("W/\"2\""));
    let resource = patched.json();
    assert_eq!(resource["gender"], "female");
    assert_eq!(resource["name"][0]["given"], json!(["Peter", "James"]));
    assert!(resource.get("active").is_none());
    assert_eq!(resource["meta"]["versionId"], "2");

    // Stored as version 2, version 1 kept, and searchable by the new value.
    let read = app.get(&format!("Patient/{id}")).await.json();
    assert_eq!(read["gender"], "female");
    assert_eq!(
        app.get(&format!("Patient/{id}/_history/1")).await.json()["gender"],
        "male"
    );
    let found = app.get(&format!("Patient?_id={id}&gender=female")).await.json();
    assert_eq!(found["total"], 1);

    // A patch that changes nothing writes no version.
    let same = app
        .patch(
            &format!("Patient/{id}"),
            JSON_PATCH,
            r#"[{"op": "replace", "path": "/gender", "value": "female"}]"#,
            &[],
        )
        .await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.header("etag"), Some("W/\"2\""));
}

async fn fhirpath_patch_in_json_and_xml(app: TestApp) {
    let id = create_patient(&app).await;
    let patched = app
        .patch(
            &format!("Patient/{id}"),
            FHIR_JSON,
            &replace_gender("female").to_string(),
            &[],
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["gender"], "female");

    // Add a choice element and insert into a list, in FHIR XML.
    let xml = r#"<Parameters xmlns="http://hl7.org/fhir">
      <parameter><name value="operation"/>
        <part><name value="type"/><valueCode value="add"/></part>
        <part><name value="path"/><valueString value="Patient"/></part>
        <part><name value="name"/><valueString value="deceased"/></part>
        <part><name value="value"/><valueBoolean value="false"/></part>
      </parameter>
      <parameter><name value="operation"/>
        <part><name value="type"/><valueCode value="insert"/></part>
        <part><name value="path"/><valueString value="Patient.name"/></part>
        <part><name value="index"/><valueInteger value="0"/></part>
        <part><name value="value"/><valueHumanName><family value="Jim"/></valueHumanName></part>
      </parameter>
    </Parameters>"#;
    let patched = app
        .patch(
            &format!("Patient/{id}"),
            "application/fhir+xml",
            xml,
            &[("prefer", "return=representation")],
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let resource = app.get(&format!("Patient/{id}")).await.json();
    assert_eq!(resource["deceasedBoolean"], false);
    assert_eq!(resource["name"][0]["family"], "Jim");
    assert_eq!(resource["name"][1]["family"], "Chalmers");
    assert_eq!(resource["meta"]["versionId"], "3");
}

async fn patch_honours_if_match_and_refuses_without_writing(app: TestApp) {
    let id = create_patient(&app).await;
    let url = format!("Patient/{id}");
    let stale = app
        .patch(
            &url,
            FHIR_JSON,
            &replace_gender("female").to_string(),
            &[("if-match", "W/\"9\"")],
        )
        .await;
    stale.assert_outcome(412, "conflict");
    let current = app
        .patch(
            &url,
            FHIR_JSON,
            &replace_gender("female").to_string(),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(current.status, 200, "{}", current.text);
    assert_eq!(current.header("etag"), Some("W/\"2\""));

    // Each refusal is an OperationOutcome and leaves version 2 as it was.
    let failing_test = app
        .patch(
            &url,
            JSON_PATCH,
            r#"[{"op": "test", "path": "/gender", "value": "male"}]"#,
            &[],
        )
        .await
        .assert_outcome(422, "processing");
    assert_eq!(failing_test["issue"][0]["expression"][0], "Patient.gender");
    app.patch(
        &url,
        JSON_PATCH,
        r#"[{"op": "replace", "path": "/id", "value": "other"}]"#,
        &[],
    )
    .await
    .assert_outcome(422, "processing");
    app.patch(&url, JSON_PATCH, r#"[{"op": "remove", "path": "/resourceType"}]"#, &[])
        .await
        .assert_outcome(422, "processing");
    // The result must be a valid Patient: gender is a required-binding code.
    let invalid = app
        .patch(
            &url,
            JSON_PATCH,
            r#"[{"op": "replace", "path": "/gender", "value": "sometimes"}]"#,
            &[],
        )
        .await;
    assert_eq!(invalid.status, 422, "{}", invalid.text);
    let missing = app
        .patch(
            &url,
            FHIR_JSON,
            &json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"},
            {"name": "path", "valueString": "Patient.birthDate"},
            {"name": "value", "valueDate": "2000-01-01"}]}]})
            .to_string(),
            &[],
        )
        .await
        .assert_outcome(422, "processing");
    assert_eq!(missing["issue"][0]["expression"][0], "Patient.birthDate");
    // Malformed patch documents are 400s.
    app.patch(&url, JSON_PATCH, r#"{"op": "remove"}"#, &[])
        .await
        .assert_outcome(400, "invalid");
    app.patch(&url, JSON_PATCH, "[{", &[])
        .await
        .assert_outcome(400, "structure");
    app.patch(&url, FHIR_JSON, &json!({"resourceType": "Patient"}).to_string(), &[])
        .await
        .assert_outcome(400, "invalid");
    app.patch(&url, "text/plain", "x", &[])
        .await
        .assert_outcome(415, "not-supported");

    let read = app.get(&url).await;
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(read.json()["gender"], "female");
    assert_eq!(app.get(&format!("{url}/_history")).await.json()["total"], 2);

    // No such resource; a deleted one.
    app.patch("Patient/nobody", JSON_PATCH, "[]", &[])
        .await
        .assert_outcome(404, "not-found");
    assert_eq!(app.delete(&url).await.status, 204);
    app.patch(&url, JSON_PATCH, "[]", &[])
        .await
        .assert_outcome(410, "deleted");
}

async fn conditional_patch_patches_the_one_match(app: TestApp) {
    let id = create_patient(&app).await;
    let body = replace_gender("other").to_string();
    let patched = app
        .patch("Patient?identifier=http://example.org/mrn|p-1", FHIR_JSON, &body, &[])
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["id"], id.as_str());
    assert_eq!(patched.json()["gender"], "other");
    app.patch(
        "Patient?identifier=http://example.org/mrn|nobody",
        FHIR_JSON,
        &body,
        &[],
    )
    .await
    .assert_outcome(404, "not-found");
    create_patient(&app).await;
    app.patch("Patient?identifier=http://example.org/mrn|p-1", FHIR_JSON, &body, &[])
        .await
        .assert_outcome(412, "conflict");
}

async fn patch_entries_in_transactions_and_batches(app: TestApp) {
    let id = create_patient(&app).await;
    // `[{"op":"replace","path":"/active","value":false}]`
    let binary = json!({"resourceType": "Binary", "contentType": JSON_PATCH,
        "data": "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9hY3RpdmUiLCJ2YWx1ZSI6ZmFsc2V9XQ=="});
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b8a2c7e-4c1e-4a57-9d83-0d7b1a6f1e01",
         "resource": {"resourceType": "Organization", "name": "Acme"},
         "request": {"method": "POST", "url": "Organization"}},
        {"resource": binary, "request": {"method": "PATCH", "url": format!("Patient/{id}")}},
        {"resource": {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "add"},
            {"name": "path", "valueString": "Patient"},
            {"name": "name", "valueString": "managingOrganization"},
            {"name": "value", "valueReference": {"reference": "urn:uuid:0b8a2c7e-4c1e-4a57-9d83-0d7b1a6f1e01"}}]}]},
         "request": {"method": "PATCH", "url": "Patient?identifier=http://example.org/mrn|p-1"}}
    ]});
    // Two patches of one resource are two writes of it: refused, nothing written.
    app.post("", &transaction).await.assert_outcome(400, "invalid");
    assert_eq!(app.get("Organization?_summary=count").await.json()["total"], 0);

    let mut once = transaction.clone();
    once["entry"].as_array_mut().unwrap().remove(1);
    let response = app.post("", &once).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let entries = response.json()["entry"].clone();
    assert_eq!(entries[1]["response"]["status"], "200 OK");
    assert_eq!(entries[1]["response"]["etag"], "W/\"2\"");
    let org = entries[0]["response"]["location"]
        .as_str()
        .unwrap()
        .split("/_history")
        .next()
        .unwrap()
        .to_owned();
    let patient = app.get(&format!("Patient/{id}")).await.json();
    assert!(
        org.ends_with(patient["managingOrganization"]["reference"].as_str().unwrap()),
        "{patient}"
    );

    // A failing patch fails the whole transaction.
    let failing = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Organization", "name": "Never"}, "request": {"method": "POST", "url": "Organization"}},
        {"resource": replace_gender("female"), "request": {"method": "PATCH", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}}
    ]});
    let outcome = app.post("", &failing).await.assert_outcome(412, "conflict");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .starts_with("Bundle.entry[1]")
    );
    assert_eq!(
        app.get("Organization?name=Never&_summary=count").await.json()["total"],
        0
    );

    // In a batch, each PATCH entry stands alone.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": binary, "request": {"method": "PATCH", "url": format!("Patient/{id}")}},
        {"resource": replace_gender("female"), "request": {"method": "PATCH", "url": "Patient/nobody"}},
        {"resource": {"resourceType": "Patient"}, "request": {"method": "PATCH", "url": format!("Patient/{id}")}}
    ]});
    let response = app.post("", &batch).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let entries = response.json()["entry"].clone();
    assert_eq!(entries[0]["response"]["status"], "200 OK");
    assert_eq!(entries[1]["response"]["status"], "404 Not Found");
    assert_eq!(entries[2]["response"]["status"], "400 Bad Request");
    assert_eq!(app.get(&format!("Patient/{id}")).await.json()["active"], false);
}

async fn concurrent_patches_without_if_match_all_land(app: TestApp) {
    let id = create_patient(&app).await;
    let url = format!("Patient/{id}");
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..6 {
        let (app, url) = (app.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"[{{"op": "add", "path": "/name/0/given/-", "value": "G{n}"}}]"#);
            app.patch(&url, JSON_PATCH, &body, &[]).await
        }));
    }
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    // Each patch was applied to the version current when it landed: none is lost.
    let resource = app.get(&url).await.json();
    let given = resource["name"][0]["given"].as_array().unwrap();
    assert_eq!(given.len(), 7, "{resource}");
    for n in 0..6 {
        assert!(given.contains(&json!(format!("G{n}"))), "G{n} lost: {resource}");
    }
    assert_eq!(resource["meta"]["versionId"], "7");
}
