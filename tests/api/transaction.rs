//! Transaction Bundles (http.html#transaction): atomic, in the spec's order, with fullUrl and
//! conditional references resolved.

use crate::harness::{Reply, TestApp};
use serde_json::{Value, json};

crate::on_both_backends!(
    a_transaction_creates_its_entries_and_rewrites_every_reference,
    a_failing_entry_leaves_nothing_behind,
    entries_run_in_the_spec_order_and_reads_see_the_writes,
    conditional_entries_and_conditional_references,
    malformed_transactions_are_refused_whole,
    prefer_shapes_the_entries,
);
crate::on_both_backends!(with |c| c.bundle_max_entries = 1; a_bundle_over_the_entry_limit_is_413);

const SYSTEM: &str = "http://example.org/mrn";

async fn post_bundle(app: &TestApp, bundle: &Value) -> Reply {
    app.post("", bundle).await
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

fn post(full_url: &str, resource: Value) -> Value {
    let resource_type = resource["resourceType"].as_str().unwrap().to_owned();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource_type}})
}

/// A Patient found by its identifier `value`.
fn marker(value: &str) -> Value {
    json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": value}]})
}

async fn total(app: &TestApp, query: &str) -> i64 {
    let reply = app.get(&format!("{query}&_summary=count")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["total"].as_i64().unwrap()
}

/// `Patient/abc` from a response entry's `location` (…/Patient/abc/_history/1).
fn reference_of(entry: &Value) -> String {
    let location = entry["response"]["location"].as_str().unwrap();
    let parts: Vec<&str> = location.rsplitn(4, '/').collect();
    format!("{}/{}", parts[3].rsplit('/').next().unwrap(), parts[2])
}

async fn a_transaction_creates_its_entries_and_rewrites_every_reference(app: TestApp) {
    let bundle = transaction(vec![
        post(
            "urn:uuid:7e1b0c9a-0000-4000-8000-000000000001",
            json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "t1"}]}),
        ),
        post(
            "urn:uuid:7e1b0c9a-0000-4000-8000-000000000002",
            json!({
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "weight"},
                "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">about <a href=\"urn:uuid:7e1b0c9a-0000-4000-8000-000000000001\">the patient</a></div>"},
                "subject": {"reference": "urn:uuid:7e1b0c9a-0000-4000-8000-000000000001"},
                "performer": [{"reference": "http://other.example/fhir/Practitioner/pr1"}],
                "extension": [{"url": "http://example.org/about", "valueReference": {"reference": "urn:uuid:7e1b0c9a-0000-4000-8000-000000000001"}}],
                "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:7e1b0c9a-0000-4000-8000-000000000001"}]
            }),
        ),
        post(
            "http://other.example/fhir/Practitioner/pr1",
            json!({"resourceType": "Practitioner", "active": true}),
        ),
    ]);
    let reply = post_bundle(&app, &bundle).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let response = reply.json();
    assert_eq!(response["type"], "transaction-response");
    let entries = response["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for entry in entries {
        assert_eq!(entry["response"]["status"], "201 Created", "{entry}");
        assert_eq!(entry["response"]["etag"], "W/\"1\"");
        assert!(entry["response"]["lastModified"].is_string());
        assert_eq!(entry["resource"]["meta"]["versionId"], "1");
    }
    let patient = reference_of(&entries[0]);
    let practitioner = reference_of(&entries[2]);
    assert!(patient.starts_with("Patient/"), "{patient}");

    let observation = app.get(&reference_of(&entries[1])).await.json();
    assert_eq!(observation["subject"]["reference"], patient.as_str());
    assert_eq!(observation["performer"][0]["reference"], practitioner.as_str());
    assert_eq!(
        observation["extension"][0]["valueReference"]["reference"],
        patient.as_str()
    );
    assert!(
        observation["text"]["div"]
            .as_str()
            .unwrap()
            .contains(&format!("href=\"{patient}\""))
    );
    // An Identifier.value is a string, not a reference: left as sent.
    assert_eq!(
        observation["identifier"][0]["value"],
        "urn:uuid:7e1b0c9a-0000-4000-8000-000000000001"
    );
    // The rewritten reference is indexed: the Observation is found through its subject.
    assert_eq!(total(&app, &format!("Observation?subject={patient}")).await, 1);
    assert_eq!(
        total(&app, &format!("Observation?subject:Patient.identifier={SYSTEM}|t1")).await,
        1
    );
}

async fn a_failing_entry_leaves_nothing_behind(app: TestApp) {
    app.put("Patient/held", &json!({"resourceType": "Patient", "id": "held"}))
        .await;
    // A stale ifMatch on the last entry, after a create and an update that would succeed alone.
    let bundle = transaction(vec![
        post(
            "urn:uuid:00000000-0000-4000-8000-0000000000a1",
            json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "rolled-back"}]}),
        ),
        json!({"fullUrl": "Patient/other", "resource": {"resourceType": "Patient", "id": "other"}, "request": {"method": "PUT", "url": "Patient/other"}}),
        json!({"fullUrl": "Patient/held", "resource": {"resourceType": "Patient", "id": "held", "active": true},
               "request": {"method": "PUT", "url": "Patient/held", "ifMatch": "W/\"7\""}}),
    ]);
    let reply = post_bundle(&app, &bundle).await;
    let outcome = reply.assert_outcome(412, "conflict");
    let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        diagnostics.starts_with("Bundle.entry[2] (Patient/held): "),
        "{diagnostics}"
    );
    assert_eq!(outcome["issue"][0]["expression"][0], "Bundle.entry[2]");
    assert_eq!(
        total(&app, &format!("Patient?identifier={SYSTEM}|rolled-back")).await,
        0
    );
    app.get("Patient/other").await.assert_outcome(404, "not-found");
    let held = app.get("Patient/held").await.json();
    assert_eq!(held["meta"]["versionId"], "1");
    assert_eq!(app.get("Patient/held/_history").await.json()["total"], 1);

    // An invalid resource fails the transaction before anything is written, naming its path.
    let invalid = transaction(vec![
        post(
            "urn:uuid:00000000-0000-4000-8000-0000000000a2",
            json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "never"}]}),
        ),
        post(
            "urn:uuid:00000000-0000-4000-8000-0000000000a3",
            json!({"resourceType": "Patient", "birthDate": "yesterday"}),
        ),
    ]);
    let outcome = post_bundle(&app, &invalid).await.assert_outcome(400, "value");
    assert!(
        outcome["issue"][0]["expression"][0]
            .as_str()
            .unwrap()
            .starts_with("Bundle.entry[1].resource.birthDate"),
        "{outcome}"
    );
    assert_eq!(total(&app, &format!("Patient?identifier={SYSTEM}|never")).await, 0);
}

async fn entries_run_in_the_spec_order_and_reads_see_the_writes(app: TestApp) {
    app.put("Patient/gone", &json!({"resourceType": "Patient", "id": "gone"}))
        .await;
    // Listed reads first, then updates, deletes and creates: processed deletes, creates,
    // updates, reads, and answered in the order sent.
    let bundle = transaction(vec![
        json!({"request": {"method": "GET", "url": format!("Patient?identifier={SYSTEM}|ordered")}}),
        json!({"request": {"method": "GET", "url": "Patient/kept"}}),
        json!({"fullUrl": "Patient/kept", "resource": {"resourceType": "Patient", "id": "kept", "active": true},
               "request": {"method": "PUT", "url": "Patient/kept"}}),
        json!({"request": {"method": "DELETE", "url": "Patient/gone"}}),
        post(
            "urn:uuid:00000000-0000-4000-8000-0000000000b1",
            json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "ordered"}]}),
        ),
    ]);
    let reply = post_bundle(&app, &bundle).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let entries = reply.json()["entry"].as_array().unwrap().clone();
    assert_eq!(entries[0]["response"]["status"], "200 OK");
    assert_eq!(entries[0]["resource"]["type"], "searchset");
    assert_eq!(entries[0]["resource"]["total"], 1, "the search sees the create");
    assert_eq!(entries[1]["resource"]["active"], true, "the read sees the update");
    assert_eq!(entries[1]["response"]["etag"], "W/\"1\"");
    assert_eq!(entries[2]["response"]["status"], "201 Created");
    assert_eq!(entries[3]["response"]["status"], "204 No Content");
    assert_eq!(entries[4]["response"]["status"], "201 Created");
    app.get("Patient/gone").await.assert_outcome(410, "deleted");
    // The history of the system shows the delete before the create before the update.
    let history = app.get("_history").await.json();
    let methods: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, vec!["PUT", "POST", "DELETE"], "newest first");
}

async fn conditional_entries_and_conditional_references(app: TestApp) {
    let existing = app
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "c1"}]}),
        )
        .await
        .json();
    let existing_id = existing["id"].as_str().unwrap().to_owned();
    let bundle = transaction(vec![
        json!({"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000c1",
               "resource": {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "c1"}]},
               "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={SYSTEM}|c1")}}),
        post(
            "urn:uuid:00000000-0000-4000-8000-0000000000c2",
            json!({
            "resourceType": "Observation", "status": "final", "code": {"text": "a"},
            "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-0000000000c1"}}),
        ),
        post(
            "urn:uuid:00000000-0000-4000-8000-0000000000c3",
            json!({
            "resourceType": "Observation", "status": "final", "code": {"text": "b"},
            "subject": {"reference": format!("Patient?identifier={SYSTEM}|c1")}}),
        ),
        json!({"resource": {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "c1"}], "active": true},
               "request": {"method": "PUT", "url": format!("Patient?identifier={SYSTEM}|c1")}}),
    ]);
    // The conditional create and the conditional update both name the existing Patient: it would
    // be written by one and reused by the other, which is fine, since the create writes nothing.
    let reply = post_bundle(&app, &bundle).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let entries = reply.json()["entry"].as_array().unwrap().clone();
    assert_eq!(entries[0]["response"]["status"], "200 OK", "the match is reused");
    assert_eq!(reference_of(&entries[0]), format!("Patient/{existing_id}"));
    assert_eq!(entries[3]["response"]["status"], "200 OK");
    assert_eq!(entries[3]["response"]["etag"], "W/\"2\"");
    for n in [1, 2] {
        let observation = app.get(&reference_of(&entries[n])).await.json();
        assert_eq!(observation["subject"]["reference"], format!("Patient/{existing_id}"));
    }
    assert_eq!(total(&app, &format!("Patient?identifier={SYSTEM}|c1")).await, 1);

    // A conditional reference with no match fails the whole transaction.
    let unmatched = transaction(vec![
        post(
            "urn:uuid:00000000-0000-4000-8000-0000000000c4",
            json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "c4"}]}),
        ),
        post(
            "urn:uuid:00000000-0000-4000-8000-0000000000c5",
            json!({
            "resourceType": "Observation", "status": "final", "code": {"text": "c"},
            "subject": {"reference": format!("Patient?identifier={SYSTEM}|nobody")}}),
        ),
    ]);
    let outcome = post_bundle(&app, &unmatched).await.assert_outcome(412, "conflict");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Bundle.entry[1]")
    );
    assert_eq!(total(&app, &format!("Patient?identifier={SYSTEM}|c4")).await, 0);

    // Two matches for a conditional reference: 412 too.
    app.post(
        "Patient",
        &json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "c1"}]}),
    )
    .await;
    let ambiguous = transaction(vec![post(
        "urn:uuid:00000000-0000-4000-8000-0000000000c6",
        json!({
        "resourceType": "Observation", "status": "final", "code": {"text": "d"},
        "subject": {"reference": format!("Patient?identifier={SYSTEM}|c1")}}),
    )]);
    post_bundle(&app, &ambiguous).await.assert_outcome(412, "conflict");
}

async fn malformed_transactions_are_refused_whole(app: TestApp) {
    let duplicate_full_url = transaction(vec![
        post("urn:uuid:00000000-0000-4000-8000-0000000000d1", marker("m1")),
        post("urn:uuid:00000000-0000-4000-8000-0000000000d1", marker("m1")),
    ]);
    let outcome = post_bundle(&app, &duplicate_full_url)
        .await
        .assert_outcome(400, "invalid");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Bundle.entry[1]")
    );

    let same_resource_twice = transaction(vec![
        json!({"resource": {"resourceType": "Patient", "id": "twice"}, "request": {"method": "PUT", "url": "Patient/twice"}}),
        json!({"request": {"method": "DELETE", "url": "Patient/twice"}}),
        post("urn:uuid:00000000-0000-4000-8000-0000000000d2", marker("m1")),
    ]);
    post_bundle(&app, &same_resource_twice)
        .await
        .assert_outcome(400, "invalid");

    let unknown_urn = transaction(vec![
        post("urn:uuid:00000000-0000-4000-8000-0000000000d3", marker("m1")),
        post(
            "urn:uuid:00000000-0000-4000-8000-0000000000d4",
            json!({
            "resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-00000000ffff"}}),
        ),
    ]);
    let outcome = post_bundle(&app, &unknown_urn).await.assert_outcome(400, "not-found");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.subject.reference"
    );

    let no_request = transaction(vec![json!({"resource": marker("m1")})]);
    post_bundle(&app, &no_request).await.assert_outcome(400, "required");
    let not_a_transaction = json!({"resourceType": "Bundle", "type": "collection", "entry": []});
    post_bundle(&app, &not_a_transaction).await.assert_outcome(400, "value");
    post_bundle(&app, &json!({"resourceType": "Patient"}))
        .await
        .assert_outcome(400, "invalid");

    assert_eq!(total(&app, &format!("Patient?identifier={SYSTEM}|m1")).await, 0);
    app.get("Patient/twice").await.assert_outcome(404, "not-found");
}

/// More entries than the server takes (one, here): 413, and nothing written.
async fn a_bundle_over_the_entry_limit_is_413(app: TestApp) {
    let two = transaction(vec![
        post("urn:uuid:00000000-0000-4000-8000-0000000000d5", marker("m2")),
        post("urn:uuid:00000000-0000-4000-8000-0000000000d6", marker("m2")),
    ]);
    post_bundle(&app, &two).await.assert_outcome(413, "too-long");
    assert_eq!(total(&app, &format!("Patient?identifier={SYSTEM}|m2")).await, 0);
}

async fn prefer_shapes_the_entries(app: TestApp) {
    let bundle = |n: &str| {
        transaction(vec![post(
            &format!("urn:uuid:00000000-0000-4000-8000-0000000000e{n}"),
            json!({"resourceType": "Patient"}),
        )])
    };
    let minimal = app.post_with("", &bundle("1"), &[("prefer", "return=minimal")]).await;
    let entry = &minimal.json()["entry"][0];
    assert!(entry.get("resource").is_none(), "{entry}");
    assert_eq!(entry["response"]["status"], "201 Created");
    let outcome = app
        .post_with("", &bundle("2"), &[("prefer", "return=OperationOutcome")])
        .await;
    let entry = &outcome.json()["entry"][0];
    assert!(entry.get("resource").is_none());
    assert_eq!(entry["response"]["outcome"]["resourceType"], "OperationOutcome");
    let full = app.post("", &bundle("3")).await;
    let entry = &full.json()["entry"][0];
    assert_eq!(entry["resource"]["resourceType"], "Patient");
    assert_eq!(
        entry["fullUrl"].as_str().unwrap(),
        app.url(&format!("Patient/{}", entry["resource"]["id"].as_str().unwrap()))
    );
}
