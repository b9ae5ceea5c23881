//! Keys by URL: an identity provider's JWK Set (`--auth-jwks-url`) and a Backend Services
//! client's (`jwks_url`), fetched at start and again — at most once per interval — when a token
//! or an assertion names a key not yet known (key rotation), from a JWK Set server in the test.

use super::{fixture, now, sign_with};
use crate::harness::TestApp;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

crate::on_both_backends!(with super::with_key_server;
    keys_are_fetched_at_start_and_again_for_an_unknown_kid,
);

const ISSUER: &str = "https://rotating.example.test";

/// A JWK Set server: what it serves at `/idp` and `/client`, and how often it was asked.
#[derive(Default)]
struct KeyServer {
    idp: Mutex<Value>,
    client: Mutex<Value>,
    fetches: AtomicUsize,
}

fn servers() -> &'static Mutex<HashMap<String, Arc<KeyServer>>> {
    static SERVERS: OnceLock<Mutex<HashMap<String, Arc<KeyServer>>>> = OnceLock::new();
    SERVERS.get_or_init(Default::default)
}

fn jwks(file: &str, kids: &[&str]) -> Value {
    let all: Value = serde_json::from_str(&std::fs::read_to_string(fixture(file)).unwrap()).unwrap();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
        .cloned()
        .collect();
    json!({ "keys": keys })
}

/// Starts a JWK Set server serving the identity provider's EC key only (and the client's keys),
/// and points the settings at it.
fn with_key_server(config: &mut fhir_server::config::ServeConfig) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(KeyServer::default());
    *state.idp.lock().unwrap() = jwks("idp-jwks.json", &["idp-ec"]);
    *state.client.lock().unwrap() = jwks("client-jwks.json", &["client-ec"]);
    let served = state.clone();
    let router = axum::Router::new()
        .route(
            "/idp",
            axum::routing::get({
                let s = served.clone();
                move || async move {
                    s.fetches.fetch_add(1, Ordering::SeqCst);
                    s.idp.lock().unwrap().to_string()
                }
            }),
        )
        .route(
            "/client",
            axum::routing::get(move || async move { served.client.lock().unwrap().to_string() }),
        );
    tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, router).await.unwrap();
    });
    servers().lock().unwrap().insert(format!("{base}/idp"), state);
    config.auth_issuer = Some(ISSUER.into());
    config.auth_jwks_url = Some(format!("{base}/idp"));
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "jwks-url-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let clients = json!([{"client_id": "remote", "jwks_url": format!("{base}/client"), "scope": "system/*.rs"}]);
    std::fs::write(dir.join("clients.json"), clients.to_string()).unwrap();
    config.auth_clients_file = Some(dir.join("clients.json"));
    config.auth_signing_key = Some(dir.join("key.pem"));
}

fn idp_token(app: &TestApp, algorithm: Algorithm, kid: &str, pem: &str) -> String {
    let claims = json!({"iss": ISSUER, "aud": app.base, "exp": now() + 300, "scope": "system/*.rs", "jti": uuid::Uuid::new_v4().to_string()});
    sign_with(&claims, algorithm, kid, pem)
}

async fn keys_are_fetched_at_start_and_again_for_an_unknown_kid(app: TestApp) {
    let server = servers().lock().unwrap()[app.config.auth_jwks_url.as_ref().unwrap()].clone();
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1, "fetched at start");
    let ec = super::As {
        app: &app,
        token: idp_token(&app, Algorithm::ES384, "idp-ec", "idp-ec384.pem"),
    };
    assert_eq!(ec.get("Patient").await.status, 200);
    // The provider rotates in its RSA key: a token signed with it makes the server fetch again.
    *server.idp.lock().unwrap() = jwks("idp-jwks.json", &["idp-ec", "idp-rsa"]);
    let rsa = super::As {
        app: &app,
        token: idp_token(&app, Algorithm::RS256, "idp-rsa", "idp-rsa.pem"),
    };
    assert_eq!(rsa.get("Patient").await.status, 200, "the new key is fetched");
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
    // Tokens naming unknown keys do not make it fetch again within the interval.
    for n in 0..5 {
        let forged = super::As {
            app: &app,
            token: idp_token(&app, Algorithm::ES384, &format!("unknown-{n}"), "client-ec384.pem"),
        };
        assert_eq!(forged.get("Patient").await.status, 401);
    }
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2, "rate-limited");
    assert_eq!(rsa.get("Patient").await.status, 200);
    // A Backend Services client registered by jwks_url gets a token with a key fetched from it.
    let assertion = sign_with(
        &json!({"iss": "remote", "sub": "remote", "aud": app.url("auth/token"), "exp": now() + 60, "jti": "r1"}),
        Algorithm::ES384,
        "client-ec",
        "client-ec384.pem",
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/*.rs"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let reply = app.send(app.client.post(app.url("auth/token")).form(&form)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}
