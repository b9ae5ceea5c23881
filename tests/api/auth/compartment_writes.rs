//! Writes by a caller limited to one patient touch that patient's record only: nothing it writes
//! lands in another patient's compartment (through a performer, a Patient link, a Group member),
//! nothing it updates or deletes takes another patient out of a shared resource, and a write
//! tells it nothing about resources it may not see (`If-Match` on a hidden delete, a revival).

use super::{admin, as_holder, two_patients};
use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(with crate::auth::with_idp;
    a_create_may_not_name_another_patient_anywhere,
    a_patient_may_not_link_itself_to_another_or_edit_one_that_links_to_it,
    resources_shared_with_another_patient_are_read_only,
    a_group_shared_with_others_cannot_be_rewritten_from_its_redacted_copy,
    delete_with_if_match_answers_hidden_and_missing_alike,
    reviving_another_patients_deleted_resource_is_refused,
    a_patch_needs_read_as_well_as_update,
);

async fn a_create_may_not_name_another_patient_anywhere(app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.cruds", Some("p1"));
    let own = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": "Patient/p1"}, "performer": [{"reference": "Practitioner/doc"}]});
    assert_eq!(p1.post("Observation", &own).await.status, 201);
    let mut into_p2 = own.clone();
    into_p2["performer"] = json!([{"reference": "Patient/p2"}]);
    p1.post("Observation", &into_p2).await.assert_outcome(403, "forbidden");
    let communication = json!({"resourceType": "Communication", "status": "completed",
        "subject": {"reference": "Patient/p1"}, "recipient": [{"reference": "Patient/p2"}]});
    p1.post("Communication", &communication)
        .await
        .assert_outcome(403, "forbidden");
    let group = json!({"resourceType": "Group", "type": "person", "actual": true,
        "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}]});
    p1.post("Group", &group).await.assert_outcome(403, "forbidden");
    // Nothing of it reached p2.
    let p2 = as_holder(&app, "patient/*.rs", Some("p2"));
    let seen = p2.get("Observation?_summary=count").await.json();
    assert_eq!(seen["total"], 1, "p2 still sees only its own Observation");
    assert_eq!(p2.get("Communication?_summary=count").await.json()["total"], 0);
}

async fn a_patient_may_not_link_itself_to_another_or_edit_one_that_links_to_it(app: TestApp) {
    two_patients(&app).await;
    // p2 (after a merge, say) links to p1: Patient/p2 is in p1's compartment, to read.
    let linked = json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Family-p2"}],
        "link": [{"other": {"reference": "Patient/p1"}, "type": "seealso"}]});
    assert_eq!(admin(&app).put("Patient/p2", &linked).await.status, 200);
    let p1 = as_holder(&app, "patient/*.cruds", Some("p1"));
    assert_eq!(
        p1.get("Patient/p2").await.status,
        200,
        "in p1's compartment by its link"
    );
    let mut rewritten = linked.clone();
    rewritten["name"] = json!([{"family": "Changed"}]);
    p1.put("Patient/p2", &rewritten).await.assert_outcome(403, "forbidden");
    assert_eq!(p1.delete("Patient/p2").await.status, 403);
    assert_eq!(
        admin(&app).get("Patient/p2").await.json()["name"][0]["family"],
        "Family-p2"
    );
    // p1 may edit itself, but not link itself to p3.
    let mut me = admin(&app).get("Patient/p1").await.json();
    me["gender"] = json!("other");
    assert_eq!(p1.put("Patient/p1", &me).await.status, 200);
    me["link"] = json!([{"other": {"reference": "Patient/p3"}, "type": "seealso"}]);
    p1.put("Patient/p1", &me).await.assert_outcome(403, "forbidden");
    assert!(admin(&app).get("Patient/p1").await.json().get("link").is_none());
}

async fn resources_shared_with_another_patient_are_read_only(app: TestApp) {
    two_patients(&app).await;
    let shared = json!({"resourceType": "Observation", "id": "shared", "status": "final", "code": {"text": "x"},
        "subject": {"reference": "Patient/p2"}, "performer": [{"reference": "Patient/p1"}]});
    assert_eq!(admin(&app).put("Observation/shared", &shared).await.status, 201);
    let p1 = as_holder(&app, "patient/*.cruds", Some("p1"));
    assert_eq!(p1.get("Observation/shared").await.status, 200, "p1 is its performer");
    // It is p2's record too: p1 changes nothing of it, takes p2 out of it, or deletes it.
    let mut annotated = shared.clone();
    annotated["status"] = json!("amended");
    p1.put("Observation/shared", &annotated)
        .await
        .assert_outcome(403, "forbidden");
    let mut without_p2 = shared.clone();
    without_p2["subject"] = json!({"reference": "Patient/p1"});
    p1.put("Observation/shared", &without_p2)
        .await
        .assert_outcome(403, "forbidden");
    assert_eq!(p1.delete("Observation/shared").await.status, 403);
    let stored = admin(&app).get("Observation/shared").await.json();
    assert_eq!(stored["subject"]["reference"], "Patient/p2");
    assert_eq!(stored["meta"]["versionId"], "1");
    // Its own resources it updates.
    let mut own = admin(&app).get("Observation/obs-p1").await.json();
    own["status"] = json!("amended");
    assert_eq!(p1.put("Observation/obs-p1", &own).await.status, 200);
}

async fn a_group_shared_with_others_cannot_be_rewritten_from_its_redacted_copy(app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.cruds", Some("p1"));
    let seen = p1.get("Group/family").await.json();
    assert_eq!(seen["member"].as_array().unwrap().len(), 1, "{seen}");
    // Writing the redacted copy back (a PUT, or a PATCH applied to it) would drop p2 and p3.
    let mut renamed = seen.clone();
    renamed["name"] = json!("renamed");
    // The copy is marked SUBSETTED: written back it is refused as incomplete; without the mark,
    // as a write that would take other patients out of the Group.
    p1.put("Group/family", &renamed).await.assert_outcome(400, "invalid");
    renamed["meta"].as_object_mut().unwrap().remove("tag");
    p1.put("Group/family", &renamed).await.assert_outcome(403, "forbidden");
    let patch = r#"[{"op": "add", "path": "/name", "value": "renamed"}]"#;
    let reply = app
        .send(
            app.client
                .patch(app.url("Group/family"))
                .bearer_auth(&p1.token)
                .header("content-type", "application/json-patch+json")
                .body(patch),
        )
        .await;
    assert!(matches!(reply.status, 403 | 422), "{}", reply.text);
    let stored = admin(&app).get("Group/family").await.json();
    assert_eq!(stored["member"].as_array().unwrap().len(), 3, "{stored}");
    assert_eq!(stored["meta"]["versionId"], "1");
    // Sending the Group exactly as stored (guessing its other members) is refused as well: an
    // unchanged update answering 200 with it would confirm the guess.
    let mut guessed = stored.clone();
    guessed.as_object_mut().unwrap().remove("meta");
    p1.put("Group/family", &guessed).await.assert_outcome(403, "forbidden");
    // A Group whose only hidden members are not local Patients is subsetted too; the copy is
    // marked so, and nobody may write a subsetted copy back.
    let ward = json!({"resourceType": "Group", "id": "ward", "type": "person", "actual": true,
        "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"identifier": {"system": "urn:mrn", "value": "anne"}}}]});
    assert_eq!(admin(&app).put("Group/ward", &ward).await.status, 201);
    let seen = p1.get("Group/ward").await.json();
    assert_eq!(seen["member"].as_array().unwrap().len(), 1, "{seen}");
    let reply = app
        .send(
            app.client
                .patch(app.url("Group/ward"))
                .bearer_auth(&p1.token)
                .header("content-type", "application/json-patch+json")
                .body("[]"),
        )
        .await;
    assert!(matches!(reply.status, 400 | 403 | 422), "{}", reply.text);
    admin(&app)
        .put("Group/ward", &seen)
        .await
        .assert_outcome(400, "invalid");
    let stored = admin(&app).get("Group/ward").await.json();
    assert_eq!(stored["member"].as_array().unwrap().len(), 2, "{stored}");
    assert_eq!(stored["meta"]["versionId"], "1");
}

async fn delete_with_if_match_answers_hidden_and_missing_alike(app: TestApp) {
    two_patients(&app).await;
    assert_eq!(admin(&app).delete("Condition/cond-p2").await.status, 204);
    let p1 = as_holder(&app, "patient/*.rds", Some("p1"));
    let delete_if = |path: &'static str, version: &'static str| {
        app.send(
            app.client
                .delete(app.url(path))
                .bearer_auth(&p1.token)
                .header("if-match", format!("W/\"{version}\"")),
        )
    };
    let missing = delete_if("Observation/obs-p9", "1").await;
    assert_eq!(missing.status, 412, "{}", missing.text);
    for (hidden, version) in [
        ("Observation/obs-p2", "1"),
        ("Observation/obs-p2", "7"),
        ("Condition/cond-p2", "1"),
        ("Condition/cond-p2", "2"),
    ] {
        let reply = delete_if(hidden, version).await;
        assert_eq!(reply.status, 412, "{hidden} W/{version}: {}", reply.text);
        let normalised = |text: &str, path: &str, version: &str| {
            text.replace(path, "T/ID")
                .replace(&format!("W/\\\"{version}\\\""), "W/V")
        };
        assert_eq!(
            normalised(&reply.text, hidden, version),
            normalised(&missing.text, "Observation/obs-p9", "1"),
            "{hidden}"
        );
    }
    // Without If-Match, a hidden delete is the no-op of a missing one; nothing was deleted.
    assert_eq!(p1.delete("Observation/obs-p2").await.status, 204);
    assert_eq!(admin(&app).get("Observation/obs-p2").await.status, 200);
    // In a transaction too.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Observation/obs-p2", "ifMatch": "W/\"1\""}}]});
    assert_eq!(p1.post("", &bundle).await.status, 412);
    assert_eq!(admin(&app).get("Observation/obs-p2").await.status, 200);
}

async fn reviving_another_patients_deleted_resource_is_refused(app: TestApp) {
    two_patients(&app).await;
    assert_eq!(admin(&app).delete("Condition/cond-p2").await.status, 204);
    let p1 = as_holder(&app, "patient/*.cruds", Some("p1"));
    let mine = json!({"resourceType": "Condition", "id": "cond-p2", "subject": {"reference": "Patient/p1"}, "code": {"text": "x"}});
    p1.put("Condition/cond-p2", &mine)
        .await
        .assert_outcome(403, "forbidden");
    assert_eq!(admin(&app).get("Condition/cond-p2").await.status, 410);
    // Its own deleted resource p1 may bring back.
    assert_eq!(admin(&app).delete("Condition/cond-p1").await.status, 204);
    let again = json!({"resourceType": "Condition", "id": "cond-p1", "subject": {"reference": "Patient/p1"}, "code": {"text": "x"}});
    assert_eq!(p1.put("Condition/cond-p1", &again).await.status, 201);
}

async fn a_patch_needs_read_as_well_as_update(app: TestApp) {
    two_patients(&app).await;
    let update_only = as_holder(&app, "patient/Observation.u", Some("p1"));
    let reply = app
        .send(
            app.client
                .patch(app.url("Observation/obs-p1"))
                .bearer_auth(&update_only.token)
                .header("content-type", "application/json-patch+json")
                .body("[]"),
        )
        .await;
    reply.assert_outcome(403, "forbidden");
    assert!(
        !reply.text.contains("8867-4"),
        "nothing of the resource: {}",
        reply.text
    );
}
