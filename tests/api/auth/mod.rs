//! Authorization over HTTP: SMART bearer tokens from a trusted identity provider (fixture keys in
//! `tests/fixtures/auth`, test-only), scopes enforced on every path, and the attack cases of the
//! authorization issue, each on both backends.

mod access;
mod backend_services;
mod cli;
mod compartment_writes;
mod hardening;
mod jwks_url;
mod off;
mod oracles;
mod tokens;

use crate::harness::{Reply, TestApp};
use fhir_server::config::ServeConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The issuer of the fixture identity provider, whose keys are `idp-jwks.json`.
pub const ISSUER: &str = "https://idp.example.test/realms/fhir";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth")
        .join(name)
}

/// Settings that trust the fixture identity provider.
pub fn with_idp(config: &mut ServeConfig) {
    config.auth_issuer = Some(ISSUER.to_owned());
    config.auth_jwks_file = Some(fixture("idp-jwks.json"));
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The claims of a valid access token for `app` with `scope`, for the launch `patient` if any.
pub fn claims(app: &TestApp, scope: &str, patient: Option<&str>) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": app.base, "sub": "test-client", "client_id": "test-client",
        "iat": now(), "exp": now() + 300, "jti": uuid::Uuid::new_v4().to_string(), "scope": scope,
    });
    if let Some(patient) = patient {
        claims["patient"] = json!(patient);
    }
    claims
}

/// `claims` signed ES384 by the identity provider's EC key.
pub fn sign(claims: &Value) -> String {
    sign_with(claims, Algorithm::ES384, "idp-ec", "idp-ec384.pem")
}

pub fn sign_with(claims: &Value, algorithm: Algorithm, kid: &str, pem_file: &str) -> String {
    let pem = std::fs::read(fixture(pem_file)).unwrap();
    let key = match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem).unwrap(),
        Algorithm::HS256 => EncodingKey::from_secret(&pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A valid token for `app` with `scope` (and the launch `patient`).
pub fn token(app: &TestApp, scope: &str, patient: Option<&str>) -> String {
    sign(&claims(app, scope, patient))
}

/// Requests carrying a bearer token.
pub struct As<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl As<'_> {
    pub async fn get(&self, path: &str) -> Reply {
        self.app
            .send(self.app.client.get(self.app.url(path)).bearer_auth(&self.token))
            .await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        self.app.send(request).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

/// The holder of a token for `app` with `scope` (and the launch `patient`).
pub fn as_holder<'a>(app: &'a TestApp, scope: &str, patient: Option<&str>) -> As<'a> {
    As {
        app,
        token: token(app, scope, patient),
    }
}

/// A system token that may do everything, to set data up.
pub fn admin(app: &TestApp) -> As<'_> {
    as_holder(app, "system/*.cruds", None)
}

/// Two patients, each with an Observation, an Encounter and a Condition; p1 and p2 in one Group
/// with a third; a Practitioner both see.
pub async fn two_patients(app: &TestApp) {
    let admin = admin(app);
    let mut entries = vec![
        json!({"resource": {"resourceType": "Practitioner", "id": "doc", "name": [{"family": "Who"}]},
        "request": {"method": "PUT", "url": "Practitioner/doc"}}),
    ];
    for p in ["p1", "p2", "p3"] {
        entries.push(json!({"resource": {"resourceType": "Patient", "id": p, "name": [{"family": format!("Family-{p}")}],
            "identifier": [{"system": "urn:mrn", "value": format!("mrn-{p}")}], "generalPractitioner": [{"reference": "Practitioner/doc"}]},
            "request": {"method": "PUT", "url": format!("Patient/{p}")}}));
        entries.push(json!({"resource": {"resourceType": "Observation", "id": format!("obs-{p}"), "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": if p == "p1" {"laboratory"} else {"vital-signs"}}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "heart rate"},
            "subject": {"reference": format!("Patient/{p}")}, "performer": [{"reference": "Practitioner/doc"}],
            "valueQuantity": {"value": 70}},
            "request": {"method": "PUT", "url": format!("Observation/obs-{p}")}}));
        entries.push(
            json!({"resource": {"resourceType": "Encounter", "id": format!("enc-{p}"), "status": "finished",
            "class": {"code": "AMB"}, "subject": {"reference": format!("Patient/{p}")}},
            "request": {"method": "PUT", "url": format!("Encounter/enc-{p}")}}),
        );
        entries.push(
            json!({"resource": {"resourceType": "Condition", "id": format!("cond-{p}"),
            "subject": {"reference": format!("Patient/{p}")}, "code": {"text": "flu"}},
            "request": {"method": "PUT", "url": format!("Condition/cond-{p}")}}),
        );
    }
    entries.push(json!({"resource": {"resourceType": "Group", "id": "family", "type": "person", "actual": true, "quantity": 3,
        "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}, {"entity": {"reference": "Patient/p3"}}]},
        "request": {"method": "PUT", "url": "Group/family"}}));
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let reply = admin.post("", &bundle).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// `type/id` of the resources of a Bundle, in order.
pub fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["resource"]["resourceType"] != "OperationOutcome")
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap(),
                        e["resource"]["id"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
