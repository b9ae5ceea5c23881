//! Side doors a caller limited to one patient could try: operations that read what they name,
//! Groups probed by their members, `user/` tokens without a user the server understands, types
//! outside the compartment that may still hold a patient's data, and totals that depend on the
//! whole database.

use super::{admin, as_holder, claims, sign, two_patients};
use crate::harness::{Reply, TestApp};
use serde_json::json;

crate::on_both_backends!(with crate::auth::with_idp;
    validate_for_delete_is_no_existence_oracle,
    groups_cannot_be_probed_for_their_other_members,
    user_scopes_without_a_user_grant_nothing,
    types_outside_the_compartment_are_not_all_directories,
);

// Small limits, so that a few dozen rows make a search "broad" (see `search::plan`).
crate::on_both_backends!(with |c| { crate::auth::with_idp(c); c.search_set_limit = 20; c.search_default_total_limit = 5; };
    default_totals_do_not_depend_on_hidden_rows,
);

fn without(reply: &Reply, ids: &[&str]) -> (u16, String) {
    let mut text = reply.text.clone();
    for id in ids {
        text = text.replace(id, "ID");
    }
    (reply.status, text)
}

async fn validate_for_delete_is_no_existence_oracle(app: TestApp) {
    two_patients(&app).await;
    let mode_delete = json!({"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]});
    // No scope on Condition at all: refused before anything is looked up.
    let observations_only = as_holder(&app, "patient/Observation.rs", Some("p1"));
    let existing = observations_only
        .post("Condition/cond-p2/$validate", &mode_delete)
        .await;
    let missing = observations_only.post("Condition/nope/$validate", &mode_delete).await;
    existing.assert_outcome(403, "forbidden");
    assert_eq!(without(&existing, &["cond-p2"]), without(&missing, &["nope"]));
    // With read on the type: another patient's resource is as unknown as a missing one.
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    let hidden = p1.post("Condition/cond-p2/$validate", &mode_delete).await;
    let missing = p1.post("Condition/cond-p9/$validate", &mode_delete).await;
    assert!(hidden.text.contains("is not known"), "{}", hidden.text);
    assert_eq!(without(&hidden, &["cond-p2"]), without(&missing, &["cond-p9"]));
    let own = p1.post("Condition/cond-p1/$validate", &mode_delete).await;
    assert!(own.text.contains("can be deleted"), "{}", own.text);
}

async fn groups_cannot_be_probed_for_their_other_members(app: TestApp) {
    two_patients(&app).await;
    let annotated = json!({"resourceType": "Group", "id": "ward", "type": "person", "actual": true,
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">p1, p2 and Anne</div>"},
        "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2/_history/1"}},
                   {"entity": {"identifier": {"system": "urn:mrn", "value": "mrn-anne"}}},
                   {"entity": {"reference": "Practitioner/doc"}}]});
    assert_eq!(admin(&app).put("Group/ward", &annotated).await.status, 201);
    let p1 = as_holder(&app, "patient/*.crs", Some("p1"));
    let seen = p1.get("Group/ward").await.json();
    assert_eq!(
        seen["member"],
        json!([{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Practitioner/doc"}}]),
        "{seen}"
    );
    assert!(seen.get("text").is_none(), "the narrative may name the others: {seen}");
    // A conditional create that finds the Group answers it as a read would.
    let reply = app
        .send(
            app.client
                .post(app.url("Group"))
                .bearer_auth(&p1.token)
                .header("content-type", "application/fhir+json")
                .header("if-none-exist", "_id=family")
                .body(
                    json!({"resourceType": "Group", "type": "person", "actual": true,
                    "member": [{"entity": {"reference": "Patient/p1"}}]})
                    .to_string(),
                ),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["member"], json!([{"entity": {"reference": "Patient/p1"}}]));
    assert!(!reply.text.contains("Patient/p2") && !reply.text.contains("Patient/p3"));
    // Searching or sorting Groups by other members, or by their text, is refused whatever the data.
    for query in [
        "Group?_id=family&member:identifier=urn:mrn|mrn-p2",
        "Group?_id=family&member:identifier=urn:mrn|mrn-nobody",
        "Group?member=http://elsewhere.example/Patient/p2",
        "Group?_sort=-member",
        "Group?_content=p2",
        "Patient?_has:Group:member:_content=p2",
    ] {
        p1.get(query).await.assert_outcome(403, "forbidden");
    }
    // With Patients not narrowed to p1 (a system/ scope beside the patient/ one), following
    // Group.member would reach the other members: refused too.
    let mixed = as_holder(&app, "patient/Group.rs system/Patient.rs", Some("p1"));
    for query in [
        "Group?member:Patient.identifier=urn:mrn|mrn-p2",
        "Patient?_has:Group:member:_id=family",
        "Group?_id=family&_include=Group:member",
        "Patient?_id=p2&_revinclude=Group:member",
    ] {
        mixed.get(query).await.assert_outcome(403, "forbidden");
    }
    // With both narrowed to p1, following the link is safe and answered.
    let followed = p1.get("Group?_id=family&_include=Group:member").await;
    assert_eq!(followed.status, 200, "{}", followed.text);
    assert_eq!(super::ids(&followed.json()), ["Group/family", "Patient/p1"]);
    // What names only the caller's own patient is answered.
    let mine = p1.get("Group?member=Patient/p1&_sort=_id").await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(super::ids(&mine.json()), ["Group/family", "Group/ward"]);
}

async fn user_scopes_without_a_user_grant_nothing(app: TestApp) {
    two_patients(&app).await;
    let user_token = |fhir_user: Option<String>| {
        let mut claims = claims(&app, "user/*.rs", None);
        if let Some(user) = fhir_user {
            claims["fhirUser"] = json!(user);
        }
        sign(&claims)
    };
    for fhir_user in [
        None,
        Some("Patient/p1/_history/1".to_owned()),
        Some("Patient/p_1".to_owned()),
        Some("https://elsewhere.example/fhir/Patient/p1".to_owned()),
        Some("Device/reader".to_owned()),
        Some("RelatedPerson/mum".to_owned()),
    ] {
        let token = user_token(fhir_user.clone());
        let reply = app
            .send(app.client.get(app.url("Observation")).bearer_auth(&token))
            .await;
        assert_eq!(reply.status, 403, "{fhir_user:?}: {}", reply.text);
    }
    // A Patient user of this server sees its own record.
    let token = user_token(Some(format!("{}/Patient/p1", app.base)));
    let reply = app
        .send(app.client.get(app.url("Observation")).bearer_auth(&token))
        .await;
    assert_eq!(super::ids(&reply.json()), ["Observation/obs-p1"]);
}

async fn types_outside_the_compartment_are_not_all_directories(app: TestApp) {
    two_patients(&app).await;
    let task = json!({"resourceType": "Task", "id": "t2", "status": "requested", "intent": "order",
        "for": {"reference": "Patient/p2"}});
    assert_eq!(admin(&app).put("Task/t2", &task).await.status, 201);
    let p1 = as_holder(
        &app,
        "patient/Task.rs patient/Binary.rs patient/Practitioner.rs",
        Some("p1"),
    );
    p1.get("Task").await.assert_outcome(403, "forbidden");
    p1.get("Task/t2").await.assert_outcome(403, "forbidden");
    p1.get("Binary").await.assert_outcome(403, "forbidden");
    assert_eq!(
        p1.get("Practitioner/doc").await.status,
        200,
        "a directory type named by the scope"
    );
}

async fn default_totals_do_not_depend_on_hidden_rows(app: TestApp) {
    two_patients(&app).await;
    let observations = |patient: &str, code: &str, n: usize| {
        let entries: Vec<_> = (0..n)
            .map(|_| {
                json!({"resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": format!("Patient/{patient}")}},
                "request": {"method": "POST", "url": "Observation"}})
            })
            .collect();
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    };
    // p1's own record is broad too, so that neither clause of its search is selective.
    assert_eq!(
        admin(&app).post("", &observations("p1", "1234-5", 30)).await.status,
        200
    );
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    let query = "Observation?code=http://loinc.org|8867-4&_count=0";
    let before = p1.get(query).await.json();
    // Many more Observations of that code, all another patient's.
    assert_eq!(
        admin(&app).post("", &observations("p2", "8867-4", 60)).await.status,
        200
    );
    let after = p1.get(query).await.json();
    assert_eq!(before["total"], 1, "{before}");
    assert_eq!(after["total"], before["total"], "{after}");
}
