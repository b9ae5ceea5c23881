//! The CapabilityStatement, health endpoints, and data surviving a restart.

use crate::harness::TestApp;
use serde_json::json;

crate::on_both_backends!(
    metadata_describes_what_the_server_does,
    health_and_readiness,
    data_survives_a_restart,
);

#[tokio::test]
async fn a_second_server_cannot_open_the_same_sqlite_file() {
    // The in-memory version cache relies on this process being the SQLite file's only writer.
    let app = crate::harness::TestApp::spawn(crate::harness::Backend::Sqlite)
        .await
        .unwrap();
    let second = fhir_server::app::start(&fhir_server::config::ServeConfig::for_database(
        app.database_url.clone(),
    ))
    .await;
    let error = second.err().expect("a second server on the same file must be refused");
    assert!(error.to_string().contains("in use by another"), "{error}");
}

async fn metadata_describes_what_the_server_does(app: TestApp) {
    let reply = app.get("metadata").await;
    assert_eq!(reply.status, 200);
    let cs = reply.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["kind"], "instance");
    assert_eq!(cs["implementation"]["url"], app.base);
    let rest = &cs["rest"][0];
    assert_eq!(rest["mode"], "server");
    assert_eq!(
        rest["interaction"],
        json!([{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}, {"code": "search-system"}])
    );
    let resources = rest["resource"].as_array().unwrap();
    assert!(resources.len() > 140);
    let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
    let codes: Vec<&str> = patient["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    for code in [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ] {
        assert!(codes.contains(&code), "{code} missing");
    }
    let params = patient["searchParam"].as_array().unwrap();
    assert!(params.iter().any(|p| p["name"] == "name" && p["type"] == "string"));
    assert_eq!(patient["versioning"], "versioned-update");
    assert_eq!(patient["updateCreate"], true);
    assert_eq!(patient["conditionalCreate"], true);
    assert_eq!(patient["conditionalUpdate"], true);
    assert_eq!(patient["conditionalDelete"], "single");
}

async fn health_and_readiness(app: TestApp) {
    let root = app.base.trim_end_matches("/fhir/R4").to_owned();
    let health = app.send(app.client.get(format!("{root}/health"))).await;
    assert_eq!(health.status, 200);
    let ready = app.send(app.client.get(format!("{root}/health/ready"))).await;
    assert_eq!(ready.status, 200);
}

async fn data_survives_a_restart(mut app: TestApp) {
    app.put("Patient/keep", &json!({"resourceType": "Patient", "id": "keep"}))
        .await;
    app.put(
        "Patient/keep",
        &json!({"resourceType": "Patient", "id": "keep", "active": true}),
    )
    .await;
    app.restart().await;
    let read = app.get("Patient/keep").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    let next = app
        .put("Patient/keep", &json!({"resourceType": "Patient", "id": "keep"}))
        .await;
    assert_eq!(
        next.header("etag"),
        Some("W/\"3\""),
        "versions continue after a restart"
    );
}
