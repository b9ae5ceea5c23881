//! Authorization off (no `--auth-…` setting): the server says so, and does not serve such an open
//! door on an address others reach unless told to with `--allow-unauthenticated`.

use crate::harness::TestApp;
use fhir_server::app;

crate::on_both_backends!(
    an_open_server_refuses_a_non_loopback_address_unless_allowed,
    an_open_server_says_so_in_its_capability_statement,
);

async fn an_open_server_refuses_a_non_loopback_address_unless_allowed(mut app: TestApp) {
    // An SQLite database has one server at a time.
    app.stop_server().await;
    let mut config = app.config.clone();
    config.listen = "0.0.0.0:0".to_owned();
    let refused = app::start(&config)
        .await
        .err()
        .expect("an open server on 0.0.0.0 is refused");
    let message = refused.to_string();
    assert!(message.contains("--allow-unauthenticated"), "{message}");

    config.allow_unauthenticated = true;
    let open = app::start(&config).await.expect("allowed explicitly");
    open.stop().await.unwrap();

    // With authorization on, any address is fine.
    let mut config = app.config.clone();
    config.listen = "0.0.0.0:0".to_owned();
    crate::auth::with_idp(&mut config);
    let guarded = app::start(&config).await.expect("authorization on");
    guarded.stop().await.unwrap();
}

async fn an_open_server_says_so_in_its_capability_statement(app: TestApp) {
    let capabilities = app.get("metadata").await.json();
    let security = &capabilities["rest"][0]["security"];
    let description = security["description"].as_str().unwrap_or_default();
    assert!(description.starts_with("Authorization is off"), "{security}");
    assert!(security.get("service").is_none(), "{security}");
    let reply = app.get(".well-known/smart-configuration").await;
    assert_eq!(
        reply.status, 404,
        "an open server offers no SMART configuration: {}",
        reply.text
    );
}
