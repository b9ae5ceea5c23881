//! `Consent/$evaluate` over HTTP: HL7's R4 Consent examples stored with data they govern, asked
//! about requesters, types and stored resources; bad parameters refused; and, with authorization
//! on, asked only by callers that may read the patient's consents.

use crate::harness::TestApp;
use serde_json::{Value, json};

crate::on_both_backends!(
    evaluate_decides_by_the_stored_consents,
    evaluate_follows_a_practitioner_to_its_organization,
    evaluate_about_a_stored_resource_uses_its_facts,
    evaluate_refuses_bad_parameters,
);

crate::on_both_backends!(with crate::auth::with_idp;
    evaluate_needs_read_on_the_patients_consents,
);

/// HL7's Consent example `name`, or `None` when `../shared` is absent outside CI.
fn example(name: &str) -> Option<Value> {
    let path = crate::shared::shared(&format!("fhir-r4/examples-4.0.1/Consent-consent-example-{name}.json"))?;
    Some(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn ask(patient: &str, rest: &[(&str, Value)]) -> Value {
    let mut parameter = vec![json!({"name": "patient", "valueReference": {"reference": patient}})];
    for (name, value) in rest {
        let mut p = json!({"name": name});
        p.as_object_mut().unwrap().extend(value.as_object().unwrap().clone());
        parameter.push(p);
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}

fn reference(r: &str) -> Value {
    json!({"valueReference": {"reference": r}})
}

fn code(c: &str) -> Value {
    json!({"valueCode": c})
}

fn value<'a>(answer: &'a Value, name: &str) -> Option<&'a Value> {
    answer["parameter"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| {
            p.as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.starts_with("value"))
                .unwrap()
                .1
        })
}

/// The answer about `actor` seeing `patient`'s Observations.
async fn observations(app: &TestApp, patient: &str, actor: &str) -> Value {
    let question = ask(patient, &[("actor", reference(actor)), ("class", code("Observation"))]);
    let reply = app.post("Consent/$evaluate", &question).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

async fn store(app: &TestApp, resources: &[Value]) {
    for resource in resources {
        let path = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let reply = app.put(&path, resource).await;
        assert!(matches!(reply.status, 200 | 201), "{path}: {}", reply.text);
    }
}

fn patient() -> Value {
    json!({"resourceType": "Patient", "id": "f001", "managingOrganization": {"reference": "Organization/f001"}})
}

async fn evaluate_decides_by_the_stored_consents(app: TestApp) {
    let Some(not_them) = example("notThem") else { return };
    store(&app, &[patient(), not_them]).await;
    // "she does not want her ex-spouse to have any access to her IIHI"
    let reply = app
        .post(
            "Consent/$evaluate",
            &ask(
                "Patient/f001",
                &[
                    ("actor", reference("Practitioner/f204")),
                    ("class", code("Observation")),
                ],
            ),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let answer = reply.json();
    assert_eq!(value(&answer, "decision"), Some(&json!("deny")), "{answer}");
    assert_eq!(
        value(&answer, "consent").unwrap()["reference"],
        "Consent/consent-example-notThem"
    );
    assert_eq!(value(&answer, "provision"), Some(&json!("Consent.provision")));
    assert!(value(&answer, "reason").is_some());
    let answer = observations(&app, "Patient/f001", "Practitioner/example").await;
    assert_eq!(value(&answer, "decision"), Some(&json!("permit")), "{answer}");
    assert_eq!(value(&answer, "provision"), None);
    // Another patient has no consent: the default.
    let answer = observations(&app, "Patient/other", "Practitioner/f204").await;
    assert_eq!(value(&answer, "decision"), Some(&json!("permit")));
    assert_eq!(value(&answer, "consent"), None);
    // The patient about its own data: not governed.
    let answer = observations(&app, "Patient/f001", "Patient/f001").await;
    assert_eq!(value(&answer, "decision"), Some(&json!("permit")));
    // A consent made inactive no longer counts, at once.
    let mut revoked = example("notThem").unwrap();
    revoked["status"] = json!("inactive");
    store(&app, &[revoked]).await;
    let answer = observations(&app, "Patient/f001", "Practitioner/f204").await;
    assert_eq!(value(&answer, "decision"), Some(&json!("permit")), "{answer}");
}

async fn evaluate_follows_a_practitioner_to_its_organization(app: TestApp) {
    let Some(not_org) = example("notOrg") else { return };
    let role = json!({"resourceType": "PractitionerRole", "id": "example", "practitioner": {"reference": "Practitioner/example"},
        "organization": {"reference": "Organization/f001"}});
    store(&app, &[patient(), not_org, role]).await;
    // "withhold consent to disclose any instance of his health information to Good Health Clinic"
    for actor in ["Practitioner/example", "PractitionerRole/example", "Organization/f001"] {
        let answer = observations(&app, "Patient/f001", actor).await;
        assert_eq!(value(&answer, "decision"), Some(&json!("deny")), "{actor}: {answer}");
    }
    let answer = observations(&app, "Patient/f001", "Practitioner/f204").await;
    assert_eq!(value(&answer, "decision"), Some(&json!("permit")));
}

async fn evaluate_about_a_stored_resource_uses_its_facts(app: TestApp) {
    let Some(not_author) = example("notAuthor") else { return };
    let kept = json!({"resourceType": "DocumentReference", "id": "kept", "status": "current",
        "subject": {"reference": "Patient/f001"}, "custodian": {"reference": "Organization/f001"},
        "content": [{"attachment": {"contentType": "text/plain"}}]});
    let elsewhere = json!({"resourceType": "DocumentReference", "id": "elsewhere", "status": "current",
        "subject": {"reference": "Patient/f001"}, "custodian": {"reference": "Organization/other"},
        "content": [{"attachment": {"contentType": "text/plain"}}]});
    let foreign = json!({"resourceType": "Observation", "id": "foreign", "status": "final", "code": {"text": "x"},
        "subject": {"reference": "Patient/somebody"}});
    store(&app, &[patient(), not_author, kept, elsewhere, foreign]).await;
    let about = |resource: &str| {
        ask(
            "Patient/f001",
            &[
                ("actor", reference("Practitioner/example")),
                ("resource", reference(resource)),
            ],
        )
    };
    // "all of the PHI collected at the Good Health Psychiatric Hospital restricted from disclosure to every provider"
    let answer = app
        .post("Consent/$evaluate", &about("DocumentReference/kept"))
        .await
        .json();
    assert_eq!(value(&answer, "decision"), Some(&json!("deny")), "{answer}");
    let answer = app
        .post("Consent/$evaluate", &about("DocumentReference/elsewhere"))
        .await
        .json();
    assert_eq!(value(&answer, "decision"), Some(&json!("permit")), "{answer}");
    // About the type alone, the answer depends on which document: a deny that says so.
    let answer = app
        .post(
            "Consent/$evaluate",
            &ask(
                "Patient/f001",
                &[
                    ("actor", reference("Practitioner/example")),
                    ("class", code("DocumentReference")),
                ],
            ),
        )
        .await
        .json();
    assert_eq!(value(&answer, "decision"), Some(&json!("deny")));
    assert_eq!(value(&answer, "dependsOnData"), Some(&json!(true)), "{answer}");
    // Not the patient's, or not stored.
    app.post("Consent/$evaluate", &about("Observation/foreign"))
        .await
        .assert_outcome(400, "invalid");
    app.post("Consent/$evaluate", &about("Observation/none"))
        .await
        .assert_outcome(404, "not-found");
}

async fn evaluate_refuses_bad_parameters(app: TestApp) {
    let no_patient =
        json!({"resourceType": "Parameters", "parameter": [{"name": "class", "valueCode": "Observation"}]});
    app.post("Consent/$evaluate", &no_patient)
        .await
        .assert_outcome(400, "required");
    app.post(
        "Consent/$evaluate",
        &ask("Organization/x", &[("class", code("Observation"))]),
    )
    .await
    .assert_outcome(400, "invalid");
    app.post("Consent/$evaluate", &ask("Patient/p", &[("class", code("NotAType"))]))
        .await
        .assert_outcome(400, "invalid");
    app.post("Consent/$evaluate", &ask("Patient/p", &[]))
        .await
        .assert_outcome(400, "required");
    app.post("Consent/$evaluate", &json!({"resourceType": "Patient"}))
        .await
        .assert_outcome(400, "invalid");
    assert_eq!(app.get("Consent/$evaluate").await.status, 405);
}

async fn evaluate_needs_read_on_the_patients_consents(app: TestApp) {
    let Some(not_them) = example("notThem") else { return };
    let admin = crate::auth::admin(&app);
    for resource in [patient(), not_them] {
        let path = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        assert!(matches!(admin.put(&path, &resource).await.status, 200 | 201));
    }
    let question = ask(
        "Patient/f001",
        &[
            ("actor", reference("Practitioner/f204")),
            ("class", code("Observation")),
        ],
    );
    let system = crate::auth::as_holder(&app, "system/Consent.rs", None);
    let answer = system.post("Consent/$evaluate", &question).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(value(&answer.json(), "decision"), Some(&json!("deny")));
    // Without read on Consent; or limited to another patient's compartment: the same 403 whatever is stored.
    // A granular scope on Consent reaches only some consents, and a decision reads them all.
    for (scope, patient) in [
        ("system/Observation.rs", None),
        ("patient/*.rs", Some("p1")),
        ("system/Consent.rs?category=http://loinc.org|59284-0", None),
    ] {
        let holder = crate::auth::as_holder(&app, scope, patient);
        holder
            .post("Consent/$evaluate", &question)
            .await
            .assert_outcome(403, "forbidden");
        holder
            .post(
                "Consent/$evaluate",
                &ask("Patient/nobody", &[("class", code("Observation"))]),
            )
            .await
            .assert_outcome(403, "forbidden");
    }
    // Without a `purpose` parameter, the purpose of use the token states counts.
    let research_only = json!({"resourceType": "Consent", "id": "research", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/r1"}, "dateTime": "2024-01-01",
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}]}});
    let stored = admin.put("Consent/research", &research_only).await;
    assert_eq!(stored.status, 201, "{}", stored.text);
    let about_r1 = ask(
        "Patient/r1",
        &[
            ("actor", reference("Practitioner/f204")),
            ("class", code("Observation")),
        ],
    );
    let mut claims = crate::auth::claims(&app, "system/Consent.rs", None);
    claims["purpose_of_use"] = json!(["HRESCH"]);
    let researcher = crate::auth::As {
        app: &app,
        token: crate::auth::sign(&claims),
    };
    assert_eq!(
        value(
            &researcher.post("Consent/$evaluate", &about_r1).await.json(),
            "decision"
        ),
        Some(&json!("permit"))
    );
    assert_eq!(
        value(&system.post("Consent/$evaluate", &about_r1).await.json(), "decision"),
        Some(&json!("deny")),
        "TREAT by default"
    );
    // The patient's own app may ask about its own consents.
    let own = crate::auth::as_holder(&app, "patient/*.rs", Some("f001"));
    assert_eq!(own.post("Consent/$evaluate", &question).await.status, 200);
}
