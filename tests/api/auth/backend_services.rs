//! The built-in authorization server (SMART Backend Services): a registered client gets a token
//! with a signed assertion — through the `oauth2` crate, a real OAuth 2.0 client library — and
//! uses it; every malformed, replayed or overreaching request is refused per RFC 6749; tokens are
//! introspected and revoked (attack case 8).

use super::{fixture, now, sign_with};
use crate::harness::TestApp;
use fhir_server::config::ServeConfig;
use jsonwebtoken::Algorithm;
use oauth2::basic::BasicClient;
use oauth2::{ClientId, Scope, TokenResponse, TokenUrl};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

crate::on_both_backends!(with super::with_clients;
    a_client_gets_a_token_through_an_oauth2_library_and_uses_it,
    bad_assertions_and_overreaching_scopes_are_refused_per_rfc_6749,
    a_revoked_token_is_refused_and_introspected_inactive,
    the_signing_key_is_kept_and_published,
);

crate::on_both_backends!(with |c| { super::with_clients(c); crate::auth::with_idp(c); };
    only_backends_introspect_tokens_other_than_their_own,
);

/// Registers `bulk` (ES384 and RS384 keys, `system/*.rs` and writes of Observations) and
/// `reader` (Patients only), with a signing key of its own per server.
fn with_clients(config: &mut ServeConfig) {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "clients-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks: Value = serde_json::from_str(&std::fs::read_to_string(fixture("client-jwks.json")).unwrap()).unwrap();
    let clients = json!([
        {"client_id": "bulk", "jwks": jwks, "scope": "system/*.rs system/Observation.cruds"},
        {"client_id": "reader", "jwks": jwks, "scope": "system/Patient.rs", "fhirUser": "Device/reader-app"},
    ]);
    std::fs::write(dir.join("clients.json"), clients.to_string()).unwrap();
    config.auth_clients_file = Some(dir.join("clients.json"));
    config.auth_signing_key = Some(dir.join("signing-key.pem"));
}

fn token_url(app: &TestApp) -> String {
    app.url("auth/token")
}

/// A client assertion of `client` for `app`, with `changes` made to its claims.
fn assertion(app: &TestApp, client: &str, changes: Value) -> String {
    let mut claims = json!({"iss": client, "sub": client, "aud": token_url(app), "exp": now() + 240,
        "jti": uuid::Uuid::new_v4().to_string()});
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    sign_with(&claims, Algorithm::ES384, "client-ec", "client-ec384.pem")
}

/// POSTs a token request form; the status and the JSON answer.
async fn token_request(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let reply = app.send(app.client.post(token_url(app)).form(form)).await;
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{}", reply.text);
    (reply.status, reply.json())
}

async fn request_with(app: &TestApp, client_assertion: &str, scope: &str) -> (u16, Value) {
    token_request(
        app,
        &[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", client_assertion),
        ],
    )
    .await
}

/// The `oauth2` crate's HTTP client hook, over reqwest.
async fn http(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let client = crate::harness::client();
    let mut builder = client.request(request.method().clone(), request.uri().to_string());
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    let response = builder.body(request.into_body()).send().await?;
    let mut answer = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    Ok(answer.body(response.bytes().await?.to_vec()).unwrap())
}

async fn a_client_gets_a_token_through_an_oauth2_library_and_uses_it(app: TestApp) {
    let client = BasicClient::new(ClientId::new("bulk".into())).set_token_uri(TokenUrl::new(token_url(&app)).unwrap());
    let client_assertion = assertion(&app, "bulk", json!({}));
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("system/*.rs".into()))
        .add_scope(Scope::new("system/Observation.c".into()))
        .add_extra_param(
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        )
        .add_extra_param("client_assertion", client_assertion)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("the token request failed: {e:?}"));
    assert!(token.expires_in().unwrap().as_secs() <= 300);
    let scopes: Vec<String> = token.scopes().unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(scopes, ["system/*.rs", "system/Observation.c"]);
    let bearer = token.access_token().secret().clone();
    let as_bulk = super::As {
        app: &app,
        token: bearer,
    };
    let created = as_bulk
        .post(
            "Observation",
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(as_bulk.get("Observation").await.status, 200);
    as_bulk
        .post("Patient", &json!({"resourceType": "Patient"}))
        .await
        .assert_outcome(403, "forbidden");
    // An RS384 assertion of the other registered key works the same.
    let mut claims = json!({"iss": "bulk", "sub": "bulk", "aud": token_url(&app), "exp": now() + 60, "jti": "rsa-1"});
    let rsa = sign_with(&claims, Algorithm::RS384, "client-rsa", "client-rsa.pem");
    let (status, answer) = request_with(&app, &rsa, "system/Patient.read").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "bearer");
    // The client's fhirUser goes into its tokens.
    claims["iss"] = json!("reader");
    claims["sub"] = json!("reader");
    let (_, answer) = request_with(
        &app,
        &sign_with(&claims, Algorithm::RS384, "client-rsa", "client-rsa.pem"),
        "system/Patient.rs",
    )
    .await;
    let introspected = introspect(&app, answer["access_token"].as_str().unwrap()).await;
    assert_eq!(introspected["fhirUser"], "Device/reader-app");
    assert_eq!(introspected["client_id"], "reader");
}

async fn bad_assertions_and_overreaching_scopes_are_refused_per_rfc_6749(app: TestApp) {
    let invalid_client = |(status, answer): (u16, Value), why: &str| {
        assert_eq!(
            (status, answer["error"].as_str()),
            (401, Some("invalid_client")),
            "{why}: {answer}"
        );
        assert!(answer["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    };
    let scope = "system/*.rs";
    invalid_client(
        request_with(&app, &assertion(&app, "bulk", json!({"aud": app.base})), scope).await,
        "aud is the base",
    );
    invalid_client(
        request_with(&app, &assertion(&app, "bulk", json!({"exp": now() + 3600})), scope).await,
        "exp an hour away",
    );
    invalid_client(
        request_with(&app, &assertion(&app, "bulk", json!({"exp": now() - 600})), scope).await,
        "expired",
    );
    invalid_client(
        request_with(&app, &assertion(&app, "bulk", json!({"sub": "reader"})), scope).await,
        "sub is not iss",
    );
    invalid_client(
        request_with(&app, &assertion(&app, "bulk", json!({"jti": null})), scope).await,
        "no jti",
    );
    invalid_client(
        request_with(&app, &assertion(&app, "stranger", json!({})), scope).await,
        "unregistered",
    );
    let once = assertion(&app, "bulk", json!({}));
    assert_eq!(request_with(&app, &once, scope).await.0, 200);
    invalid_client(request_with(&app, &once, scope).await, "jti replayed");
    // Signed with a key the client did not register, or with HS256 or ES256.
    let claims = json!({"iss": "bulk", "sub": "bulk", "aud": token_url(&app), "exp": now() + 60, "jti": "k1"});
    invalid_client(
        request_with(
            &app,
            &sign_with(&claims, Algorithm::ES384, "client-ec", "idp-ec384.pem"),
            scope,
        )
        .await,
        "foreign key",
    );
    invalid_client(
        request_with(
            &app,
            &sign_with(&claims, Algorithm::HS256, "client-ec", "client-jwks.json"),
            scope,
        )
        .await,
        "HS256",
    );
    invalid_client(
        request_with(
            &app,
            &sign_with(&claims, Algorithm::RS256, "client-rsa", "client-rsa.pem"),
            scope,
        )
        .await,
        "RS256",
    );
    invalid_client(
        token_request(&app, &[("grant_type", "client_credentials"), ("scope", scope)]).await,
        "no assertion",
    );
    // Scopes the client did not register: invalid_scope; another grant type: unsupported.
    for asked in ["patient/*.rs", "system/*.cruds", "system/Patient.d", "openid"] {
        let (status, answer) = request_with(&app, &assertion(&app, "bulk", json!({})), asked).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_scope")),
            "{asked}: {answer}"
        );
    }
    // A granular scope with a modifier or a chain is refused at token time, saying why.
    for (asked, why) in [
        ("system/Observation.rs?code:text=x", "modifier"),
        ("system/Observation.rs?subject.name=x", "chain"),
    ] {
        let (status, answer) = request_with(&app, &assertion(&app, "bulk", json!({})), asked).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_scope")),
            "{answer}"
        );
        let description = answer["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(why), "{asked}: {description}");
    }
    let (status, answer) = request_with(&app, &assertion(&app, "bulk", json!({})), "system/*.rs system/*.cruds").await;
    assert_eq!(
        (status, answer["scope"].as_str()),
        (200, Some("system/*.rs")),
        "the registered part is granted"
    );
    let (status, answer) = token_request(&app, &[("grant_type", "password"), ("username", "x")]).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let reply = app
        .send(
            app.client
                .post(token_url(&app))
                .json(&json!({"grant_type": "client_credentials"})),
        )
        .await;
    assert_eq!(
        (reply.status, reply.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let reply = app
        .send(
            app.client
                .post(app.url("auth/introspect"))
                .bearer_auth(token)
                .form(&[("token", token)]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

async fn a_revoked_token_is_refused_and_introspected_inactive(app: TestApp) {
    let (_, answer) = request_with(&app, &assertion(&app, "bulk", json!({})), "system/*.rs").await;
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let (_, other) = request_with(&app, &assertion(&app, "bulk", json!({})), "system/*.rs").await;
    let other = other["access_token"].as_str().unwrap().to_owned();
    let as_client = super::As {
        app: &app,
        token: token.clone(),
    };
    assert_eq!(as_client.get("Patient").await.status, 200);
    let active = introspect(&app, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["scope"], "system/*.rs");
    assert!(active["exp"].as_i64().unwrap() <= now() + 300);
    // Revoked (RFC 7009) by the client it was issued to, authenticated by an assertion; another
    // client may not revoke it.
    let revoke_as = |client: &str| {
        let form = [
            ("token", token.clone()),
            ("token_type_hint", "access_token".to_owned()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion", assertion(&app, client, json!({}))),
        ];
        app.send(app.client.post(app.url("auth/revoke")).form(&form))
    };
    let reply = revoke_as("reader").await;
    assert_eq!(
        (reply.status, reply.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(as_client.get("Patient").await.status, 200);
    assert_eq!(revoke_as("bulk").await.status, 200);
    let refused = as_client.get("Patient").await;
    refused.assert_outcome(401, "login");
    assert!(refused.header("www-authenticate").unwrap().contains("invalid_token"));
    let inactive = app
        .send(
            app.client
                .post(app.url("auth/introspect"))
                .bearer_auth(&other)
                .form(&[("token", token.as_str())]),
        )
        .await
        .json();
    assert_eq!(inactive, json!({"active": false}));
    // The other token is unaffected; a holder may revoke its own token by presenting it.
    assert_eq!(
        super::As {
            app: &app,
            token: other.clone()
        }
        .get("Patient")
        .await
        .status,
        200
    );
    let reply = app
        .send(
            app.client
                .post(app.url("auth/revoke"))
                .bearer_auth(&other)
                .form(&[("token", other.as_str())]),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        super::As {
            app: &app,
            token: other.clone()
        }
        .get("Patient")
        .await
        .status,
        401
    );
    // Without authenticating, neither endpoint answers.
    let reply = app
        .send(
            app.client
                .post(app.url("auth/introspect"))
                .form(&[("token", token.as_str())]),
        )
        .await;
    assert_eq!(reply.status, 401);
}

async fn the_signing_key_is_kept_and_published(mut app: TestApp) {
    let document = app.get(".well-known/smart-configuration").await.json();
    assert_eq!(document["issuer"], app.base);
    assert_eq!(document["token_endpoint"], token_url(&app));
    assert_eq!(document["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(
        document["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );
    let jwks = app.get(".well-known/jwks.json").await.json();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["alg"], "ES384");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part");
    let (_, answer) = request_with(&app, &assertion(&app, "bulk", json!({})), "system/*.rs").await;
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), jwks["keys"][0]["kid"].as_str());
    assert_eq!(super::As { app: &app, token }.get("Patient").await.status, 200);
    // The key file survives a restart (on another port here, so with another issuer URL).
    app.restart().await;
    assert_eq!(app.get(".well-known/jwks.json").await.json(), jwks);
}

async fn only_backends_introspect_tokens_other_than_their_own(app: TestApp) {
    let (_, answer) = request_with(&app, &assertion(&app, "bulk", json!({})), "system/*.rs").await;
    let backend = answer["access_token"].as_str().unwrap().to_owned();
    let patient = super::token(&app, "patient/*.rs", Some("p1"));
    let ask = |caller: &str, token: &str| {
        app.send(
            app.client
                .post(app.url("auth/introspect"))
                .bearer_auth(caller)
                .form(&[("token", token)]),
        )
    };
    // A patient app learns nothing about another token, but may look at its own.
    let refused = ask(&patient, &backend).await;
    assert_eq!(
        (refused.status, refused.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(
        !refused.text.contains("system/*.rs") && !refused.text.contains("active"),
        "{}",
        refused.text
    );
    assert_eq!(ask(&patient, &patient).await.json()["patient"], "p1");
    // A backend (a system/ scope) introspects any token.
    let seen = ask(&backend, &patient).await.json();
    assert_eq!(
        (seen["active"].as_bool(), seen["patient"].as_str()),
        (Some(true), Some("p1"))
    );
}
