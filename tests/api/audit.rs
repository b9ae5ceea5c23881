//! The audit trail: an AuditEvent for every refusal and withheld resource, for every request
//! with `--audit all`, written off the request path and flushed at shutdown; searchable like any
//! resource, never changed by a client, and free of the values a request carried.

use crate::auth::{admin, as_holder, claims, sign, two_patients};
use crate::harness::TestApp;
use serde_json::{Value, json};

crate::on_both_backends!(with crate::auth::with_idp;
    refusals_and_withheld_resources_are_audited,
    audit_events_are_never_changed_by_a_client,
);

crate::on_both_backends!(with |c| { crate::auth::with_idp(c); c.audit = fhir_server::config::AuditArg::All; };
    with_audit_all_every_request_is_recorded_and_flushed_at_shutdown,
    a_batch_written_as_one_group_is_audited_entry_by_entry,
);

/// A holder of a scope that names AuditEvent (`*` does not reach the trail).
fn auditor(app: &TestApp) -> crate::auth::As<'_> {
    as_holder(app, "system/AuditEvent.rs", None)
}

/// The AuditEvents matching `query`, once the writer has stored at least `at_least` of them.
pub async fn audit_events(app: &TestApp, query: &str, at_least: usize) -> Vec<Value> {
    let admin = auditor(app);
    for _ in 0..100 {
        let bundle = admin.get(&format!("AuditEvent?{query}&_count=100")).await.json();
        let events: Vec<Value> = bundle["entry"]
            .as_array()
            .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
            .unwrap_or_default();
        if events.len() >= at_least {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {at_least} AuditEvents match {query}");
}

async fn refusals_and_withheld_resources_are_audited(app: TestApp) {
    two_patients(&app).await;
    let mut user = claims(&app, "patient/*.rs", Some("p1"));
    user["fhirUser"] = json!("Patient/p1");
    let p1 = crate::auth::As {
        app: &app,
        token: sign(&user),
    };
    // A refusal (no scope on Practitioner), and a resource withheld (another patient's).
    p1.get("Practitioner/doc").await.assert_outcome(403, "forbidden");
    assert_eq!(p1.get("Observation/obs-p2").await.status, 404);
    let refused = audit_events(&app, "entity=Practitioner/doc", 1).await;
    let event = &refused[0];
    assert_eq!(event["outcome"], "4");
    assert_eq!(event["type"]["code"], "rest");
    assert_eq!(event["subtype"][0]["code"], "read");
    assert_eq!(event["action"], "R");
    assert!(
        event["outcomeDesc"].as_str().unwrap().contains("does not grant"),
        "{event}"
    );
    let withheld = audit_events(&app, "entity=Observation/obs-p2", 1).await;
    assert_eq!(withheld[0]["outcome"], "4");
    // Searchable by the user, the outcome, the subtype, the date.
    assert_eq!(audit_events(&app, "agent=Patient/p1&outcome=4", 2).await.len(), 2);
    audit_events(&app, "subtype=read&type=rest", 2).await;
    audit_events(&app, "date=ge2020-01-01", 2).await;
    // An id from the URL that is no FHIR id is not copied into the trail (PostgreSQL would
    // refuse a NUL in it, and with it the whole batch): the record names the type alone.
    p1.get("Practitioner/x%00y").await.assert_outcome(403, "forbidden");
    let odd = audit_events(&app, "subtype=read&outcome=4", 3).await;
    assert!(
        odd.iter()
            .any(|e| e["entity"][0]["what"]["reference"] == "Practitioner"),
        "{odd:?}"
    );
    // Allowed reads are not audited by default.
    assert_eq!(p1.get("Observation/obs-p1").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let all = audit_events(&app, "_summary=count", 0).await;
    let count = auditor(&app).get("AuditEvent?_summary=count").await.json()["total"]
        .as_i64()
        .unwrap();
    assert_eq!(count, 3, "{all:?}");
    // The records carry no token.
    let text = auditor(&app).get("AuditEvent").await.text;
    assert!(!text.contains(&p1.token), "no token in the trail");
    // A request whose token does not verify is recorded as a failed login, without the token.
    let forged = format!("{}x", p1.token);
    let refused = app
        .send(app.client.get(app.url("Observation/obs-p1")).bearer_auth(&forged))
        .await;
    assert_eq!(refused.status, 401);
    let logins = audit_events(&app, "type=http://dicom.nema.org/resources/ontology/DCM|110114", 1).await;
    assert_eq!(logins[0]["outcome"], "4");
    assert!(!logins[0].to_string().contains(&forged), "no token in the trail");
    assert!(!logins[0].to_string().contains("obs-p1"), "nor the URL");
}

async fn audit_events_are_never_changed_by_a_client(app: TestApp) {
    let admin = admin(&app);
    let mut user = claims(&app, "patient/*.rs", Some("p1"));
    user["fhirUser"] = json!("Patient/p1");
    let p1 = crate::auth::As {
        app: &app,
        token: sign(&user),
    };
    p1.get("Practitioner/x").await.assert_outcome(403, "forbidden");
    let event = audit_events(&app, "outcome=4", 1).await.remove(0);
    let id = event["id"].as_str().unwrap().to_owned();
    let mut changed = event.clone();
    changed["outcome"] = json!("0");
    // Even a holder of every permission on AuditEvent cannot change or remove a record.
    let writer = as_holder(&app, "system/AuditEvent.cruds", None);
    let reply = writer.put(&format!("AuditEvent/{id}"), &changed).await;
    assert_eq!(reply.status, 405, "{}", reply.text);
    assert_eq!(writer.delete(&format!("AuditEvent/{id}")).await.status, 405);
    assert_eq!(writer.delete("AuditEvent?outcome=4").await.status, 405);
    // In a transaction too.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": changed, "request": {"method": "PUT", "url": format!("AuditEvent/{id}")}}]});
    assert_eq!(writer.post("", &bundle).await.status, 405);
    // A new record by id is a create, which clients may make, but not as the server's own.
    let mut new = event.clone();
    new["id"] = json!("client-made");
    let forged = writer.put("AuditEvent/client-made", &new).await;
    forged.assert_outcome(403, "forbidden");
    let forged = writer.post("AuditEvent", &new).await;
    forged.assert_outcome(403, "forbidden");
    new["source"]["observer"] = json!({"display": "the client's own audit source"});
    assert_eq!(writer.put("AuditEvent/client-made", &new).await.status, 201);
    let patch = app
        .send(
            app.client
                .patch(app.url(&format!("AuditEvent/{id}")))
                .bearer_auth(&writer.token)
                .header("content-type", "application/json-patch+json")
                .body("[]"),
        )
        .await;
    assert_eq!(patch.status, 405);
    // Each attempt is on the record.
    let attempts = audit_events(&app, "subtype=patch,delete,update&outcome=4", 5).await;
    assert!(
        attempts
            .iter()
            .any(|e| e["subtype"][0]["code"] == "patch" && e["action"] == "U"),
        "{attempts:?}"
    );
    let reread = auditor(&app).get(&format!("AuditEvent/{id}")).await;
    assert_eq!(reread.json()["outcome"], "4", "{}", reread.text);
    // Reading them needs a scope that names AuditEvent: `*` does not, even for the patient's own.
    p1.get("AuditEvent").await.assert_outcome(403, "forbidden");
    admin.get("AuditEvent").await.assert_outcome(403, "forbidden");
    let own = as_holder(&app, "patient/AuditEvent.rs", Some("p1"))
        .get("AuditEvent")
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
}

async fn with_audit_all_every_request_is_recorded_and_flushed_at_shutdown(mut app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    for _ in 0..20 {
        assert_eq!(p1.get("Observation/obs-p1").await.status, 200);
    }
    assert_eq!(p1.get("Patient?name=Secretname").await.status, 200);
    // Stopping writes what is still queued.
    app.restart().await;
    let reads = audit_events(&app, "entity=Observation/obs-p1&outcome=0", 20).await;
    assert_eq!(reads.len(), 20);
    assert_eq!(reads[0]["subtype"][0]["code"], "read");
    let searches = audit_events(&app, "subtype=search-type", 1).await;
    let text = serde_json::to_string(&searches).unwrap();
    assert!(
        !text.contains("Secretname"),
        "search values stay out of the trail: {text}"
    );
}

/// A batch's independent writes are written as one group, and still audited one by one; when one
/// entry is refused, the group is not written, each entry runs alone, and the refusal is audited.
async fn a_batch_written_as_one_group_is_audited_entry_by_entry(app: TestApp) {
    let writer = as_holder(&app, "system/Patient.cruds", None);
    let put = |resource: Value| {
        let url = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        json!({"resource": resource, "request": {"method": "PUT", "url": url}})
    };
    let grouped = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        put(json!({"resourceType": "Patient", "id": "g1"})), put(json!({"resourceType": "Patient", "id": "g2"}))]});
    let reply = writer.post("", &grouped).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let statuses = entry_statuses(&reply.json());
    assert_eq!(statuses, ["201 Created", "201 Created"]);
    for id in ["g1", "g2"] {
        let events = audit_events(&app, &format!("entity=Patient/{id}&subtype=update"), 1).await;
        assert_eq!(events.len(), 1, "one record for Patient/{id}: {events:?}");
    }
    let mixed = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        put(json!({"resourceType": "Patient", "id": "g3"})),
        put(json!({"resourceType": "Observation", "id": "g4", "status": "final", "code": {"text": "x"}})),
        put(json!({"resourceType": "Patient", "id": "g5"}))]});
    let reply = writer.post("", &mixed).await;
    let statuses = entry_statuses(&reply.json());
    assert_eq!(statuses[0], "201 Created");
    assert!(statuses[1].starts_with("403"), "{statuses:?}");
    assert_eq!(statuses[2], "201 Created");
    let refused = audit_events(&app, "entity=Observation/g4&outcome=4", 1).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    for id in ["g3", "g5"] {
        assert_eq!(
            audit_events(&app, &format!("entity=Patient/{id}&subtype=update"), 1)
                .await
                .len(),
            1
        );
    }
}

/// Each entry's `response.status` of a batch-response.
fn entry_statuses(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap().to_owned())
        .collect()
}
