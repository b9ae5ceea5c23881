//! Attack cases 1–8: what is not a valid access token for this server is a `401`, with the
//! RFC 6750 challenge and an OperationOutcome, and nothing else about the request is answered.

use super::{ISSUER, admin, claims, fixture, sign, sign_with, token};
use crate::harness::{Reply, TestApp};
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::json;

crate::on_both_backends!(with crate::auth::with_idp;
    without_a_bearer_token_every_interaction_is_401_but_the_capability_statement,
    alg_none_is_401,
    hs256_signed_with_the_rsa_public_key_is_401,
    a_bad_signature_or_an_unknown_key_is_401,
    expired_or_not_yet_valid_tokens_are_401_expired,
    a_wrong_or_missing_audience_or_a_wrong_issuer_is_401,
    id_tokens_and_refresh_tokens_are_not_access_tokens,
    valid_tokens_of_either_trusted_key_are_accepted,
    the_smart_configuration_and_capability_statement_describe_the_authorization,
);

async fn get_with(app: &TestApp, path: &str, authorization: Option<&str>) -> Reply {
    let mut request = app.client.get(app.url(path));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    app.send(request).await
}

async fn get_bearer(app: &TestApp, path: &str, token: &str) -> Reply {
    get_with(app, path, Some(&format!("Bearer {token}"))).await
}

/// A `401` with the challenge, an OperationOutcome of `code`, and (given a token) `invalid_token`.
fn assert_401(reply: &Reply, code: &str, token_given: bool) {
    reply.assert_outcome(401, code);
    let challenge = reply.header("www-authenticate").expect("a challenge");
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        token_given,
        "{challenge}"
    );
}

async fn without_a_bearer_token_every_interaction_is_401_but_the_capability_statement(app: TestApp) {
    super::two_patients(&app).await;
    for authorization in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer "), Some("Bearer")] {
        for path in [
            "Patient/p1",
            "Patient/nope",
            "Observation?subject=Patient/p1",
            "",
            "_history",
            "Nonsense/x",
        ] {
            let reply = get_with(&app, path, authorization).await;
            assert_401(&reply, "login", false);
        }
    }
    // A write without a token changes nothing, however malformed its body.
    let reply = app.post("Patient", &json!({"resourceType": "Patient"})).await;
    assert_401(&reply, "login", false);
    let reply = app.send(app.client.post(app.url("Patient")).body("{not json")).await;
    assert_401(&reply, "login", false);
    let all = admin(&app).get("Patient?_summary=count").await.json();
    assert_eq!(all["total"], 3);
    let metadata = app.get("metadata").await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.json()["resourceType"], "CapabilityStatement");
}

async fn alg_none_is_401(app: TestApp) {
    let encode = |value: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let claims = claims(&app, "system/*.rs", None);
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None"}),
        json!({"alg": "none", "kid": "idp-ec"}),
    ] {
        let unsigned = format!("{}.{}.", encode(&header), encode(&claims));
        assert_401(&get_bearer(&app, "Patient", &unsigned).await, "login", true);
        // The same with a signature of the real key pasted on.
        let real = sign(&claims);
        let forged = format!(
            "{}.{}",
            &unsigned[..unsigned.len() - 1],
            real.rsplit('.').next().unwrap()
        );
        assert_401(&get_bearer(&app, "Patient", &forged).await, "login", true);
    }
}

async fn hs256_signed_with_the_rsa_public_key_is_401(app: TestApp) {
    // The key confusion: HMAC keyed with the RSA public key the server trusts for RS256.
    let claims = claims(&app, "system/*.rs", None);
    for kid in ["idp-rsa", "idp-ec"] {
        let forged = sign_with(&claims, Algorithm::HS256, kid, "idp-rsa-public.pem");
        assert_401(&get_bearer(&app, "Patient", &forged).await, "login", true);
    }
    // And the RSA key with another RSA algorithm than its JWK's.
    let other_alg = sign_with(&claims, Algorithm::RS512, "idp-rsa", "idp-rsa.pem");
    assert_401(&get_bearer(&app, "Patient", &other_alg).await, "login", true);
}

async fn a_bad_signature_or_an_unknown_key_is_401(app: TestApp) {
    let good = token(&app, "system/*.rs", None);
    assert_eq!(get_bearer(&app, "Patient", &good).await.status, 200);
    // The payload changed under the signature: a wider scope.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .unwrap(),
    )
    .unwrap();
    payload["scope"] = json!("system/*.cruds");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    assert_401(&get_bearer(&app, "Patient", &parts.join(".")).await, "login", true);
    // A key the issuer does not publish, under a kid it does not know or one it does.
    let claims = claims(&app, "system/*.rs", None);
    for kid in ["unknown-kid", "idp-ec"] {
        let foreign = sign_with(&claims, Algorithm::ES384, kid, "client-ec384.pem");
        assert_401(&get_bearer(&app, "Patient", &foreign).await, "login", true);
    }
    assert_401(&get_bearer(&app, "Patient", "not.a.jwt").await, "login", true);
    assert_401(&get_bearer(&app, "Patient", "garbage").await, "login", true);
}

async fn expired_or_not_yet_valid_tokens_are_401_expired(app: TestApp) {
    let now = super::now();
    let mut expired = claims(&app, "system/*.rs", None);
    expired["exp"] = json!(now - 120);
    expired["iat"] = json!(now - 420);
    assert_401(&get_bearer(&app, "Patient", &sign(&expired)).await, "expired", true);
    let mut early = claims(&app, "system/*.rs", None);
    early["nbf"] = json!(now + 600);
    assert_401(&get_bearer(&app, "Patient", &sign(&early)).await, "expired", true);
    // Within the 60 s of clock skew both are still good.
    let mut just = claims(&app, "system/*.rs", None);
    just["exp"] = json!(now - 10);
    just["nbf"] = json!(now + 10);
    assert_eq!(get_bearer(&app, "Patient", &sign(&just)).await.status, 200);
    // Without exp a token is no access token at all.
    let mut forever = claims(&app, "system/*.rs", None);
    forever.as_object_mut().unwrap().remove("exp");
    assert_401(&get_bearer(&app, "Patient", &sign(&forever)).await, "login", true);
}

async fn a_wrong_or_missing_audience_or_a_wrong_issuer_is_401(app: TestApp) {
    let mut wrong_aud = claims(&app, "system/*.rs", None);
    wrong_aud["aud"] = json!("https://other.example.test/fhir");
    assert_401(&get_bearer(&app, "Patient", &sign(&wrong_aud)).await, "login", true);
    let mut no_aud = claims(&app, "system/*.rs", None);
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_401(&get_bearer(&app, "Patient", &sign(&no_aud)).await, "login", true);
    let mut wrong_iss = claims(&app, "system/*.rs", None);
    wrong_iss["iss"] = json!("https://evil.example.test/realms/fhir");
    assert_401(&get_bearer(&app, "Patient", &sign(&wrong_iss)).await, "login", true);
    let mut no_scope = claims(&app, "system/*.rs", None);
    no_scope.as_object_mut().unwrap().remove("scope");
    assert_401(&get_bearer(&app, "Patient", &sign(&no_scope)).await, "login", true);
    // An audience array holding the server is fine.
    let mut array = claims(&app, "system/*.rs", None);
    array["aud"] = json!(["https://other.example.test", app.base]);
    assert_eq!(get_bearer(&app, "Patient", &sign(&array)).await.status, 200);
}

async fn id_tokens_and_refresh_tokens_are_not_access_tokens(app: TestApp) {
    let mut id_token = claims(&app, "system/*.rs", None);
    id_token["nonce"] = json!("n-0S6_WzA2Mj");
    assert_401(&get_bearer(&app, "Patient", &sign(&id_token)).await, "login", true);
    for typ in ["ID", "Refresh", "Offline"] {
        let mut other = claims(&app, "system/*.rs", None);
        other["typ"] = json!(typ);
        assert_401(&get_bearer(&app, "Patient", &sign(&other)).await, "login", true);
    }
    let mut cognito = claims(&app, "system/*.rs", None);
    cognito["token_use"] = json!("id");
    assert_401(&get_bearer(&app, "Patient", &sign(&cognito)).await, "login", true);
    let mut keycloak = claims(&app, "system/*.rs", None);
    keycloak["typ"] = json!("Bearer");
    assert_eq!(get_bearer(&app, "Patient", &sign(&keycloak)).await.status, 200);
}

async fn valid_tokens_of_either_trusted_key_are_accepted(app: TestApp) {
    let claims = claims(&app, "system/Patient.rs", None);
    let rsa = sign_with(&claims, Algorithm::RS256, "idp-rsa", "idp-rsa.pem");
    assert_eq!(get_bearer(&app, "Patient", &rsa).await.status, 200);
    let ec = sign(&claims);
    let reply = get_bearer(&app, "Patient", &ec).await;
    assert_eq!(reply.status, 200);
    // And a second time, from the cache of verified tokens.
    assert_eq!(get_bearer(&app, "Patient", &ec).await.status, 200);
    // A scope on Patient only: Observation is forbidden, with the RFC 6750 challenge.
    let reply = get_bearer(&app, "Observation", &ec).await;
    reply.assert_outcome(403, "forbidden");
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|c| c.contains("insufficient_scope"))
    );
    assert!(fixture("idp-jwks.json").exists());
}

async fn the_smart_configuration_and_capability_statement_describe_the_authorization(app: TestApp) {
    let reply = app.get(".well-known/smart-configuration").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.header("content-type").unwrap().starts_with("application/json"));
    let document = reply.json();
    assert_eq!(document["issuer"], ISSUER);
    assert_eq!(document["code_challenge_methods_supported"], json!(["S256"]));
    let capabilities = document["capabilities"].as_array().unwrap();
    for wanted in ["permission-v1", "permission-v2", "client-confidential-asymmetric"] {
        assert!(capabilities.contains(&json!(wanted)), "{wanted}");
    }
    assert!(document["grant_types_supported"].is_array());
    for (name, url) in document.as_object().unwrap() {
        if name.ends_with("_endpoint") || name == "jwks_uri" {
            assert!(url.as_str().unwrap().starts_with("http"), "{name} is absolute");
        }
    }
    let statement = app.get("metadata").await.json();
    let security = &statement["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert_eq!(
        security["extension"][0]["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
}
