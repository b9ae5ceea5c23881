//! Batch Bundles (http.html#transaction, batch): each entry on its own.

use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(
    a_batch_answers_each_entry_on_its_own,
    history_and_compartment_reads_in_a_batch,
    every_read_answers_alike_over_http_and_as_a_batch_entry,
    writes_run_together_yet_each_entry_stands_alone_in_order,
    a_large_batch_of_puts_fails_only_its_bad_entries,
    entries_written_together_keep_values_equal_to_a_full_url,
);

async fn a_batch_answers_each_entry_on_its_own(app: TestApp) {
    app.put("Patient/b1", &json!({"resourceType": "Patient", "id": "b1"}))
        .await;
    app.put(
        "Patient/b1",
        &json!({"resourceType": "Patient", "id": "b1", "active": true}),
    )
    .await;
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000f1",
         "resource": {"resourceType": "Patient", "identifier": [{"system": "http://example.org/mrn", "value": "batch"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "birthDate": "not a date"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "id": "b1", "gender": "other"}, "request": {"method": "PUT", "url": "Patient/b1", "ifMatch": "W/\"1\""}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-0000000000f1"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": "Patient/b1"}},
        {"request": {"method": "DELETE", "url": "Patient/b1"}},
        {"request": {"method": "GET", "url": "Patient/b1"}, "fullUrl": "Patient/b1-after"}
    ]});
    let reply = app.post("", &bundle).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let response = reply.json();
    assert_eq!(response["type"], "batch-response");
    let entries = response["entry"].as_array().unwrap();
    let status = |n: usize| entries[n]["response"]["status"].as_str().unwrap().to_owned();
    assert_eq!(status(0), "201 Created");
    assert_eq!(status(1), "400 Bad Request");
    assert_eq!(entries[1]["response"]["outcome"]["resourceType"], "OperationOutcome");
    assert!(
        entries[1]["response"]["outcome"]["issue"][0]["expression"][0]
            .as_str()
            .unwrap()
            .starts_with("Bundle.entry[1].resource.birthDate")
    );
    assert_eq!(status(2), "412 Precondition Failed");
    assert_eq!(status(3), "404 Not Found");
    assert_eq!(
        status(4),
        "400 Bad Request",
        "batch entries may not refer to each other"
    );
    assert!(
        entries[4]["response"]["outcome"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("urn:uuid:00000000-0000-4000-8000-0000000000f1")
    );
    // Entries run in order: the read sees version 2, the delete follows, the last read sees it.
    assert_eq!(status(5), "200 OK");
    assert_eq!(entries[5]["resource"]["meta"]["versionId"], "2");
    assert_eq!(
        entries[5]["resource"].get("gender"),
        None,
        "the stale update wrote nothing"
    );
    assert_eq!(status(6), "204 No Content");
    assert_eq!(status(7), "410 Gone");

    // The good entry stands, the failed ones wrote nothing.
    let found = app
        .get("Patient?identifier=http://example.org/mrn|batch&_summary=count")
        .await
        .json();
    assert_eq!(found["total"], 1);
    assert_eq!(app.get("Observation?_summary=count").await.json()["total"], 0);
    assert_eq!(
        app.get("Patient?birthdate=ge1900&_summary=count").await.json()["total"],
        0
    );
}

async fn history_and_compartment_reads_in_a_batch(app: TestApp) {
    app.put("Patient/h1", &json!({"resourceType": "Patient", "id": "h1"}))
        .await;
    app.put(
        "Patient/h1",
        &json!({"resourceType": "Patient", "id": "h1", "active": true}),
    )
    .await;
    for code in ["a", "b"] {
        let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": code},
            "subject": {"reference": "Patient/h1"}});
        assert_eq!(app.post("Observation", &observation).await.status, 201);
    }
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/h1/_history"}},
        {"request": {"method": "GET", "url": "Patient/_history?_count=1"}},
        {"request": {"method": "GET", "url": "_history"}},
        {"request": {"method": "GET", "url": "Patient/h1/Observation"}},
        {"request": {"method": "GET", "url": "Patient/h1/*"}},
        {"request": {"method": "GET", "url": "Patient/h1/_history?_since=not-a-date"}}
    ]});
    let reply = app.post("", &bundle).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let entries = reply.json()["entry"].clone();
    let resource = |i: usize| entries[i]["resource"].clone();
    assert_eq!(resource(0)["type"], "history");
    assert_eq!(resource(0)["total"], 2);
    assert_eq!(resource(1)["entry"].as_array().unwrap().len(), 1);
    assert_eq!(resource(2)["entry"].as_array().unwrap().len(), 4);
    assert_eq!(resource(3)["type"], "searchset");
    assert_eq!(resource(3)["total"], 2);
    assert_eq!(
        resource(4)["entry"].as_array().unwrap().len(),
        2,
        "the two Observations, as over REST"
    );
    assert_eq!(entries[5]["response"]["status"], "400 Bad Request");
}

/// A Bundle's `id` and `meta.lastUpdated` are made fresh for each response; the rest must agree.
fn without_bundle_stamp(mut value: serde_json::Value) -> serde_json::Value {
    if value["resourceType"] == "Bundle" {
        let object = value.as_object_mut().unwrap();
        object.remove("id");
        object.remove("meta");
    }
    value
}

/// The same URL goes through one dispatcher whichever door it comes in by: each answer of a batch
/// entry (status, ETag, resource) is what the same GET over HTTP answers.
async fn every_read_answers_alike_over_http_and_as_a_batch_entry(app: TestApp) {
    app.put(
        "Patient/d1",
        &json!({"resourceType": "Patient", "id": "d1", "name": [{"family": "Doors"}]}),
    )
    .await;
    app.put(
        "Patient/d1",
        &json!({"resourceType": "Patient", "id": "d1", "name": [{"family": "Doorman"}]}),
    )
    .await;
    app.put(
        "Observation/o1",
        &json!({"resourceType": "Observation", "id": "o1", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "subject": {"reference": "Patient/d1"}}),
    )
    .await;
    app.put("Patient/gone", &json!({"resourceType": "Patient", "id": "gone"}))
        .await;
    app.delete("Patient/gone").await;
    let urls = [
        "metadata",
        "Patient/d1",
        "Patient/d1/_history/1",
        "Patient/missing",
        "Patient/gone",
        "Patient/d1/_history/9",
        "Patient?name=doorman",
        "Patient?name=doorman&_summary=count",
        "Observation?subject=Patient/d1&_include=Observation:subject",
        "Patient?name:exact=nobody&colour=blue",
        "Patient/d1/Observation?code=http://loinc.org%7C8480-6",
        "Patient/d1/*",
        "?_type=Patient,Observation&_count=5",
        "Patient/d1/_history",
        "Patient/_history?_count=1",
        "Nope/1",
        "$reindex",
    ];
    let entries: Vec<serde_json::Value> = urls
        .iter()
        .map(|url| json!({"request": {"method": "GET", "url": url}}))
        .collect();
    let reply = app
        .post(
            "",
            &json!({"resourceType": "Bundle", "type": "batch", "entry": entries}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let batch = reply.json();
    for (n, url) in urls.iter().enumerate() {
        let entry = &batch["entry"][n];
        let http = app.get(url).await;
        let status = entry["response"]["status"].as_str().unwrap();
        assert_eq!(
            status.split(' ').next().unwrap(),
            http.status.to_string(),
            "{url}: {status} in the batch, {} over HTTP",
            http.status
        );
        assert_eq!(
            entry["response"]["etag"].as_str(),
            http.header("etag"),
            "{url}: the same version"
        );
        if http.status == 200 {
            assert_eq!(
                without_bundle_stamp(entry["resource"].clone()),
                without_bundle_stamp(http.json()),
                "{url}: the same resource"
            );
        } else {
            assert_eq!(
                entry["response"]["outcome"]["issue"][0]["code"],
                http.json()["issue"][0]["code"],
                "{url}: the same issue"
            );
        }
    }
}

/// Independent writes of a batch run together (shared commits), yet each entry keeps its own
/// status, `Location`, `ETag` and OperationOutcome; a second write to the same resource, a read, a
/// conditional create and a conditional reference each see the entries before them.
async fn writes_run_together_yet_each_entry_stands_alone_in_order(app: TestApp) {
    let mrn = "http://example.org/mrn|seg-1";
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "id": "s1"}, "request": {"method": "PUT", "url": "Patient/s1"}},
        {"resource": {"resourceType": "Patient", "id": "s2", "gender": "male"}, "request": {"method": "PUT", "url": "Patient/s2"}},
        {"resource": {"resourceType": "Patient", "gender": "fish"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "id": "s1", "active": true}, "request": {"method": "PUT", "url": "Patient/s1"}},
        {"resource": {"resourceType": "Patient", "id": "s2", "gender": "female"}, "request": {"method": "PUT", "url": "Patient/s2", "ifMatch": "W/\"9\""}},
        {"request": {"method": "GET", "url": "Patient/s1"}},
        {"resource": {"resourceType": "Patient", "identifier": [{"system": "http://example.org/mrn", "value": "seg-1"}]},
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={mrn}")}},
        {"resource": {"resourceType": "Patient", "identifier": [{"system": "http://example.org/mrn", "value": "seg-1"}]},
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={mrn}")}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": format!("Patient?identifier={mrn}")}},
         "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "DELETE", "url": "Patient/s3"}},
        {"request": {"method": "GET", "url": "Patient?_id=s1,s2"}}
    ]});
    let reply = app.post("", &bundle).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let answer = reply.json();
    let entry = |n: usize| &answer["entry"][n]["response"];
    let status = |n: usize| entry(n)["status"].as_str().unwrap().to_owned();
    assert_eq!(status(0), "201 Created");
    assert_eq!(entry(0)["etag"], "W/\"1\"");
    assert!(entry(0)["location"].as_str().unwrap().contains("Patient/s1/_history/1"));
    assert_eq!(status(1), "201 Created");
    assert!(status(2).starts_with("400"), "{answer}");
    assert_eq!(
        entry(2)["outcome"]["issue"][0]["expression"][0],
        "Bundle.entry[2].resource.gender"
    );
    assert_eq!(status(3), "200 OK", "the second write of s1 comes after the first");
    assert_eq!(entry(3)["etag"], "W/\"2\"");
    assert!(status(4).starts_with("412"), "{answer}");
    assert_eq!(status(5), "200 OK");
    assert_eq!(
        answer["entry"][5]["resource"]["active"], true,
        "the read sees the writes before it"
    );
    assert_eq!(status(6), "201 Created");
    assert_eq!(status(7), "200 OK", "the second conditional create finds the first");
    assert_eq!(status(8), "201 Created");
    let created = entry(6)["location"]
        .as_str()
        .unwrap()
        .split("/_history")
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let observation = app
        .get(
            entry(8)["location"]
                .as_str()
                .unwrap()
                .split("/_history")
                .next()
                .unwrap()
                .split("/fhir/R4/")
                .nth(1)
                .unwrap(),
        )
        .await
        .json();
    assert_eq!(observation["subject"]["reference"], format!("Patient/{created}"));
    assert!(matches!(status(9).as_str(), "200 OK" | "204 No Content"), "{answer}");
    let found = &answer["entry"][10]["resource"];
    assert_eq!(found["total"], 2);
    // What failed changed nothing: s2 is still male, at version 1; one Patient has the MRN.
    let s2 = app.get("Patient/s2").await.json();
    assert_eq!(
        (s2["gender"].as_str(), s2["meta"]["versionId"].as_str()),
        (Some("male"), Some("1"))
    );
    assert_eq!(app.get(&format!("Patient?identifier={mrn}")).await.json()["total"], 1);
    assert_eq!(app.get("Patient?gender=fish").await.json()["total"], 0);
}

/// 300 PUTs in one batch, with two invalid ones and a stale `ifMatch` among them: every other
/// entry is written with its own answer, in a batch that spans several segments.
async fn a_large_batch_of_puts_fails_only_its_bad_entries(app: TestApp) {
    let entries: Vec<serde_json::Value> = (0..300)
        .map(|n| {
            let mut patient = json!({"resourceType": "Patient", "id": format!("many-{n}"), "birthDate": "1990-01-01"});
            let mut request = json!({"method": "PUT", "url": format!("Patient/many-{n}")});
            match n {
                17 | 250 => patient["birthDate"] = json!("1990-13-01"),
                140 => request["ifMatch"] = json!("W/\"3\""),
                _ => {}
            }
            json!({"resource": patient, "request": request})
        })
        .collect();
    let reply = app
        .post(
            "",
            &json!({"resourceType": "Bundle", "type": "batch", "entry": entries}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let answer = reply.json();
    for (n, entry) in answer["entry"].as_array().unwrap().iter().enumerate() {
        let status = entry["response"]["status"].as_str().unwrap();
        match n {
            17 | 250 => assert!(status.starts_with("400"), "{n}: {status}"),
            // If-Match on a resource that does not exist yet.
            140 => assert!(status.starts_with("412") || status.starts_with("404"), "{n}: {status}"),
            _ => {
                assert_eq!(status, "201 Created", "{n}");
                assert!(
                    entry["response"]["location"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("Patient/many-{n}/"))
                );
            }
        }
    }
    assert_eq!(
        app.get("Patient?birthdate=1990-01-01&_summary=count").await.json()["total"],
        297
    );
}

/// A batch written as one group must not rewrite what a transaction would: values equal to
/// another entry's fullUrl (canonical URLs, loaded with their canonical as fullUrl) stay as sent.
async fn entries_written_together_keep_values_equal_to_a_full_url(app: TestApp) {
    let code_system = json!({"resourceType": "CodeSystem", "id": "cs1", "url": "http://example.org/cs1",
        "status": "active", "content": "complete"});
    let value_set = json!({"resourceType": "ValueSet", "id": "vs1", "url": "http://example.org/vs1", "status": "active",
        "compose": {"include": [{"system": "http://example.org/cs1"}]}});
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"fullUrl": "http://example.org/cs1", "resource": code_system, "request": {"method": "PUT", "url": "CodeSystem/cs1"}},
        {"fullUrl": "http://example.org/vs1", "resource": value_set, "request": {"method": "PUT", "url": "ValueSet/vs1"}}]});
    let reply = app.post("", &bundle).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(app.get("CodeSystem/cs1").await.json()["url"], "http://example.org/cs1");
    let stored = app.get("ValueSet/vs1").await.json();
    assert_eq!(stored["url"], "http://example.org/vs1");
    assert_eq!(stored["compose"]["include"][0]["system"], "http://example.org/cs1");
}
