//! `Consent/$evaluate` agrees with what a read does: a generated table of consents, actors,
//! purposes of use and resources, each asked of `$evaluate` and then read by that actor with that
//! purpose — a permit exactly when the read answers `200`.

use crate::auth::{admin, two_patients};
use crate::consent_enforced::{consent, denying, put, user};
use crate::harness::TestApp;
use serde_json::{Value, json};

crate::on_both_backends!(with crate::auth::with_idp;
    evaluate_agrees_with_reads,
);

/// The consents of the table, each stored in turn as p2's only one.
fn consents() -> Vec<(&'static str, Value)> {
    let recipient = |actor: &str| {
        json!([{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
            "reference": {"reference": actor}}])
    };
    let purpose = |code: &str| json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": code}]);
    let mut inactive = consent("c", "p2", "OPTOUT", Value::Null);
    inactive["status"] = json!("inactive");
    vec![
        ("deny doc", denying("p2", "Practitioner/doc")),
        ("opt out", consent("c", "p2", "OPTOUT", Value::Null)),
        (
            "no heart rates",
            consent(
                "c",
                "p2",
                "OPTIN",
                json!({"code": [{"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}]}),
            ),
        ),
        (
            "opt out but for treatment",
            consent("c", "p2", "OPTOUT", json!({"purpose": purpose("TREAT")})),
        ),
        (
            "no research",
            consent("c", "p2", "OPTIN", json!({"purpose": purpose("HRESCH")})),
        ),
        (
            "no Observations to the clinic",
            consent(
                "c",
                "p2",
                "OPTIN",
                json!({"actor": recipient("Organization/clinic"),
                    "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]}),
            ),
        ),
        (
            "a permit carved by a deeper deny",
            consent(
                "c",
                "p2",
                "OPTOUT",
                json!({"actor": recipient("Practitioner/doc"),
                    "provision": [{"type": "deny", "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Encounter"}]}]}),
            ),
        ),
        ("inactive", inactive),
    ]
}

async fn evaluate_agrees_with_reads(app: TestApp) {
    two_patients(&app).await;
    put(
        &app,
        &json!({"resourceType": "PractitionerRole", "id": "doc-at-clinic", "active": true,
            "practitioner": {"reference": "Practitioner/doc"}, "organization": {"reference": "Organization/clinic"}}),
    )
    .await;
    let (mut permits, mut denies) = (0, 0);
    for (name, consent) in consents() {
        for id in ["c", "deny-p2"] {
            admin(&app).delete(&format!("Consent/{id}")).await;
        }
        put(&app, &consent).await;
        for actor in ["Practitioner/doc", "Practitioner/other"] {
            for purpose in ["TREAT", "HRESCH", "ETREAT"] {
                let reader = user(&app, "user/*.rs", actor, &[purpose]);
                for resource in ["Observation/obs-p2", "Encounter/enc-p2", "Patient/p2"] {
                    let question = json!({"resourceType": "Parameters", "parameter": [
                        {"name": "patient", "valueReference": {"reference": "Patient/p2"}},
                        {"name": "actor", "valueReference": {"reference": actor}},
                        {"name": "purpose", "valueCode": purpose},
                        {"name": "resource", "valueReference": {"reference": resource}}]});
                    let answer = admin(&app).post("Consent/$evaluate", &question).await;
                    assert_eq!(answer.status, 200, "{}", answer.text);
                    let answer = answer.json();
                    let decision = answer["parameter"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|p| p["name"] == "decision")
                        .unwrap()["valueCode"]
                        .clone();
                    let read = reader.get(resource).await.status;
                    let case = format!("{name}: {actor} for {purpose} reading {resource}: {answer}");
                    match decision.as_str() {
                        Some("permit") => {
                            permits += 1;
                            assert_eq!(read, 200, "{case}");
                        }
                        Some("deny") => {
                            denies += 1;
                            assert_eq!(read, 404, "{case}");
                        }
                        _ => panic!("{case}"),
                    }
                }
            }
        }
    }
    // The table tells both apart many times over.
    assert!(permits >= 40 && denies >= 20, "{permits} permits, {denies} denies");
}
