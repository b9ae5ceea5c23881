//! Consents enforced on every read path: a practitioner denied by a patient's Consent learns
//! nothing of that patient's data — by read, vread, search, totals, paging, includes, chains,
//! `_has`, compartments, histories or a write's answer — while the patient, exempt callers and
//! an emergency purpose (break-glass, audited) still see it; a change to a Consent counts at the
//! next request, on every server of the database.

use crate::auth::{admin, claims, ids, sign, two_patients};
use crate::harness::TestApp;
use serde_json::{Value, json};

crate::on_both_backends!(with crate::auth::with_idp;
    a_denying_consent_withholds_on_every_read_path,
    consents_do_not_govern_the_patient_itself_or_system_callers,
    break_glass_discloses_and_every_consent_denial_is_audited,
    a_consent_deciding_by_code_withholds_only_those_resources,
    a_change_to_a_consent_counts_at_the_next_request,
    writes_stand_but_their_answers_disclose_no_more_than_a_read,
    withheld_resources_are_no_stepping_stones,
);

crate::on_both_backends!(with |c| { crate::auth::with_idp(c); c.consent_default = fhir_server::config::ConsentEffectArg::Deny; };
    under_default_deny_only_consenting_patients_are_seen,
);

crate::on_postgres!(with crate::auth::with_idp;
    another_server_on_the_database_sees_a_consent_at_once,
);

const SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// A Consent of `patient` (active, patient-privacy) with `policy_rule` and the root `provision`.
pub fn consent(id: &str, patient: &str, policy_rule: &str, provision: Value) -> Value {
    let mut consent = json!({
        "resourceType": "Consent", "id": id, "status": "active",
        "scope": {"coding": [{"system": SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": "2024-01-01",
        "policyRule": {"coding": [{"system": ACT_CODE, "code": policy_rule}]},
    });
    if !provision.is_null() {
        consent["provision"] = provision;
    }
    consent
}

/// An opt-in Consent of `patient` whose one exception withholds everything from `actor`.
pub fn denying(patient: &str, actor: &str) -> Value {
    consent(
        &format!("deny-{patient}"),
        patient,
        "OPTIN",
        json!({"actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
            "reference": {"reference": actor}}]}),
    )
}

/// The holder of a `user/` token of `fhir_user` with `scope` and purposes of use.
pub fn user<'a>(app: &'a TestApp, scope: &str, fhir_user: &str, purposes: &[&str]) -> crate::auth::As<'a> {
    let mut c = claims(app, scope, None);
    c["fhirUser"] = json!(fhir_user);
    if !purposes.is_empty() {
        c["purpose_of_use"] = json!(purposes);
    }
    crate::auth::As { app, token: sign(&c) }
}

pub async fn put(app: &TestApp, resource: &Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let reply = admin(app).put(&path, resource).await;
    assert!(matches!(reply.status, 200 | 201), "{path}: {}", reply.text);
}

/// The history page at `path` once it shows what `shown` expects. On PostgreSQL a page shows
/// versions up to the oldest transaction still writing to the database (`store::postgres`,
/// "committed bound"), and the audit writer may be in one: a version can appear a moment later.
/// Every page seen is returned to the caller's checks only when it is the one expected.
async fn history_showing(who: &crate::auth::As<'_>, path: &str, shown: impl Fn(&[String]) -> bool) -> Value {
    for _ in 0..40 {
        let page = who.get(path).await.json();
        if shown(&ids(&page)) {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} never showed what was expected: {}", who.get(path).await.text);
}

fn total(bundle: &Value) -> i64 {
    bundle["total"].as_i64().unwrap_or_else(|| panic!("a total: {bundle}"))
}

/// Every `type/id` the pages of `path` hold, following `next`; asserting no page is empty.
async fn all_pages(who: &crate::auth::As<'_>, path: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut url = who.app.url(path);
    loop {
        let reply = who.app.send(who.app.client.get(&url).bearer_auth(&who.token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let page = reply.json();
        let on_page = ids(&page);
        assert!(!on_page.is_empty(), "no empty page: {page}");
        found.extend(on_page);
        match page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
        {
            Some(next) => url = next["url"].as_str().unwrap().to_owned(),
            None => return found,
        }
    }
}

async fn a_denying_consent_withholds_on_every_read_path(app: TestApp) {
    two_patients(&app).await;
    put(&app, &denying("p2", "Practitioner/doc")).await;
    let doc = user(&app, "user/*.rs", "Practitioner/doc", &[]);
    let other = user(&app, "user/*.rs", "Practitioner/other", &[]);

    // Read and vread: exactly as a missing resource.
    let hidden = doc.get("Observation/obs-p2").await;
    let missing = doc.get("Observation/nothing").await;
    assert_eq!(hidden.status, 404, "{}", hidden.text);
    assert_eq!(
        hidden.text.replace("obs-p2", "ID"),
        missing.text.replace("nothing", "ID"),
        "a withheld resource answers as a missing one"
    );
    assert_eq!(doc.get("Patient/p2").await.status, 404);
    assert_eq!(doc.get("Observation/obs-p2/_history/1").await.status, 404);
    assert_eq!(
        other.get("Observation/obs-p2").await.status,
        200,
        "the consent names doc only"
    );
    assert_eq!(doc.get("Observation/obs-p1").await.status, 200);

    // Search: rows, totals, counts, paging.
    let bundle = doc.get("Observation").await.json();
    assert_eq!(ids(&bundle), ["Observation/obs-p1", "Observation/obs-p3"]);
    assert_eq!(total(&bundle), 2);
    assert_eq!(total(&doc.get("Observation?_summary=count").await.json()), 2);
    assert_eq!(total(&doc.get("Observation?_total=accurate").await.json()), 2);
    assert_eq!(total(&doc.get("Observation?subject=Patient/p2").await.json()), 0);
    assert_eq!(total(&other.get("Observation").await.json()), 3);
    let mut paged = all_pages(&doc, "Observation?_count=1").await;
    paged.sort();
    assert_eq!(paged, ["Observation/obs-p1", "Observation/obs-p3"]);
    let patients = doc.get("Patient").await.json();
    assert_eq!(ids(&patients), ["Patient/p1", "Patient/p3"]);
    assert_eq!(total(&patients), 2);
    let everything = doc.get("?_type=Observation,Encounter,Condition,Patient").await.json();
    assert!(ids(&everything).iter().all(|id| !id.ends_with("p2")), "{everything}");
    assert_eq!(total(&everything), 8);

    // Compartments.
    assert_eq!(total(&doc.get("Patient/p2/Observation").await.json()), 0);
    assert_eq!(total(&doc.get("Patient/p2/*").await.json()), 0);
    assert_eq!(total(&doc.get("Patient/p1/*").await.json()), 3);

    // Includes and revincludes.
    // A Group with p2 among its members is p2's too: a deny wins over its other members.
    assert_eq!(doc.get("Group/family").await.status, 404);
    assert_eq!(total(&doc.get("Group").await.json()), 0);
    let revincluded = doc.get("Practitioner?_revinclude=Observation:performer").await.json();
    assert_eq!(
        ids(&revincluded),
        ["Practitioner/doc", "Observation/obs-p1", "Observation/obs-p3"]
    );
    let encounters = doc.get("Encounter?_include=Encounter:subject").await.json();
    assert!(ids(&encounters).iter().all(|id| !id.ends_with("p2")), "{encounters}");

    // Chains and _has, both ways.
    assert_eq!(total(&doc.get("Observation?subject.family=Family-p2").await.json()), 0);
    assert_eq!(
        total(&other.get("Observation?subject.family=Family-p2").await.json()),
        1
    );
    assert_eq!(
        total(&doc.get("Observation?subject:Patient.identifier=mrn-p2").await.json()),
        0
    );
    let has = "Practitioner?_has:Observation:performer:subject=Patient/p2";
    assert_eq!(
        total(&doc.get(has).await.json()),
        0,
        "_has does not see p2's Observation"
    );
    assert_eq!(total(&other.get(has).await.json()), 1);
    let has_patient = "Patient?_has:Observation:subject:code=8867-4";
    assert_eq!(total(&doc.get(has_patient).await.json()), 2);

    // Histories at every level.
    assert_eq!(doc.get("Observation/obs-p2/_history").await.status, 404);
    let history = history_showing(&doc, "Observation/_history", |ids| ids.len() == 2).await;
    assert!(ids(&history).iter().all(|id| !id.ends_with("p2")), "{history}");
    let system = history_showing(&doc, "_history?_count=100", |ids| {
        ids.iter().any(|id| id.ends_with("p1"))
    })
    .await;
    assert!(ids(&system).iter().all(|id| !id.ends_with("p2")), "{system}");
    let patient_history = doc.get("Patient/_history").await.json();
    assert!(ids(&patient_history).iter().all(|id| id != "Patient/p2"));
    // One of p1's Observations is about p2 (its focus, no compartment link): p2 stays out.
    put(
        &app,
        &json!({"resourceType": "Observation", "id": "about-p2", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"}, "focus": [{"reference": "Patient/p2"}]}),
    )
    .await;
    let included = doc
        .get("Observation?_id=about-p2&_include=Observation:focus")
        .await
        .json();
    assert_eq!(ids(&included), ["Observation/about-p2"], "{included}");
    let included = other
        .get("Observation?_id=about-p2&_include=Observation:focus")
        .await
        .json();
    assert_eq!(ids(&included), ["Observation/about-p2", "Patient/p2"]);
}

/// `_include:iterate` does not walk through what the consents withhold, and `$evaluate` knows
/// no more of a withheld resource than a read; an instance's history gives no count.
async fn withheld_resources_are_no_stepping_stones(app: TestApp) {
    two_patients(&app).await;
    for resource in [
        json!({"resourceType": "Medication", "id": "hiv", "code": {"text": "antiretroviral"}}),
        json!({"resourceType": "MedicationRequest", "id": "mx", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p2"}, "medicationReference": {"reference": "Medication/hiv"}}),
        json!({"resourceType": "Task", "id": "tx", "status": "requested", "intent": "order",
            "for": {"reference": "Patient/p2"}}),
    ] {
        put(&app, &resource).await;
    }
    put(&app, &denying("p2", "Practitioner/doc")).await;
    let doc = user(&app, "user/*.rs", "Practitioner/doc", &[]);
    let walk = "Task?_id=tx&_include=Task:patient&_revinclude:iterate=MedicationRequest:subject\
                &_include:iterate=MedicationRequest:medication";
    let found = ids(&doc.get(walk).await.json());
    assert_eq!(found, ["Task/tx"], "nothing reached through Patient/p2");
    let other = user(&app, "user/*.rs", "Practitioner/other", &[]);
    let found = ids(&other.get(walk).await.json());
    assert!(found.contains(&"Medication/hiv".to_owned()), "{found:?}");
    // $evaluate about a withheld resource: as unknown as to a read.
    let ask = |resource: &str| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": "Patient/p2"}},
            {"name": "resource", "valueReference": {"reference": resource}}]})
    };
    let withheld = doc.post("Consent/$evaluate", &ask("Observation/obs-p2")).await;
    let missing = doc.post("Consent/$evaluate", &ask("Observation/nothing")).await;
    assert_eq!(withheld.status, 404, "{}", withheld.text);
    assert_eq!(
        withheld.text.replace("obs-p2", "ID"),
        missing.text.replace("nothing", "ID")
    );
    // An instance's history under consents gives its versions, not a count of them.
    let history = other.get("Observation/obs-p2/_history").await.json();
    assert!(history.get("total").is_none(), "{history}");
    assert_eq!(ids(&history), ["Observation/obs-p2"]);
}

async fn consents_do_not_govern_the_patient_itself_or_system_callers(app: TestApp) {
    two_patients(&app).await;
    put(&app, &consent("all-p2", "p2", "OPTOUT", Value::Null)).await;
    // The patient reads its own data.
    let mut p2 = claims(&app, "patient/*.rs", Some("p2"));
    p2["fhirUser"] = json!("Patient/p2");
    let p2 = crate::auth::As {
        app: &app,
        token: sign(&p2),
    };
    assert_eq!(p2.get("Observation/obs-p2").await.status, 200);
    assert_eq!(total(&p2.get("Observation").await.json()), 1);
    // A backend service without a user.
    let service = crate::auth::as_holder(&app, "system/*.rs", None);
    assert_eq!(service.get("Observation/obs-p2").await.status, 200);
    assert_eq!(total(&service.get("Observation").await.json()), 3);
    // Any practitioner is denied by an opt-out without exceptions.
    let doc = user(&app, "user/*.rs", "Practitioner/doc", &[]);
    assert_eq!(doc.get("Observation/obs-p2").await.status, 404);
    assert_eq!(total(&doc.get("Observation").await.json()), 2);
    // Resources of no patient are not governed.
    assert_eq!(doc.get("Practitioner/doc").await.status, 200);
}

async fn break_glass_discloses_and_every_consent_denial_is_audited(app: TestApp) {
    two_patients(&app).await;
    put(&app, &denying("p2", "Practitioner/doc")).await;
    let doc = user(&app, "user/*.rs", "Practitioner/doc", &[]);
    assert_eq!(doc.get("Observation/obs-p2").await.status, 404);
    let emergency = user(&app, "user/*.rs", "Practitioner/doc", &["ETREAT"]);
    let read = emergency.get("Observation/obs-p2").await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(total(&emergency.get("Observation").await.json()), 3);
    let auditor = crate::auth::as_holder(&app, "system/AuditEvent.rs", None);
    let events = crate::audit::audit_events(&app, "entity=Observation/obs-p2", 2).await;
    let denial = events
        .iter()
        .find(|e| e["outcome"] == "4")
        .unwrap_or_else(|| panic!("{events:?}"));
    let named: Vec<&str> = denial["entity"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"]["reference"].as_str())
        .collect();
    assert!(named.contains(&"Consent/deny-p2"), "{denial}");
    let glass = events
        .iter()
        .find(|e| e["outcome"] == "0")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert!(
        glass["outcomeDesc"].as_str().unwrap().contains("break-glass"),
        "{glass}"
    );
    // No patient data in the trail: the Observation's value and code are not in it.
    let trail = auditor.get("AuditEvent?_count=100").await.text;
    assert!(!trail.contains("8867-4") && !trail.contains("heart rate"), "{trail}");
}

async fn a_consent_deciding_by_code_withholds_only_those_resources(app: TestApp) {
    two_patients(&app).await;
    put(
        &app,
        &json!({"resourceType": "Observation", "id": "obs-p2-weight", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": "Patient/p2"}, "performer": [{"reference": "Practitioner/doc"}]}),
    )
    .await;
    // Opt-in, but no heart rates to anyone.
    put(
        &app,
        &consent(
            "no-heart-rate",
            "p2",
            "OPTIN",
            json!({"code": [{"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}]}),
        ),
    )
    .await;
    let doc = user(&app, "user/*.rs", "Practitioner/doc", &[]);
    assert_eq!(doc.get("Observation/obs-p2").await.status, 404);
    assert_eq!(doc.get("Observation/obs-p2-weight").await.status, 200);
    assert_eq!(doc.get("Patient/p2").await.status, 200);
    let bundle = doc.get("Observation?subject=Patient/p2").await.json();
    assert_eq!(ids(&bundle), ["Observation/obs-p2-weight"]);
    assert_eq!(total(&bundle), 1);
    assert_eq!(total(&doc.get("Observation?_summary=count").await.json()), 3);
    let mut paged = all_pages(&doc, "Observation?_count=1").await;
    paged.sort();
    assert_eq!(
        paged,
        ["Observation/obs-p1", "Observation/obs-p2-weight", "Observation/obs-p3"]
    );
    assert_eq!(total(&doc.get("Observation?code=8867-4").await.json()), 2);
}

async fn a_change_to_a_consent_counts_at_the_next_request(app: TestApp) {
    two_patients(&app).await;
    let doc = user(&app, "user/*.rs", "Practitioner/doc", &[]);
    assert_eq!(doc.get("Observation/obs-p2").await.status, 200);
    put(&app, &denying("p2", "Practitioner/doc")).await;
    assert_eq!(doc.get("Observation/obs-p2").await.status, 404);
    let mut withdrawn = denying("p2", "Practitioner/doc");
    withdrawn["status"] = json!("inactive");
    put(&app, &withdrawn).await;
    assert_eq!(doc.get("Observation/obs-p2").await.status, 200);
    put(&app, &denying("p2", "Practitioner/doc")).await;
    assert_eq!(doc.get("Observation/obs-p2").await.status, 404);
    assert_eq!(admin(&app).delete("Consent/deny-p2").await.status, 204);
    assert_eq!(doc.get("Observation/obs-p2").await.status, 200);
    // A consent naming an Organization reaches its members as soon as a role links them.
    put(&app, &denying("p2", "Organization/clinic")).await;
    assert_eq!(doc.get("Observation/obs-p2").await.status, 200);
    put(
        &app,
        &json!({"resourceType": "PractitionerRole", "id": "doc-at-clinic", "active": true,
            "practitioner": {"reference": "Practitioner/doc"}, "organization": {"reference": "Organization/clinic"}}),
    )
    .await;
    assert_eq!(doc.get("Observation/obs-p2").await.status, 404);
}

async fn writes_stand_but_their_answers_disclose_no_more_than_a_read(app: TestApp) {
    two_patients(&app).await;
    put(&app, &denying("p2", "Practitioner/doc")).await;
    let doc = user(&app, "user/*.cruds", "Practitioner/doc", &[]);
    // A new resource in the patient's record stands; its answer carries no resource.
    let created = doc
        .post(
            "Observation",
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "subject": {"reference": "Patient/p2"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(created.text.is_empty(), "no representation: {}", created.text);
    assert!(created.header("location").is_some() && created.header("etag").is_some());
    // A resource the consents withhold is, to writes, one the caller may not see: an update is
    // refused before any If-Match is compared, a delete answers as for a missing resource.
    let observation = json!({"resourceType": "Observation", "id": "obs-p2", "status": "amended",
        "code": {"text": "heart rate"}, "subject": {"reference": "Patient/p2"}});
    doc.put("Observation/obs-p2", &observation)
        .await
        .assert_outcome(403, "forbidden");
    let stale = app
        .put_with(
            "Observation/obs-p2",
            &observation,
            &[
                ("authorization", &format!("Bearer {}", doc.token)),
                ("if-match", "W/\"999\""),
            ],
        )
        .await;
    assert_eq!(stale.status, 403, "no version oracle: {}", stale.text);
    let deleted = doc.delete("Observation/obs-p2").await;
    let nothing = doc.delete("Observation/nothing-here").await;
    assert_eq!(deleted.status, nothing.status);
    assert_eq!(deleted.header("etag"), nothing.header("etag"));
    let stored = admin(&app).get("Observation/obs-p2").await;
    assert_eq!(stored.status, 200, "neither changed nor deleted");
    assert_eq!(stored.json()["status"], "final");
    // Unchanged content is not confirmed either.
    let current = admin(&app).get("Observation/obs-p2").await.json();
    doc.put("Observation/obs-p2", &current)
        .await
        .assert_outcome(403, "forbidden");
    // In a batch the same.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": observation, "request": {"method": "PUT", "url": "Observation/obs-p2"}},
        {"request": {"method": "GET", "url": "Observation/obs-p2"}}]});
    let answer = doc.post("", &batch).await.json();
    assert!(
        answer["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("403"),
        "{answer}"
    );
    assert!(
        answer["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("404"),
        "{answer}"
    );
    // A batch's independent writes, written as one group, answer as each would alone: created
    // in the withheld record, without a representation; a write to a withheld resource makes
    // the group fall back, and is refused alone while its neighbour is written.
    let grouped = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Observation", "id": "g-p2-a", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "Patient/p2"}}, "request": {"method": "PUT", "url": "Observation/g-p2-a"}},
        {"resource": {"resourceType": "Observation", "id": "g-p2-b", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "Patient/p2"}}, "request": {"method": "PUT", "url": "Observation/g-p2-b"}}]});
    let answer = app
        .send(
            app.client
                .post(app.url(""))
                .bearer_auth(&doc.token)
                .header("content-type", "application/fhir+json")
                .header("prefer", "return=representation")
                .body(grouped.to_string()),
        )
        .await
        .json();
    for n in 0..2 {
        assert_eq!(answer["entry"][n]["response"]["status"], "201 Created", "{answer}");
        assert!(
            answer["entry"][n].get("resource").is_none(),
            "no representation: {answer}"
        );
    }
    let mixed = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Observation", "id": "g-p1", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "Patient/p1"}}, "request": {"method": "PUT", "url": "Observation/g-p1"}},
        {"resource": observation, "request": {"method": "PUT", "url": "Observation/obs-p2"}}]});
    let answer = doc.post("", &mixed).await.json();
    assert_eq!(answer["entry"][0]["response"]["status"], "201 Created", "{answer}");
    assert!(
        answer["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("403"),
        "{answer}"
    );
    assert_eq!(admin(&app).get("Observation/obs-p2").await.json()["status"], "final");
    // The rules that withhold are not the caller's to change: not a newer Consent, not the
    // denying one, not whom it acts as.
    let newer = consent("mine", "p2", "OPTIN", Value::Null);
    let mut newer = newer;
    newer["dateTime"] = json!("2099-01-01");
    doc.post("Consent", &newer).await.assert_outcome(403, "forbidden");
    doc.put("Consent/mine", &newer).await.assert_outcome(403, "forbidden");
    let removed = doc.delete("Consent/deny-p2").await;
    assert_eq!(removed.status, nothing.status, "{}", removed.text);
    assert_eq!(admin(&app).get("Consent/deny-p2").await.status, 200);
    doc.post(
        "PractitionerRole",
        &json!({"resourceType": "PractitionerRole", "practitioner": {"reference": "Practitioner/doc"}}),
    )
    .await
    .assert_outcome(403, "forbidden");
    assert_eq!(doc.get("Observation/obs-p2").await.status, 404);
    // The patient records its own consent.
    let mut p2 = claims(&app, "patient/*.cruds", Some("p2"));
    p2["fhirUser"] = json!("Patient/p2");
    let p2 = crate::auth::As {
        app: &app,
        token: sign(&p2),
    };
    let own = p2.put("Consent/mine", &newer).await;
    assert!(matches!(own.status, 200 | 201), "{}", own.text);
    assert_eq!(
        doc.get("Observation/obs-p2").await.status,
        200,
        "the newer consent permits"
    );
    // A condition matches what a search would: a withheld resource is not found by it.
    put(&app, &denying("p3", "Practitioner/doc")).await;
    let probe = json!({"resourceType": "Observation", "status": "final", "code": {"text": "probe"},
        "subject": {"reference": "Patient/p3"}});
    let conditional = app
        .send(
            app.client
                .post(app.url("Observation"))
                .bearer_auth(&doc.token)
                .header("content-type", "application/fhir+json")
                .header("if-none-exist", "_id=obs-p3")
                .body(probe.to_string()),
        )
        .await;
    assert_eq!(
        conditional.status, 201,
        "not told the match exists: {}",
        conditional.text
    );
    // A patch reads what it writes: as unknown as to a read.
    let patch = app
        .send(
            app.client
                .patch(app.url("Observation/obs-p3"))
                .bearer_auth(&doc.token)
                .header("content-type", "application/json-patch+json")
                .body(r#"[{"op": "test", "path": "/status", "value": "final"}]"#),
        )
        .await;
    assert_eq!(patch.status, 404, "{}", patch.text);
}

async fn under_default_deny_only_consenting_patients_are_seen(app: TestApp) {
    two_patients(&app).await;
    put(&app, &consent("share-p1", "p1", "OPTIN", Value::Null)).await;
    let doc = user(&app, "user/*.rs", "Practitioner/doc", &[]);
    assert_eq!(doc.get("Observation/obs-p1").await.status, 200);
    assert_eq!(doc.get("Observation/obs-p3").await.status, 404);
    let bundle = doc.get("Observation").await.json();
    assert_eq!(ids(&bundle), ["Observation/obs-p1"]);
    assert_eq!(total(&bundle), 1);
    assert_eq!(ids(&doc.get("Patient").await.json()), ["Patient/p1"]);
    assert_eq!(doc.get("Practitioner/doc").await.status, 200, "no patient's");
    let history = history_showing(&doc, "_history?_count=100", |ids| {
        ids.contains(&"Observation/obs-p1".to_owned())
    })
    .await;
    assert!(
        ids(&history)
            .iter()
            .all(|id| !id.ends_with("p2") && !id.ends_with("p3")),
        "{history}"
    );
    let emergency = user(&app, "user/*.rs", "Practitioner/doc", &["ETREAT"]);
    assert_eq!(emergency.get("Observation/obs-p3").await.status, 200);
}

async fn another_server_on_the_database_sees_a_consent_at_once(app: TestApp) {
    two_patients(&app).await;
    let doc = user(&app, "user/*.rs", "Practitioner/doc", &[]);
    assert_eq!(doc.get("Observation/obs-p2").await.status, 200);
    let other = fhir_server::app::start(&app.config).await.unwrap();
    let url = format!("{}/Consent/deny-p2", other.base_url);
    let mut there = claims(&app, "system/*.cruds", None);
    there["aud"] = json!(other.base_url);
    let reply = app
        .send(
            app.client
                .put(&url)
                .bearer_auth(sign(&there))
                .header("content-type", "application/fhir+json")
                .body(denying("p2", "Practitioner/doc").to_string()),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        doc.get("Observation/obs-p2").await.status,
        404,
        "this server sees the other's consent"
    );
    other.stop().await.unwrap();
}
