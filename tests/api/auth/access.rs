//! Attack cases 9–15, 17, 24 and 25: a caller limited to one patient learns nothing of another —
//! not from reads, searches, includes, chains, `_has`, Groups, totals, paging, conditional
//! matching or writes — and a type it may not search is refused the same whatever the data.

use super::{admin, as_holder, ids, two_patients};
use crate::harness::{Reply, TestApp};
use serde_json::{Value, json};

crate::on_both_backends!(with crate::auth::with_idp;
    another_patients_resource_reads_as_a_missing_one,
    searches_naming_another_patient_are_403_with_or_without_data,
    includes_and_revincludes_leave_out_what_is_out_of_reach,
    chains_and_has_answer_the_same_whatever_the_hidden_data,
    a_group_discloses_only_the_callers_patient,
    a_transaction_with_one_foreign_entry_writes_nothing,
    conditional_matching_is_no_oracle_for_another_patients_data,
    writes_cannot_move_a_resource_out_of_the_compartment,
    a_forbidden_type_is_the_same_403_on_an_empty_and_a_full_server,
    totals_and_pages_count_only_what_is_in_reach,
    history_shows_only_the_versions_in_reach,
    granular_scopes_narrow_reads_and_grant_no_writes,
    system_and_practitioner_tokens_reach_what_their_scopes_name,
);

/// A reply with the ids in its text replaced, to compare two answers about different ids.
fn normalised(reply: &Reply, ids: &[&str]) -> (u16, Option<String>, String) {
    let mut text = reply.text.clone();
    for id in ids {
        text = text.replace(id, "ID");
    }
    (reply.status, reply.header("content-type").map(str::to_owned), text)
}

async fn another_patients_resource_reads_as_a_missing_one(app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    assert_eq!(p1.get("Observation/obs-p1").await.status, 200);
    assert_eq!(p1.get("Patient/p1").await.status, 200);
    let hidden = p1.get("Observation/obs-p2").await;
    let missing = p1.get("Observation/obs-p9").await;
    assert_eq!(hidden.status, 404);
    assert_eq!(normalised(&hidden, &["obs-p2"]), normalised(&missing, &["obs-p9"]));
    assert!(hidden.header("etag").is_none() && hidden.header("last-modified").is_none());
    // The same for vread, instance history, the Patient itself, and a deleted resource of the other patient.
    for (hidden, missing) in [
        ("Observation/obs-p2/_history/1", "Observation/obs-p9/_history/1"),
        ("Observation/obs-p2/_history", "Observation/obs-p9/_history"),
        ("Patient/p2", "Patient/p9"),
        ("Encounter/enc-p2", "Encounter/enc-p9"),
    ] {
        let (h, m) = (p1.get(hidden).await, p1.get(missing).await);
        assert_eq!(h.status, 404, "{hidden}: {}", h.text);
        assert_eq!(normalised(&h, &["p2"]), normalised(&m, &["p9"]), "{hidden}");
    }
    assert_eq!(admin(&app).delete("Condition/cond-p2").await.status, 204);
    let (deleted, never) = (p1.get("Condition/cond-p2").await, p1.get("Condition/cond-p9").await);
    assert_eq!(normalised(&deleted, &["p2"]), normalised(&never, &["p9"]));
    // A type the token does not cover at all is a 403, for any id.
    p1.get("Practitioner/doc").await.assert_outcome(403, "forbidden");
    p1.get("Practitioner/none").await.assert_outcome(403, "forbidden");
}

async fn searches_naming_another_patient_are_403_with_or_without_data(app: TestApp) {
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    let queries = [
        "Observation?subject=Patient/p2",
        "Observation?patient=p2",
        "Patient/p2/Observation",
        "Patient/p2/*",
        "Observation?subject:Patient=p2",
    ];
    let mut empty = Vec::new();
    for query in queries {
        let reply = p1.get(query).await;
        reply.assert_outcome(403, "forbidden");
        empty.push(reply.text);
    }
    two_patients(&app).await;
    for (query, before) in queries.iter().zip(empty) {
        let reply = p1.get(query).await;
        assert_eq!(reply.status, 403, "{query}");
        assert_eq!(reply.text, before, "{query}: the answer does not depend on the data");
    }
    // The caller's own compartment and searches are answered, narrowed to it.
    assert_eq!(
        ids(&p1.get("Patient/p1/Observation").await.json()),
        ["Observation/obs-p1"]
    );
    assert_eq!(ids(&p1.get("Observation").await.json()), ["Observation/obs-p1"]);
    assert_eq!(ids(&p1.get("Patient").await.json()), ["Patient/p1"]);
    let everything = ids(&p1.get("Patient/p1/*").await.json());
    assert!(
        everything
            .iter()
            .all(|r| r.ends_with("-p1") || r == "Patient/p1" || r == "Group/family"),
        "{everything:?}"
    );
    let system = ids(&p1.get("?_type=Observation,Condition").await.json());
    assert_eq!(system.len(), 2, "{system:?}");
}

async fn includes_and_revincludes_leave_out_what_is_out_of_reach(app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    let found = ids(&p1.get("Patient?_revinclude=*&_include=*").await.json());
    assert!(found.contains(&"Observation/obs-p1".to_owned()), "{found:?}");
    assert!(!found.iter().any(|r| r.contains("p2") || r.contains("p3")), "{found:?}");
    assert!(
        !found.contains(&"Practitioner/doc".to_owned()),
        "not granted: {found:?}"
    );
    let found = ids(&p1.get("Group?_include=Group:member").await.json());
    assert_eq!(found, ["Group/family", "Patient/p1"]);
    let found = ids(&p1
        .get("Observation?_include=Observation:subject&_revinclude:iterate=Observation:subject&_include:iterate=*")
        .await
        .json());
    assert!(!found.iter().any(|r| r.contains("p2") || r.contains("p3")), "{found:?}");
    // With the directory type named, the practitioner is included too.
    let p1_doc = as_holder(&app, "patient/*.rs patient/Practitioner.rs", Some("p1"));
    let found = ids(&p1_doc.get("Observation?_include=Observation:performer").await.json());
    assert_eq!(found, ["Observation/obs-p1", "Practitioner/doc"]);
}

async fn chains_and_has_answer_the_same_whatever_the_hidden_data(app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    // Family-p2 exists, Family-p9 does not: the answers are the same (empty).
    for (probe, control) in [
        (
            "Observation?subject.name=Family-p2",
            "Observation?subject.name=Family-p9",
        ),
        (
            "Patient?_has:Observation:subject:category=vital-signs",
            "Patient?_has:Observation:subject:category=nonsense",
        ),
        (
            "Encounter?subject:Patient.identifier=urn:mrn|mrn-p2",
            "Encounter?subject:Patient.identifier=urn:mrn|mrn-p9",
        ),
    ] {
        let (a, b) = (p1.get(probe).await, p1.get(control).await);
        assert_eq!(a.status, 200, "{probe}: {}", a.text);
        assert_eq!(ids(&a.json()), ids(&b.json()), "{probe}");
        assert!(ids(&a.json()).is_empty(), "{probe}");
    }
    // The caller's own data through a chain is found.
    assert_eq!(
        ids(&p1.get("Observation?subject.name=Family-p1").await.json()),
        ["Observation/obs-p1"]
    );
    assert_eq!(
        ids(&p1
            .get("Patient?_has:Observation:subject:category=laboratory")
            .await
            .json()),
        ["Patient/p1"]
    );
    // A chain through a type the token does not cover is a 403, whatever the data.
    p1.get("Observation?performer:Practitioner.name=Who")
        .await
        .assert_outcome(403, "forbidden");
    p1.get("Observation?performer:Practitioner.name=Nobody")
        .await
        .assert_outcome(403, "forbidden");
    let only_obs = as_holder(&app, "patient/Observation.rs", Some("p1"));
    only_obs
        .get("Observation?subject:Patient.name=Family-p1")
        .await
        .assert_outcome(403, "forbidden");
    only_obs
        .get("Patient?_has:Observation:subject:code=8867-4")
        .await
        .assert_outcome(403, "forbidden");
}

async fn a_group_discloses_only_the_callers_patient(app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    let group = p1.get("Group/family").await;
    assert_eq!(group.status, 200, "{}", group.text);
    let group = group.json();
    assert_eq!(group["member"], json!([{"entity": {"reference": "Patient/p1"}}]));
    assert!(group.get("quantity").is_none());
    assert_eq!(group["meta"]["tag"][0]["code"], "SUBSETTED");
    let searched = p1.get("Group?member=Patient/p1").await.json();
    assert_eq!(
        searched["entry"][0]["resource"]["member"],
        json!([{"entity": {"reference": "Patient/p1"}}])
    );
    p1.get("Group?member=Patient/p2").await.assert_outcome(403, "forbidden");
    // p2's token sees its own membership only, and a system token all of it.
    let p2 = as_holder(&app, "patient/Group.rs", Some("p2"));
    assert_eq!(
        p2.get("Group/family").await.json()["member"],
        json!([{"entity": {"reference": "Patient/p2"}}])
    );
    assert_eq!(
        admin(&app).get("Group/family").await.json()["member"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

async fn a_transaction_with_one_foreign_entry_writes_nothing(app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.cruds", Some("p1"));
    let before = admin(&app).get("Observation?_summary=count").await.json()["total"].clone();
    let transaction = |entries: Value| json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let own = json!({"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": "Patient/p1"}}, "request": {"method": "POST", "url": "Observation"}});
    for foreign in [
        json!({"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p2"}}, "request": {"method": "POST", "url": "Observation"}}),
        json!({"resource": {"resourceType": "Observation", "id": "obs-p2", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"}}, "request": {"method": "PUT", "url": "Observation/obs-p2"}}),
        json!({"request": {"method": "GET", "url": "Practitioner/doc"}}),
        json!({"resource": {"resourceType": "Practitioner"}, "request": {"method": "POST", "url": "Practitioner"}}),
    ] {
        let reply = p1.post("", &transaction(json!([own.clone(), foreign]))).await;
        reply.assert_outcome(403, "forbidden");
    }
    // A read-only scope may not PUT, even its own resource.
    let reader = as_holder(&app, "patient/*.rs", Some("p1"));
    let put = json!({"resource": {"resourceType": "Observation", "id": "obs-p1", "status": "amended", "code": {"text": "x"},
        "subject": {"reference": "Patient/p1"}}, "request": {"method": "PUT", "url": "Observation/obs-p1"}});
    reader
        .post("", &transaction(json!([put])))
        .await
        .assert_outcome(403, "forbidden");
    reader
        .put(
            "Observation/obs-p1",
            &json!({"resourceType": "Observation", "id": "obs-p1", "status": "amended",
        "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}),
        )
        .await
        .assert_outcome(403, "forbidden");
    assert_eq!(
        admin(&app).get("Observation?_summary=count").await.json()["total"],
        before
    );
    assert_eq!(admin(&app).get("Observation/obs-p1").await.json()["status"], "final");
    // Alone, the own entry goes through; in a batch, the foreign entry fails on its own.
    assert_eq!(p1.post("", &transaction(json!([own.clone()]))).await.status, 200);
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [own,
        {"request": {"method": "GET", "url": "Observation/obs-p2"}},
        {"request": {"method": "GET", "url": "Practitioner/doc"}}]});
    let reply = p1.post("", &batch).await.json();
    let statuses: Vec<&str> = reply["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses[0].split(' ').next(), Some("201"));
    assert_eq!(statuses[1].split(' ').next(), Some("404"));
    assert_eq!(statuses[2].split(' ').next(), Some("403"));
}

async fn conditional_matching_is_no_oracle_for_another_patients_data(app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.cruds", Some("p1"));
    // If-None-Exist on p2's identifier: as if nothing matched (and the create must be p1's).
    let mine = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}});
    let probe = |condition: &str| {
        let request = app
            .client
            .post(app.url("Observation"))
            .bearer_auth(&p1.token)
            .header("content-type", "application/fhir+json")
            .header("if-none-exist", condition)
            .body(mine.to_string());
        app.send(request)
    };
    assert_eq!(probe("_id=obs-p2").await.status, 201, "p2's observation is not seen");
    assert_eq!(probe("_id=obs-p1").await.status, 200, "p1's own is found");
    // A conditional reference to p2 by identifier resolves to nothing (a 404/400 without a match),
    // the same as an identifier no one has.
    let transaction = |identifier: &str| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
          "subject": {"reference": format!("Patient?identifier=urn:mrn|{identifier}")}},
         "request": {"method": "POST", "url": "Observation"}}]})
    };
    let (hidden, missing) = (
        p1.post("", &transaction("mrn-p2")).await,
        p1.post("", &transaction("mrn-p9")).await,
    );
    assert_eq!(normalised(&hidden, &["mrn-p2"]), normalised(&missing, &["mrn-p9"]));
    assert_eq!(p1.post("", &transaction("mrn-p1")).await.status, 200);
    // A conditional update matching only p2's resource sees no match.
    let reply = p1
        .put(
            "Observation?_id=obs-p2",
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"}}),
        )
        .await;
    assert_eq!(reply.status, 201, "created anew, p2's untouched: {}", reply.text);
    assert_eq!(
        admin(&app).get("Observation/obs-p2").await.json()["meta"]["versionId"],
        "1"
    );
    // A conditional delete of p2's resource deletes nothing, as for no match.
    assert!(p1.delete("Observation?_id=obs-p2").await.status < 300);
    assert_eq!(admin(&app).get("Observation/obs-p2").await.status, 200);
}

async fn writes_cannot_move_a_resource_out_of_the_compartment(app: TestApp) {
    two_patients(&app).await;
    let p1 = as_holder(&app, "patient/*.cruds", Some("p1"));
    let observation = |id: &str, subject: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"text": "x"}, "subject": {"reference": subject}})
    };
    // Moving p1's observation to p2, or taking p2's: 403, nothing written.
    p1.put("Observation/obs-p1", &observation("obs-p1", "Patient/p2"))
        .await
        .assert_outcome(403, "forbidden");
    p1.put("Observation/obs-p2", &observation("obs-p2", "Patient/p1"))
        .await
        .assert_outcome(403, "forbidden");
    p1.post("Observation", &observation("x", "Patient/p2"))
        .await
        .assert_outcome(403, "forbidden");
    p1.post("Patient", &json!({"resourceType": "Patient"}))
        .await
        .assert_outcome(403, "forbidden");
    let patch = json!([{"op": "replace", "path": "/subject/reference", "value": "Patient/p2"}]).to_string();
    let reply = app
        .send(
            app.client
                .patch(app.url("Observation/obs-p1"))
                .bearer_auth(&p1.token)
                .header("content-type", "application/json-patch+json")
                .body(patch.clone()),
        )
        .await;
    reply.assert_outcome(403, "forbidden");
    let reply = app
        .send(
            app.client
                .patch(app.url("Observation/obs-p2"))
                .bearer_auth(&p1.token)
                .header("content-type", "application/json-patch+json")
                .body(patch),
        )
        .await;
    assert_eq!(reply.status, 404, "another's resource to patch is not known");
    assert_eq!(
        admin(&app).get("Observation/obs-p1").await.json()["subject"]["reference"],
        "Patient/p1"
    );
    assert_eq!(
        admin(&app).get("Observation/obs-p2").await.json()["meta"]["versionId"],
        "1"
    );
    // Deleting p2's resource changes nothing and answers as for a missing one.
    let (hidden, missing) = (
        p1.delete("Observation/obs-p2").await,
        p1.delete("Observation/obs-p9").await,
    );
    assert_eq!(normalised(&hidden, &["obs-p2"]), normalised(&missing, &["obs-p9"]));
    assert_eq!(admin(&app).get("Observation/obs-p2").await.status, 200);
    // Within the compartment, writes go through.
    assert_eq!(
        p1.put("Observation/obs-p1", &observation("obs-p1", "Patient/p1"))
            .await
            .status,
        200
    );
    assert_eq!(
        p1.post("Observation", &observation("x", "Patient/p1")).await.status,
        201
    );
    assert_eq!(p1.delete("Observation/obs-p1").await.status, 204);
}

async fn a_forbidden_type_is_the_same_403_on_an_empty_and_a_full_server(app: TestApp) {
    let p1 = as_holder(&app, "patient/Observation.rs", Some("p1"));
    let paths = [
        "Condition",
        "Condition/cond-p1",
        "Condition?subject=Patient/p1",
        "Condition/_history",
        "?_type=Condition",
    ];
    let mut before = Vec::new();
    for path in paths {
        let reply = p1.get(path).await;
        reply.assert_outcome(403, "forbidden");
        before.push(reply.text);
    }
    two_patients(&app).await;
    for (path, text) in paths.iter().zip(before) {
        assert_eq!(p1.get(path).await.text, text, "{path}");
    }
}

async fn totals_and_pages_count_only_what_is_in_reach(app: TestApp) {
    two_patients(&app).await;
    let admin = admin(&app);
    for n in 0..7 {
        for p in ["p1", "p2"] {
            let reply = admin
                .post(
                    "Observation",
                    &json!({"resourceType": "Observation", "status": "final", "code": {"text": format!("n{n}")},
                    "subject": {"reference": format!("Patient/{p}")}}),
                )
                .await;
            assert_eq!(reply.status, 201);
        }
    }
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    for total in ["accurate", "estimate"] {
        let page = p1.get(&format!("Observation?_total={total}&_count=3")).await.json();
        assert_eq!(page["total"], 8, "{total}");
    }
    assert_eq!(p1.get("Observation?_summary=count").await.json()["total"], 8);
    // Walking every page gives p1's eight and nothing else.
    let mut seen = Vec::new();
    let mut next = Some(app.url("Observation?_count=3&_sort=_id"));
    while let Some(url) = next {
        let page = app.send(app.client.get(&url).bearer_auth(&p1.token)).await.json();
        seen.extend(ids(&page));
        next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    // A page link followed with another patient's token is narrowed to that one.
    let first = p1.get("Observation?_count=3").await.json();
    let next = first["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let p3 = as_holder(&app, "patient/*.rs", Some("p3"));
    let page = app.send(app.client.get(&next).bearer_auth(&p3.token)).await.json();
    assert!(ids(&page).iter().all(|r| r == "Observation/obs-p3"), "{page}");
}

async fn history_shows_only_the_versions_in_reach(app: TestApp) {
    two_patients(&app).await;
    let admin = admin(&app);
    let observation = |subject: &str| {
        json!({"resourceType": "Observation", "id": "moving", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": subject}})
    };
    admin.put("Observation/moving", &observation("Patient/p1")).await;
    admin.put("Observation/moving", &observation("Patient/p2")).await;
    let p1 = as_holder(&app, "patient/*.rs", Some("p1"));
    let history = p1.get("Observation/moving/_history").await.json();
    let versions: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1"], "only the version that was p1's");
    assert_eq!(history["total"], 1);
    let system = p1.get("_history?_count=100").await.json();
    let seen: Vec<String> = system["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        seen.iter()
            .all(|r| r.ends_with("p1") || r == "Observation/moving" || r == "Group/family"),
        "{seen:?}"
    );
    assert!(seen.contains(&"Patient/p1".to_owned()));
    let p2 = as_holder(&app, "patient/Observation.rs", Some("p2"));
    p2.get("Observation/moving/_history/1")
        .await
        .assert_outcome(404, "not-found");
    assert_eq!(p2.get("Observation/moving/_history/2").await.status, 200);
    p2.get("Patient/_history").await.assert_outcome(403, "forbidden");
}

async fn granular_scopes_narrow_reads_and_grant_no_writes(app: TestApp) {
    two_patients(&app).await;
    let lab = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category%7Claboratory";
    let p1 = as_holder(&app, lab, Some("p1"));
    assert_eq!(ids(&p1.get("Observation").await.json()), ["Observation/obs-p1"]);
    assert_eq!(p1.get("Observation/obs-p1").await.status, 200);
    // p3's observation is vital-signs: out of the scope's category, a system token sees it.
    let system_lab = as_holder(&app, &lab.replace("patient/", "system/"), None);
    assert_eq!(ids(&system_lab.get("Observation").await.json()), ["Observation/obs-p1"]);
    system_lab
        .get("Observation/obs-p3")
        .await
        .assert_outcome(404, "not-found");
    let writer = as_holder(&app, &lab.replace(".rs", ".cruds"), Some("p1"));
    writer.post("Observation", &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "subject": {"reference": "Patient/p1"}})).await.assert_outcome(403, "forbidden");
    // A scope whose query cannot be searched grants nothing (never more).
    let bad = as_holder(&app, "patient/Observation.rs?shoe-size=12", Some("p1"));
    bad.get("Observation").await.assert_outcome(403, "forbidden");
}

async fn system_and_practitioner_tokens_reach_what_their_scopes_name(app: TestApp) {
    two_patients(&app).await;
    let reader = as_holder(&app, "system/Observation.rs system/Patient.read", None);
    assert_eq!(ids(&reader.get("Observation?_sort=_id").await.json()).len(), 3);
    assert_eq!(reader.get("Patient/p2").await.status, 200);
    reader.get("Encounter").await.assert_outcome(403, "forbidden");
    reader
        .post("Patient", &json!({"resourceType": "Patient"}))
        .await
        .assert_outcome(403, "forbidden");
    let mut practitioner = super::claims(&app, "user/*.rs", None);
    practitioner["fhirUser"] = json!("Practitioner/doc");
    let doctor = super::As {
        app: &app,
        token: super::sign(&practitioner),
    };
    assert_eq!(ids(&doctor.get("Encounter").await.json()).len(), 3);
    let mut patient_user = super::claims(&app, "user/*.rs", None);
    patient_user["fhirUser"] = json!(format!("{}/Patient/p2", app.base));
    let p2 = super::As {
        app: &app,
        token: super::sign(&patient_user),
    };
    assert_eq!(ids(&p2.get("Encounter").await.json()), ["Encounter/enc-p2"]);
    // $reindex needs a system scope.
    let reply = doctor.send(reqwest::Method::POST, "$reindex", None).await;
    reply.assert_outcome(403, "forbidden");
    let admin = super::as_holder(&app, "system/*.cruds", None);
    assert!(admin.send(reqwest::Method::POST, "$reindex", None).await.status < 300);
}
